using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace Sextant.Server.Tests.Gateway;

/// <summary>
/// A fake Anthropic Messages API on 127.0.0.1 (POST /v1/messages). The model name picks the behaviour: claude-tool-*
/// asks for a tool, claude-fail-NNN answers status NNN with Anthropic's error shape, claude-long-* streams slowly;
/// anything else answers "Hello from Claude". Usage reports cache reads and writes beside the input tokens, as
/// Anthropic does.
/// </summary>
public sealed class FakeAnthropicServer : IAsyncDisposable
{
    private WebApplication _app = null!;
    private int _cancelledStreams;

    public ConcurrentQueue<(JsonObject Body, string? ApiKey, string? Version)> Requests { get; } = new();

    /// <summary>The W3C trace context each request came with, by model: traceparent and tracestate ("" when absent).</summary>
    public ConcurrentQueue<(string Model, string TraceParent, string TraceState)> TraceContexts { get; } = new();

    public int CancelledStreams => Volatile.Read(ref _cancelledStreams);

    public Uri BaseUrl { get; private set; } = null!;

    public static async Task<FakeAnthropicServer> StartAsync()
    {
        var fake = new FakeAnthropicServer();
        (fake._app, var address) = await FakeHost.StartAsync(app => app.MapPost("/v1/messages", fake.MessagesAsync));
        fake.BaseUrl = new Uri(address);
        return fake;
    }

    private static JsonObject Usage(int output) => new()
    {
        ["input_tokens"] = 10, ["output_tokens"] = output, ["cache_read_input_tokens"] = 90, ["cache_creation_input_tokens"] = 5,
    };

    private async Task MessagesAsync(HttpContext ctx)
    {
        var body = (JsonObject)(await JsonNode.ParseAsync(ctx.Request.Body))!;
        // The SDK sends the key as x-api-key or as a bearer token, both of which Anthropic takes.
        var key = ctx.Request.Headers["x-api-key"].ToString() is { Length: > 0 } apiKey ? apiKey : ctx.Request.Headers.Authorization.ToString().Replace("Bearer ", "", StringComparison.Ordinal);
        Requests.Enqueue((body, key, ctx.Request.Headers["anthropic-version"].ToString()));
        var model = body["model"]!.GetValue<string>();
        TraceContexts.Enqueue((model, ctx.Request.Headers["traceparent"].ToString(), ctx.Request.Headers["tracestate"].ToString()));
        if (model.StartsWith("claude-fail-", StringComparison.Ordinal))
        {
            ctx.Response.StatusCode = int.Parse(model[12..15], System.Globalization.CultureInfo.InvariantCulture);
            await ctx.Response.WriteAsJsonAsync(new JsonObject
            {
                ["type"] = "error", ["error"] = new JsonObject { ["type"] = "overloaded_error", ["message"] = $"anthropic says {model}" },
            });
            return;
        }
        var tool = model.StartsWith("claude-tool-", StringComparison.Ordinal);
        if (body["stream"]?.GetValue<bool>() != true)
        {
            JsonNode content = tool
                ? new JsonObject { ["type"] = "tool_use", ["id"] = "toolu_1", ["name"] = "get_weather", ["input"] = new JsonObject { ["city"] = "Paris" } }
                : new JsonObject { ["type"] = "text", ["text"] = "Hello from Claude" };
            await ctx.Response.WriteAsJsonAsync(new JsonObject
            {
                ["id"] = "msg_1", ["type"] = "message", ["role"] = "assistant", ["model"] = model + "-20250101",
                ["content"] = new JsonArray(content), ["stop_reason"] = tool ? "tool_use" : "end_turn", ["stop_sequence"] = null, ["usage"] = Usage(20),
            });
            return;
        }
        ctx.Response.ContentType = "text/event-stream";
        var pause = model.StartsWith("claude-long-", StringComparison.Ordinal) ? 400 : 10;
        async Task Send(string type, JsonObject data)
        {
            data["type"] = type;
            await ctx.Response.WriteAsync($"event: {type}\ndata: {data.ToJsonString()}\n\n", ctx.RequestAborted);
            await ctx.Response.Body.FlushAsync(ctx.RequestAborted);
        }
        try
        {
            var start = Usage(1);
            await Send("message_start", new JsonObject
            {
                ["message"] = new JsonObject
                {
                    ["id"] = "msg_2", ["type"] = "message", ["role"] = "assistant", ["model"] = model + "-20250101", ["content"] = new JsonArray(),
                    ["stop_reason"] = null, ["stop_sequence"] = null, ["usage"] = start,
                },
            });
            await Send("ping", []);
            if (tool)
            {
                await Send("content_block_start", new JsonObject
                {
                    ["index"] = 0, ["content_block"] = new JsonObject { ["type"] = "tool_use", ["id"] = "toolu_2", ["name"] = "get_weather", ["input"] = new JsonObject() },
                });
                foreach (var part in new[] { "{\"city\": ", "\"Paris\"}" })
                {
                    await Send("content_block_delta", new JsonObject { ["index"] = 0, ["delta"] = new JsonObject { ["type"] = "input_json_delta", ["partial_json"] = part } });
                }
            }
            else
            {
                await Send("content_block_start", new JsonObject { ["index"] = 0, ["content_block"] = new JsonObject { ["type"] = "text", ["text"] = "" } });
                foreach (var piece in new[] { "Hello", " from", " Claude" }.Concat(pause > 100 ? Enumerable.Repeat(".", 20) : []))
                {
                    await Send("content_block_delta", new JsonObject { ["index"] = 0, ["delta"] = new JsonObject { ["type"] = "text_delta", ["text"] = piece } });
                    await Task.Delay(pause, ctx.RequestAborted);
                }
            }
            await Send("content_block_stop", new JsonObject { ["index"] = 0 });
            await Send("message_delta", new JsonObject
            {
                ["delta"] = new JsonObject { ["stop_reason"] = tool ? "tool_use" : "end_turn", ["stop_sequence"] = null },
                ["usage"] = new JsonObject { ["output_tokens"] = 20 },
            });
            await Send("message_stop", []);
        }
        catch (OperationCanceledException)
        {
            Interlocked.Increment(ref _cancelledStreams);
        }
    }

    public async ValueTask DisposeAsync() => await _app.DisposeAsync();
}
