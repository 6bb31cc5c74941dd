using System.Diagnostics;
using System.IO.Compression;
using System.Net;
using System.Text;
using Microsoft.Extensions.AI;
using OpenTelemetry;
using OpenTelemetry.Exporter;
using OpenTelemetry.Trace;
using Sextant.Contracts;

namespace Sextant.Client.Tests.Tracing;

/// <summary>
/// OTLP/HTTP from the real OpenTelemetry .NET SDK (protobuf), Microsoft.Extensions.AI's UseOpenTelemetry, hand-written
/// OTLP/JSON, and Sextant's own UseSextant middleware: all end as the same generation spans.
/// </summary>
public sealed class OtlpIngestionTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    /// <summary>A model that answers "4" with usage, standing in for a provider.</summary>
    private sealed class FixedChatClient : IChatClient
    {
        public Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default) =>
            Task.FromResult(new ChatResponse(new ChatMessage(ChatRole.Assistant, "4"))
            {
                ModelId = "gpt-4o-mini-2024-07-18",
                Usage = new UsageDetails { InputTokenCount = 1000, OutputTokenCount = 10, CachedInputTokenCount = 200 },
            });

        public async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
            [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken = default)
        {
            foreach (var piece in new[] { "fo", "ur" })
            {
                await Task.Delay(5, cancellationToken);
                yield return new ChatResponseUpdate(ChatRole.Assistant, piece) { ModelId = "gpt-4o-mini" };
            }
            yield return new ChatResponseUpdate { Contents = [new UsageContent(new UsageDetails { InputTokenCount = 50, OutputTokenCount = 2 })] };
        }

        public object? GetService(Type serviceType, object? serviceKey = null) =>
            serviceType == typeof(ChatClientMetadata) ? new ChatClientMetadata("openai", new Uri("https://api.openai.com/v1"), "gpt-4o-mini") : null;

        public void Dispose()
        {
        }
    }

    /// <summary>Every string in a JSON value, joined: messages are compared by their text, whatever their shape.</summary>
    private static string AllText(System.Text.Json.JsonElement element) => element.ValueKind switch
    {
        System.Text.Json.JsonValueKind.String => element.GetString()!,
        System.Text.Json.JsonValueKind.Array => string.Join(" ", element.EnumerateArray().Select(AllText)),
        System.Text.Json.JsonValueKind.Object => string.Join(" ", element.EnumerateObject().Select(p => AllText(p.Value))),
        _ => "",
    };

    private async Task<TraceResponse> WaitForTraceAsync(SextantClient client, string traceId)
    {
        for (var i = 0; i < 100; i++)
        {
            try
            {
                return await client.GetTraceAsync(traceId);
            }
            catch (SextantApiException e) when (e.StatusCode == HttpStatusCode.NotFound)
            {
                await Task.Delay(50);
            }
        }
        throw new TimeoutException($"trace {traceId} never appeared");
    }

    [Fact]
    public async Task The_opentelemetry_sdk_exporter_and_extensions_ai_use_opentelemetry_land_as_generations()
    {
        var sourceName = "sextant-test-" + Guid.NewGuid().ToString("N")[..8];
        using var tracerProvider = Sdk.CreateTracerProviderBuilder()
            .AddSource(sourceName)
            .AddOtlpExporter(o =>
            {
                o.Endpoint = new Uri(fixture.Address, "v1/traces");
                o.Protocol = OtlpExportProtocol.HttpProtobuf;
                o.ExportProcessorType = ExportProcessorType.Simple;
            })
            .Build();
        var chat = new ChatClientBuilder(new FixedChatClient())
            .UseOpenTelemetry(sourceName: sourceName, configure: c => c.EnableSensitiveData = true)
            .Build();
        using var source = new ActivitySource(sourceName);
        string traceId;
        using (var root = source.StartActivity("answer a question"))
        {
            traceId = root!.TraceId.ToHexString();
            root.SetTag("user.id", "dana");
            var answer = await chat.GetResponseAsync([new ChatMessage(ChatRole.User, "What is 2+2?")], new ChatOptions { Temperature = 0.1f, ModelId = "gpt-4o-mini" });
            Assert.Equal("4", answer.Text);
        }
        Assert.True(tracerProvider.ForceFlush(5000));

        using var client = fixture.CreateClient();
        var trace = await WaitForTraceAsync(client, traceId);
        Assert.Equal("answer a question", trace.Trace.Name);
        var generation = trace.Spans.Single(s => s.Kind == "generation");
        Assert.Equal(("openai", "gpt-4o-mini-2024-07-18", "chat"), (generation.Provider, generation.Model, generation.Operation));
        Assert.Equal((1000L, 10L, 200L), (generation.InputTokens, generation.OutputTokens, generation.CachedInputTokens));
        // gpt-4o-mini: 800 x 0.15 + 200 x 0.075 + 10 x 0.60 = 141 USD per million tokens.
        Assert.Equal(141e-6, generation.Cost!.Value, 12);
        Assert.Contains("What is 2+2?", AllText(generation.Input!.Value));
        Assert.Contains("4", AllText(generation.Output!.Value));
        Assert.Equal(0.1, generation.Parameters!["temperature"].GetDouble(), 3);
        Assert.Equal(trace.Spans.Single(s => s.Kind == "span").SpanId, generation.ParentSpanId);
        Assert.Equal("dana", trace.Trace.UserId);
    }

    [Fact]
    public async Task Use_sextant_traces_calls_and_streams_without_the_gateway()
    {
        using var sextant = fixture.CreateClient();
        var chat = new ChatClientBuilder(new FixedChatClient()).UseSextant(sextant, o => { o.UserId = "erin"; o.SessionId = "chat-42"; }).Build();
        Assert.Equal("4", (await chat.GetResponseAsync("What is 2+2?")).Text);
        var streamed = new StringBuilder();
        await foreach (var update in chat.GetStreamingResponseAsync("And in words?"))
        {
            streamed.Append(update.Text);
        }
        Assert.Equal("four", streamed.ToString());
        await sextant.FlushTracesAsync();
        var traces = (await sextant.ListTracesAsync(session: "chat-42")).Traces;
        Assert.Equal(2, traces.Count);
        var spans = await Task.WhenAll(traces.Select(t => WaitForTraceAsync(sextant, t.TraceId)));
        var streamSpan = spans.Select(s => s.Spans[0]).Single(s => s.InputTokens == 50);
        Assert.Equal(("gpt-4o-mini", "erin"), (streamSpan.Model, streamSpan.UserId));
        Assert.True(streamSpan.TimeToFirstTokenMs > 0);
        Assert.Contains("four", AllText(streamSpan.Output!.Value));
        Assert.Equal(0, sextant.DroppedSpans);
    }

    [Fact]
    public async Task Otlp_json_gzip_and_bad_bodies()
    {
        var traceId = Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(16));
        var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() * 1_000_000;
        var json = $$$"""
            {"resourceSpans": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "support-bot"}}]},
              "scopeSpans": [{"scope": {"name": "anthropic-instrumentation"}, "spans": [
                {"traceId": "{{{traceId}}}", "spanId": "1111111111111111", "name": "chat claude-sonnet-4-5", "kind": 3,
                 "startTimeUnixNano": "{{{now}}}", "endTimeUnixNano": "{{{now + 2_000_000_000}}}",
                 "attributes": [
                   {"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
                   {"key": "gen_ai.system", "value": {"stringValue": "anthropic"}},
                   {"key": "gen_ai.request.model", "value": {"stringValue": "claude-sonnet-4-5-20250929"}},
                   {"key": "gen_ai.request.temperature", "value": {"doubleValue": 0.2}},
                   {"key": "gen_ai.request.temperature", "value": {"doubleValue": 0.7}},
                   {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "100"}},
                   {"key": "gen_ai.usage.cache_read.input_tokens", "value": {"intValue": "1000"}},
                   {"key": "gen_ai.usage.output_tokens", "value": {"intValue": "50"}}],
                 "events": [{"name": "gen_ai.user.message", "timeUnixNano": "{{{now}}}", "attributes": [{"key": "content", "value": {"stringValue": "Reset my password"}}]}],
                 "status": {"code": 2, "message": "overloaded"}},
                {"traceId": "{{{traceId}}}", "spanId": "00", "name": "broken"}
              ]}]}]}
            """;
        using var http = new HttpClient { BaseAddress = fixture.Address };
        using var gzipped = new MemoryStream();
        await using (var zip = new GZipStream(gzipped, CompressionLevel.Fastest, leaveOpen: true))
        {
            await zip.WriteAsync(Encoding.UTF8.GetBytes(json));
        }
        using var content = new ByteArrayContent(gzipped.ToArray());
        content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/json");
        content.Headers.ContentEncoding.Add("gzip");
        var response = await http.PostAsync("v1/traces", content);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Contains("\"rejectedSpans\":\"1\"", await response.Content.ReadAsStringAsync());

        using var client = fixture.CreateClient();
        var span = (await WaitForTraceAsync(client, traceId)).Spans.Single();
        // Anthropic reports cache reads beside the input tokens: Sextant's input includes them.
        Assert.Equal((1100L, 1000L, "error", "overloaded"), (span.InputTokens!.Value, span.CachedInputTokens!.Value, span.Status, span.StatusMessage));
        // claude-sonnet-4-5: 100 x 3 + 1000 x 0.30 + 50 x 15 = 1350 USD per million tokens.
        Assert.Equal(1350e-6, span.Cost!.Value, 12);
        Assert.Contains("Reset my password", AllText(span.Input!.Value));
        Assert.Equal("support-bot", span.Attributes!["service.name"].GetString());
        Assert.Equal("anthropic-instrumentation", span.Attributes!["otel.scope.name"].GetString());
        // A key sent twice keeps its last value.
        Assert.Equal(0.7, span.Parameters!["temperature"].GetDouble());
        Assert.Equal(0.7, span.Attributes!["gen_ai.request.temperature"].GetDouble());

        var garbage = new ByteArrayContent([1, 2, 3, 250, 251]);
        garbage.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/x-protobuf");
        Assert.Equal(HttpStatusCode.BadRequest, (await http.PostAsync("v1/traces", garbage)).StatusCode);
        var notGzip = new StringContent("{}", Encoding.UTF8, "application/json");
        notGzip.Headers.ContentEncoding.Add("gzip");
        Assert.Equal(HttpStatusCode.BadRequest, (await http.PostAsync("v1/traces", notGzip)).StatusCode);
        var wrongType = new StringContent("x", Encoding.UTF8, "text/plain");
        Assert.Equal(HttpStatusCode.UnsupportedMediaType, (await http.PostAsync("v1/traces", wrongType)).StatusCode);
        var huge = new ByteArrayContent(new byte[17 * 1024 * 1024]);
        huge.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/x-protobuf");
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, (await http.PostAsync("v1/traces", huge)).StatusCode);
    }
}
