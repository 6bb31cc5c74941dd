using System.CommandLine;
using Sextant.Contracts;
using Sextant.Core.Projects;
using Sextant.Core.Storage;
using Spectre.Console;

namespace Sextant.Cli.Commands;

/// <summary>`sextant keys create|list|revoke`: API keys of the caller's project (project admins).</summary>
internal static class KeysCommand
{
    public static Command Build()
    {
        var options = new ClientOptions();
        var command = options.CreateGroup("keys", "Create, list and revoke API keys");
        command.Subcommands.Add(Create(options));
        command.Subcommands.Add(List(options));
        command.Subcommands.Add(Revoke(options));
        return command;
    }

    private static Command Create(ClientOptions options)
    {
        var name = new Option<string>("--name") { Description = "A name to recognise the key by", Required = true };
        var role = new Option<string>("--role") { Description = "viewer, editor or admin", Required = true };
        role.AcceptOnlyFromAmong("viewer", "editor", "admin");
        var project = new Option<string?>("--project") { Description = "Project of the key (default: the caller's; another one needs a server admin)" };
        var data = new Option<string?>("--data") { Description = "Create the key directly in this data directory's database, without a server (bootstrap)" };
        var db = new Option<string?>("--db") { Description = "Create the key directly in this database (sqlite:///... or postgresql://...), without a server" };
        var command = new Command("create", "Create an API key and print its secret once") { name, role, project, data, db };
        command.SetClientAction(options, async (cli, ct) =>
        {
            var offline = cli.Get(db) ?? (cli.Get(data) is { } folder ? "sqlite:///" + Path.GetFullPath(Path.Combine(folder, "sextant.db")).TrimStart('/') : null);
            var created = offline is null
                ? await cli.Client.CreateKeyAsync(cli.Get(name)!, cli.Get(role)!, cli.Get(project), ct)
                : await CreateOfflineAsync(offline, cli.Get(name)!, cli.Get(role)!, cli.Get(project), ct);
            if (cli.Json)
            {
                cli.WriteJson(created, SextantJsonContext.Default.CreateKeyResponse);
                await Console.Error.WriteLineAsync("The secret will not be shown again.");
                return;
            }
            var key = created.Key;
            cli.Console.MarkupLine($"Created key [bold]{Markup.Escape(key.Name)}[/] (id {Markup.Escape(key.KeyId)}), role {Markup.Escape(key.Role)} in project {Markup.Escape(key.Project)}.");
            cli.Console.MarkupLine($"Secret: {Markup.Escape(created.Secret)}");
            cli.Console.MarkupLine("[yellow]Store this secret now: it will not be shown again.[/]");
        });
        return command;
    }

    /// <summary>
    /// The first key of a server that will listen beyond loopback has to come from somewhere: it is written
    /// straight into the database, as the operator who owns the data directory.
    /// </summary>
    private static async Task<CreateKeyResponse> CreateOfflineAsync(string databaseUri, string name, string role, string? project, CancellationToken cancellationToken)
    {
        await using var database = new SextantDatabase(DatabaseUri.Parse(databaseUri));
        await database.MigrateAsync(cancellationToken);
        var projects = new ProjectService(database);
        await projects.EnsureDefaultProjectAsync(cancellationToken);
        var (projectId, _) = await projects.GetAsync(project ?? ProjectService.DefaultProject, cancellationToken);
        return await projects.CreateKeyAsync(projectId, name, role, cancellationToken);
    }

    private static Command List(ClientOptions options)
    {
        var command = new Command("list", "List the API keys of the project");
        command.SetClientAction(options, async (cli, ct) =>
        {
            var keys = await cli.Client.ListKeysAsync(ct);
            if (cli.Json)
            {
                cli.WriteJson(new KeysResponse(keys), SextantJsonContext.Default.KeysResponse);
                return;
            }
            var table = new Table().AddColumns("Key ID", "Name", "Project", "Role", "Prefix", "Created", "Revoked");
            foreach (var k in keys)
            {
                table.AddRow(Markup.Escape(k.KeyId), Markup.Escape(k.Name), Markup.Escape(k.Project), Markup.Escape(k.Role), Markup.Escape(k.Prefix),
                    CliOutput.Time(k.CreatedAt), k.RevokedAt is null ? "-" : $"[red]{CliOutput.Time(k.RevokedAt)}[/]");
            }
            cli.Console.Write(table);
        });
        return command;
    }

    private static Command Revoke(ClientOptions options)
    {
        var keyId = new Argument<string>("key-id") { Description = "The key's id (see keys list)" };
        var command = new Command("revoke", "Revoke an API key: its secret stops working at once") { keyId };
        command.SetClientAction(options, async (cli, ct) =>
        {
            await cli.Client.RevokeKeyAsync(cli.Get(keyId), ct);
            if (cli.Json)
            {
                cli.WriteJson(new EmptyResponse(), SextantJsonContext.Default.EmptyResponse);
                return;
            }
            cli.Console.MarkupLine($"Revoked key {Markup.Escape(cli.Get(keyId))}.");
        });
        return command;
    }
}
