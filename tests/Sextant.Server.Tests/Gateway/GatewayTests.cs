using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;

namespace Sextant.Server.Tests.Gateway;

/// <summary>The OpenAI-compatible gateway in front of a fake upstream: pass-through, streams, routes, failures and traces.</summary>
public sealed class GatewayTests(ServerFixture fixture) : IClassFixture<ServerFixture>, IAsyncLifetime
{
    private FakeOpenAiServer _fake = null!;
    private HttpClient Http => fixture.Http;

    public async Task InitializeAsync()
    {
        _fake = await FakeOpenAiServer.StartAsync();
        var provider = await Http.SendAsync(HttpMethod.Put, "/api/v1/gateway/providers/fake",
            new JsonObject { ["kind"] = "openai", ["base_url"] = _fake.BaseUrl.ToString(), ["api_key"] = "sk-upstream-secret" }.ToJsonString());
        Assert.Equal(200, provider.Status);
    }

    public async Task DisposeAsync() => await _fake.DisposeAsync();

    private async Task RouteAsync(string name, object route) =>
        Assert.Equal(200, (await Http.SendAsync(HttpMethod.Put, $"/api/v1/gateway/routes/{name}", System.Text.Json.JsonSerializer.Serialize(route))).Status);

    private Task<ApiAnswer> ChatAsync(string model, bool stream = false, Action<HttpRequestMessage>? configure = null) =>
        SendAsync("/v1/chat/completions", new JsonObject
        {
            ["model"] = model,
            ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "Say hello" }),
            ["temperature"] = 0.2,
            ["custom_field"] = "kept",
            ["stream"] = stream,
        }.ToJsonString(), configure);

    private Task<ApiAnswer> SendAsync(string path, string body, Action<HttpRequestMessage>? configure = null) => GatewayCalls.SendAsync(Http, path, body, configure);

    private Task<JsonNode> TraceAsync(ApiAnswer answer) => GatewayCalls.TraceAsync(Http, answer);

    [Fact]
    public async Task A_traceparent_with_an_all_zero_parent_is_ignored_and_the_call_still_traced()
    {
        await RouteAsync("chat-zero", new { targets = new[] { new { provider = "fake", model = "ok-zero" } } });
        var answer = await ChatAsync("chat-zero", configure: r => r.Headers.Add("traceparent", "00-0af7651916cd43dd8448eb211c80319d-0000000000000000-01"));
        Assert.Equal(200, answer.Status);
        var trace = await TraceAsync(answer);
        Assert.NotEqual("0af7651916cd43dd8448eb211c80319d", trace["trace"]!["trace_id"]!.GetValue<string>());
        Assert.Null(trace["spans"]![0]!["parent_span_id"]);
    }

    [Fact]
    public async Task The_upstream_is_told_the_trace_with_the_gateway_span_as_its_parent()
    {
        await RouteAsync("chat-propagate", new { targets = new[] { new { provider = "fake", model = "ok-propagate" } } });
        // Joining the caller's trace: the upstream gets that trace, the gateway's own span as parent, and the caller's tracestate.
        var joined = await ChatAsync("chat-propagate", configure: r =>
        {
            r.Headers.Add("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
            r.Headers.Add("tracestate", "vendor=abc");
        });
        Assert.Equal(200, joined.Status);
        var span = (await TraceAsync(joined))["spans"]![0]!;
        var sent = _fake.TraceContexts.Last(r => r.Model == "ok-propagate");
        Assert.Equal($"00-4bf92f3577b34da6a3ce929d0e0e4736-{span["span_id"]!.GetValue<string>()}-01", sent.TraceParent);
        Assert.Equal("vendor=abc", sent.TraceState);
        Assert.NotEqual("00f067aa0ba902b7", span["span_id"]!.GetValue<string>());

        // A call that starts its own trace tells the upstream that one, and no caller's state.
        var started = await ChatAsync("chat-propagate");
        var trace = await TraceAsync(started);
        sent = _fake.TraceContexts.Last(r => r.Model == "ok-propagate");
        Assert.Equal($"00-{trace["trace"]!["trace_id"]!.GetValue<string>()}-{trace["spans"]![0]!["span_id"]!.GetValue<string>()}-01", sent.TraceParent);
        Assert.Equal("", sent.TraceState);
    }

    [Fact]
    public async Task A_parameter_nested_as_deep_as_a_request_may_nest_is_kept_on_the_span()
    {
        await RouteAsync("chat-deep", new { targets = new[] { new { provider = "fake", model = "ok-deep" } } });
        // The request nests 64 levels, the most a JSON parse allows by default: 63 of them in one parameter.
        var deep = string.Concat(Enumerable.Repeat("{\"a\":", 62)) + "{}" + new string('}', 62);
        var answer = await SendAsync("/v1/chat/completions",
            $$"""{"model":"chat-deep","messages":[{"role":"user","content":"Say hello"}],"response_format":{{deep}}}""");
        Assert.Equal(200, answer.Status);
        // The trace nests deeper than a default parse allows: read with room.
        var id = answer.Response.Headers.GetValues("x-sextant-trace-id").Single();
        JsonNode? trace = null;
        for (var i = 0; i < 100 && trace is null; i++)
        {
            var got = await Http.GetJsonAsync($"/api/v1/traces/{id}");
            Assert.True(got.Status is 200 or 404, got.Body);
            trace = got.Status == 200 ? JsonNode.Parse(got.Body, documentOptions: new System.Text.Json.JsonDocumentOptions { MaxDepth = 128 }) : null;
            await Task.Delay(trace is null ? 50 : 0);
        }
        var level = trace!["spans"]![0]!["parameters"]!["response_format"];
        var depth = 0;
        while (level?["a"] is { } inner)
        {
            (level, depth) = (inner, depth + 1);
        }
        Assert.Equal(62, depth);
    }

    [Fact]
    public async Task A_chat_completion_passes_through_unchanged_and_becomes_a_priced_generation_span()
    {
        await RouteAsync("chat-a", new { targets = new[] { new { provider = "fake", model = "ok-a" } } });
        Assert.Equal(200, (await Http.PostAsync("/api/v1/prices", new { model = "ok-a*", input = 1.0, output = 2.0, cached_input = 0.5, effective_from = 1 })).Status);
        var answer = await ChatAsync("chat-a", configure: r =>
        {
            r.Headers.Add("x-sextant-user", "alice");
            r.Headers.Add("x-sextant-session", "s-1");
            r.Headers.Add("x-sextant-tags", "beta, checkout");
            r.Headers.Add("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
        });
        Assert.Equal(200, answer.Status);
        // Fields Sextant does not know pass through both ways.
        Assert.Equal("test", answer.Json!["x_vendor"]!["region"]!.GetValue<string>());
        Assert.Equal("Hello there", answer.Json!["choices"]![0]!["message"]!["content"]!.GetValue<string>());
        var sent = _fake.Requests.Last(r => r.Model == "ok-a");
        Assert.Equal(("kept", "Bearer sk-upstream-secret"), (sent.Body["custom_field"]!.GetValue<string>(), sent.Authorization));

        var trace = await TraceAsync(answer);
        Assert.Equal("0af7651916cd43dd8448eb211c80319c", trace["trace"]!["trace_id"]!.GetValue<string>());
        var span = trace["spans"]![0]!;
        Assert.Equal(("generation", "ok", "fake", "ok-a-2025"), (span["kind"]!.GetValue<string>(), span["status"]!.GetValue<string>(), span["provider"]!.GetValue<string>(), span["model"]!.GetValue<string>()));
        Assert.Equal("b7ad6b7169203331", span["parent_span_id"]!.GetValue<string>());
        Assert.Equal((12, 5, 4), (span["input_tokens"]!.GetValue<long>(), span["output_tokens"]!.GetValue<long>(), span["cached_input_tokens"]!.GetValue<long>()));
        // (12 - 4) x 1 + 4 x 0.5 + 5 x 2 = 20 USD per million: cached tokens are not counted twice.
        Assert.Equal(20e-6, span["cost"]!.GetValue<double>(), 12);
        Assert.Equal(("alice", "s-1"), (span["user_id"]!.GetValue<string>(), span["session_id"]!.GetValue<string>()));
        Assert.Equal(["beta", "checkout"], span["tags"]!.AsArray().Select(t => t!.GetValue<string>()));
        Assert.Equal("Say hello", span["input"]![0]!["content"]!.GetValue<string>());
        Assert.Equal("Hello there", span["output"]!["content"]!.GetValue<string>());
        Assert.Equal(0.2, span["parameters"]!["temperature"]!.GetValue<double>());

        // The provider's key is never returned.
        var providers = await Http.GetJsonAsync("/api/v1/gateway/providers");
        Assert.DoesNotContain("sk-upstream-secret", providers.Body);
        Assert.True(providers.Json!["providers"]!.AsArray().Single(p => p!["name"]!.GetValue<string>() == "fake")!["has_api_key"]!.GetValue<bool>());
    }

    [Fact]
    public async Task A_stream_is_relayed_chunk_by_chunk_and_traced_with_usage_and_time_to_first_token()
    {
        await RouteAsync("chat-stream", new { targets = new[] { new { provider = "fake", model = "ok-stream" } } });
        var answer = await ChatAsync("chat-stream", stream: true);
        Assert.Equal(200, answer.Status);
        Assert.StartsWith("text/event-stream", answer.Response.Content.Headers.ContentType!.ToString(), StringComparison.Ordinal);
        var events = answer.Body.Split("\n\n", StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal("data: [DONE]", events[^1]);
        Assert.Contains(events, e => e.Contains("\"usage\"", StringComparison.Ordinal));
        var span = (await TraceAsync(answer))["spans"]![0]!;
        Assert.Equal("Hello there", span["output"]!["content"]!.GetValue<string>());
        Assert.Equal(12, span["input_tokens"]!.GetValue<long>());
        Assert.True(span["time_to_first_token_ms"]!.GetValue<double>() > 0);
    }

    [Fact]
    public async Task Fallback_retry_and_the_circuit_breaker()
    {
        // The first target fails with 500: the next one answers.
        await RouteAsync("chat-fallback", new { targets = new object[] { new { provider = "fake", model = "fail-500-fb", weight = 1e9 }, new { provider = "fake", model = "ok-fb", weight = 1e-9 } }, retries = 0 });
        var answer = await ChatAsync("chat-fallback");
        Assert.Equal(200, answer.Status);
        var log = (await TraceAsync(answer))["spans"]![0]!["attributes"]!["sextant.attempt_log"]!.AsArray().Select(a => a!.GetValue<string>()).ToList();
        Assert.StartsWith("fake/fail-500-fb error 500", log[0], StringComparison.Ordinal);
        Assert.StartsWith("fake/ok-fb ok 200", log[1], StringComparison.Ordinal);

        // A 503 is retried on the same target.
        await RouteAsync("chat-retry", new { targets = new[] { new { provider = "fake", model = "flaky-r" } }, retries = 2, retry_base_ms = 10 });
        Assert.Equal(200, (await ChatAsync("chat-retry")).Status);
        Assert.Equal(2, _fake.Hits["flaky-r"]);

        // After two failures the failing target's circuit opens: it is skipped until its cool-down ends.
        await RouteAsync("chat-breaker", new
        {
            targets = new object[] { new { provider = "fake", model = "fail-502-cb", weight = 1e9 }, new { provider = "fake", model = "ok-cb", weight = 1e-9 } },
            retries = 0, breaker_failures = 2, breaker_cooldown_ms = 60_000,
        });
        for (var i = 0; i < 5; i++)
        {
            Assert.Equal(200, (await ChatAsync("chat-breaker")).Status);
        }
        Assert.Equal(2, _fake.Hits["fail-502-cb"]);
        Assert.Equal(5, _fake.Hits["ok-cb"]);
    }

    [Fact]
    public async Task Upstream_errors_pass_through_and_time_outs_are_504()
    {
        await RouteAsync("chat-400", new { targets = new[] { new { provider = "fake", model = "fail-400-x" } } });
        var rejected = await ChatAsync("chat-400");
        Assert.Equal(400, rejected.Status);
        Assert.Equal("upstream says fail-400-x", rejected.Json!["error"]!["message"]!.GetValue<string>());
        Assert.Equal("error", (await TraceAsync(rejected))["spans"]![0]!["status"]!.GetValue<string>());

        await RouteAsync("chat-slow", new { targets = new[] { new { provider = "fake", model = "slow-t" } }, timeout_ms = 200, retries = 0 });
        var slow = await ChatAsync("chat-slow");
        Assert.Equal(504, slow.Status);
        Assert.Contains("did not answer within 200 ms", slow.Json!["error"]!["message"]!.GetValue<string>());
        Assert.Equal("timeout", slow.Json!["error"]!["type"]!.GetValue<string>());
    }

    [Fact]
    public async Task Bad_requests_get_openai_style_errors()
    {
        var notJson = await SendAsync("/v1/chat/completions", "{not json");
        Assert.Equal(400, notJson.Status);
        Assert.Equal("invalid_request_error", notJson.Json!["error"]!["type"]!.GetValue<string>());
        var noMessages = await SendAsync("/v1/chat/completions", """{"model": "chat-a"}""");
        Assert.Equal((400, "messages"), (noMessages.Status, noMessages.Json!["error"]!["param"]!.GetValue<string>()));
        await RouteAsync("chat-known", new { targets = new[] { new { provider = "fake", model = "ok-k" } } });
        var unknown = await ChatAsync("no-such-model");
        Assert.Equal(404, unknown.Status);
        Assert.Contains("chat-known", unknown.Json!["error"]!["message"]!.GetValue<string>());
        Assert.Equal("model_not_found", unknown.Json!["error"]!["code"]!.GetValue<string>());
        var huge = await SendAsync("/v1/chat/completions", "{\"model\": \"chat-known\", \"messages\": [], \"pad\": \"" + new string('x', 11 * 1024 * 1024) + "\"}");
        Assert.Equal(413, huge.Status);
        var badRoute = await Http.SendAsync(HttpMethod.Put, "/api/v1/gateway/routes/bad", """{"targets": []}""");
        Assert.Equal((400, "targets"), (badRoute.Status, badRoute.Field));
        var badProvider = await Http.SendAsync(HttpMethod.Put, "/api/v1/gateway/providers/bad", """{"kind": "openai", "base_url": "not a url"}""");
        Assert.Equal((400, "base_url"), (badProvider.Status, badProvider.Field));
    }

    [Fact]
    public async Task Direct_provider_models_embeddings_and_the_model_list()
    {
        var direct = await ChatAsync("fake/ok-direct");
        Assert.Equal(200, direct.Status);
        var embedding = await SendAsync("/v1/embeddings", """{"model": "fake/emb-1", "input": "hello"}""");
        Assert.Equal(200, embedding.Status);
        Assert.Equal(3, embedding.Json!["data"]![0]!["embedding"]!.AsArray().Count);
        var span = (await TraceAsync(embedding))["spans"]![0]!;
        Assert.Equal(("embeddings", 3L), (span["operation"]!.GetValue<string>(), span["input_tokens"]!.GetValue<long>()));
        // No price for this model: the cost is unknown, not zero.
        Assert.Null(span["cost"]);
        await RouteAsync("listed-model", new { targets = new[] { new { provider = "fake", model = "ok-l" } } });
        var models = await Http.GetJsonAsync("/v1/models");
        Assert.Contains(models.Json!["data"]!.AsArray(), m => m!["id"]!.GetValue<string>() == "listed-model");
    }

    [Fact]
    public async Task An_azure_provider_gets_its_key_in_the_api_key_header()
    {
        Assert.Equal(200, (await Http.SendAsync(HttpMethod.Put, "/api/v1/gateway/providers/azure-east",
            new JsonObject { ["kind"] = "azure", ["base_url"] = _fake.BaseUrl.ToString(), ["api_key"] = "azure-secret" }.ToJsonString())).Status);
        var answer = await ChatAsync("azure-east/ok-azure");
        Assert.Equal(200, answer.Status);
        Assert.Equal("api-key azure-secret", _fake.Requests.Last(r => r.Model == "ok-azure").Authorization);
        var span = (await TraceAsync(answer))["spans"]![0]!;
        Assert.Equal("azure.ai.openai", span["attributes"]!["gen_ai.provider.name"]!.GetValue<string>());

        var wrongKind = await Http.SendAsync(HttpMethod.Put, "/api/v1/gateway/providers/x", new JsonObject { ["kind"] = "cohere", ["base_url"] = "http://127.0.0.1:1" }.ToJsonString());
        Assert.Equal(400, wrongKind.Status);
        Assert.Contains("anthropic", wrongKind.Body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_client_that_disconnects_mid_stream_cancels_the_upstream_call()
    {
        await RouteAsync("chat-cancel", new { targets = new[] { new { provider = "fake", model = "longstream-c" } } });
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Content = new StringContent("""{"model": "chat-cancel", "stream": true, "messages": [{"role": "user", "content": "go"}]}""", Encoding.UTF8, "application/json"),
        };
        string traceId;
        using (var response = await Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead))
        {
            traceId = response.Headers.GetValues("x-sextant-trace-id").Single();
            await using var stream = await response.Content.ReadAsStreamAsync();
            var buffer = new byte[64];
            Assert.True(await stream.ReadAsync(buffer) > 0);
        }
        for (var i = 0; i < 100 && _fake.CancelledStreams == 0; i++)
        {
            await Task.Delay(50);
        }
        Assert.Equal(1, _fake.CancelledStreams);
        JsonNode? span = null;
        for (var i = 0; i < 100 && span is null; i++)
        {
            var trace = await Http.GetJsonAsync($"/api/v1/traces/{traceId}");
            span = trace.Status == 200 ? trace.Json!["spans"]![0] : null;
            await Task.Delay(span is null ? 50 : 0);
        }
        Assert.Equal("error", span!["status"]!.GetValue<string>());
        Assert.StartsWith("cancelled", span["status_message"]!.GetValue<string>(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Project_and_key_limits_answer_429_with_retry_after()
    {
        Assert.Equal(201, (await Http.PostAsync("/api/v1/projects", new { name = "limited" })).Status);
        var key = (await Http.PostAsync("/api/v1/keys", new { name = "limited-admin", role = "admin", project = "limited" })).Json!;
        var (secret, keyId) = (key["secret"]!.GetValue<string>(), key["key"]!["key_id"]!.GetValue<string>());
        void Auth(HttpRequestMessage r) => r.Headers.Authorization = new AuthenticationHeaderValue("Bearer", secret);
        Assert.Equal(200, (await Http.SendAsync(HttpMethod.Put, "/api/v1/gateway/providers/fake",
            new JsonObject { ["kind"] = "openai", ["base_url"] = _fake.BaseUrl.ToString() }.ToJsonString(), secret)).Status);
        Assert.Equal(200, (await Http.SendAsync(HttpMethod.Put, "/api/v1/gateway/routes/limited-chat", """{"targets": [{"provider": "fake", "model": "ok-lim"}]}""", secret)).Status);

        Assert.Equal(200, (await Http.SendAsync(HttpMethod.Put, "/api/v1/gateway/limits/project", """{"requests_per_minute": 2}""", secret)).Status);
        Assert.Equal(200, (await ChatAsync("limited-chat", configure: Auth)).Status);
        Assert.Equal(200, (await ChatAsync("limited-chat", configure: Auth)).Status);
        var refused = await ChatAsync("limited-chat", configure: Auth);
        Assert.Equal(429, refused.Status);
        Assert.Contains("2 requests per minute", refused.Json!["error"]!["message"]!.GetValue<string>());
        Assert.Equal("rate_limit_error", refused.Json!["error"]!["type"]!.GetValue<string>());
        Assert.True(refused.Response.Headers.RetryAfter!.Delta!.Value.TotalSeconds is > 0 and <= 60);
        // The default project is not limited by another project's limit.
        await RouteAsync("chat-free", new { targets = new[] { new { provider = "fake", model = "ok-free" } } });
        Assert.Equal(200, (await ChatAsync("chat-free")).Status);

        // A key's budget: once its calls have cost that much, it is refused until the day ends.
        Assert.Equal(200, (await Http.SendAsync(HttpMethod.Put, "/api/v1/gateway/limits/project", "{}", secret)).Status);
        Assert.Equal(200, (await Http.PostAsync("/api/v1/prices", new { model = "ok-lim*", input = 1000.0, output = 1000.0, effective_from = 1 }, secret)).Status);
        Assert.Equal(200, (await Http.SendAsync(HttpMethod.Put, $"/api/v1/gateway/limits/keys/{keyId}", """{"daily_budget": 0.001}""", secret)).Status);
        var spent = await ChatAsync("limited-chat", configure: Auth);
        Assert.Equal(200, spent.Status);
        await TraceWithKeyAsync(spent, secret);
        ApiAnswer? broke = null;
        for (var i = 0; i < 50 && broke?.Status != 429; i++)
        {
            broke = await ChatAsync("limited-chat", configure: Auth);
            await Task.Delay(50);
        }
        Assert.Equal(429, broke!.Status);
        Assert.Equal("budget_exceeded", broke.Json!["error"]!["code"]!.GetValue<string>());
        var limits = await Http.GetJsonAsync("/api/v1/gateway/limits", secret);
        Assert.Equal(0.001, limits.Json!["limits"]!.AsArray().Single(l => l!["key_id"]?.GetValue<string>() == keyId)!["daily_budget"]!.GetValue<double>());
        Assert.Equal((400, "requests_per_minute"), ((await Http.SendAsync(HttpMethod.Put, "/api/v1/gateway/limits/project", """{"requests_per_minute": 0}""", secret)).Status,
            (await Http.SendAsync(HttpMethod.Put, "/api/v1/gateway/limits/project", """{"requests_per_minute": 0}""", secret)).Field));
        Assert.Equal(404, (await Http.SendAsync(HttpMethod.Put, "/api/v1/gateway/limits/keys/nokey", "{}", secret)).Status);
    }

    private async Task TraceWithKeyAsync(ApiAnswer answer, string secret)
    {
        var traceId = answer.Response.Headers.GetValues("x-sextant-trace-id").Single();
        for (var i = 0; i < 100 && (await Http.GetJsonAsync($"/api/v1/traces/{traceId}", secret)).Status != 200; i++)
        {
            await Task.Delay(50);
        }
    }

    [Fact]
    public async Task Repeated_properties_and_credentials_in_urls_are_refused()
    {
        var repeated = await SendAsync("/v1/chat/completions", """{"model": "a", "model": "b", "messages": [{"role": "user", "content": "x"}]}""");
        Assert.Equal(400, repeated.Status);
        Assert.Equal("invalid_request_error", repeated.Json!["error"]!["type"]!.GetValue<string>());
        var nested = await SendAsync("/v1/chat/completions", """{"model": "fake/ok-n", "messages": [{"role": "user", "role": "system", "content": "x"}]}""");
        Assert.Equal(400, nested.Status);
        var userinfo = await Http.SendAsync(HttpMethod.Put, "/api/v1/gateway/providers/leaky", """{"kind": "openai", "base_url": "https://user:secret@example.com/v1"}""");
        Assert.Equal((400, "base_url"), (userinfo.Status, userinfo.Field));
        var badKey = await Http.SendAsync(HttpMethod.Put, "/api/v1/gateway/providers/badkey", """{"kind": "openai", "base_url": "https://example.com/v1", "api_key": "has space"}""");
        Assert.Equal((400, "api_key"), (badKey.Status, badKey.Field));
    }

    [Fact]
    public async Task The_cache_answers_repeats_streams_included_at_no_cost_and_records_the_saving()
    {
        await RouteAsync("chat-cached", new { targets = new[] { new { provider = "fake", model = "ok-cache" } }, cache_ttl_seconds = 60 });
        Assert.Equal(200, (await Http.PostAsync("/api/v1/prices", new { model = "ok-cache*", input = 1.0, output = 2.0, effective_from = 1 })).Status);
        var first = await ChatAsync("chat-cached");
        await TraceAsync(first);
        ApiAnswer second = first;
        for (var i = 0; i < 50 && !second.Response.Headers.Contains("x-sextant-cache"); i++)
        {
            // The answer is cached once its span (and so its cost) is stored.
            await Task.Delay(20);
            second = await ChatAsync("chat-cached");
        }
        Assert.Equal("hit", second.Response.Headers.GetValues("x-sextant-cache").Single());
        Assert.Equal(first.Body, second.Body);
        var hit = (await TraceAsync(second))["spans"]![0]!;
        Assert.True(hit["cache_hit"]!.GetValue<bool>());
        Assert.Equal(0.0, hit["cost"]!.GetValue<double>());
        // (12 - 4) x 1 + 4 x 1 + 5 x 2 = 22 USD per million: what the hit saved.
        Assert.Equal(22e-6, hit["cost_saved"]!.GetValue<double>(), 12);
        var bypass = await ChatAsync("chat-cached", configure: r => r.Headers.Add("x-sextant-cache-ttl", "0"));
        Assert.False(bypass.Response.Headers.Contains("x-sextant-cache"));
        var upstreamCalls = _fake.Hits["ok-cache"];

        var streamed = await ChatAsync("chat-cached", stream: true);
        await TraceAsync(streamed);
        ApiAnswer replay = streamed;
        for (var i = 0; i < 50 && !replay.Response.Headers.Contains("x-sextant-cache"); i++)
        {
            await Task.Delay(20);
            replay = await ChatAsync("chat-cached", stream: true);
        }
        Assert.Equal("hit", replay.Response.Headers.GetValues("x-sextant-cache").Single());
        Assert.StartsWith("text/event-stream", replay.Response.Content.Headers.ContentType!.ToString(), StringComparison.Ordinal);
        Assert.Equal(streamed.Body, replay.Body);
        Assert.Equal("Hello there", (await TraceAsync(replay))["spans"]![0]!["output"]!["content"]!.GetValue<string>());
        Assert.Equal(upstreamCalls + 1, _fake.Hits["ok-cache"]);
        var costs = await Http.GetJsonAsync("/api/v1/costs?by=model");
        Assert.True(costs.Status == 200, costs.Body);
        Assert.True(costs.Json!["rows"]!.AsArray().Single(r => r!["key"]!.GetValue<string>() == "ok-cache-2025")!["cost_saved"]!.GetValue<double>() > 0);
    }

    [Fact]
    public async Task Without_usage_from_the_provider_tokens_are_counted_and_marked_estimated()
    {
        await RouteAsync("chat-nousage", new { targets = new[] { new { provider = "fake", model = "ok-nousage" } } });
        var answer = await SendAsync("/v1/chat/completions",
            """{"model": "chat-nousage", "stream": true, "stream_options": {"include_usage": false}, "messages": [{"role": "user", "content": "Say hello"}]}""");
        Assert.Equal(200, answer.Status);
        Assert.DoesNotContain("\"usage\"", answer.Body);
        var span = (await TraceAsync(answer))["spans"]![0]!;
        Assert.True(span["tokens_estimated"]!.GetValue<bool>());
        // "user" 1 and "Say hello" 2 tokens in cl100k, plus 3 for the message and 3 for the answer; "Hello there" is 2.
        Assert.Equal((9L, 2L), (span["input_tokens"]!.GetValue<long>(), span["output_tokens"]!.GetValue<long>()));
    }
}
