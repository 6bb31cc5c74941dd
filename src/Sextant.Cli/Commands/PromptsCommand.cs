using System.CommandLine;
using System.Text.Json;
using Sextant.Client;
using Sextant.Contracts;
using Spectre.Console;

namespace Sextant.Cli.Commands;

/// <summary>`sextant prompts list|show|push|pull|label|render|diff|history`: the prompt registry, and prompt files kept in git.</summary>
internal static class PromptsCommand
{
    public static Command Build()
    {
        var options = new ClientOptions();
        var command = new Command("prompts", "Prompt templates: versions, labels (deployments), rendering, and files in a repository");
        command.Subcommands.Add(List(options));
        command.Subcommands.Add(Show(options));
        command.Subcommands.Add(Push(options));
        command.Subcommands.Add(Pull(options));
        command.Subcommands.Add(Label(options));
        command.Subcommands.Add(Render(options));
        command.Subcommands.Add(Diff(options));
        command.Subcommands.Add(History(options));
        options.AddTo(command);
        return command;
    }

    private static readonly Argument<string> NameArgument = new("name") { Description = "The prompt's name, folders included (support/answer)" };

    private static Command List(ClientOptions options)
    {
        var prefix = new Option<string?>("--prefix") { Description = "Only prompts under this folder (support/)" };
        var command = new Command("list", "List prompts with their latest version and labels") { prefix };
        command.SetClientAction(options, async (cli, ct) =>
        {
            var prompts = new List<PromptSummary>();
            string? token = null;
            do
            {
                var page = await cli.Client.ListPromptsAsync(cli.Get(prefix), 1000, token, ct);
                prompts.AddRange(page.Prompts);
                token = page.NextPageToken;
            }
            while (token is not null);
            if (cli.Json)
            {
                cli.WriteJson(new PromptsResponse(prompts), SextantJsonContext.Default.PromptsResponse);
                return;
            }
            var table = new Table().AddColumns("Name", "Type", "Latest", "Labels", "Tags");
            foreach (var p in prompts)
            {
                table.AddRow(Markup.Escape(p.Name), p.Type, p.LatestVersion.ToString(System.Globalization.CultureInfo.InvariantCulture),
                    Markup.Escape(string.Join(", ", p.Labels.Select(l => $"{l.Key}={l.Value}"))), Markup.Escape(string.Join(", ", p.Tags)));
            }
            cli.Console.Write(table);
        });
        return command;
    }

    private static Command Show(ClientOptions options)
    {
        var label = new Option<string?>("--label") { Description = "The label to show (default production)" };
        var version = new Option<int?>("--version") { Description = "A version number instead of a label" };
        var command = new Command("show", "Show a prompt version: template, config, variables, labels") { NameArgument, label, version };
        command.SetClientAction(options, async (cli, ct) =>
        {
            var prompt = await cli.Client.GetPromptAsync(cli.Get(NameArgument), cli.Get(label), cli.Get(version), cancellationToken: ct);
            if (cli.Json)
            {
                cli.WriteJson(prompt, SextantJsonContext.Default.PromptVersion);
                return;
            }
            cli.Console.MarkupLine($"[bold]{Markup.Escape(prompt.Name)}[/] version {prompt.Version} ({prompt.Type}), labels: {Markup.Escape(string.Join(", ", prompt.Labels))}");
            cli.Console.MarkupLine($"variables: {Markup.Escape(string.Join(", ", prompt.Variables))}");
            cli.Console.WriteLine(PromptFiles.Write(prompt, out _));
        });
        return command;
    }

