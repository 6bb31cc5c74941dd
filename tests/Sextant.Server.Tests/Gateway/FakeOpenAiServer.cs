using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace Sextant.Server.Tests.Gateway;

/// <summary>
/// A fake OpenAI-compatible upstream on 127.0.0.1, the one thing outside our control that tests replace. The model
/// name picks the behaviour: ok-* answers (with usage and a vendor field), fail-NNN answers status NNN, slow-* waits
/// 2 s, flaky-* fails its first request with 503, delay-NN-* waits NN ms, and streams send chunks with a pause between
/// them. A model in <see cref="Scripts"/> answers what its script returns for the request (judges, scripted outputs).
/// </summary>
public sealed class FakeOpenAiServer : IAsyncDisposable
{
    private WebApplication _app = null!;

    public ConcurrentQueue<(string Model, JsonObject Body, string? Authorization)> Requests { get; } = new();

    /// <summary>The W3C trace context each request came with, by model: traceparent and tracestate ("" when absent).</summary>
    public ConcurrentQueue<(string Model, string TraceParent, string TraceState)> TraceContexts { get; } = new();

    public ConcurrentDictionary<string, int> Hits { get; } = new();

    /// <summary>Scripted answers by model name: the assistant's content for a request.</summary>
    public ConcurrentDictionary<string, Func<JsonObject, string>> Scripts { get; } = new();

    private int _cancelledStreams;

    public int CancelledStreams => Volatile.Read(ref _cancelledStreams);

    public Uri BaseUrl { get; private set; } = null!;

    public static async Task<FakeOpenAiServer> StartAsync()
    {
        var fake = new FakeOpenAiServer();
        (fake._app, var address) = await FakeHost.StartAsync(app =>
        {
            app.MapPost("/v1/chat/completions", fake.ChatAsync);
            app.MapPost("/v1/embeddings", fake.EmbeddingsAsync);
        });
        fake.BaseUrl = new Uri(address + "/v1");
        return fake;
    }

    private async Task<JsonObject> ReadAsync(HttpContext ctx)
    {
        var body = (JsonObject)(await JsonNode.ParseAsync(ctx.Request.Body))!;
        var model = body["model"]!.GetValue<string>();
        // Azure OpenAI's key comes as api-key: it is recorded as "api-key KEY".
        Requests.Enqueue((model, body, ctx.Request.Headers["api-key"].ToString() is { Length: > 0 } azure ? "api-key " + azure : ctx.Request.Headers.Authorization.ToString()));
        TraceContexts.Enqueue((model, ctx.Request.Headers["traceparent"].ToString(), ctx.Request.Headers["tracestate"].ToString()));
        Hits.AddOrUpdate(model, 1, (_, n) => n + 1);
        return body;
    }

