using System.CommandLine;
using Sextant.Client;

namespace Sextant.Cli.Commands;

/// <summary>The options every client verb takes: which server, which key, and JSON instead of tables.</summary>
internal sealed class ClientOptions
{
    public Option<string> Url { get; } = new("--url")
    {
        Description = "Server address (default: SEXTANT_URL or " + SextantClient.DefaultUrl + ")",
        DefaultValueFactory = _ => Environment.GetEnvironmentVariable("SEXTANT_URL") is { Length: > 0 } url ? url : SextantClient.DefaultUrl,
        Recursive = true,
    };

    public Option<string?> ApiKey { get; } = new("--api-key")
    {
        Description = "API key (default: SEXTANT_API_KEY)",
        DefaultValueFactory = _ => Environment.GetEnvironmentVariable("SEXTANT_API_KEY"),
        Recursive = true,
    };

    public Option<bool> Json { get; } = new("--json")
    {
        Description = "Print the server's JSON response instead of tables",
        Recursive = true,
    };

    /// <summary>A verb group with the client options, which its verbs inherit.</summary>
    public Command CreateGroup(string name, string description)
    {
        var command = new Command(name, description);
        AddTo(command);
        return command;
    }

    /// <summary>Gives a verb that stands alone (not in a group) the client options.</summary>
    public void AddTo(Command command)
    {
        command.Options.Add(Url);
        command.Options.Add(ApiKey);
        command.Options.Add(Json);
    }
}
