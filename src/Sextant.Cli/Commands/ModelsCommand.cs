using System.CommandLine;
using Sextant.Contracts;
using Spectre.Console;

namespace Sextant.Cli.Commands;

/// <summary>`sextant models list|show|register|alias|resolve|download`: the model registry.</summary>
internal static class ModelsCommand
{
    public static Command Build()
    {
        var options = new ClientOptions();
        var command = options.CreateGroup("models", "The model registry: registered models, versions, aliases and models:/ URIs");
        command.Subcommands.Add(List(options));
        command.Subcommands.Add(Show(options));
        command.Subcommands.Add(Register(options));
        command.Subcommands.Add(Alias(options));
        command.Subcommands.Add(Resolve(options));
        command.Subcommands.Add(Download(options));
        return command;
    }

    private static Command List(ClientOptions options)
    {
        var filter = new Option<string?>("--filter") { Description = "MLflow registry filter, e.g. \"name LIKE 'churn%'\" or \"tags.team = 'risk'\"" };
        var max = new Option<int?>("--max") { Description = "At most this many models" };
        var command = new Command("list", "List registered models") { filter, max };
        command.SetClientAction(options, async (cli, ct) =>
        {
            var response = await cli.Client.SearchRegisteredModelsAsync(cli.Get(filter), cli.Get(max), cancellationToken: ct);
            if (cli.Json)
            {
                cli.WriteJson(response, SextantJsonContext.Default.SearchRegisteredModelsResponse);
                return;
            }
            var table = new Table().AddColumns("Name", "Latest version", "Aliases", "Updated", "Description");
            foreach (var m in response.RegisteredModels)
            {
                table.AddRow(Markup.Escape(m.Name), Markup.Escape(m.LatestVersions.Count > 0 ? m.LatestVersions[0].Version : "-"),
                    Markup.Escape(string.Join(", ", m.Aliases.Select(a => $"{a.Alias}=v{a.Version}"))), CliOutput.Time(m.LastUpdatedTimestamp), Markup.Escape(m.Description));
            }
            cli.Console.Write(table);
            if (response.NextPageToken is not null)
            {
                cli.Console.MarkupLine("[dim]More models exist; raise --max to see them.[/]");
            }
        });
        return command;
    }

