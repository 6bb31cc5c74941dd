using System.Text.Json;
using System.Xml.Linq;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.AI.Evaluation;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Sextant.Client.Evaluation;
using Sextant.Client.Tests.Cli;
using Sextant.Contracts;

namespace Sextant.Client.Tests.Evaluation;

/// <summary>
/// Evaluation from .NET and the command line: an experiment whose target is a C# function, with a custom
/// Microsoft.Extensions.AI.Evaluation evaluator, resumed after an interruption; and `sextant eval run` as a CI gate.
/// </summary>
[Collection(ConsoleCollection.Name)]
public sealed class EvalClientTests(ServerFixture fixture) : IClassFixture<ServerFixture>, IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("sextant-eval-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    /// <summary>A custom evaluator: fails answers longer than a number of words.</summary>
    private sealed class WordLimitEvaluator(int limit) : IEvaluator
    {
        public IReadOnlyCollection<string> EvaluationMetricNames => ["word-limit"];

        public ValueTask<EvaluationResult> EvaluateAsync(IEnumerable<ChatMessage> messages, ChatResponse modelResponse, ChatConfiguration? chatConfiguration = null,
            IEnumerable<EvaluationContext>? additionalContext = null, CancellationToken cancellationToken = default)
        {
            var words = modelResponse.Text.Split(' ', StringSplitOptions.RemoveEmptyEntries).Length;
            var expected = additionalContext?.OfType<ExpectedOutputContext>().Single().Expected?.GetString();
            var metric = new NumericMetric("word-limit", words, $"{words} words (expected '{expected}')")
            {
                Interpretation = new EvaluationMetricInterpretation(words <= limit ? EvaluationRating.Good : EvaluationRating.Unacceptable, failed: words > limit, reason: $"{words} words, limit {limit}"),
            };
            return ValueTask.FromResult(new EvaluationResult(metric));
        }
    }

    private static JsonElement Json(string text) => JsonDocument.Parse(text).RootElement.Clone();

    [Fact]
    public async Task A_csharp_target_runs_here_with_a_custom_evaluator_and_resumes_after_an_interruption()
    {
        using var client = fixture.CreateClient();
        var items = Enumerable.Range(0, 8).Select(i => new EvalItem($"q{i}", Json($$"""{"question": "What is {{i}} + {{i}}?"}"""), Json($"\"{i + i}\""))).ToList();
        await client.AddEvalItemsAsync("sdk/math", items);
        var calls = 0;
        using var stop = new CancellationTokenSource();
        async Task<string> Target(IndexedEvalItem item, CancellationToken token)
        {
            if (Interlocked.Increment(ref calls) == 5)
            {
                await stop.CancelAsync();
                token.ThrowIfCancellationRequested();
            }
            await Task.Yield();
            var n = item.Index;
            return n == 7 ? throw new InvalidOperationException("the model is down") : n == 6 ? $"The answer to this question is {n + n}" : (n + n).ToString(System.Globalization.CultureInfo.InvariantCulture);
        }
        var options = new EvalRunOptions
        {
            Name = "math-sdk",
            Evaluators = [Json("""{"type": "equals"}""")],
            CustomEvaluators = [new WordLimitEvaluator(3)],
            Concurrency = 1,
        };
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => client.RunEvalExperimentAsync("sdk/math", Target, options, stop.Token));
        var interrupted = (await client.ListEvalDatasetsAsync()).Datasets.Single(d => d.Name == "sdk/math");
        Assert.Equal(8, interrupted.ItemCount);
        var partial = (await client.ListEvalExperimentsAsync("sdk/math")).Experiments.Single();
        var id = partial.Id;
        Assert.Equal("running", partial.Status);

        calls = 100;
        var done = await client.RunEvalExperimentAsync("sdk/math", Target, options with { ResumeId = id });
        Assert.Equal(("completed", 8), (done.Status, done.Summary.Results));
        // Item 7's target threw (an error); item 6 is right in substance but too long (two fails); the rest pass.
        Assert.Equal((6, 1, 1), (done.Summary.Passed, done.Summary.Failed, done.Summary.Errors));
        var results = await client.GetEvalResultsAsync(id);
        var six = results.Single(r => r.Item == 6);
        var limit = six.Scores.Single(s => s.Name == "word-limit");
        Assert.Equal(("fail", 7.0, "7 words, limit 3"), (limit.Status, limit.Score!.Value, limit.Reason));
        Assert.Equal("InvalidOperationException: the model is down", results.Single(r => r.Item == 7).Error);
        // Item 7 never got to the evaluators: 6 of 7 passed.
        Assert.Equal(6 / 7.0, done.Summary.Evaluators.Single(e => e.Name == "word-limit").PassRate, 5);
        // Only the runs the first call had not posted ran again.
        Assert.InRange(calls - 100, 4, 5);
    }

    [Fact]
    public void The_gate_reads_conditions_over_the_summary_and_names_what_it_cannot_read()
    {
        var summary = new ExperimentSummary(10, 10, 10, 8, 1, 1, 0.8, 0.1, 2, 0.25, 120, 300, 0.002, 100, 50,
            [new EvaluatorSummary("similarity", 9, 1, 0, 0.9, 0.87)]);
        Assert.Empty(EvalGate.Check(summary, "pass_rate>=0.8, error_rate <= 0.1 && score.similarity>0.85"));
        Assert.Equal(["pass_rate>=0.9 (actual 0.8)", "hallucination_rate<0.2 (actual 0.25)"], EvalGate.Check(summary, "pass_rate>=0.9, hallucination_rate<0.2, flaky_items<=2"));
        Assert.Contains("no evaluator 'judge'", Assert.Throws<ArgumentException>(() => EvalGate.Check(summary, "score.judge>=0.5")).Message);
        Assert.Contains("must look like", Assert.Throws<ArgumentException>(() => EvalGate.Check(summary, "pass_rate is high")).Message);
        Assert.Contains("unknown", Assert.Throws<ArgumentException>(() => EvalGate.Check(summary, "accuracy>=0.5")).Message);
    }

    [Fact]
    public async Task Eval_run_gates_a_ci_job_and_writes_junit()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(k => k.Listen(System.Net.IPAddress.Loopback, 0));
        await using var app = builder.Build();
        app.MapPost("/answer", async (HttpContext ctx) =>
        {
            var body = await JsonDocument.ParseAsync(ctx.Request.Body);
            var question = body.RootElement.GetProperty("input").GetProperty("question").GetString()!;
            await ctx.Response.WriteAsync(question.Contains("refund", StringComparison.Ordinal) ? "Refunds take 5 days." : "Please ask support.");
        });
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();

        var data = Path.Combine(_folder, "support.csv");
        await File.WriteAllTextAsync(data, "id,question,expected\nrefund,How do refunds work?,refund\nship,When does it ship?,ship\nrefund2,Any refund for gifts?,refund\n");
        var push = await CliRunner.RunAsync(fixture.Address, "eval", "datasets", "push", "ci/support", data, "-m", "first");
        Assert.True(push.ExitCode == 0, push.Error);
        Assert.Contains("version 1: 3 items", push.Out);
        var evaluators = Path.Combine(_folder, "evaluators.yaml");
        await File.WriteAllTextAsync(evaluators, "- type: icontains\n  value: days\n  name: mentions-days\n- type: length\n  max: 200\n");

        var junit = Path.Combine(_folder, "out", "eval.xml");
        var failing = await CliRunner.RunAsync(fixture.Address, "eval", "run", "--dataset", "ci/support", "--endpoint", address + "/answer", "--evaluators", evaluators,
            "--gate", "pass_rate>=0.9", "--junit", junit);
        Assert.Equal(1, failing.ExitCode);
        Assert.Contains("gate failed: pass_rate>=0.9 (actual 0.6667)", failing.Error);
        Assert.Contains("1 failed", failing.Out);
        var suite = XDocument.Load(junit).Root!.Element("testsuite")!;
        Assert.Equal(("3", "1", "0"), (suite.Attribute("tests")!.Value, suite.Attribute("failures")!.Value, suite.Attribute("errors")!.Value));
        var failed = suite.Elements("testcase").Single(t => t.Element("failure") is not null);
        Assert.Equal("ship", failed.Attribute("name")!.Value);
        Assert.Contains("mentions-days (fail)", failed.Element("failure")!.Value);

        var passing = await CliRunner.RunAsync(fixture.Address, "eval", "run", "--dataset", "ci/support", "--endpoint", address + "/answer", "--evaluators", evaluators,
            "--gate", "pass_rate>=0.6, pass_rate.length>=1");
        Assert.True(passing.ExitCode == 0, passing.Error);
        Assert.Contains("gate passed", passing.Out);

        var badGate = await CliRunner.RunAsync(fixture.Address, "eval", "run", "--dataset", "ci/support", "--endpoint", address + "/answer", "--gate", "pass_rate high");
        Assert.Equal(1, badGate.ExitCode);
        Assert.Contains("must look like", badGate.Error);
        var noTarget = await CliRunner.RunAsync(fixture.Address, "eval", "run", "--dataset", "ci/support");
        Assert.Contains("Name one target", noTarget.Error);
        var badEvaluator = await CliRunner.RunAsync(fixture.Address, "eval", "run", "--dataset", "ci/support", "--endpoint", address + "/answer", "--evaluator", """{"type": "regex"}""");
        Assert.Equal(1, badEvaluator.ExitCode);
        Assert.Contains("evaluators[0].value", badEvaluator.Error);

        var list = await CliRunner.RunAsync(fixture.Address, "eval", "datasets", "list", "--json");
        Assert.Contains("ci/support", list.Out);
    }
}
