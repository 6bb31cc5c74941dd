using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Sextant.Server.Tests.Gateway;

namespace Sextant.Server.Tests.Evaluation;

/// <summary>
/// Experiments against the fake upstream with scripted answers and judges: every evaluator kind, repeats and
/// flakiness, grader errors, the RAG triad, comparisons, and the bad input refused before anything runs.
/// </summary>
public abstract partial class ExperimentTests(EvalFixture fixture)
{
    private HttpClient Http => fixture.Http;
    private FakeOpenAiServer Fake => fixture.Fake;

    private static string UserText(JsonObject body) => string.Join("\n", body["messages"]!.AsArray().Where(m => m!["role"]!.GetValue<string>() == "user").Select(m => m!["content"]!.GetValue<string>()));

    private static string SystemText(JsonObject body) => body["messages"]!.AsArray().FirstOrDefault(m => m!["role"]!.GetValue<string>() == "system")?["content"]?.GetValue<string>() ?? "";

    private async Task DatasetAsync(string name, params object[] items) =>
        Assert.Equal(200, (await Http.PostAsync($"/api/v1/eval/datasets/items?name={name}", new { items, mode = "replace" })).Status);

    private async Task<int> PromptAsync(string name, string template, string model, params string[] labels)
    {
        var created = await Http.PostAsync($"/api/v1/prompts/versions?name={name}", new { template = new object[] { new { role = "user", content = template } }, config = new { model }, labels });
        Assert.True(created.Status == 200, created.Body);
        return created.Json!["version"]!.GetValue<int>();
    }