    private static Command Push(ClientOptions options)
    {
        var folder = new Argument<string>("folder") { Description = "The folder of prompt files (NAME.yaml or NAME.md, in subfolders for NAME's folders)", DefaultValueFactory = _ => "prompts" };
        var message = new Option<string?>("--message", "-m") { Description = "The commit message of the versions made (default: the file's message, else 'pushed from FILE')" };
        var label = new Option<string[]>("--label") { Description = "Labels to move to every version made (besides the files' own)", AllowMultipleArgumentsPerToken = true };
        var command = new Command("push", "Make a new version of every prompt whose file differs from its latest version") { folder, message, label };
        command.SetClientAction(options, async (cli, ct) =>
        {
            var root = cli.Get(folder)!;
            if (!Directory.Exists(root))
            {
                throw new CliException($"The folder '{root}' does not exist.");
            }
            // Every file is read and checked before anything is sent: a mistake in one pushes none.
            var files = PromptFiles.Find(root).Select(path => PromptFiles.Read(root, path)).ToList();
            var duplicate = files.GroupBy(f => f.Name).FirstOrDefault(g => g.Count() > 1);
            if (duplicate is not null)
            {
                throw new CliException($"Two files name the prompt '{duplicate.Key}': {string.Join(" and ", duplicate.Select(f => f.Path))}.");
            }
            int made = 0, unchanged = 0;
            foreach (var file in files)
            {
                PromptVersion? latest = null;
                try
                {
                    latest = await cli.Client.GetPromptAsync(file.Name, "latest", cancellationToken: ct);
                    cli.Client.ClearPromptCache();
                }
                catch (SextantApiException e) when ((int)e.StatusCode == 404)
                {
                }
                var labels = (file.Labels ?? []).Concat(cli.Get(label) ?? []).Distinct().ToList();
                if (latest is not null && PromptFiles.Same(file, latest) && labels.All(l => latest.Labels.Contains(l)))
                {
                    unchanged++;
                    continue;
                }
                if (latest is not null && PromptFiles.Same(file, latest))
                {
                    // Only labels to move: no new version.
                    foreach (var l in labels.Where(l => !latest.Labels.Contains(l)))
                    {
                        await cli.Client.SetPromptLabelAsync(file.Name, l, latest.Version, ct);
                    }
                    cli.Console.MarkupLine($"[bold]{Markup.Escape(file.Name)}[/]: labels {Markup.Escape(string.Join(", ", labels))} -> version {latest.Version}");
                    continue;
                }
                var created = await cli.Client.CreatePromptVersionAsync(file.Name,
                    new CreatePromptVersionRequest(file.Type, file.Template, file.Config, file.Tags, cli.Get(message) ?? file.Message ?? $"pushed from {file.Path}", labels), ct);
                made++;
                cli.Console.MarkupLine($"[bold]{Markup.Escape(file.Name)}[/]: version {created.Version}{(labels.Count > 0 ? $" ({Markup.Escape(string.Join(", ", labels))})" : "")}");
            }
            cli.Console.MarkupLine($"{made} new version(s), {unchanged} unchanged, from {files.Count} file(s).");
        });
        return command;
    }

    private static Command Pull(ClientOptions options)
    {
        var folder = new Argument<string>("folder") { Description = "Where to write the files", DefaultValueFactory = _ => "prompts" };
        var prefix = new Option<string?>("--prefix") { Description = "Only prompts under this folder" };
        var label = new Option<string>("--label") { Description = "Which version of each prompt to write", DefaultValueFactory = _ => "latest" };
        var command = new Command("pull", "Write prompts as files (chat: NAME.yaml, text: NAME.md), for review in git") { folder, prefix, label };
        command.SetClientAction(options, async (cli, ct) =>
        {
            var root = cli.Get(folder)!;
            string? token = null;
            var written = 0;
            do
            {
                var page = await cli.Client.ListPromptsAsync(cli.Get(prefix), 1000, token, ct);
                foreach (var summary in page.Prompts)
                {
                    PromptVersion prompt;
                    try
                    {
                        prompt = await cli.Client.GetPromptAsync(summary.Name, cli.Get(label), cancellationToken: ct);
                    }
                    catch (SextantApiException e) when ((int)e.StatusCode == 404)
                    {
                        continue;
                    }
                    var text = PromptFiles.Write(prompt, out var extension);
                    var path = Path.Combine(root, summary.Name.Replace('/', Path.DirectorySeparatorChar) + extension);
                    Directory.CreateDirectory(Path.GetDirectoryName(path)!);
                    await File.WriteAllTextAsync(path, text, ct);
                    written++;
                }
                token = page.NextPageToken;
            }
            while (token is not null);
            cli.Console.MarkupLine($"{written} prompt file(s) written to {Markup.Escape(root)}.");
        });
        return command;
    }

    private static Command Label(ClientOptions options)
    {
        var label = new Argument<string>("label") { Description = "production, staging or any label" };
        var version = new Argument<int>("version") { Description = "The version the label points at from now on" };
        var command = new Command("label", "Point a label at a version: deploy or roll back (production needs an admin key)") { NameArgument, label, version };
        command.SetClientAction(options, async (cli, ct) =>
        {
            await cli.Client.SetPromptLabelAsync(cli.Get(NameArgument), cli.Get(label)!, cli.Get(version), ct);
            cli.Console.MarkupLine($"[bold]{Markup.Escape(cli.Get(NameArgument))}[/]: {Markup.Escape(cli.Get(label)!)} -> version {cli.Get(version)}");
        });
        return command;
    }

