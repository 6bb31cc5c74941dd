using System.Text.Json.Nodes;

namespace Sextant.Server.Tests.Tracing;

/// <summary>Span ingestion with a result per span, trace summaries, queries, costs and prices, on both engines.</summary>
public abstract class TraceApiTests(ServerFixture fixture)
{
    private HttpClient Http => fixture.Http;

    private static string Hex(int bytes) => Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(bytes));

    private static readonly long Now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() * 1000;

    private static JsonObject Span(string trace, string span, string? parent, string name, string kind = "span", long offsetMs = 0, long durationMs = 100,
        string model = "", long? input = null, long? output = null, long? cached = null, string status = "ok", string? user = null, string? session = null) => new()
    {
        ["trace_id"] = trace, ["span_id"] = span, ["parent_span_id"] = parent, ["name"] = name, ["kind"] = kind,
        ["start_time"] = Now + offsetMs * 1000, ["end_time"] = Now + (offsetMs + durationMs) * 1000, ["status"] = status,
        ["model"] = model.Length == 0 ? null : model, ["provider"] = model.Length == 0 ? null : "openai",
        ["input_tokens"] = input, ["output_tokens"] = output, ["cached_input_tokens"] = cached, ["user_id"] = user, ["session_id"] = session,
        ["input"] = kind == "generation" ? new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "hi" }) : null,
    };

    private async Task<ApiAnswer> IngestAsync(params JsonObject[] spans) =>
        await Http.PostAsync("/api/v1/traces/ingest", new JsonObject { ["spans"] = new JsonArray([.. spans]) }.ToJsonString());

    [Fact]
    public async Task A_batch_gets_a_result_per_span_duplicates_are_stored_once_and_traces_add_up()
    {
        var trace = Hex(16);
        var (root, llm) = (Hex(8), Hex(8));
        var answer = await IngestAsync(
            Span(trace, llm, root, "chat gpt-4o-mini", "generation", 10, 400, "gpt-4o-mini", 1000, 200, 400, user: "bob", session: "sess-1"),
            Span(trace, root, null, "answer question", durationMs: 500),
            Span("not-a-trace-id", Hex(8), null, "bad"),
            Span(trace, Hex(8), root, "bad tokens", "generation", input: 10, output: 1, cached: 20));
        Assert.Equal(207, answer.Status);
        var results = answer.Json!["results"]!.AsArray();
        Assert.Equal([201, 201, 400, 400], results.Select(r => r!["status"]!.GetValue<int>()));
        Assert.Equal("spans[2].trace_id", results[2]!["field"]!.GetValue<string>());
        Assert.Contains("cannot exceed", results[3]!["error"]!.GetValue<string>());

        var again = await IngestAsync(Span(trace, root, null, "answer question", durationMs: 500));
        Assert.Equal(200, again.Status);
        Assert.Equal(200, again.Json!["results"]![0]!["status"]!.GetValue<int>());

        var got = await Http.GetJsonAsync($"/api/v1/traces/{trace}");
        var summary = got.Json!["trace"]!;
        Assert.Equal(("answer question", 2, 1), (summary["name"]!.GetValue<string>(), summary["span_count"]!.GetValue<int>(), summary["generation_count"]!.GetValue<int>()));
        // gpt-4o-mini: (1000 - 400) x 0.15 + 400 x 0.075 + 200 x 0.60 = 240 USD per million tokens.
        Assert.Equal(240e-6, summary["cost"]!.GetValue<double>(), 12);
        Assert.Equal(["gpt-4o-mini"], summary["models"]!.AsArray().Select(m => m!.GetValue<string>()));
        Assert.Equal(2, got.Json!["spans"]!.AsArray().Count);

        var listed = await Http.GetJsonAsync("/api/v1/traces?user=bob&model=gpt-4o-mini");
        Assert.Contains(listed.Json!["traces"]!.AsArray(), t => t!["trace_id"]!.GetValue<string>() == trace);
        Assert.Empty((await Http.GetJsonAsync("/api/v1/traces?user=bob&min_latency_ms=600")).Json!["traces"]!.AsArray());
        var sessions = await Http.GetJsonAsync("/api/v1/sessions?user=bob");
        Assert.Equal("sess-1", sessions.Json!["sessions"]![0]!["session_id"]!.GetValue<string>());
        var spans = await Http.GetJsonAsync("/api/v1/spans?kind=generation&model=gpt-4o-mini");
        Assert.Contains(spans.Json!["spans"]!.AsArray(), s => s!["span_id"]!.GetValue<string>() == llm);
    }

    [Fact]
    public async Task A_span_sent_twice_in_one_batch_is_counted_once_and_a_later_span_joins_its_trace()
    {
        var trace = Hex(16);
        var (root, step, late) = (Hex(8), Hex(8), Hex(8));
        var first = await IngestAsync(
            Span(trace, step, root, "step", offsetMs: 10, durationMs: 50),
            Span(trace, step, root, "step", offsetMs: 10, durationMs: 50),
            Span(trace, root, null, "request", durationMs: 100));
        Assert.Equal([201, 200, 201], first.Json!["results"]!.AsArray().Select(r => r!["status"]!.GetValue<int>()));
        var summary = (await Http.GetJsonAsync($"/api/v1/traces/{trace}")).Json!["trace"]!;
        Assert.Equal(("request", 2), (summary["name"]!.GetValue<string>(), summary["span_count"]!.GetValue<int>()));

        var later = await IngestAsync(Span(trace, late, root, "late step", "generation", 90, 400, "gpt-4o-mini", 100, 10));
        Assert.Equal(201, later.Json!["results"]![0]!["status"]!.GetValue<int>());
        var got = (await Http.GetJsonAsync($"/api/v1/traces/{trace}")).Json!;
        summary = got["trace"]!;
        Assert.Equal(("request", 3, 1), (summary["name"]!.GetValue<string>(), summary["span_count"]!.GetValue<int>(), summary["generation_count"]!.GetValue<int>()));
        Assert.Equal(["gpt-4o-mini"], summary["models"]!.AsArray().Select(m => m!.GetValue<string>()));
        Assert.Equal(["request", "step", "late step"], got["spans"]!.AsArray().Select(s => s!["name"]!.GetValue<string>()));
    }

    [Fact]
    public async Task Costs_by_model_give_latency_percentiles_interpolated_between_ranks()
    {
        // 100 calls of 1..100 ms, sent out of order, and one call of another model that must not mix in.
        var model = "latency-" + Hex(4);
        var order = Enumerable.Range(1, 100).OrderBy(_ => Random.Shared.Next()).ToList();
        Assert.Equal(200, (await IngestAsync([.. order.Select(ms => Span(Hex(16), Hex(8), null, "chat", "generation", durationMs: ms, model: model, input: 1, output: 1))])).Status);
        Assert.Equal(200, (await IngestAsync(Span(Hex(16), Hex(8), null, "chat", "generation", durationMs: 5000, model: model + "-other", input: 1, output: 1))).Status);
        var rows = (await Http.GetJsonAsync("/api/v1/costs?by=model")).Json!["rows"]!.AsArray();
        var row = rows.Single(r => r!["key"]!.GetValue<string>() == model)!;
        // numpy.percentile([1..100], [50, 95, 99]): 50.5, 95.05, 99.01.
        Assert.Equal(100, row["requests"]!.GetValue<long>());
        Assert.Equal(50.5, row["latency_p50_ms"]!.GetValue<double>(), 9);
        Assert.Equal(95.05, row["latency_p95_ms"]!.GetValue<double>(), 9);
        Assert.Equal(99.01, row["latency_p99_ms"]!.GetValue<double>(), 9);
        // One call: every percentile is its duration.
        var single = rows.Single(r => r!["key"]!.GetValue<string>() == model + "-other")!;
        Assert.Equal((5000.0, 5000.0), (single["latency_p50_ms"]!.GetValue<double>(), single["latency_p99_ms"]!.GetValue<double>()));
    }

    [Fact]
    public async Task Unknown_prices_stay_unknown_until_a_price_is_set_and_costs_are_recomputed()
    {
        var trace = Hex(16);
        await IngestAsync(Span(trace, Hex(8), null, "chat", "generation", model: "house-llm-7b", input: 1_000_000, output: 1_000_000));
        var summary = (await Http.GetJsonAsync($"/api/v1/traces/{trace}")).Json!["trace"]!;
        Assert.Null(summary["cost"]);
        Assert.Equal(1, summary["cost_unknown"]!.GetValue<int>());

        var price = await Http.PostAsync("/api/v1/prices", new { model = "house-llm-*", input = 0.5, output = 1.5, effective_from = 1 });
        Assert.Equal(200, price.Status);
        var recomputed = await Http.PostAsync("/api/v1/costs/recompute", new { from = 0 });
        Assert.True(recomputed.Json!["priced"]!.GetValue<long>() >= 1);
        summary = (await Http.GetJsonAsync($"/api/v1/traces/{trace}")).Json!["trace"]!;
        Assert.Equal(2.0, summary["cost"]!.GetValue<double>(), 9);

        var costs = await Http.GetJsonAsync("/api/v1/costs?by=model");
        var row = costs.Json!["rows"]!.AsArray().Single(r => r!["key"]!.GetValue<string>() == "house-llm-7b")!;
        Assert.Equal((1L, 2.0), (row["requests"]!.GetValue<long>(), row["cost"]!.GetValue<double>()));
        Assert.Equal(200, (await Http.GetJsonAsync("/api/v1/costs?by=day")).Status);
        Assert.Equal((400, "by"), ((await Http.GetJsonAsync("/api/v1/costs?by=color")).Status, (await Http.GetJsonAsync("/api/v1/costs?by=color")).Field));

        var prices = await Http.GetJsonAsync("/api/v1/prices?model=house-llm-7b");
        Assert.Equal("project", prices.Json!["prices"]![0]!["source"]!.GetValue<string>());
        Assert.Contains((await Http.GetJsonAsync("/api/v1/prices?model=claude-sonnet-4-5-20250929")).Json!["prices"]!.AsArray(), p => p!["source"]!.GetValue<string>() == "shipped");
        var badPrice = await Http.PostAsync("/api/v1/prices", new { model = "x", input = -1, output = 1 });
        Assert.Equal((400, "input"), (badPrice.Status, badPrice.Field));
    }

    [Fact]
    public async Task Bad_queries_and_bodies_are_refused_with_the_field()
    {
        Assert.Equal((400, "trace_id"), ((await Http.GetJsonAsync("/api/v1/traces/xyz")).Status, (await Http.GetJsonAsync("/api/v1/traces/xyz")).Field));
        Assert.Equal(404, (await Http.GetJsonAsync($"/api/v1/traces/{Hex(16)}")).Status);
        Assert.Equal((400, "status"), ((await Http.GetJsonAsync("/api/v1/traces?status=meh")).Status, (await Http.GetJsonAsync("/api/v1/traces?status=meh")).Field));
        Assert.Equal((400, "max_results"), ((await Http.GetJsonAsync("/api/v1/traces?max_results=5000")).Status, (await Http.GetJsonAsync("/api/v1/traces?max_results=5000")).Field));
        Assert.Equal((400, "spans"), ((await Http.PostAsync("/api/v1/traces/ingest", "{}")).Status, (await Http.PostAsync("/api/v1/traces/ingest", "{}")).Field));
        var tooMany = new JsonObject { ["spans"] = new JsonArray([.. Enumerable.Range(0, 1001).Select(_ => (JsonNode)new JsonObject())]) };
        Assert.Equal(400, (await Http.PostAsync("/api/v1/traces/ingest", tooMany.ToJsonString())).Status);
    }

    [Fact]
    public async Task Odd_otlp_spans_are_rejected_one_by_one_never_a_500()
    {
        var trace = Hex(16);
        var body = $$$"""
            {"resourceSpans": [{"scopeSpans": [{"spans": [
              {"traceId": "{{{trace}}}", "spanId": "{{{Hex(8)}}}", "name": "odd event", "startTimeUnixNano": "1700000000000000000", "endTimeUnixNano": "1700000001000000000",
               "events": [{"name": "gen_ai.message", "attributes": [{"key": "content", "value": {"stringValue": "x"}}]}]},
              {"traceId": "{{{trace}}}", "spanId": "{{{Hex(8)}}}", "name": "too many tokens", "startTimeUnixNano": "1700000000000000000", "endTimeUnixNano": "1700000001000000000",
               "attributes": [{"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}}, {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "9000000000000000000"}}]}
            ]}]}]}
            """;
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/traces") { Content = new StringContent(body, System.Text.Encoding.UTF8, "application/json") };
        var response = await Http.SendAsync(request);
        Assert.Equal(200, (int)response.StatusCode);
        Assert.Contains("\"rejectedSpans\":\"1\"", await response.Content.ReadAsStringAsync());
        var duplicate = new HttpRequestMessage(HttpMethod.Post, "/v1/traces") { Content = new StringContent("""{"resourceSpans": [], "resourceSpans": []}""", System.Text.Encoding.UTF8, "application/json") };
        Assert.Equal(400, (int)(await Http.SendAsync(duplicate)).StatusCode);
    }

    [Fact]
    public async Task Trace_pages_are_keyset_pages()
    {
        var user = "pager-" + Hex(4);
        for (var i = 0; i < 5; i++)
        {
            await IngestAsync(Span(Hex(16), Hex(8), null, $"t{i}", offsetMs: i, user: user));
        }
        var seen = new List<string>();
        string? token = null;
        do
        {
            var page = await Http.GetJsonAsync($"/api/v1/traces?user={user}&max_results=2{(token is null ? "" : "&page_token=" + Uri.EscapeDataString(token))}");
            seen.AddRange(page.Json!["traces"]!.AsArray().Select(t => t!["name"]!.GetValue<string>()));
            token = page.Json!["next_page_token"]?.GetValue<string>();
        }
        while (token is not null);
        Assert.Equal(["t4", "t3", "t2", "t1", "t0"], seen);
    }
}

public sealed class SqliteTraceApiTests(ServerFixture fixture) : TraceApiTests(fixture), IClassFixture<ServerFixture>;

public sealed class PostgresTraceApiTests(PostgresServerFixture fixture) : TraceApiTests(fixture), IClassFixture<PostgresServerFixture>;