    [Fact]
    public async Task A_prompt_experiment_scores_each_item_with_deterministic_similarity_and_judge_evaluators()
    {
        Fake.Scripts["script-qa"] = body => UserText(body) switch
        {
            var q when q.Contains("France", StringComparison.Ordinal) => "Paris is the capital of France.",
            var q when q.Contains("Germany", StringComparison.Ordinal) => "Berlin.",
            _ => "I do not know.",
        };
        Fake.Scripts["script-judge"] = body => UserText(body).Contains("Output to grade:\nBerlin", StringComparison.Ordinal)
            ? "Looks fine to me!"
            : UserText(body).Contains("Output to grade:\nParis", StringComparison.Ordinal) ? """{"score": 0.9, "reason": "correct and complete"}""" : """{"score": 0.1, "reason": "no answer"}""";
        await DatasetAsync("exp/capitals",
            new { id = "fr", input = new { country = "France" }, expected = "Paris is the capital of France." },
            new { id = "es", input = new { country = "Spain" }, expected = "Madrid is the capital of Spain." },
            new { id = "de", input = new { country = "Germany" }, expected = "Berlin." });
        var version = await PromptAsync("exp/capital", "What is the capital of {{country}}?", "fake/script-qa", "staging");
        // A config that asks for a stream (as an application's might) still gives experiments whole answers.
        var streamed = await Http.PostAsync("/api/v1/prompts/versions?name=exp/capital", new
        {
            template = new object[] { new { role = "user", content = "What is the capital of {{country}}?" } },
            config = new { model = "fake/script-qa", stream = true },
            labels = new[] { "staging" },
        });
        version = streamed.Json!["version"]!.GetValue<int>();
        var experiment = await Experiments.RunAsync(Http, new
        {
            name = "capitals-v1",
            dataset = "exp/capitals",
            target = new { type = "prompt", prompt = "exp/capital@staging" },
            evaluators = new object[]
            {
                new { type = "equals" },
                new { type = "similarity", threshold = 0.8 },
                new { type = "llm-judge", model = "fake/script-judge", rubric = "The answer names the capital correctly." },
            },
            concurrency = 3,
        });
        Assert.Equal("completed", experiment["status"]!.GetValue<string>());
        Assert.Equal(version, experiment["target"]!["prompt_version"]!.GetValue<int>());
        // The local embedder's precision is stored with the experiment (today's default), so a later default cannot change its scores.
        Assert.Equal("int8", experiment["evaluators"]![1]!["precision"]!.GetValue<string>());
        var summary = experiment["summary"]!;
        Assert.Equal((3, 3, 1, 1, 1), (summary["items"]!.GetValue<int>(), summary["results"]!.GetValue<int>(), summary["passed"]!.GetValue<int>(),
            summary["failed"]!.GetValue<int>(), summary["errors"]!.GetValue<int>()));
        Assert.Equal(0.333333, summary["pass_rate"]!.GetValue<double>(), 5);
        Assert.Equal(36, summary["input_tokens"]!.GetValue<long>());

        var results = await Experiments.ResultsAsync(Http, experiment["id"]!.GetValue<string>());
        var france = results.Single(r => r!["item_id"]!.GetValue<string>() == "fr")!;
        Assert.Equal("pass", france["status"]!.GetValue<string>());
        Assert.True(Experiments.Score(france, "similarity")["score"]!.GetValue<double>() > 0.99);
        Assert.Equal((0.9, "correct and complete"), (Experiments.Score(france, "llm-judge")["score"]!.GetValue<double>(), Experiments.Score(france, "llm-judge")["reason"]!.GetValue<string>()));
        // The item's input and expected output come with the result, for the drill-down.
        Assert.Equal("France", france["input"]!["country"]!.GetValue<string>());

        var spain = results.Single(r => r!["item_id"]!.GetValue<string>() == "es")!;
        Assert.Equal(("fail", "fail", "fail"), (spain["status"]!.GetValue<string>(), Experiments.Score(spain, "equals")["status"]!.GetValue<string>(),
            Experiments.Score(spain, "similarity")["status"]!.GetValue<string>()));

        // A judge answer that is not the structured output asked for is an ERROR that keeps the raw answer, not a FAIL.
        var germany = results.Single(r => r!["item_id"]!.GetValue<string>() == "de")!;
        var judge = Experiments.Score(germany, "llm-judge");
        Assert.Equal(("error", "error"), (germany["status"]!.GetValue<string>(), judge["status"]!.GetValue<string>()));
        Assert.Contains("not valid structured output: Looks fine to me!", judge["reason"]!.GetValue<string>());
        // The judge was asked for a JSON schema.
        Assert.Equal("json_schema", Fake.Requests.Last(r => r.Model == "script-judge").Body["response_format"]!["type"]!.GetValue<string>());

        // Each run is a trace marked as an experiment's, with the prompt version.
        var span = (await GatewayCalls.TraceAsync(Http, france["trace_id"]!.GetValue<string>()))["spans"]![0]!;
        Assert.Contains("sextant:experiment", span["tags"]!.AsArray().Select(t => t!.GetValue<string>()));
        Assert.Equal(version, span["attributes"]!["sextant.prompt.version"]!.GetValue<int>());

        var failures = (await Http.GetJsonAsync($"/api/v1/eval/experiments/{experiment["id"]}/results?status=fail")).Json!["results"]!.AsArray();
        Assert.Equal(["es"], failures.Select(r => r!["item_id"]!.GetValue<string>()));
    }

    [Fact]
    public async Task Repeats_give_each_item_a_pass_rate_and_flag_flaky_items_and_a_failing_grader_is_an_error()
    {
        var calls = 0;
        Fake.Scripts["script-flaky"] = _ => Interlocked.Increment(ref calls) % 2 == 1 ? "yes" : "no";
        await DatasetAsync("exp/flaky", new { id = "a", input = "Is it?" }, new { id = "b", input = "Is it really?" });
        var experiment = await Experiments.RunAsync(Http, new
        {
            dataset = "exp/flaky",
            target = new { type = "model", model = "fake/script-flaky" },
            evaluators = new object[] { new { type = "equals", value = "yes" } },
            repeat = 4,
            concurrency = 1,
        });
        var summary = experiment["summary"]!;
        Assert.Equal((8, 4, 2, 0.5), (summary["results"]!.GetValue<int>(), summary["passed"]!.GetValue<int>(), summary["flaky_items"]!.GetValue<int>(), summary["pass_rate"]!.GetValue<double>()));
        var items = (await Http.GetJsonAsync($"/api/v1/eval/experiments/{experiment["id"]}/items")).Json!.AsArray();
        Assert.All(items, i => Assert.Equal((4, 2, true), (i!["runs"]!.GetValue<int>(), i["passed"]!.GetValue<int>(), i["flaky"]!.GetValue<bool>())));

        var broken = await Experiments.RunAsync(Http, new
        {
            dataset = "exp/flaky",
            target = new { type = "model", model = "fake/ok-flaky" },
            evaluators = new object[] { new { type = "llm-judge", model = "fake/fail-500-judge", rubric = "Is it polite?" }, new { type = "contains", value = "Hello" } },
        });
        Assert.Equal((0, 2, 1.0), (broken["summary"]!["failed"]!.GetValue<int>(), broken["summary"]!["errors"]!.GetValue<int>(), broken["summary"]!["error_rate"]!.GetValue<double>()));
        var result = (await Experiments.ResultsAsync(Http, broken["id"]!.GetValue<string>()))[0]!;
        Assert.Contains("HTTP 500", Experiments.Score(result, "llm-judge")["reason"]!.GetValue<string>());
        Assert.Equal("pass", Experiments.Score(result, "contains")["status"]!.GetValue<string>());

        // A target that fails is an error result with the upstream's message.
        var down = await Experiments.RunAsync(Http, new { dataset = "exp/flaky", target = new { type = "model", model = "fake/fail-503-target" }, evaluators = new object[] { new { type = "is-json" } } });
        var downResult = (await Experiments.ResultsAsync(Http, down["id"]!.GetValue<string>()))[0]!;
        Assert.Equal("error", downResult["status"]!.GetValue<string>());
        Assert.Contains("503", downResult["error"]!.GetValue<string>());
    }

