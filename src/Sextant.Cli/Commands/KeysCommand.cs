using System.CommandLine;
using Sextant.Contracts;
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
        var command = new Command("create", "Create an API key and print its secret once") { name, role, project };
        command.SetClientAction(options, async (cli, ct) =>
        {
            var created = await cli.Client.CreateKeyAsync(cli.Get(name)!, cli.Get(role)!, cli.Get(project), ct);
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
