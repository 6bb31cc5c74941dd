using System.Text.Json.Nodes;
using Sextant.Server.Tests.Gateway;

namespace Sextant.Server.Tests.Evaluation;

/// <summary>Human feedback on traces, and online evaluation rules scoring production generations in the background.</summary>
public abstract class ScoreTests(EvalFixture fixture)
{
    private HttpClient Http => fixture.Http;

    private async Task<string> CallAsync(string model, string question = "Hi?")
    {
        var answer = await GatewayCalls.SendAsync(Http, "/v1/chat/completions",
            new JsonObject { ["model"] = model, ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = question }) }.ToJsonString());
        Assert.Equal(200, answer.Status);
        return (await GatewayCalls.TraceAsync(Http, answer))["trace"]!["trace_id"]!.GetValue<string>();
    }

    private async Task<JsonArray> ScoresAsync(string traceId) => (await Http.GetJsonAsync($"/api/v1/scores?trace_id={traceId}")).Json!["scores"]!.AsArray();

    [Fact]
    public async Task Feedback_of_every_kind_attaches_to_the_trace_and_feeds_the_daily_trend()
    {
        var trace = await CallAsync("fake/ok-feedback");
        Assert.Equal(200, (await Http.PostAsync("/api/v1/scores", new { trace_id = trace, name = "thumbs", value = true, comment = "spot on" })).Status);
        Assert.Equal(200, (await Http.PostAsync("/api/v1/scores", new { trace_id = trace, name = "thumbs", value = false })).Status);
        Assert.Equal(200, (await Http.PostAsync("/api/v1/scores", new { trace_id = trace, name = "quality", value = 4.5 })).Status);
        Assert.Equal(200, (await Http.PostAsync("/api/v1/scores", new { trace_id = trace, name = "tone", value = "friendly" })).Status);
        Assert.Equal(200, (await Http.PostAsync("/api/v1/scores", new { trace_id = trace, name = "note", comment = "asked twice" })).Status);
        var scores = await ScoresAsync(trace);
        Assert.Equal(5, scores.Count);
        var tone = scores.Single(s => s!["name"]!.GetValue<string>() == "tone")!;
        Assert.Equal(("categorical", "friendly", "human"), (tone["data_type"]!.GetValue<string>(), tone["string_value"]!.GetValue<string>(), tone["source"]!.GetValue<string>()));
        var trend = (await Http.GetJsonAsync("/api/v1/scores/trends?name=thumbs")).Json!["points"]!.AsArray().Single()!;
        Assert.Equal((2, 0.5), (trend["count"]!.GetValue<int>(), trend["mean"]!.GetValue<double>()));

        async Task Refused(object body, string field)
        {
            var answer = await Http.PostAsync("/api/v1/scores", body);
            Assert.True(answer.Status == 400, answer.Body);
            Assert.Equal(field, answer.Field);
        }
        await Refused(new { trace_id = trace, name = "thumbs", value = new[] { 1 } }, "value");
        await Refused(new { trace_id = trace, name = "thumbs" }, "value");
        await Refused(new { trace_id = trace, value = 1 }, "name");
        await Refused(new { name = "x", value = 1 }, "trace_id");
        await Refused(new { trace_id = trace, name = "x", value = 1, source = "robot" }, "source");
        Assert.Equal(5, (await ScoresAsync(trace)).Count);
    }

    [Fact]
    public async Task Online_scores_and_feedback_carry_the_prompt_version_and_ab_arm_so_the_arms_compare()
    {
        foreach (var (label, text) in new[] { ("production", "Greet {{name}}."), ("canary", "Greet {{name}} warmly.") })
        {
            var made = await Http.PostAsync("/api/v1/prompts/versions?name=ab/greet", new { template = text, config = new { model = "fake/ok-ab" }, labels = new[] { label } });
            Assert.True(made.Status == 200, made.Body);
        }
        Assert.Equal(200, (await Http.SendAsync(HttpMethod.Put, "/api/v1/prompts/split?name=ab/greet",
            """{"arms": [{"label": "production", "weight": 1}, {"label": "canary", "weight": 1}]}""")).Status);
        Assert.Equal(200, (await Http.SendAsync(HttpMethod.Put, "/api/v1/eval/online-rules?name=ab-greets", new JsonObject
        {
            ["filter"] = new JsonObject { ["prompt"] = "ab/greet" },
            ["evaluators"] = new JsonArray(new JsonObject { ["type"] = "contains", ["value"] = "Hello", ["name"] = "ab-greets" }),
        }.ToJsonString())).Status);
        var traces = new List<string>();
        for (var user = 0; user < 20; user++)
        {
            var answer = await GatewayCalls.SendAsync(Http, "/v1/chat/completions", """{"model": "prompt:ab/greet", "variables": {"name": "Ada"}}""",
                request => request.Headers.Add("x-sextant-user", $"user-{user}"));
            Assert.Equal(200, answer.Status);
            traces.Add((await GatewayCalls.TraceAsync(Http, answer))["trace"]!["trace_id"]!.GetValue<string>());
        }
        JsonArray points = [];
        for (var attempt = 0; attempt < 100 && points.Sum(p => p!["count"]!.GetValue<int>()) < 20; attempt++)
        {
            await Task.Delay(100);
            points = (await Http.GetJsonAsync("/api/v1/scores/trends?name=ab-greets&by=arm")).Json!["points"]!.AsArray();
        }
        // Both arms, each with its version, adding up to every call.
        Assert.Equal(["production", "canary"], points.Select(p => p!["arm"]!.GetValue<string>()));
        Assert.Equal(["ab/greet@1", "ab/greet@2"], points.Select(p => p!["prompt"]!.GetValue<string>()));
        Assert.Equal(20, points.Sum(p => p!["count"]!.GetValue<int>()));
        Assert.All(points, p => Assert.Equal(1.0, p!["pass_rate"]!.GetValue<double>()));

        var feedback = await Http.PostAsync("/api/v1/scores", new { trace_id = traces[0], name = "ab-thumbs", value = true });
        Assert.Contains(feedback.Json!["arm"]!.GetValue<string>(), new[] { "production", "canary" });
        Assert.StartsWith("ab/greet@", feedback.Json!["prompt"]!.GetValue<string>());
        Assert.Equal(("by", 400), ((await Http.GetJsonAsync("/api/v1/scores/trends?by=week")).Field, (await Http.GetJsonAsync("/api/v1/scores/trends?by=week")).Status));
    }

    [Fact]
    public async Task A_generation_stored_after_the_rule_passed_its_start_is_still_scored_once()
    {
        var rule = await Http.SendAsync(HttpMethod.Put, "/api/v1/eval/online-rules?name=late", new JsonObject
        {
            ["filter"] = new JsonObject { ["model"] = "late-model" },
            ["evaluators"] = new JsonArray(new JsonObject { ["type"] = "is-json" }),
        }.ToJsonString());
        Assert.Equal(200, rule.Status);
        // Measured once the rule exists: a rule never scores what started before it was made, and on a busy machine
        // the request that makes it can take longer than the 300 ms below.
        var before = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() * 1000;
        // Several passes go by (every 200 ms) before the span arrives, started 300 ms after the rule was made.
        await Task.Delay(1500);
        var trace = Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(16));
        var span = new JsonObject
        {
            ["trace_id"] = trace, ["span_id"] = Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(8)), ["name"] = "chat late-model",
            ["kind"] = "generation", ["start_time"] = before + 300_000, ["end_time"] = before + 400_000, ["status"] = "ok", ["model"] = "late-model",
            ["input"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "hi" }),
            ["output"] = new JsonObject { ["role"] = "assistant", ["content"] = "{\"ok\": true}" },
        };
        Assert.Equal(200, (await Http.PostAsync("/api/v1/traces/ingest", new JsonObject { ["spans"] = new JsonArray(span) }.ToJsonString())).Status);
        JsonArray scores = [];
        for (var attempt = 0; attempt < 100 && scores.Count == 0; attempt++)
        {
            await Task.Delay(100);
            scores = await ScoresAsync(trace);
        }
        Assert.Equal("pass", Assert.Single(scores)!["status"]!.GetValue<string>());
        // Later passes look back over it again and do not score it twice.
        await Task.Delay(1000);
        Assert.Single(await ScoresAsync(trace));
    }

    [Fact]
    public async Task An_online_rule_scores_sampled_production_generations_and_skips_experiments_and_judges()
    {
        var rule = await Http.SendAsync(HttpMethod.Put, "/api/v1/eval/online-rules?name=greets", new JsonObject
        {
            ["filter"] = new JsonObject { ["model"] = "ok-online-2025" },
            ["sample_rate"] = 1,
            ["evaluators"] = new JsonArray(new JsonObject { ["type"] = "contains", ["value"] = "Hello", ["name"] = "greets" }, new JsonObject { ["type"] = "latency", ["value"] = 60000 }),
        }.ToJsonString());
        Assert.True(rule.Status == 200, rule.Body);
        var never = await Http.SendAsync(HttpMethod.Put, "/api/v1/eval/online-rules?name=never", new JsonObject
        {
            ["sample_rate"] = 0,
            ["evaluators"] = new JsonArray(new JsonObject { ["type"] = "is-json" }),
        }.ToJsonString());
        Assert.Equal(200, never.Status);
        var traces = new List<string>();
        for (var i = 0; i < 3; i++)
        {
            traces.Add(await CallAsync("fake/ok-online"));
        }
        var other = await CallAsync("fake/ok-elsewhere");
        foreach (var trace in traces)
        {
            JsonArray scores = [];
            for (var attempt = 0; attempt < 100 && scores.Count < 2; attempt++)
            {
                await Task.Delay(100);
                scores = await ScoresAsync(trace);
            }
            Assert.Equal(2, scores.Count);
            var greets = scores.Single(s => s!["name"]!.GetValue<string>() == "greets")!;
            Assert.Equal(("online:greets", "pass", 1.0), (greets["source"]!.GetValue<string>(), greets["status"]!.GetValue<string>(), greets["value"]!.GetValue<double>()));
        }
        // The model filter leaves other generations alone; a rate of 0 samples nothing.
        Assert.Empty(await ScoresAsync(other));
        var trend = (await Http.GetJsonAsync("/api/v1/scores/trends?name=greets")).Json!["points"]!.AsArray().Single()!;
        Assert.Equal((3, 1.0), (trend["count"]!.GetValue<int>(), trend["pass_rate"]!.GetValue<double>()));
        var rules = (await Http.GetJsonAsync("/api/v1/eval/online-rules")).Json!["rules"]!.AsArray();
        Assert.Contains("greets", rules.Select(r => r!["name"]!.GetValue<string>()));
        Assert.Contains("never", rules.Select(r => r!["name"]!.GetValue<string>()));

        var bad = await Http.SendAsync(HttpMethod.Put, "/api/v1/eval/online-rules?name=bad", """{"sample_rate": 1.5, "evaluators": [{"type": "is-json"}]}""");
        Assert.Equal(("sample_rate", 400), (bad.Field, bad.Status));
        var badEvaluator = await Http.SendAsync(HttpMethod.Put, "/api/v1/eval/online-rules?name=bad", """{"evaluators": [{"type": "contains"}]}""");
        Assert.Equal(("evaluators[0].value", 400), (badEvaluator.Field, badEvaluator.Status));
        Assert.Equal(200, (await Http.SendAsync(HttpMethod.Delete, "/api/v1/eval/online-rules?name=never")).Status);
        Assert.Equal(404, (await Http.SendAsync(HttpMethod.Delete, "/api/v1/eval/online-rules?name=never")).Status);
    }
}

public sealed class SqliteScoreTests(EvalFixture fixture) : ScoreTests(fixture), IClassFixture<EvalFixture>;

public sealed class PostgresScoreTests(PostgresEvalFixture fixture) : ScoreTests(fixture), IClassFixture<PostgresEvalFixture>;