    [GeneratedRegex(@"^(\d+)\. (.*)$", RegexOptions.Multiline)]
    private static partial Regex NumberedLine();

    [Fact]
    public async Task The_rag_triad_judges_each_sentence_against_the_context_and_gives_the_hallucination_rate()
    {
        Fake.Scripts["script-rag"] = body => UserText(body).Contains("refund", StringComparison.Ordinal)
            ? "Refunds take 5 days. We also send a free cake."
            : "Shipping takes 2 days.";
        Fake.Scripts["script-grader"] = body =>
        {
            var system = SystemText(body);
            if (system.Contains("numbered sentence", StringComparison.Ordinal))
            {
                var sentences = NumberedLine().Matches(UserText(body)[UserText(body).IndexOf("Answer sentences:", StringComparison.Ordinal)..]);
                return new JsonObject
                {
                    ["sentences"] = new JsonArray([.. sentences.Select(m => (JsonNode)new JsonObject
                    {
                        ["index"] = int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture),
                        ["supported"] = !m.Groups[2].Value.Contains("cake", StringComparison.Ordinal),
                        ["reason"] = m.Groups[2].Value.Contains("cake", StringComparison.Ordinal) ? "the context says nothing about cake" : "stated in the context",
                    })]),
                }.ToJsonString();
            }
            return system.Contains("grade retrieval", StringComparison.Ordinal) ? """{"score": 1, "reason": "on topic"}""" : """{"score": 0.8, "reason": "answers it"}""";
        };
        await DatasetAsync("exp/rag",
            new { id = "refund", input = new { question = "How long do refunds take?" }, metadata = new { context = "Refunds take 5 days after we receive the item." } },
            new { id = "ship", input = new { question = "How long does shipping take?" }, metadata = new { context = new[] { "Shipping takes 2 days.", "We ship worldwide." } } },
            new { id = "none", input = new { question = "Where are you?" } });
        var experiment = await Experiments.RunAsync(Http, new
        {
            dataset = "exp/rag",
            target = new { type = "model", model = "fake/script-rag" },
            evaluators = new object[]
            {
                new { type = "context-relevance", model = "fake/script-grader" },
                new { type = "groundedness", model = "fake/script-grader" },
                new { type = "answer-relevance", model = "fake/script-grader" },
            },
        });
        Assert.Equal(0.5, experiment["summary"]!["hallucination_rate"]!.GetValue<double>());
        var results = await Experiments.ResultsAsync(Http, experiment["id"]!.GetValue<string>());
        var refund = results.Single(r => r!["item_id"]!.GetValue<string>() == "refund")!;
        var grounded = Experiments.Score(refund, "groundedness");
        Assert.Equal(("fail", 0.5), (grounded["status"]!.GetValue<string>(), grounded["score"]!.GetValue<double>()));
        Assert.Contains("free cake", grounded["reason"]!.GetValue<string>());
        Assert.Equal(("pass", 1.0), (Experiments.Score(refund, "context-relevance")["status"]!.GetValue<string>(), Experiments.Score(refund, "context-relevance")["score"]!.GetValue<double>()));
        Assert.Equal(0.8, Experiments.Score(refund, "answer-relevance")["score"]!.GetValue<double>());
        var ship = results.Single(r => r!["item_id"]!.GetValue<string>() == "ship")!;
        Assert.Equal("pass", Experiments.Score(ship, "groundedness")["status"]!.GetValue<string>());
        // Without a context the context-based judges cannot judge: an error naming what is missing.
        var none = results.Single(r => r!["item_id"]!.GetValue<string>() == "none")!;
        Assert.Equal("error", Experiments.Score(none, "groundedness")["status"]!.GetValue<string>());
        Assert.Contains("metadata.context", Experiments.Score(none, "groundedness")["reason"]!.GetValue<string>());
    }

    [Fact]
    public async Task Comparing_two_experiments_lists_regressions_first_with_bootstrap_intervals()
    {
        Fake.Scripts["script-good"] = body => "The answer is " + UserText(body)[^1] + ".";
        Fake.Scripts["script-bad"] = body => UserText(body)[^1] is '1' or '2' or '3' ? "The answer is " + UserText(body)[^1] + "." : "No idea.";
        var items = Enumerable.Range(0, 10).Select(i => (object)new { id = $"n{i}", input = new { n = i.ToString(System.Globalization.CultureInfo.InvariantCulture) }, expected = $"The answer is {i}." }).ToArray();
        await DatasetAsync("exp/compare", items);
        await PromptAsync("exp/numbers", "Say {{n}}", "fake/script-good", "production");
        object Request(string model) => new
        {
            dataset = "exp/compare",
            target = new { type = "prompt", prompt = "exp/numbers@production", model },
            evaluators = new object[] { new { type = "equals" } },
        };
        var good = await Experiments.RunAsync(Http, Request("fake/script-good"));
        var bad = await Experiments.RunAsync(Http, Request("fake/script-bad"));
        Assert.Equal((1.0, 0.3), (good["summary"]!["pass_rate"]!.GetValue<double>(), bad["summary"]!["pass_rate"]!.GetValue<double>()));
        var comparison = (await Http.GetJsonAsync($"/api/v1/eval/compare?baseline={good["id"]}&candidate={bad["id"]}")).Json!;
        Assert.Equal(10, comparison["paired_items"]!.GetValue<int>());
        var passRate = comparison["metrics"]!.AsArray().Single(m => m!["name"]!.GetValue<string>() == "pass_rate")!;
        Assert.Equal(-0.7, passRate["delta"]!.GetValue<double>(), 6);
        Assert.True(passRate["low"]!.GetValue<double>() <= -0.7 && passRate["high"]!.GetValue<double>() < 0 && passRate["significant"]!.GetValue<bool>());
        var changes = comparison["items"]!.AsArray().Select(i => i!["change"]!.GetValue<string>()).ToList();
        Assert.Equal(Enumerable.Repeat("regression", 7).Concat(Enumerable.Repeat("same", 3)), changes);
        Assert.Equal("No idea.", comparison["items"]![0]!["candidate_output"]!.GetValue<string>());
        Assert.Equal(-1.0, comparison["items"]![0]!["score_deltas"]!["equals"]!.GetValue<double>());

        // Lineage: the prompt version and the dataset version each lead to both experiments, and back.
        var fromPrompt = (await Http.GetJsonAsync("/api/v1/lineage?uri=prompts:/exp/numbers@1&direction=down")).Json!;
        Assert.Equal(2, fromPrompt["edges"]!.AsArray().Count(e => e!["kind"]!.GetValue<string>() == "evaluated"));
        var fromExperiment = (await Http.GetJsonAsync($"/api/v1/lineage?uri=experiments:/{bad["id"]}&direction=up")).Json!;
        Assert.Equal(["eval-datasets:/exp/compare@1", "prompts:/exp/numbers@1"],
            fromExperiment["edges"]!.AsArray().Select(e => e!["from"]!.GetValue<string>()).Order());
        var fromDataset = (await Http.GetJsonAsync("/api/v1/lineage?uri=eval-datasets:/exp/compare@1&direction=down")).Json!;
        Assert.Equal(2, fromDataset["edges"]!.AsArray().Count);
        Assert.Equal(404, (await Http.GetJsonAsync("/api/v1/lineage?uri=prompts:/exp/numbers@9")).Status);
    }

    [Fact]
    public async Task An_http_target_gets_each_item_and_may_return_its_retrieved_context()
    {
        var (app, address) = await FakeHost.StartAsync(web => web.MapPost("/answer", async (Microsoft.AspNetCore.Http.HttpContext ctx) =>
        {
            var body = (await JsonNode.ParseAsync(ctx.Request.Body))!;
            Assert.Equal("Bearer secret-token", ctx.Request.Headers.Authorization.ToString());
            if (body["id"]!.GetValue<string>() == "redirect")
            {
                ctx.Response.Redirect("/elsewhere");
                return;
            }
            if (body["id"]!.GetValue<string>() == "boom")
            {
                ctx.Response.StatusCode = 500;
                await Microsoft.AspNetCore.Http.HttpResponseWritingExtensions.WriteAsync(ctx.Response, "exploded");
                return;
            }
            await Microsoft.AspNetCore.Http.HttpResponseJsonExtensions.WriteAsJsonAsync(ctx.Response, new JsonObject
            {
                ["output"] = "Echo: " + body["input"]!["q"]!.GetValue<string>(),
                ["context"] = new JsonArray("doc one", "doc two"),
            });
        }));
        await using var _ = app;
        await DatasetAsync("exp/http", new { id = "ok", input = new { q = "hi" } }, new { id = "boom", input = new { q = "x" } }, new { id = "redirect", input = new { q = "y" } });
        var experiment = await Experiments.RunAsync(Http, new
        {
            dataset = "exp/http",
            target = new { type = "http", url = address + "/answer", headers = new Dictionary<string, string> { ["Authorization"] = "Bearer secret-token" } },
            evaluators = new object[]
            {
                new { type = "starts-with", value = "Echo:" },
                new { type = "latency", value = 10000 },
                // A provider's embeddings through the gateway (the fake's vector depends on the text's length).
                new { type = "similarity", value = "Echo: yo", embedder = "fake/emb-sim", name = "provider-similarity" },
            },
        });
        var results = await Experiments.ResultsAsync(Http, experiment["id"]!.GetValue<string>());
        Assert.Equal(("pass", "Echo: hi"), (results[0]!["status"]!.GetValue<string>(), results[0]!["output"]!.GetValue<string>()));
        Assert.Equal(1.0, Experiments.Score(results[0]!, "provider-similarity")["score"]!.GetValue<double>());
        Assert.True(Fake.Hits.ContainsKey("emb-sim"));
        Assert.Equal("error", results[1]!["status"]!.GetValue<string>());
        Assert.Contains("HTTP 500: exploded", results[1]!["error"]!.GetValue<string>());
        // A redirect is the target's answer (an error), not followed.
        Assert.Contains("HTTP 302", results[2]!["error"]!.GetValue<string>());
        // The header's value (a credential) is never shown back.
        Assert.Equal("(hidden)", experiment["target"]!["headers"]!["Authorization"]!.GetValue<string>());
        var contentType = await Http.PostAsync("/api/v1/eval/experiments", new
        {
            dataset = "exp/http",
            target = new { type = "http", url = address + "/answer", headers = new Dictionary<string, string> { ["Content-Type"] = "text/plain" } },
        });
        Assert.Equal(("target.headers", 400), (contentType.Field, contentType.Status));
    }

    [Fact]
    public async Task Bad_experiment_requests_are_refused_before_anything_runs()
    {
        await DatasetAsync("exp/bad", new { input = "x", expected = "y" });
        async Task Refused(object request, string field, int status = 400)
        {
            var answer = await Http.PostAsync("/api/v1/eval/experiments", request);
            Assert.True(answer.Status == status, answer.Body);
            Assert.Equal(field, answer.Field);
        }
        var target = new { type = "model", model = "fake/ok-bad" };
        await Refused(new { dataset = "exp/bad", target, evaluators = new object[] { new { type = "equals" }, new { type = "regex", value = "([a-z" } } }, "evaluators[1].value");
        await Refused(new { dataset = "exp/bad", target, evaluators = new object[] { new { type = "llm-judge", model = "fake/x" } } }, "evaluators[0].rubric");
        await Refused(new { dataset = "exp/bad", target, evaluators = new object[] { new { type = "similarity", threshold = 2 } } }, "evaluators[0].threshold");
        await Refused(new { dataset = "exp/bad", target, evaluators = new object[] { new { type = "similarity", precision = "fp16" } } }, "evaluators[0].precision");
        await Refused(new { dataset = "exp/bad", target, evaluators = new object[] { new { type = "similarity", precision = "float32", embedder = "fake/emb" } } }, "evaluators[0].precision");
        await Refused(new { dataset = "exp/bad", target, evaluators = new object[] { new { type = "sentiment" } } }, "evaluators[0].type");
        await Refused(new { dataset = "exp/bad", target, evaluators = new object[] { "contains" } }, "evaluators[0]");
        await Refused(new { dataset = "exp/bad", target = new { type = "robot" } }, "target.type");
        await Refused(new { dataset = "exp/bad", target = new { type = "http", url = "ftp://x" } }, "target.url");
        await Refused(new { dataset = "exp/bad", target = new { type = "prompt", prompt = "exp/none@production" } }, "target.prompt");
        await Refused(new { dataset = "exp/bad", target, concurrency = 0 }, "concurrency");
        await Refused(new { dataset = "exp/bad", target, repeat = 99 }, "repeat");
        await Refused(new { name = "bad\u0000name", dataset = "exp/bad", target }, "name");
        var missing = await Http.PostAsync("/api/v1/eval/experiments", new { dataset = "exp/missing", target });
        Assert.Equal(404, missing.Status);
        var none = (await Http.GetJsonAsync("/api/v1/eval/experiments?dataset=exp/bad")).Json!["experiments"]!.AsArray();
        Assert.Empty(none);

        // Results posted by an SDK: each run once a request, each names its item; nothing of a refused request is kept.
        var sdk = await Http.PostAsync("/api/v1/eval/experiments", new { dataset = "exp/bad", target = new { type = "sdk" }, evaluators = new object[] { new { type = "equals" } } });
        var id = sdk.Json!["id"]!.GetValue<string>();
        var twice = await Http.PostAsync($"/api/v1/eval/experiments/{id}/results", new { results = new object[] { new { item = 0, output = "y" }, new { item = 0, output = "z" } } });
        Assert.Equal(("results[1]", 400), (twice.Field, twice.Status));
        var noItem = await Http.PostAsync($"/api/v1/eval/experiments/{id}/results", new { results = new object[] { new { output = "y" } } });
        Assert.Equal(("results[0].item", 400), (noItem.Field, noItem.Status));
        var outOfRange = await Http.PostAsync($"/api/v1/eval/experiments/{id}/results", new { results = new object[] { new { item = 5, output = "y" } } });
        Assert.Equal(("results[0].item", 400), (outOfRange.Field, outOfRange.Status));
        Assert.Equal(0, (await Http.GetJsonAsync($"/api/v1/eval/experiments/{id}")).Json!["summary"]!["results"]!.GetValue<int>());
        var posted = await Http.PostAsync($"/api/v1/eval/experiments/{id}/results", new { results = new object[] { new { item = 0, output = "y" } }, complete = true });
        Assert.Equal(("pass", "completed"), (posted.Json!["results"]![0]!["status"]!.GetValue<string>(),
            (await Http.GetJsonAsync($"/api/v1/eval/experiments/{id}")).Json!["status"]!.GetValue<string>()));
        Assert.Equal(409, (await Http.PostAsync($"/api/v1/eval/experiments/{id}/results", new { results = new object[] { new { item = 0, output = "y" } } })).Status);
        Assert.Equal(404, (await Http.GetJsonAsync("/api/v1/eval/experiments/0000000000000000")).Status);
        Assert.Equal(400, (await Http.GetJsonAsync("/api/v1/eval/experiments/0000000000000000/results?status=meh")).Status);
    }
}

public sealed class SqliteExperimentTests(EvalFixture fixture) : ExperimentTests(fixture), IClassFixture<EvalFixture>;

public sealed class PostgresExperimentTests(PostgresEvalFixture fixture) : ExperimentTests(fixture), IClassFixture<PostgresEvalFixture>;
