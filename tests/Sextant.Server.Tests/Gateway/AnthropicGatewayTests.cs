using System.Text;
using System.Text.Json.Nodes;

namespace Sextant.Server.Tests.Gateway;

/// <summary>
/// Anthropic's Messages API behind the OpenAI-compatible gateway: requests translated to Anthropic's format, answers
/// and streams back to OpenAI's, tool calls both ways, errors and fallback, cache tokens counted once.
/// </summary>
public sealed class AnthropicGatewayTests(ServerFixture fixture) : IClassFixture<ServerFixture>, IAsyncLifetime
{
    private FakeAnthropicServer _anthropic = null!;
    private FakeOpenAiServer _openai = null!;
    private HttpClient Http => fixture.Http;

    public async Task InitializeAsync()
    {
        _anthropic = await FakeAnthropicServer.StartAsync();
        _openai = await FakeOpenAiServer.StartAsync();
        // Given as https://api.anthropic.com/v1 would be: the /v1 is dropped, since the SDK adds it.
        Assert.Equal(200, (await Http.SendAsync(HttpMethod.Put, "/api/v1/gateway/providers/claude",
            new JsonObject { ["kind"] = "anthropic", ["base_url"] = _anthropic.BaseUrl + "v1", ["api_key"] = "sk-ant-secret" }.ToJsonString())).Status);
        Assert.Equal(200, (await Http.SendAsync(HttpMethod.Put, "/api/v1/gateway/providers/oai",
            new JsonObject { ["kind"] = "openai", ["base_url"] = _openai.BaseUrl.ToString() }.ToJsonString())).Status);
        Assert.Equal(200, (await Http.PostAsync("/api/v1/prices", new { model = "claude-ok*", provider = "anthropic", input = 3.0, output = 15.0, cached_input = 0.3, cache_write = 3.75, effective_from = 1 })).Status);
    }

    public async Task DisposeAsync()
    {
        await _anthropic.DisposeAsync();
        await _openai.DisposeAsync();
    }

    private Task<ApiAnswer> SendAsync(JsonObject body, Action<HttpRequestMessage>? configure = null) =>
        GatewayCalls.SendAsync(Http, "/v1/chat/completions", body.ToJsonString(), configure);

    private static JsonObject Chat(string model, bool stream = false) => new()
    {
        ["model"] = model,
        ["messages"] = new JsonArray(
            new JsonObject { ["role"] = "system", ["content"] = "Be brief." },
            new JsonObject { ["role"] = "user", ["content"] = "Say hello" }),
        ["temperature"] = 0.3,
        ["stop"] = "END",
        ["stream"] = stream,
    };

