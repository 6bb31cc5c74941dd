using System.CommandLine;
using Sextant.Contracts;
using Spectre.Console;

namespace Sextant.Cli.Commands;

/// <summary>`sextant runs list|show|compare`.</summary>
internal static class RunsCommand
{
    /// <summary>How many metrics the list shows per run; `runs show` has them all.</summary>
    private const int ListedMetrics = 4;

    public static Command Build()
    {
        var options = new ClientOptions();
        var command = options.CreateGroup("runs", "Search, show and compare runs");
        command.Subcommands.Add(List(options));
        command.Subcommands.Add(Show(options));
        command.Subcommands.Add(RunsCompareCommand.Build(options));
        return command;
    }

    private static Command List(ClientOptions options)
    {
        var experiment = new Option<string>("--experiment") { Description = "The experiment's name", Required = true };
        var filter = new Option<string?>("--filter") { Description = "MLflow run filter, e.g. \"metrics.acc > 0.5 and params.model = 'cnn'\"" };
        var orderBy = new Option<string[]>("--order-by") { Description = "Sort key, e.g. \"metrics.acc DESC\"; repeat for more", DefaultValueFactory = _ => [] };
        var max = new Option<int?>("--max") { Description = "At most this many runs" };
        var command = new Command("list", "List the runs of an experiment") { experiment, filter, orderBy, max };
        command.SetClientAction(options, async (cli, ct) =>
        {
            var name = cli.Get(experiment)!;
            var found = await cli.Client.GetExperimentByNameAsync(name, ct) ?? throw new CliException($"Experiment '{name}' does not exist.");
            var response = await cli.Client.SearchRunsAsync([found.ExperimentId], cli.Get(filter), cli.Get(orderBy), cli.Get(max), cancellationToken: ct);
            if (cli.Json)
            {
                cli.WriteJson(response, SextantJsonContext.Default.SearchRunsResponse);
                return;
            }
            var table = new Table().AddColumns("Run ID", "Name", "Status", "Started", "Duration", "Metrics");
            foreach (var run in response.Runs)
            {
                var metrics = run.Data.Metrics.OrderBy(m => m.Key, StringComparer.Ordinal).Take(ListedMetrics)
                    .Select(m => $"{m.Key}={CliOutput.Number(m.Value)}");
                var more = run.Data.Metrics.Count > ListedMetrics ? $" (+{run.Data.Metrics.Count - ListedMetrics})" : "";
                table.AddRow(Markup.Escape(run.Info.RunId), Markup.Escape(run.Info.RunName), CliOutput.Status(run.Info.Status),
                    CliOutput.Time(run.Info.StartTime), CliOutput.Duration(run.Info.StartTime, run.Info.EndTime), Markup.Escape(string.Join(", ", metrics) + more));
            }
            cli.Console.Write(table);
            if (response.NextPageToken is not null)
            {
                cli.Console.MarkupLine("[dim]More runs match; raise --max to see them.[/]");
            }
        });
        return command;
    }

    private static Command Show(ClientOptions options)
    {
        var runId = new Argument<string>("run-id") { Description = "The run's id" };
        var command = new Command("show", "Show a run: info, params, last metric values and tags") { runId };
        command.SetClientAction(options, async (cli, ct) =>
        {
            var run = await cli.Client.GetRunAsync(cli.Get(runId), ct);
            if (cli.Json)
            {
                cli.WriteJson(new RunResponse(run), SextantJsonContext.Default.RunResponse);
                return;
            }
            var info = run.Info;
            var grid = new Grid().AddColumn(new GridColumn().NoWrap()).AddColumn();
            grid.AddRow("[bold]Run[/]", Markup.Escape($"{info.RunName} ({info.RunId})"));
            grid.AddRow("[bold]Experiment[/]", Markup.Escape(info.ExperimentId));
            grid.AddRow("[bold]Status[/]", CliOutput.Status(info.Status));
            grid.AddRow("[bold]User[/]", Markup.Escape(info.UserId));
            grid.AddRow("[bold]Started[/]", CliOutput.Time(info.StartTime));
            grid.AddRow("[bold]Ended[/]", $"{CliOutput.Time(info.EndTime)} (duration {CliOutput.Duration(info.StartTime, info.EndTime)})");
            grid.AddRow("[bold]Artifacts[/]", Markup.Escape(info.ArtifactUri));
            cli.Console.Write(grid);
            cli.Console.Write(KeyValueTable("Params", "Value", run.Data.Params));
            var metrics = new Table { Title = new TableTitle("Metrics") }.AddColumns("Key", "Last value", "Step", "Logged");
            foreach (var m in run.Data.Metrics.OrderBy(m => m.Key, StringComparer.Ordinal))
            {
                metrics.AddRow(Markup.Escape(m.Key), CliOutput.Number(m.Value), m.Step.ToString(System.Globalization.CultureInfo.InvariantCulture), CliOutput.Time(m.Timestamp));
            }
            cli.Console.Write(metrics);
            cli.Console.Write(KeyValueTable("Tags", "Value", run.Data.Tags));
        });
        return command;
    }

    private static Table KeyValueTable(string title, string valueHeader, IEnumerable<KeyValue> items)
    {
        var table = new Table { Title = new TableTitle(title) }.AddColumns("Key", valueHeader);
        foreach (var item in items.OrderBy(i => i.Key, StringComparer.Ordinal))
        {
            table.AddRow(Markup.Escape(item.Key), Markup.Escape(item.Value));
        }
        return table;
    }
}