    private static Command Render(ClientOptions options)
    {
        var label = new Option<string?>("--label") { Description = "The label to render (default production)" };
        var version = new Option<int?>("--version") { Description = "A version number instead of a label" };
        var variables = new Option<string[]>("--var") { Description = "A variable as NAME=VALUE (repeat it)", AllowMultipleArgumentsPerToken = true };
        var command = new Command("render", "Render a prompt version with variables") { NameArgument, label, version, variables };
        command.SetClientAction(options, async (cli, ct) =>
        {
            var given = new Dictionary<string, string>();
            foreach (var pair in cli.Get(variables) ?? [])
            {
                var equals = pair.IndexOf('=', StringComparison.Ordinal);
                if (equals <= 0)
                {
                    throw new CliException($"--var takes NAME=VALUE; got '{pair}'.");
                }
                given[pair[..equals]] = pair[(equals + 1)..];
            }
            var prompt = await cli.Client.GetPromptAsync(cli.Get(NameArgument), cli.Get(label), cli.Get(version), cancellationToken: ct);
            RenderedPrompt rendered;
            try
            {
                rendered = SextantClient.RenderPrompt(prompt, given);
            }
            catch (PromptTemplate.MissingVariablesException e)
            {
                throw new CliException(e.Message);
            }
            if (cli.Json)
            {
                cli.WriteJson(rendered, SextantJsonContext.Default.RenderedPrompt);
                return;
            }
            if (rendered.Text is { } text)
            {
                cli.Console.WriteLine(text);
            }
            foreach (var m in rendered.Messages ?? [])
            {
                cli.Console.MarkupLine($"[bold]{Markup.Escape(m.Role)}:[/] {Markup.Escape(m.Content)}");
            }
            if (rendered.UnusedVariables.Count > 0)
            {
                cli.Console.MarkupLine($"[yellow]unused variables: {Markup.Escape(string.Join(", ", rendered.UnusedVariables))}[/]");
            }
        });
        return command;
    }

    private static Command Diff(ClientOptions options)
    {
        var from = new Argument<int>("from") { Description = "The older version" };
        var to = new Argument<int>("to") { Description = "The newer version" };
        var command = new Command("diff", "What changed between two versions: template lines and config keys") { NameArgument, from, to };
        command.SetClientAction(options, async (cli, ct) =>
        {
            var diff = await cli.Client.DiffPromptVersionsAsync(cli.Get(NameArgument), cli.Get(from), cli.Get(to), ct);
            if (cli.Json)
            {
                cli.WriteJson(diff, SextantJsonContext.Default.PromptDiff);
                return;
            }
            foreach (var line in diff.Template)
            {
                cli.Console.MarkupLine(line.Kind switch
                {
                    "added" => $"[green]+ {Markup.Escape(line.Text)}[/]",
                    "removed" => $"[red]- {Markup.Escape(line.Text)}[/]",
                    _ => $"  {Markup.Escape(line.Text)}",
                });
            }
            foreach (var change in diff.Config)
            {
                cli.Console.MarkupLine($"config {Markup.Escape(change.Key)}: {Markup.Escape(change.Old?.GetRawText() ?? "(none)")} -> {Markup.Escape(change.New?.GetRawText() ?? "(none)")}");
            }
        });
        return command;
    }

    private static Command History(ClientOptions options)
    {
        var command = new Command("history", "Every label move of a prompt: deployments and roll-backs, with who made them") { NameArgument };
        command.SetClientAction(options, async (cli, ct) =>
        {
            var history = await cli.Client.GetPromptLabelHistoryAsync(cli.Get(NameArgument), ct);
            if (cli.Json)
            {
                cli.WriteJson(history, SextantJsonContext.Default.PromptLabelHistoryResponse);
                return;
            }
            var table = new Table().AddColumns("When (UTC)", "Label", "From", "To", "By");
            foreach (var move in history.Moves)
            {
                table.AddRow(DateTimeOffset.FromUnixTimeMilliseconds(move.Time).ToString("yyyy-MM-dd HH:mm:ss", System.Globalization.CultureInfo.InvariantCulture),
                    Markup.Escape(move.Label), move.FromVersion?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "-",
                    move.ToVersion?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "(removed)", Markup.Escape(move.Actor ?? ""));
            }
            cli.Console.Write(table);
        });
        return command;
    }
}