    [Fact]
    public async Task A_chat_request_is_translated_to_messages_and_the_answer_back_with_cache_tokens_counted_once()
    {
        var answer = await SendAsync(Chat("claude/claude-ok-1"));
        Assert.Equal(200, answer.Status);
        Assert.Equal("chat.completion", answer.Json!["object"]!.GetValue<string>());
        Assert.Equal("Hello from Claude", answer.Json["choices"]![0]!["message"]!["content"]!.GetValue<string>());
        Assert.Equal("stop", answer.Json["choices"]![0]!["finish_reason"]!.GetValue<string>());
        // OpenAI's convention: prompt tokens include Anthropic's cache reads (90) and writes (5) beside its 10 input tokens.
        var usage = answer.Json["usage"]!;
        Assert.Equal((105, 20, 90), (usage["prompt_tokens"]!.GetValue<long>(), usage["completion_tokens"]!.GetValue<long>(), usage["prompt_tokens_details"]!["cached_tokens"]!.GetValue<long>()));

        var sent = _anthropic.Requests.Last();
        Assert.Equal("sk-ant-secret", sent.ApiKey);
        Assert.False(string.IsNullOrEmpty(sent.Version));
        Assert.Equal("claude-ok-1", sent.Body["model"]!.GetValue<string>());
        // The system message is Anthropic's top-level system; max_tokens, which Anthropic requires, gets a default.
        Assert.Contains("Be brief.", sent.Body["system"]!.ToJsonString(), StringComparison.Ordinal);
        Assert.Equal("user", sent.Body["messages"]![0]!["role"]!.GetValue<string>());
        Assert.Single(sent.Body["messages"]!.AsArray());
        Assert.Equal(4096, sent.Body["max_tokens"]!.GetValue<int>());
        // The Messages API of the SDK's version (2026-10-21) takes no sampling parameters: the SDK leaves temperature out.
        Assert.Null(sent.Body["temperature"]);
        Assert.Equal("END", sent.Body["stop_sequences"]![0]!.GetValue<string>());

        var span = (await GatewayCalls.TraceAsync(Http, answer))["spans"]![0]!;
        Assert.Equal(("claude", "claude-ok-1-20250101", "ok"), (span["provider"]!.GetValue<string>(), span["model"]!.GetValue<string>(), span["status"]!.GetValue<string>()));
        Assert.Equal((105, 90, 5), (span["input_tokens"]!.GetValue<long>(), span["cached_input_tokens"]!.GetValue<long>(), span["cache_write_tokens"]!.GetValue<long>()));
        // 10 x 3 + 90 x 0.3 + 5 x 3.75 + 20 x 15 USD per million: each token priced once, at its own rate.
        Assert.Equal((10 * 3 + 90 * 0.3 + 5 * 3.75 + 20 * 15) / 1e6, span["cost"]!.GetValue<double>(), 12);
        Assert.Equal("Hello from Claude", span["output"]!["content"]!.GetValue<string>());
        Assert.Equal(0.3, span["parameters"]!["temperature"]!.GetValue<double>());
        Assert.Equal("anthropic", span["attributes"]!["gen_ai.provider.name"]!.GetValue<string>());
    }

