using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Xml;
using System.Xml.Linq;
using Sextant.Client;
using Sextant.Client.Evaluation;
using Sextant.Contracts;
using Spectre.Console;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Sextant.Cli.Commands;

/// <summary>`sextant eval datasets|run|show|compare`: eval datasets, experiments with a CI gate and JUnit output, comparisons.</summary>
internal static class EvalCommand
{
    public static Command Build()
    {
        var options = new ClientOptions();
        var command = new Command("eval", "Evaluation: datasets, experiments (with a CI gate), comparisons");
        var datasets = new Command("datasets", "Eval datasets: items with inputs and expected outputs, in versions");
        datasets.Subcommands.Add(ListDatasets(options));
        datasets.Subcommands.Add(Push(options));
        command.Subcommands.Add(datasets);
        command.Subcommands.Add(Run(options));
        command.Subcommands.Add(Show(options));
        command.Subcommands.Add(Compare(options));
        options.AddTo(command);
        return command;
    }

    private static string N(double? value, string format = "0.###") => value?.ToString(format, CultureInfo.InvariantCulture) ?? "-";

    private static Command ListDatasets(ClientOptions options)
    {
        var command = new Command("list", "List eval datasets with their latest version and item count");
        command.SetClientAction(options, async (cli, ct) =>
        {
            var list = await cli.Client.ListEvalDatasetsAsync(ct);
            if (cli.Json)
            {
                cli.WriteJson(list, SextantJsonContext.Default.EvalDatasetsResponse);
                return;
            }
            var table = new Table().AddColumns("Name", "Version", "Items", "Description");
            foreach (var d in list.Datasets)
            {
                table.AddRow(Markup.Escape(d.Name), d.LatestVersion.ToString(CultureInfo.InvariantCulture), d.ItemCount.ToString(CultureInfo.InvariantCulture), Markup.Escape(d.Description ?? ""));
            }
            cli.Console.Write(table);
        });
        return command;
    }

    private static Command Push(ClientOptions options)
    {
        var name = new Argument<string>("name") { Description = "The dataset's name (folders allowed: support/faq)" };
        var file = new Argument<string>("file") { Description = "A .jsonl file (one item a line) or a .csv file (a header row)" };
        var replace = new Option<bool>("--replace") { Description = "The new version holds only this file's items (default: appended to the latest version's)" };
        var message = new Option<string?>("--message", "-m") { Description = "What changed" };
        var command = new Command("push", "Make a new version of a dataset from a JSONL or CSV file; a broken line imports nothing") { name, file, replace, message };
        command.SetClientAction(options, async (cli, ct) =>
        {
            var path = cli.Get(file);
            if (!File.Exists(path))
            {
                throw new CliException($"No file '{path}'.");
            }
            var version = await cli.Client.ImportEvalDatasetAsync(cli.Get(name), path, cli.Get(replace) ? "replace" : "append", cli.Get(message), ct);
            if (cli.Json)
            {
                cli.WriteJson(version, SextantJsonContext.Default.EvalDatasetVersion);
                return;
            }
            cli.Console.MarkupLine($"{Markup.Escape(version.Name)} version {version.Version}: {version.ItemCount} items ({version.Added} from the file)");
        });
        return command;
    }

