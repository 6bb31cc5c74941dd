using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http.Features;
using Sextant.Core.Evaluation;
using Sextant.Core.Projects;

namespace Sextant.Server.Gateway;

/// <summary>
/// The gateway called in-process: a request goes through <see cref="GatewayProxy"/> exactly as an HTTP call would
/// (routes, prompts, limits, retries, cache, traces), on a context with no socket behind it.
/// </summary>
internal sealed class GatewayCaller(GatewayProxy proxy, IServiceProvider services) : IGatewayCaller
{
    public async Task<GatewayAnswer> ChatAsync(Caller caller, JsonObject request, IReadOnlyList<string> tags, CancellationToken cancellationToken)
    {
        // Never a stream: a prompt's config may ask for one, and only a missing field takes the config's value.
        request["stream"] = false;
        var (status, body, traceId, span, ms) = await CallAsync(caller, "chat", request, tags, cancellationToken);
        if (status is < 200 or >= 300)
        {
            return new GatewayAnswer(status, null, body, ErrorMessage(body, status), ms, null, null, null, traceId);
        }
        var message = body?["choices"]?[0]?["message"];
        var text = message?["content"] switch
        {
            JsonValue v when v.TryGetValue<string>(out var s) => s,
            JsonArray parts => string.Concat(parts.Select(p => p?["text"]?.GetValue<string>())),
            _ => message?["tool_calls"]?.ToJsonString(),
        };
        return new GatewayAnswer(status, text ?? "", body, null, ms, span?.InputTokens, span?.OutputTokens, span?.Cost, traceId);
    }

    public async Task<float[][]> EmbedAsync(Caller caller, string model, IReadOnlyList<string> texts, CancellationToken cancellationToken)
    {
        var request = new JsonObject { ["model"] = model, ["input"] = new JsonArray([.. texts.Select(t => (JsonNode?)JsonValue.Create(t))]) };
        var (status, body, _, _, _) = await CallAsync(caller, "embeddings", request, ["sextant:judge"], cancellationToken);
        if (status is < 200 or >= 300 || body?["data"] is not JsonArray data || data.Count != texts.Count)
        {
            throw new InvalidOperationException($"The embeddings of '{model}' failed: {ErrorMessage(body, status)}");
        }
        return [.. data.OrderBy(d => d?["index"]?.GetValue<int>() ?? 0).Select(d => d!["embedding"]!.AsArray().Select(x => x!.GetValue<float>()).ToArray())];
    }

    private async Task<(int Status, JsonNode? Body, string? TraceId, Sextant.Contracts.Span? Span, double Ms)> CallAsync(Caller caller, string operation, JsonObject request,
        IReadOnlyList<string> tags, CancellationToken cancellationToken)
    {
        var started = Stopwatch.GetTimestamp();
        var bytes = JsonSerializer.SerializeToUtf8Bytes(request, GatewayJson.Default.JsonObject);
        using var scope = services.CreateScope();
        var ctx = new DefaultHttpContext { RequestServices = scope.ServiceProvider, RequestAborted = cancellationToken };
        ctx.Items[typeof(Caller)] = caller;
        ctx.Request.Method = "POST";
        ctx.Request.ContentType = "application/json";
        ctx.Request.ContentLength = bytes.Length;
        ctx.Request.Body = new MemoryStream(bytes);
        if (tags.Count > 0)
        {
            ctx.Request.Headers["x-sextant-tags"] = string.Join(",", tags);
        }
        var response = new MemoryStream();
        ctx.Features.Set<IHttpResponseBodyFeature>(new StreamResponseBodyFeature(response));
        var recorded = new GatewayProxy.RecordedSpanFeature();
        ctx.Features.Set(recorded);
        await proxy.HandleAsync(ctx, operation);
        var ms = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
        JsonNode? body = null;
        try
        {
            body = response.Length == 0 ? null : JsonNode.Parse(response.ToArray());
        }
        catch (JsonException)
        {
            body = JsonValue.Create(System.Text.Encoding.UTF8.GetString(response.ToArray()));
        }
        var span = recorded.Recorded is { } task ? await task.WaitAsync(cancellationToken) : null;
        var traceId = ctx.Response.Headers["x-sextant-trace-id"].ToString() is { Length: > 0 } id ? id : null;
        return (ctx.Response.StatusCode, body, traceId, span, ms);
    }

    private static string ErrorMessage(JsonNode? body, int status) =>
        body?["error"]?["message"] is JsonValue message && message.TryGetValue<string>(out var text) ? $"HTTP {status}: {text}" : $"HTTP {status}: {body?.ToJsonString() ?? "(no body)"}";
}
