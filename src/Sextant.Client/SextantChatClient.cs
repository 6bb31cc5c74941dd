using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using System.Text.Json;
using Microsoft.Extensions.AI;
using Sextant.Contracts;

namespace Sextant.Client;

/// <summary>What <see cref="SextantChatClient"/> records of each call.</summary>
public sealed class SextantChatClientOptions
{
    /// <summary>Keep the messages and the answer (on by default); off keeps only model, usage, timing and status.</summary>
    public bool CaptureContent { get; set; } = true;

    public string? UserId { get; set; }

    public string? SessionId { get; set; }

    public IList<string> Tags { get; } = [];
}

/// <summary>
/// A Microsoft.Extensions.AI middleware that traces any <see cref="IChatClient"/> into Sextant: each call becomes a
/// generation span (model, provider, parameters, messages, usage, time to first token, status), joined to the
/// current <see cref="Activity"/>'s trace when there is one. Spans are sent in the background, in batches.
/// </summary>
public sealed class SextantChatClient(IChatClient inner, SextantClient sextant, SextantChatClientOptions? options = null) : DelegatingChatClient(inner)
{
    private readonly SextantChatClientOptions _options = options ?? new SextantChatClientOptions();

    public override async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        var list = messages as IList<ChatMessage> ?? [.. messages];
        var start = Stopwatch.GetTimestamp();
        var started = DateTimeOffset.UtcNow;
        try
        {
            var response = await base.GetResponseAsync(list, options, cancellationToken).ConfigureAwait(false);
            Record(list, options, response, null, started, start, null);
            return response;
        }
        catch (Exception e)
        {
            Record(list, options, null, e, started, start, null);
            throw;
        }
    }

    public override async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var list = messages as IList<ChatMessage> ?? [.. messages];
        var start = Stopwatch.GetTimestamp();
        var started = DateTimeOffset.UtcNow;
        var updates = new List<ChatResponseUpdate>();
        double? firstToken = null;
        var recorded = false;
        await using var enumerator = base.GetStreamingResponseAsync(list, options, cancellationToken).GetAsyncEnumerator(cancellationToken);
        try
        {
            while (true)
            {
                ChatResponseUpdate update;
                try
                {
                    if (!await enumerator.MoveNextAsync().ConfigureAwait(false))
                    {
                        break;
                    }
                    update = enumerator.Current;
                }
                catch (Exception e)
                {
                    recorded = true;
                    Record(list, options, updates.Count > 0 ? updates.ToChatResponse() : null, e, started, start, firstToken);
                    throw;
                }
                if (firstToken is null && !string.IsNullOrEmpty(update.Text))
                {
                    firstToken = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
                }
                updates.Add(update);
                yield return update;
            }
            recorded = true;
            Record(list, options, updates.ToChatResponse(), null, started, start, firstToken);
        }
        finally
        {
            if (!recorded)
            {
                // The caller stopped reading before the end: the call is still traced, as cut short.
                Record(list, options, updates.Count > 0 ? updates.ToChatResponse() : null, new OperationCanceledException("the caller stopped reading the stream"), started, start, firstToken);
            }
        }
    }

    private void Record(IList<ChatMessage> messages, ChatOptions? options, ChatResponse? response, Exception? error, DateTimeOffset started, long start, double? firstToken)
    {
        var metadata = GetService(typeof(ChatClientMetadata)) as ChatClientMetadata;
        var model = response?.ModelId ?? options?.ModelId ?? metadata?.DefaultModelId;
        var parent = Activity.Current;
        var traceId = parent?.TraceId.ToHexString() is { } t && t != "00000000000000000000000000000000" ? t : Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));
        var startMicros = started.ToUnixTimeMilliseconds() * 1000;
        var usage = response?.Usage;
        var parameters = new Dictionary<string, JsonElement>();
        void Parameter<T>(string name, T? value) where T : struct, IConvertible
        {
            if (value is { } v)
            {
                parameters[name] = JsonSerializer.SerializeToElement(v.ToDouble(System.Globalization.CultureInfo.InvariantCulture), ChatJson.Default.Double);
            }
        }
        Parameter("temperature", options?.Temperature);
        Parameter("top_p", options?.TopP);
        Parameter("max_tokens", options?.MaxOutputTokens);
        Parameter("seed", options?.Seed);
        var span = new Span(
            traceId,
            Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8)),
            parent is not null && parent.TraceId.ToHexString() == traceId ? parent.SpanId.ToHexString() : null,
            $"chat {model ?? "model"}",
            "generation",
            startMicros,
            startMicros + (long)(Stopwatch.GetElapsedTime(start).TotalMilliseconds * 1000),
            error is null ? "ok" : "error",
            error?.Message,
            metadata?.ProviderName,
            model,
            "chat",
            usage?.InputTokenCount,
            usage?.OutputTokenCount,
            usage?.CachedInputTokenCount,
            null,
            usage?.ReasoningTokenCount,
            TimeToFirstTokenMs: firstToken,
            UserId: _options.UserId,
            SessionId: _options.SessionId,
            Input: _options.CaptureContent ? JsonSerializer.SerializeToElement(messages.Select(m => new ChatMessageRecord(m.Role.Value, m.Text)).ToList(), ChatJson.Default.ListChatMessageRecord) : null,
            Output: _options.CaptureContent && response is not null
                ? JsonSerializer.SerializeToElement(new ChatMessageRecord("assistant", response.Text), ChatJson.Default.ChatMessageRecord)
                : null,
            Parameters: parameters.Count > 0 ? parameters : null,
            Tags: _options.Tags.Count > 0 ? [.. _options.Tags] : null);
        sextant.EnqueueSpan(span);
    }
}

/// <summary>A message as a span stores it.</summary>
internal sealed record ChatMessageRecord(string Role, string Content);

[System.Text.Json.Serialization.JsonSourceGenerationOptions(PropertyNamingPolicy = System.Text.Json.Serialization.JsonKnownNamingPolicy.SnakeCaseLower)]
[System.Text.Json.Serialization.JsonSerializable(typeof(List<ChatMessageRecord>))]
[System.Text.Json.Serialization.JsonSerializable(typeof(ChatMessageRecord))]
[System.Text.Json.Serialization.JsonSerializable(typeof(double))]
internal sealed partial class ChatJson : System.Text.Json.Serialization.JsonSerializerContext;

public static class SextantChatClientBuilderExtensions
{
    /// <summary>Traces every call of the chat client into Sextant (see <see cref="SextantChatClient"/>).</summary>
    public static ChatClientBuilder UseSextant(this ChatClientBuilder builder, SextantClient sextant, Action<SextantChatClientOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(sextant);
        var options = new SextantChatClientOptions();
        configure?.Invoke(options);
        return builder.Use(inner => new SextantChatClient(inner, sextant, options));
    }
}