    private static Command Run(ClientOptions options)
    {
        var dataset = new Option<string>("--dataset") { Description = "The eval dataset", Required = true };
        var datasetVersion = new Option<int?>("--dataset-version") { Description = "A dataset version (default: the latest)" };
        var prompt = new Option<string?>("--prompt") { Description = "Target: a prompt version through the gateway, NAME@LABEL or NAME@VERSION" };
        var model = new Option<string?>("--model") { Description = "Target: a gateway model (route or provider/model) for the items' messages; with --prompt, the model to use instead of the prompt's" };
        var url = new Option<string?>("--endpoint") { Description = "Target: an HTTP endpoint that gets each item as JSON and answers {\"output\": ...}" };
        var evaluators = new Option<string?>("--evaluators") { Description = "A JSON or YAML file with the list of evaluators" };
        var evaluator = new Option<string[]>("--evaluator") { Description = "One evaluator as JSON ({\"type\": \"contains\", \"value\": \"refund\"}); repeatable", AllowMultipleArgumentsPerToken = false };
        var concurrency = new Option<int?>("--concurrency") { Description = "Items at once (default 4)" };
        var repeat = new Option<int?>("--repeat") { Description = "Runs of each item (pass rate and flakiness per item)" };
        var runName = new Option<string?>("--name") { Description = "The experiment's name" };
        var gate = new Option<string?>("--gate") { Description = "Conditions the experiment must meet, e.g. \"pass_rate>=0.9, score.similarity>=0.8\"; the command exits 1 when one fails" };
        var junit = new Option<string?>("--junit") { Description = "Write JUnit XML here (one test case per item run)" };
        var command = new Command("run", "Run an experiment on the server and wait for it; with --gate, fail when it falls short (for CI)")
        {
            dataset, datasetVersion, prompt, model, url, evaluators, evaluator, concurrency, repeat, runName, gate, junit,
        };
        command.SetClientAction(options, async (cli, ct) =>
        {
            var target = (cli.Get(prompt), cli.Get(model), cli.Get(url)) switch
            {
                ({ } p, var m, null) => new ExperimentTarget("prompt", p, m),
                (null, { } m, null) => new ExperimentTarget("model", Model: m),
                (null, null, { } u) => new ExperimentTarget("http", Url: u),
                _ => throw new CliException("Name one target: --prompt NAME@LABEL (optionally with --model), --model MODEL, or --endpoint URL."),
            };
            var list = new List<JsonElement>();
            if (cli.Get(evaluators) is { } path)
            {
                list.AddRange(ReadEvaluators(path));
            }
            foreach (var text in cli.Get(evaluator) ?? [])
            {
                try
                {
                    list.Add(JsonDocument.Parse(text).RootElement.Clone());
                }
                catch (JsonException e)
                {
                    throw new CliException($"--evaluator '{text}' is not JSON: {e.Message}");
                }
            }
            var gateText = cli.Get(gate);
            if (gateText is not null)
            {
                // A malformed gate fails before the experiment runs.
                EvalGate.Check(new ExperimentSummary(0, 0, 0, 0, 0, 0, 0, 0, 0, null, null, null, null, 0, 0,
                    [.. list.Select(e => new EvaluatorSummary(
                        e.ValueKind == JsonValueKind.Object && e.TryGetProperty("name", out var n) && n.ValueKind == JsonValueKind.String ? n.GetString()!
                        : e.ValueKind == JsonValueKind.Object && e.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString()! : "?", 0, 0, 0, 0, null))]), gateText);
            }
            var created = await cli.Client.CreateEvalExperimentAsync(new CreateEvalExperimentRequest(cli.Get(runName), cli.Get(dataset), cli.Get(datasetVersion), target, list,
                cli.Get(concurrency), cli.Get(repeat)), ct);
            if (!cli.Json)
            {
                cli.Console.MarkupLine($"experiment [bold]{created.Id}[/] ({Markup.Escape(created.Name)}): {created.Summary.Expected} runs of {Markup.Escape(created.Dataset)} version {created.DatasetVersion}");
            }
            // Progress on stderr (stdout stays the summary, or the JSON), at most every few seconds.
            var lastReport = 0;
            var reported = System.Diagnostics.Stopwatch.StartNew();
            var done = await cli.Client.WaitForEvalExperimentAsync(created.Id, progress: e =>
            {
                if (e.Summary.Results != lastReport && reported.Elapsed >= TimeSpan.FromSeconds(3) && e.Status == "running")
                {
                    Console.Error.WriteLine($"sextant: {e.Summary.Results}/{e.Summary.Expected} runs, {e.Summary.Passed} passed so far");
                    (lastReport, reported) = (e.Summary.Results, System.Diagnostics.Stopwatch.StartNew());
                }
            }, cancellationToken: ct);
            var results = await cli.Client.GetEvalResultsAsync(done.Id, null, ct);
            if (cli.Get(junit) is { } junitPath)
            {
                WriteJUnit(junitPath, done, results);
            }
            var failures = gateText is null ? [] : EvalGate.Check(done.Summary, gateText);
            if (cli.Json)
            {
                cli.WriteJson(done, SextantJsonContext.Default.EvalExperiment);
            }
            else
            {
                WriteSummary(cli, done);
                foreach (var failed in results.Where(r => r.Status != EvalStatus.Pass).Take(10))
                {
                    cli.Console.MarkupLine($"  [red]{failed.Status.ToUpperInvariant()}[/] item {Markup.Escape(failed.ItemId ?? failed.Item.ToString(CultureInfo.InvariantCulture))}: "
                        + Markup.Escape(failed.Error ?? string.Join("; ", failed.Scores.Where(s => s.Status != EvalStatus.Pass).Select(s => $"{s.Name}: {s.Reason}"))));
                }
            }
            if (done.Status != "completed")
            {
                throw new CliException($"experiment {done.Id} ended {done.Status}{(done.Error is null ? "" : ": " + done.Error)}");
            }
            if (failures.Count > 0)
            {
                throw new CliException($"gate failed: {string.Join("; ", failures)}");
            }
            if (gateText is not null && !cli.Json)
            {
                cli.Console.MarkupLine($"[green]gate passed[/]: {Markup.Escape(gateText)}");
            }
        });
        return command;
    }

