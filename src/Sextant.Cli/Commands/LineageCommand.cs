using System.CommandLine;
using Sextant.Contracts;
using Spectre.Console;

namespace Sextant.Cli.Commands;

/// <summary>`sextant lineage URI`: where a model, run or dataset version came from (or what came from it), as a tree.</summary>
internal static class LineageCommand
{
    public static Command Build()
    {
        var options = new ClientOptions();
        var uri = new Argument<string>("uri") { Description = "models:/name@alias, models:/name/3, runs:/RUN_ID or datasets:/name/digest" };
        var direction = new Option<string>("--direction") { Description = "up (where it came from), down (what came from it) or both", DefaultValueFactory = _ => "up" };
        direction.AcceptOnlyFromAmong("up", "down", "both");
        var depth = new Option<int>("--depth") { Description = "How many edges to follow (1-10)", DefaultValueFactory = _ => 5 };
        var command = new Command("lineage", "Show the lineage of a model version, run or dataset version") { uri, direction, depth };
        options.AddTo(command);
        command.SetClientAction(options, async (cli, ct) =>
        {
            var graph = await cli.Client.GetLineageAsync(cli.Get(uri), cli.Get(direction)!, cli.Get(depth), ct);
            if (cli.Json)
            {
                cli.WriteJson(graph, SextantJsonContext.Default.LineageResponse);
                return;
            }
            var nodes = graph.Nodes.ToDictionary(n => n.Uri);
            var upward = cli.Get(direction) != "down";
            var tree = new Tree(Label(nodes[graph.Root]));
            var seen = new HashSet<string> { graph.Root };
            Grow(tree.AddNode, graph.Root);
            cli.Console.Write(tree);

            void Grow(Func<string, TreeNode> add, string from)
            {
                var next = graph.Edges
                    .Where(e => upward ? e.To == from : e.From == from)
                    .Select(e => (Edge: e, Other: upward ? e.From : e.To))
                    .OrderBy(x => x.Other, StringComparer.Ordinal);
                foreach (var (edge, other) in next)
                {
                    var verb = (upward, edge.Kind) switch
                    {
                        (true, "produced") => "produced by",
                        (true, _) => "read",
                        (false, "produced") => "produced",
                        _ => "read by",
                    };
                    var child = add($"[dim]{verb}[/] {Label(nodes[other])}");
                    if (seen.Add(other))
                    {
                        Grow(child.AddNode, other);
                    }
                }
            }
        });
        return command;
    }

    private static string Label(LineageNode node) => $"{Markup.Escape(node.Label)} [dim]{Markup.Escape(node.Uri)}[/]";
}