    [Fact]
    public async Task Anthropic_is_told_the_trace_with_the_gateway_span_as_its_parent_streams_included()
    {
        foreach (var stream in new[] { false, true })
        {
            var model = stream ? "claude-trace-stream" : "claude-trace";
            // A trace of its own, so that its one span is this call's.
            var traceId = Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(16));
            var answer = await SendAsync(Chat("claude/" + model, stream), request =>
            {
                request.Headers.Add("traceparent", $"00-{traceId}-00f067aa0ba902b7-01");
                request.Headers.Add("tracestate", "vendor=abc");
            });
            Assert.Equal(200, answer.Status);
            var span = (await GatewayCalls.TraceAsync(Http, answer))["spans"]![0]!;
            var sent = _anthropic.TraceContexts.Last(r => r.Model == model);
            Assert.Equal($"00-{traceId}-{span["span_id"]!.GetValue<string>()}-01", sent.TraceParent);
            Assert.Equal("vendor=abc", sent.TraceState);
        }
        // A call that starts its own trace tells Anthropic that one.
        var started = await SendAsync(Chat("claude/claude-trace-own"));
        var trace = await GatewayCalls.TraceAsync(Http, started);
        Assert.Equal($"00-{trace["trace"]!["trace_id"]!.GetValue<string>()}-{trace["spans"]![0]!["span_id"]!.GetValue<string>()}-01",
            _anthropic.TraceContexts.Last(r => r.Model == "claude-trace-own").TraceParent);
    }

    [Fact]
    public async Task A_stream_becomes_openai_chunks_with_a_usage_chunk_and_done()
    {
        var answer = await SendAsync(Chat("claude/claude-ok-2", stream: true));
        Assert.Equal(200, answer.Status);
        Assert.StartsWith("text/event-stream", answer.Response.Content.Headers.ContentType!.ToString(), StringComparison.Ordinal);
        var events = answer.Body.Split("\n\n", StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal("data: [DONE]", events[^1]);
        var chunks = events[..^1].Select(e => JsonNode.Parse(e["data: ".Length..])!).ToList();
        Assert.All(chunks, c => Assert.Equal("chat.completion.chunk", c["object"]!.GetValue<string>()));
        var text = string.Concat(chunks.Select(c => c["choices"]!.AsArray() is { Count: > 0 } ch ? ch[0]!["delta"]!["content"]?.GetValue<string>() : null));
        Assert.Equal("Hello from Claude", text);
        Assert.Equal("assistant", chunks[0]["choices"]![0]!["delta"]!["role"]!.GetValue<string>());
        Assert.Contains(chunks, c => c["choices"]!.AsArray() is { Count: > 0 } ch && ch[0]!["finish_reason"]?.GetValue<string>() == "stop");
        Assert.Equal(105, chunks[^1]["usage"]!["prompt_tokens"]!.GetValue<long>());
        Assert.Equal(20, chunks[^1]["usage"]!["completion_tokens"]!.GetValue<long>());
        Assert.True(_anthropic.Requests.Last().Body["stream"]!.GetValue<bool>());

        var span = (await GatewayCalls.TraceAsync(Http, answer))["spans"]![0]!;
        Assert.Equal("Hello from Claude", span["output"]!["content"]!.GetValue<string>());
        Assert.Equal((105, 20), (span["input_tokens"]!.GetValue<long>(), span["output_tokens"]!.GetValue<long>()));
        Assert.False(span["tokens_estimated"]!.GetValue<bool>());
        Assert.True(span["time_to_first_token_ms"]!.GetValue<double>() > 0);
    }

    [Fact]
    public async Task Tools_and_tool_results_are_translated_both_ways_streams_included()
    {
        var body = new JsonObject
        {
            ["model"] = "claude/claude-tool-1",
            ["messages"] = new JsonArray(
                new JsonObject { ["role"] = "user", ["content"] = "Weather in Paris? And Rome?" },
                new JsonObject
                {
                    ["role"] = "assistant", ["content"] = null,
                    ["tool_calls"] = new JsonArray(new JsonObject
                    {
                        ["id"] = "call_rome", ["type"] = "function",
                        ["function"] = new JsonObject { ["name"] = "get_weather", ["arguments"] = """{"city":"Rome"}""" },
                    }),
                },
                new JsonObject { ["role"] = "tool", ["tool_call_id"] = "call_rome", ["content"] = "sunny" }),
            ["tools"] = new JsonArray(new JsonObject
            {
                ["type"] = "function",
                ["function"] = new JsonObject
                {
                    ["name"] = "get_weather", ["description"] = "The weather in a city",
                    ["parameters"] = new JsonObject
                    {
                        ["type"] = "object", ["properties"] = new JsonObject { ["city"] = new JsonObject { ["type"] = "string" } }, ["required"] = new JsonArray("city"),
                    },
                },
            }),
            ["tool_choice"] = "auto",
        };
        var answer = await SendAsync(body);
        Assert.Equal(200, answer.Status);
        var sent = _anthropic.Requests.Last().Body;
        Assert.Equal("get_weather", sent["tools"]![0]!["name"]!.GetValue<string>());
        Assert.Equal("string", sent["tools"]![0]!["input_schema"]!["properties"]!["city"]!["type"]!.GetValue<string>());
        var history = sent["messages"]!.ToJsonString();
        Assert.Contains("\"tool_use\"", history, StringComparison.Ordinal);
        Assert.Contains("\"tool_result\"", history, StringComparison.Ordinal);
        Assert.Contains("call_rome", history, StringComparison.Ordinal);

        var choice = answer.Json!["choices"]![0]!;
        Assert.Equal("tool_calls", choice["finish_reason"]!.GetValue<string>());
        var call = choice["message"]!["tool_calls"]![0]!;
        Assert.Equal(("toolu_1", "function", "get_weather"), (call["id"]!.GetValue<string>(), call["type"]!.GetValue<string>(), call["function"]!["name"]!.GetValue<string>()));
        Assert.Equal("Paris", JsonNode.Parse(call["function"]!["arguments"]!.GetValue<string>())!["city"]!.GetValue<string>());

        body["stream"] = true;
        var streamed = await SendAsync(body);
        var chunks = streamed.Body.Split("\n\n", StringSplitOptions.RemoveEmptyEntries)[..^1].Select(e => JsonNode.Parse(e["data: ".Length..])!).ToList();
        var streamedCall = chunks.Select(c => c["choices"]!.AsArray() is { Count: > 0 } ch ? ch[0]!["delta"]!["tool_calls"]?[0] : null).Single(c => c is not null)!;
        Assert.Equal(("toolu_2", "get_weather"), (streamedCall["id"]!.GetValue<string>(), streamedCall["function"]!["name"]!.GetValue<string>()));
        Assert.Equal("Paris", JsonNode.Parse(streamedCall["function"]!["arguments"]!.GetValue<string>())!["city"]!.GetValue<string>());
        Assert.Contains(chunks, c => c["choices"]!.AsArray() is { Count: > 0 } ch && ch[0]!["finish_reason"]?.GetValue<string>() == "tool_calls");
    }

    [Fact]
    public async Task Anthropic_errors_pass_through_with_their_status_and_a_5xx_falls_back_to_another_provider()
    {
        var refused = await SendAsync(Chat("claude/claude-fail-400"));
        Assert.Equal(400, refused.Status);
        Assert.Equal("anthropic says claude-fail-400", refused.Json!["error"]!["message"]!.GetValue<string>());
        Assert.Equal("overloaded_error", refused.Json["error"]!["type"]!.GetValue<string>());

        Assert.Equal(200, (await Http.SendAsync(HttpMethod.Put, "/api/v1/gateway/routes/mixed", System.Text.Json.JsonSerializer.Serialize(new
        {
            targets = new object[] { new { provider = "claude", model = "claude-fail-529", weight = 1e9 }, new { provider = "oai", model = "ok-backup", weight = 1e-9 } },
            fallback_on = new[] { 500, 529 },
            retries = 0,
        }))).Status);
        foreach (var stream in new[] { false, true })
        {
            var answer = await SendAsync(Chat("mixed", stream));
            Assert.Equal(200, answer.Status);
            var span = (await GatewayCalls.TraceAsync(Http, answer))["spans"]![0]!;
            Assert.Equal("oai", span["provider"]!.GetValue<string>());
            var attempts = span["attributes"]!["sextant.attempt_log"]!.AsArray().Select(a => a!.GetValue<string>()).ToList();
            Assert.StartsWith("claude/claude-fail-529 error 529", attempts[0], StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task A_client_that_leaves_mid_stream_cancels_the_anthropic_call_and_bad_requests_are_400()
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Content = new StringContent(Chat("claude/claude-long-1", stream: true).ToJsonString(), Encoding.UTF8, "application/json"),
        };
        string traceId;
        using (var response = await Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead))
        {
            traceId = response.Headers.GetValues("x-sextant-trace-id").Single();
            await using var stream = await response.Content.ReadAsStreamAsync();
            Assert.True(await stream.ReadAsync(new byte[64]) > 0);
        }
        for (var i = 0; i < 100 && _anthropic.CancelledStreams == 0; i++)
        {
            await Task.Delay(50);
        }
        Assert.Equal(1, _anthropic.CancelledStreams);
        var span = (await GatewayCalls.TraceAsync(Http, traceId))["spans"]![0]!;
        Assert.StartsWith("cancelled", span["status_message"]!.GetValue<string>(), StringComparison.Ordinal);

        var badRole = await SendAsync(new JsonObject { ["model"] = "claude/claude-ok-3", ["messages"] = new JsonArray(new JsonObject { ["role"] = "wizard", ["content"] = "hi" }) });
        Assert.Equal(400, badRole.Status);
        Assert.Equal("messages[0]", badRole.Json!["error"]!["param"]!.GetValue<string>());
        Assert.Contains("'messages[0].role' must be", badRole.Json["error"]!["message"]!.GetValue<string>(), StringComparison.Ordinal);

        var embeddings = await GatewayCalls.SendAsync(Http, "/v1/embeddings", """{"model": "claude/claude-ok-4", "input": "hi"}""");
        Assert.Equal(400, embeddings.Status);
        Assert.Contains("no embeddings endpoint", embeddings.Json!["error"]!["message"]!.GetValue<string>(), StringComparison.Ordinal);
    }
}