    private static Command Show(ClientOptions options)
    {
        var name = new Argument<string>("name") { Description = "The registered model" };
        var command = new Command("show", "Show a registered model and its versions") { name };
        command.SetClientAction(options, async (cli, ct) =>
        {
            var model = await cli.Client.GetRegisteredModelAsync(cli.Get(name), ct)
                ?? throw new CliException($"No registered model named '{cli.Get(name)}'.");
            var versions = await cli.Client.SearchModelVersionsAsync($"name = '{model.Name.Replace("'", "''", StringComparison.Ordinal)}'", cancellationToken: ct);
            if (cli.Json)
            {
                cli.WriteJson(versions, SextantJsonContext.Default.SearchModelVersionsResponse);
                return;
            }
            cli.Console.MarkupLine($"[bold]{Markup.Escape(model.Name)}[/] {Markup.Escape(model.Description)}");
            foreach (var tag in model.Tags)
            {
                cli.Console.MarkupLine($"  tag {Markup.Escape(tag.Key)} = {Markup.Escape(tag.Value)}");
            }
            var table = new Table().AddColumns("Version", "Aliases", "Flavor", "Status", "Run", "Source", "Created");
            foreach (var v in versions.ModelVersions)
            {
                table.AddRow(Markup.Escape(v.Version), Markup.Escape(string.Join(", ", v.Aliases)), Markup.Escape(v.Flavor ?? "opaque"), Markup.Escape(v.Status), Markup.Escape(v.RunId ?? "-"),
                    Markup.Escape(v.Source), CliOutput.Time(v.CreationTimestamp));
            }
            cli.Console.Write(table);
        });
        return command;
    }

    private static Command Register(ClientOptions options)
    {
        var name = new Argument<string>("name") { Description = "The registered model (created when missing)" };
        var source = new Option<string>("--source") { Description = "Where the model files are, e.g. runs:/RUN_ID/model", Required = true };
        var runId = new Option<string?>("--run-id") { Description = "The run that produced the model (taken from a runs:/ source when omitted)" };
        var description = new Option<string?>("--description") { Description = "A description of this version" };
        var flavor = new Option<string?>("--flavor") { Description = "onnx, mlnet or opaque; the files must then be of that flavor (detected when omitted)" };
        var command = new Command("register", "Register a new version of a model") { name, source, runId, description, flavor };
        command.SetClientAction(options, async (cli, ct) =>
        {
            var version = await cli.Client.RegisterModelAsync(cli.Get(name), cli.Get(source)!, cli.Get(runId), cli.Get(description), flavor: cli.Get(flavor), cancellationToken: ct);
            if (cli.Json)
            {
                cli.WriteJson(new ModelVersionResponse(version), SextantJsonContext.Default.ModelVersionResponse);
                return;
            }
            cli.Console.MarkupLine($"Registered [bold]{Markup.Escape(version.Name)}[/] version {Markup.Escape(version.Version)} (models:/{Markup.Escape(version.Name)}/{Markup.Escape(version.Version)}), flavor {Markup.Escape(version.Flavor ?? "opaque")}.");
            if (version.Signature is { } signature)
            {
                cli.Console.MarkupLine($"  inputs:  {Markup.Escape(Specs(signature.Inputs))}");
                cli.Console.MarkupLine($"  outputs: {Markup.Escape(Specs(signature.Outputs))}");
            }
        });
        return command;
    }

    private static string Specs(IReadOnlyList<TensorSpec> specs) =>
        string.Join(", ", specs.Select(s => $"{s.Name}: {s.Type}{(s.Shape.Count == 0 ? "" : "[" + string.Join(",", s.Shape.Select(d => d < 0 ? "?" : d.ToString(System.Globalization.CultureInfo.InvariantCulture))) + "]")}"));

    private static Command Alias(ClientOptions options)
    {
        var name = new Argument<string>("name") { Description = "The registered model" };
        var alias = new Argument<string>("alias") { Description = "The alias, e.g. champion" };
        var version = new Argument<string?>("version") { Description = "The version to point at; omit with --delete", Arity = ArgumentArity.ZeroOrOne };
        var delete = new Option<bool>("--delete") { Description = "Delete the alias instead" };
        var command = new Command("alias", "Point an alias at a version, move it, or delete it") { name, alias, version, delete };
        command.SetClientAction(options, async (cli, ct) =>
        {
            if (cli.Get(delete))
            {
                await cli.Client.DeleteModelAliasAsync(cli.Get(name), cli.Get(alias), ct);
                cli.Console.MarkupLine($"Deleted alias [bold]{Markup.Escape(cli.Get(alias))}[/] of {Markup.Escape(cli.Get(name))}.");
                return;
            }
            var target = cli.Get(version) ?? throw new CliException("Give the version the alias points at, or --delete.");
            await cli.Client.SetModelAliasAsync(cli.Get(name), cli.Get(alias), target, ct);
            cli.Console.MarkupLine($"[bold]{Markup.Escape(cli.Get(name))}@{Markup.Escape(cli.Get(alias))}[/] now points at version {Markup.Escape(target)}.");
        });
        return command;
    }

    private static Command Resolve(ClientOptions options)
    {
        var uri = new Argument<string>("uri") { Description = "models:/name/3, models:/name/latest or models:/name@alias" };
        var command = new Command("resolve", "Show the version a model URI names") { uri };
        command.SetClientAction(options, async (cli, ct) =>
        {
            var version = await cli.Client.ResolveModelAsync(cli.Get(uri), ct);
            if (cli.Json)
            {
                cli.WriteJson(new ModelVersionResponse(version), SextantJsonContext.Default.ModelVersionResponse);
                return;
            }
            cli.Console.MarkupLine($"{Markup.Escape(cli.Get(uri))} is [bold]{Markup.Escape(version.Name)}[/] version {Markup.Escape(version.Version)}, from run {Markup.Escape(version.RunId ?? "-")} ({Markup.Escape(version.Source)}).");
        });
        return command;
    }

    private static Command Download(ClientOptions options)
    {
        var uri = new Argument<string>("uri") { Description = "models:/name/3, models:/name/latest or models:/name@alias" };
        var output = new Option<string>("-o", "--output") { Description = "The folder to write the model's files into", Required = true };
        var command = new Command("download", "Download the files of a registered model version") { uri, output };
        command.SetClientAction(options, async (cli, ct) =>
        {
            var version = await cli.Client.DownloadModelAsync(cli.Get(uri), cli.Get(output)!, ct);
            cli.Console.MarkupLine($"Downloaded [bold]{Markup.Escape(version.Name)}[/] version {Markup.Escape(version.Version)} into {Markup.Escape(Path.GetFullPath(cli.Get(output)!))}.");
        });
        return command;
    }
}
