using System.CommandLine;
using Sextant.Contracts;
using Spectre.Console;

namespace Sextant.Cli.Commands;

/// <summary>`sextant experiments list|create|delete`.</summary>
internal static class ExperimentsCommand
{
    public static Command Build()
    {
        var options = new ClientOptions();
        var command = options.CreateGroup("experiments", "List, create and delete experiments");
        command.Subcommands.Add(List(options));
        command.Subcommands.Add(Create(options));
        command.Subcommands.Add(Delete(options));
        return command;
    }

    private static Command List(ClientOptions options)
    {
        var filter = new Option<string?>("--filter") { Description = "MLflow experiment filter, e.g. \"name LIKE 'nlp-%'\"" };
        var max = new Option<int?>("--max") { Description = "At most this many experiments" };
        var command = new Command("list", "List active experiments") { filter, max };
        command.SetClientAction(options, async (cli, ct) =>
        {
            var response = await cli.Client.SearchExperimentsAsync(cli.Get(filter), cli.Get(max), cancellationToken: ct);
            if (cli.Json)
            {
                cli.WriteJson(response, SextantJsonContext.Default.SearchExperimentsResponse);
                return;
            }
            var table = new Table().AddColumns("ID", "Name", "Created", "Last update");
            foreach (var e in response.Experiments)
            {
                table.AddRow(Markup.Escape(e.ExperimentId), Markup.Escape(e.Name), CliOutput.Time(e.CreationTime), CliOutput.Time(e.LastUpdateTime));
            }
            cli.Console.Write(table);
            if (response.NextPageToken is not null)
            {
                cli.Console.MarkupLine("[dim]More experiments exist; raise --max to see them.[/]");
            }
        });
        return command;
    }

    private static Command Create(ClientOptions options)
    {
        var name = new Argument<string>("name") { Description = "The experiment's name" };
        var command = new Command("create", "Create an experiment") { name };
        command.SetClientAction(options, async (cli, ct) =>
        {
            var experiment = await cli.Client.CreateExperimentAsync(cli.Get(name), cancellationToken: ct);
            if (cli.Json)
            {
                cli.WriteJson(new ExperimentResponse(experiment), SextantJsonContext.Default.ExperimentResponse);
                return;
            }
            cli.Console.MarkupLine($"Created experiment [bold]{Markup.Escape(experiment.Name)}[/] (id {Markup.Escape(experiment.ExperimentId)}).");
        });
        return command;
    }

    private static Command Delete(ClientOptions options)
    {
        var id = new Argument<string>("id") { Description = "The experiment's id" };
        var command = new Command("delete", "Delete an experiment and its runs (restorable on the server)") { id };
        command.SetClientAction(options, async (cli, ct) =>
        {
            await cli.Client.DeleteExperimentAsync(cli.Get(id), ct);
            if (cli.Json)
            {
                cli.WriteJson(new EmptyResponse(), SextantJsonContext.Default.EmptyResponse);
                return;
            }
            cli.Console.MarkupLine($"Deleted experiment {Markup.Escape(cli.Get(id))}.");
        });
        return command;
    }
}
