using System.CommandLine;
using Sextant.Cli.Commands;

namespace Sextant.Cli;

/// <summary>The `sextant` command: the server and one verb per capability.</summary>
internal static class SextantCli
{
    public static RootCommand Build()
    {
        var root = new RootCommand("Sextant: one platform for the whole life of ML and LLM models.");
        root.Subcommands.Add(ServerCommand.Build());
        root.Subcommands.Add(ExperimentsCommand.Build());
        root.Subcommands.Add(ModelsCommand.Build());
        root.Subcommands.Add(DataCommand.Build());
        root.Subcommands.Add(TracesCommand.Traces());
        root.Subcommands.Add(TracesCommand.Costs());
        root.Subcommands.Add(TracesCommand.Prices());
        root.Subcommands.Add(TracesCommand.Gateway());
        root.Subcommands.Add(PromptsCommand.Build());
        root.Subcommands.Add(EvalCommand.Build());
        root.Subcommands.Add(LineageCommand.Build());
        root.Subcommands.Add(RunsCommand.Build());
        root.Subcommands.Add(ArtifactsCommand.Build());
        root.Subcommands.Add(KeysCommand.Build());
        return root;
    }
}
