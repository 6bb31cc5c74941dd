using System.CommandLine;
using Sextant.Contracts;
using Spectre.Console;

namespace Sextant.Cli.Commands;

/// <summary>`sextant runs compare`: params and last metric values side by side, one column per run.</summary>
internal static class RunsCompareCommand
{
    private const string Missing = "[dim]-[/]";

    public static Command Build(ClientOptions options)
    {
        var runIds = new Argument<string[]>("run-ids") { Description = "Two or more run ids", Arity = new ArgumentArity(2, 100) };
        var command = new Command("compare", "Compare runs: rows whose values differ are highlighted") { runIds };
        command.SetClientAction(options, async (cli, ct) =>
        {
            var runs = new List<Run>();
            foreach (var id in cli.Get(runIds))
            {
                runs.Add(await cli.Client.GetRunAsync(id, ct));
            }
            if (cli.Json)
            {
                cli.WriteJson(new SearchRunsResponse(runs, null), SextantJsonContext.Default.SearchRunsResponse);
                return;
            }
            cli.Console.Write(BuildTable(runs));
        });
        return command;
    }

    internal static Table BuildTable(IReadOnlyList<Run> runs)
    {
        var table = new Table().AddColumn("");
        foreach (var run in runs)
        {
            table.AddColumn(new TableColumn($"[bold]{Markup.Escape(run.Info.RunName)}[/]\n[dim]{Markup.Escape(run.Info.RunId)}[/]"));
        }
        AddRow(table, "status", runs.Select(r => (string?)r.Info.Status).ToList());
        AddSection(table, runs.Count, "Params");
        foreach (var key in runs.SelectMany(r => r.Data.Params).Select(p => p.Key).Distinct().Order(StringComparer.Ordinal))
        {
            AddRow(table, key, runs.Select(r => r.Data.Params.FirstOrDefault(p => p.Key == key)?.Value).ToList());
        }
        AddSection(table, runs.Count, "Metrics (last value)");
        foreach (var key in runs.SelectMany(r => r.Data.Metrics).Select(m => m.Key).Distinct().Order(StringComparer.Ordinal))
        {
            AddRow(table, key, runs.Select(r => r.Data.Metrics.FirstOrDefault(m => m.Key == key) is { } m ? CliOutput.Number(m.Value) : null).ToList());
        }
        return table;
    }

    private static void AddSection(Table table, int runCount, string title) =>
        table.AddRow([$"[bold underline]{title}[/]", .. Enumerable.Repeat("", runCount)]);

    /// <summary>A row per key; when the runs disagree (a missing value counts) the whole row is highlighted.</summary>
    private static void AddRow(Table table, string key, IReadOnlyList<string?> values)
    {
        var differs = values.Distinct(StringComparer.Ordinal).Count() > 1;
        string Cell(string? text) => text is null ? Missing : differs ? $"[yellow]{Markup.Escape(text)}[/]" : Markup.Escape(text);
        table.AddRow([differs ? $"[yellow bold]{Markup.Escape(key)}[/]" : Markup.Escape(key), .. values.Select(Cell)]);
    }
}