    private static List<JsonElement> ReadEvaluators(string path)
    {
        if (!File.Exists(path))
        {
            throw new CliException($"No evaluators file '{path}'.");
        }
        var text = File.ReadAllText(path);
        JsonNode? node;
        try
        {
            if (Path.GetExtension(path) is ".yaml" or ".yml")
            {
                var stream = new YamlStream();
                stream.Load(new StringReader(text));
                node = stream.Documents.Count == 0 ? null : PromptFiles.ToJson(stream.Documents[0].RootNode);
            }
            else
            {
                node = JsonNode.Parse(text);
            }
        }
        catch (Exception e) when (e is JsonException or YamlException)
        {
            throw new CliException($"'{path}' cannot be read: {e.Message}");
        }
        if (node is JsonObject { } wrapper && wrapper["evaluators"] is JsonArray inner)
        {
            node = inner;
        }
        return node is JsonArray array
            ? [.. array.Select(e => JsonSerializer.SerializeToElement(e, CliJson.Default.JsonNode))]
            : throw new CliException($"'{path}' must hold a list of evaluators (or an object with an 'evaluators' list).");
    }

    private static void WriteSummary(ClientInvocation cli, EvalExperiment experiment)
    {
        var s = experiment.Summary;
        cli.Console.MarkupLine($"{experiment.Status}: {s.Results}/{s.Expected} runs, [green]{s.Passed} passed[/], [red]{s.Failed} failed[/], [yellow]{s.Errors} errors[/]; "
            + $"pass rate {N(s.PassRate)}, flaky items {s.FlakyItems}{(s.HallucinationRate is { } h ? $", hallucination rate {N(h)}" : "")}");
        cli.Console.MarkupLine($"latency p50 {N(s.LatencyP50Ms, "0.#")} ms, p95 {N(s.LatencyP95Ms, "0.#")} ms; tokens {s.InputTokens} in, {s.OutputTokens} out; cost {(s.Cost is { } c ? "$" + c.ToString("0.######", CultureInfo.InvariantCulture) : "unknown")}");
        if (s.Evaluators.Count > 0)
        {
            var table = new Table().AddColumns("Evaluator", "Pass rate", "Mean score", "Passed", "Failed", "Errors");
            foreach (var e in s.Evaluators)
            {
                table.AddRow(Markup.Escape(e.Name), N(e.PassRate), N(e.MeanScore), e.Passed.ToString(CultureInfo.InvariantCulture), e.Failed.ToString(CultureInfo.InvariantCulture),
                    e.Errors.ToString(CultureInfo.InvariantCulture));
            }
            cli.Console.Write(table);
        }
    }

    /// <summary>JUnit XML: a test suite for the experiment, a test case per item run; fail is a failure, error an error, with the reasons.</summary>
    internal static void WriteJUnit(string path, EvalExperiment experiment, IReadOnlyList<ExperimentResult> results)
    {
        var suite = new XElement("testsuite",
            new XAttribute("name", experiment.Name),
            new XAttribute("tests", results.Count),
            new XAttribute("failures", results.Count(r => r.Status == EvalStatus.Fail)),
            new XAttribute("errors", results.Count(r => r.Status == EvalStatus.Error)),
            new XAttribute("time", ((results.Sum(r => r.LatencyMs ?? 0)) / 1000).ToString("0.###", CultureInfo.InvariantCulture)),
            new XElement("properties",
                new XElement("property", new XAttribute("name", "experiment"), new XAttribute("value", experiment.Id)),
                new XElement("property", new XAttribute("name", "dataset"), new XAttribute("value", $"{experiment.Dataset}@{experiment.DatasetVersion}")),
                new XElement("property", new XAttribute("name", "pass_rate"), new XAttribute("value", experiment.Summary.PassRate.ToString(CultureInfo.InvariantCulture)))),
            results.Select(r =>
            {
                var reasons = r.Error ?? string.Join("\n", r.Scores.Where(s => s.Status != EvalStatus.Pass).Select(s => $"{s.Name} ({s.Status}): {s.Reason}"));
                var testCase = new XElement("testcase",
                    new XAttribute("classname", $"{experiment.Dataset}"),
                    new XAttribute("name", $"{r.ItemId ?? r.Item.ToString(CultureInfo.InvariantCulture)}{(experiment.Repeat > 1 ? $"#{r.Repetition}" : "")}"),
                    new XAttribute("time", ((r.LatencyMs ?? 0) / 1000).ToString("0.###", CultureInfo.InvariantCulture)));
                if (r.Status == EvalStatus.Fail)
                {
                    testCase.Add(new XElement("failure", new XAttribute("message", Xml(Short(reasons))), Xml(reasons)));
                }
                else if (r.Status == EvalStatus.Error)
                {
                    testCase.Add(new XElement("error", new XAttribute("message", Xml(Short(reasons))), Xml(reasons)));
                }
                testCase.Add(new XElement("system-out", Xml(r.Output ?? "")));
                return testCase;
            }));
        var directory = Path.GetDirectoryName(Path.GetFullPath(path));
        if (directory is not null)
        {
            Directory.CreateDirectory(directory);
        }
        new XDocument(new XDeclaration("1.0", "utf-8", null), new XElement("testsuites", suite)).Save(path);
    }

    private static string Short(string text) => text.Length > 200 ? text[..200] + "..." : text;

    /// <summary>Text XML 1.0 can hold: other control characters (an output may have any) become U+FFFD.</summary>
    private static string Xml(string text) =>
        text.Any(c => !XmlConvert.IsXmlChar(c) && !char.IsSurrogate(c)) ? new string([.. text.Select(c => XmlConvert.IsXmlChar(c) || char.IsSurrogate(c) ? c : '\uFFFD')]) : text;

    private static Command Show(ClientOptions options)
    {
        var id = new Argument<string>("id") { Description = "The experiment id" };
        var failures = new Option<bool>("--failures") { Description = "List every failed or errored run with its reasons" };
        var command = new Command("show", "Show an experiment's status and summary") { id, failures };
        command.SetClientAction(options, async (cli, ct) =>
        {
            var experiment = await cli.Client.GetEvalExperimentAsync(cli.Get(id), ct);
            if (cli.Json)
            {
                cli.WriteJson(experiment, SextantJsonContext.Default.EvalExperiment);
                return;
            }
            cli.Console.MarkupLine($"[bold]{experiment.Id}[/] {Markup.Escape(experiment.Name)}: {Markup.Escape(experiment.Dataset)} version {experiment.DatasetVersion} against "
                + Markup.Escape(experiment.Target.Type + " " + (experiment.Target.Prompt ?? experiment.Target.Model ?? experiment.Target.Url ?? "")));
            WriteSummary(cli, experiment);
            if (cli.Get(failures))
            {
                foreach (var r in (await cli.Client.GetEvalResultsAsync(experiment.Id, null, ct)).Where(r => r.Status != EvalStatus.Pass))
                {
                    cli.Console.MarkupLine($"  [red]{r.Status.ToUpperInvariant()}[/] {Markup.Escape(r.ItemId ?? "")}#{r.Repetition}: "
                        + Markup.Escape(r.Error ?? string.Join("; ", r.Scores.Where(s => s.Status != EvalStatus.Pass).Select(s => $"{s.Name}: {s.Reason}"))));
                }
            }
        });
        return command;
    }

    private static Command Compare(ClientOptions options)
    {
        var baseline = new Argument<string>("baseline") { Description = "The experiment to compare against" };
        var candidate = new Argument<string>("candidate") { Description = "The new experiment" };
        var command = new Command("compare", "Compare two experiments of one dataset: deltas with 95% intervals, regressions first") { baseline, candidate };
        command.SetClientAction(options, async (cli, ct) =>
        {
            var comparison = await cli.Client.CompareEvalExperimentsAsync(cli.Get(baseline), cli.Get(candidate), ct);
            if (cli.Json)
            {
                cli.WriteJson(comparison, SextantJsonContext.Default.ExperimentComparison);
                return;
            }
            var table = new Table().AddColumns("Metric", "Baseline", "Candidate", "Delta", "95% interval", "");
            foreach (var m in comparison.Metrics)
            {
                table.AddRow(Markup.Escape(m.Name), N(m.Baseline, "0.####"), N(m.Candidate, "0.####"), N(m.Delta, "+0.####;-0.####;0"),
                    $"[{N(m.Low, "0.####")}, {N(m.High, "0.####")}]", m.Significant ? ((m.Name is "latency_ms" or "cost" ? m.Delta < 0 : m.Delta > 0) ? "[green]better[/]" : "[red]worse[/]") : "");
            }
            cli.Console.Write(table);
            var regressions = comparison.Items.Where(i => i.Change == "regression").ToList();
            cli.Console.MarkupLine($"{comparison.PairedItems} items paired: {regressions.Count} regressions, {comparison.Items.Count(i => i.Change == "improvement")} improvements");
            foreach (var item in regressions.Take(20))
            {
                cli.Console.MarkupLine($"  [red]regression[/] {Markup.Escape(item.ItemId ?? "")}: {N(item.BaselinePassRate)} -> {N(item.CandidatePassRate)}: {Markup.Escape(Short(item.CandidateOutput ?? ""))}");
            }
        });
        return command;
    }
}
