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
        var uri = new Argument<string>("uri") { Description = "models:/name@alias, models:/name/3, runs:/RUN_ID, datasets:/name@3 or datasets:/name/digest" };
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
            // A dataset version says what it held: its first files, their number and size.
            var contents = new Dictionary<string, string>();
            foreach (var node in graph.Nodes.Where(n => n.Kind == "dataset_version"))
            {
                var (name, version) = DataCommand.Reference(node.Uri["datasets:/".Length..]);
                var info = await cli.Client.GetDatasetVersionAsync(name, version, ct);
                var files = await cli.Client.GetDatasetManifestAsync(name, version, ct);
                contents[node.Uri] = $"[dim]whose files were[/] {Markup.Escape(string.Join(", ", files.Take(5).Select(f => f.Path)))}{(files.Count > 5 ? ", ..." : "")} [dim]({info.FileCount:N0} files, {CliOutput.Bytes(info.TotalSize)}, sha256 {info.Digest[..12]})[/]";
            }
            var tree = new Tree(Label(nodes[graph.Root]));
            if (contents.TryGetValue(graph.Root, out var rootFiles))
            {
                tree.AddNode(rootFiles);
            }
            var way = cli.Get(direction)!;
            if (way is "up" or "both")
            {
                var branch = way == "both" ? tree.AddNode("[bold]came from[/]") : null;
                Grow(branch is null ? tree.AddNode : branch.AddNode, graph.Root, upward: true, [graph.Root]);
            }
            if (way is "down" or "both")
            {
                var branch = way == "both" ? tree.AddNode("[bold]led to[/]") : null;
                Grow(branch is null ? tree.AddNode : branch.AddNode, graph.Root, upward: false, [graph.Root]);
            }
            cli.Console.Write(tree);
            if (graph.Truncated)
            {
                cli.Console.MarkupLine("[yellow]The graph was cut at the server's node limit; lower --depth or start nearer.[/]");
            }

            void Grow(Func<string, TreeNode> add, string from, bool upward, HashSet<string> seen)
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
                    if (contents.TryGetValue(other, out var files))
                    {
                        child.AddNode(files);
                    }
                    if (seen.Add(other))
                    {
                        Grow(child.AddNode, other, upward, seen);
                    }
                }
            }
        });
        return command;
    }

    private static string Label(LineageNode node) => $"{Markup.Escape(node.Label)} [dim]{Markup.Escape(node.Uri)}[/]";
}