    private async Task ChatAsync(HttpContext ctx)
    {
        var body = await ReadAsync(ctx);
        var model = body["model"]!.GetValue<string>();
        if (model.StartsWith("fail-", StringComparison.Ordinal))
        {
            ctx.Response.StatusCode = int.Parse(model[5..8], System.Globalization.CultureInfo.InvariantCulture);
            await ctx.Response.WriteAsJsonAsync(new JsonObject { ["error"] = new JsonObject { ["message"] = $"upstream says {model}", ["type"] = "upstream_error" } });
            return;
        }
        if (model.StartsWith("flaky-", StringComparison.Ordinal) && Hits[model] == 1)
        {
            ctx.Response.StatusCode = 503;
            await ctx.Response.WriteAsJsonAsync(new JsonObject { ["error"] = new JsonObject { ["message"] = "try again" } });
            return;
        }
        if (model.StartsWith("slow-", StringComparison.Ordinal))
        {
            await Task.Delay(2000, ctx.RequestAborted);
        }
        if (model.StartsWith("delay-", StringComparison.Ordinal))
        {
            await Task.Delay(int.Parse(model.Split('-')[1], System.Globalization.CultureInfo.InvariantCulture), ctx.RequestAborted);
        }
        var content = Scripts.TryGetValue(model, out var script) ? script(body) : "Hello there";
        var usage = new JsonObject
        {
            ["prompt_tokens"] = 12,
            ["completion_tokens"] = 5,
            ["total_tokens"] = 17,
            ["prompt_tokens_details"] = new JsonObject { ["cached_tokens"] = 4 },
            ["completion_tokens_details"] = new JsonObject { ["reasoning_tokens"] = 0 },
        };
        if (body["stream"]?.GetValue<bool>() == true)
        {
            ctx.Response.ContentType = "text/event-stream";
            var pause = model.StartsWith("longstream-", StringComparison.Ordinal) ? 400 : 20;
            try
            {
                foreach (var piece in new[] { "Hel", "lo", " there" }.Concat(pause > 100 ? Enumerable.Repeat(".", 20) : []))
                {
                    var chunk = new JsonObject
                    {
                        ["id"] = "chatcmpl-1", ["object"] = "chat.completion.chunk", ["model"] = model + "-2025",
                        ["choices"] = new JsonArray(new JsonObject { ["index"] = 0, ["delta"] = new JsonObject { ["content"] = piece }, ["finish_reason"] = null }),
                    };
                    await ctx.Response.WriteAsync($"data: {chunk.ToJsonString()}\n\n", ctx.RequestAborted);
                    await ctx.Response.Body.FlushAsync(ctx.RequestAborted);
                    await Task.Delay(pause, ctx.RequestAborted);
                }
                var last = new JsonObject
                {
                    ["id"] = "chatcmpl-1", ["object"] = "chat.completion.chunk", ["model"] = model + "-2025",
                    ["choices"] = new JsonArray(new JsonObject { ["index"] = 0, ["delta"] = new JsonObject(), ["finish_reason"] = "stop" }),
                };
                await ctx.Response.WriteAsync($"data: {last.ToJsonString()}\n\n", ctx.RequestAborted);
                if (body["stream_options"]?["include_usage"]?.GetValue<bool>() == true)
                {
                    var usageChunk = new JsonObject { ["id"] = "chatcmpl-1", ["object"] = "chat.completion.chunk", ["model"] = model + "-2025", ["choices"] = new JsonArray(), ["usage"] = usage };
                    await ctx.Response.WriteAsync($"data: {usageChunk.ToJsonString()}\n\n", ctx.RequestAborted);
                }
                await ctx.Response.WriteAsync("data: [DONE]\n\n", ctx.RequestAborted);
            }
            catch (OperationCanceledException)
            {
                Interlocked.Increment(ref _cancelledStreams);
            }
            return;
        }
        await ctx.Response.WriteAsJsonAsync(new JsonObject
        {
            ["id"] = "chatcmpl-1",
            ["object"] = "chat.completion",
            ["created"] = 1700000000,
            ["model"] = model + "-2025",
            ["choices"] = new JsonArray(new JsonObject
            {
                ["index"] = 0, ["message"] = new JsonObject { ["role"] = "assistant", ["content"] = content }, ["finish_reason"] = "stop",
            }),
            ["usage"] = usage,
            ["system_fingerprint"] = "fp_fake",
            ["x_vendor"] = new JsonObject { ["region"] = "test" },
        });
    }

    private async Task EmbeddingsAsync(HttpContext ctx)
    {
        var body = await ReadAsync(ctx);
        await ctx.Response.WriteAsJsonAsync(new JsonObject
        {
            ["object"] = "list",
            // One vector per input: a string's vector depends on its length, so equal texts get equal vectors.
            ["data"] = body["input"] is JsonArray inputs
                ? new JsonArray([.. inputs.Select((text, i) => (JsonNode)new JsonObject
                {
                    ["object"] = "embedding", ["index"] = i, ["embedding"] = new JsonArray(1.0, text!.GetValue<string>().Length % 7, 0.5),
                })])
                : new JsonArray(new JsonObject { ["object"] = "embedding", ["index"] = 0, ["embedding"] = new JsonArray(0.1, 0.2, 0.3) }),
            ["model"] = body["model"]!.GetValue<string>(),
            ["usage"] = new JsonObject { ["prompt_tokens"] = 3, ["total_tokens"] = 3 },
        });
    }

    public async ValueTask DisposeAsync() => await _app.DisposeAsync();
}
