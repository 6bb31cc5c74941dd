using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using Sextant.Contracts;
using Spectre.Console;

namespace Sextant.Cli.Commands;

/// <summary>`sextant data add|get|log|diff|list|profile`: versioned datasets.</summary>
internal static class DataCommand
{
    public static Command Build()
    {
        var options = new ClientOptions();
        var command = options.CreateGroup("data", "Versioned datasets: add a file or folder as a version, restore, list, compare");
        command.Subcommands.Add(Add(options));
        command.Subcommands.Add(Get(options));
        command.Subcommands.Add(Log(options));
        command.Subcommands.Add(Diff(options));
        command.Subcommands.Add(List(options));
        command.Subcommands.Add(Profile(options));
        return command;
    }

    /// <summary>NAME or NAME@VERSION (a number, v&lt;N&gt; or latest).</summary>
    internal static (string Name, string Version) Reference(string value)
    {
        var at = value.LastIndexOf('@');
        return at < 0 ? (value, "latest") : (value[..at], value[(at + 1)..].Length == 0 ? throw new CliException($"'{value}' has nothing after '@'; give a version such as {value}3.") : value[(at + 1)..]);
    }

    private static Command Add(ClientOptions options)
    {
        var path = new Argument<string>("path") { Description = "A file or a folder (added recursively)" };
        var name = new Option<string>("--name") { Description = "The dataset (created on its first version)", Required = true };
        var message = new Option<string?>("--message", "-m") { Description = "What changed in this version" };
        var command = new Command("add", "Add a file or folder as a new version of a dataset (nothing is made when the content is unchanged)") { path, name, message };
        command.SetClientAction(options, async (cli, ct) =>
        {
            var clock = Stopwatch.StartNew();
            var result = await cli.Client.AddDatasetAsync(cli.Get(path), cli.Get(name)!, cli.Get(message), ct);
            if (cli.Json)
            {
                cli.WriteJson(new CreateDatasetVersionResponse(result.Version, result.Created), SextantJsonContext.Default.CreateDatasetVersionResponse);
                return;
            }
            var v = result.Version;
            cli.Console.MarkupLine(result.Created
                ? $"Added [bold]{Markup.Escape(v.Name)}@{v.Version}[/] ({Markup.Escape(v.Uri)}): {v.FileCount:N0} files, {CliOutput.Bytes(v.TotalSize)}; uploaded {result.BlobsUploaded:N0} new blobs ({CliOutput.Bytes(result.BytesUploaded)}) in {clock.Elapsed.TotalSeconds:0.0} s."
                : $"Unchanged: {result.Files:N0} files are exactly [bold]{Markup.Escape(v.Name)}@{v.Version}[/]; no version made ({clock.Elapsed.TotalSeconds:0.0} s).");
            foreach (var table in v.Tables)
            {
                cli.Console.MarkupLine($"  table {Markup.Escape(table.Path)} ({table.Format}): {table.Rows:N0} rows, {table.Columns} columns");
            }
        });
        return command;
    }

    private static Command Get(ClientOptions options)
    {
        var reference = new Argument<string>("dataset") { Description = "NAME or NAME@VERSION (a number, v<N> or latest)" };
        var output = new Option<string>("-o", "--output") { Description = "An empty or new folder to restore into", Required = true };
        var command = new Command("get", "Restore a dataset version exactly (every file verified by SHA-256)") { reference, output };
        command.SetClientAction(options, async (cli, ct) =>
        {
            var (name, version) = Reference(cli.Get(reference));
            var clock = Stopwatch.StartNew();
            var restored = await cli.Client.DownloadDatasetAsync(name, version, cli.Get(output)!, ct);
            cli.Console.MarkupLine($"Restored [bold]{Markup.Escape(restored.Name)}@{restored.Version}[/]: {restored.FileCount:N0} files, {CliOutput.Bytes(restored.TotalSize)} into {Markup.Escape(Path.GetFullPath(cli.Get(output)!))} in {clock.Elapsed.TotalSeconds:0.0} s.");
        });
        return command;
    }

    private static Command Log(ClientOptions options)
    {
        var name = new Argument<string>("name") { Description = "The dataset" };
        var max = new Option<int?>("--max") { Description = "At most this many versions (newest first)" };
        var command = new Command("log", "List a dataset's versions, newest first") { name, max };
        command.SetClientAction(options, async (cli, ct) =>
        {
            var response = await cli.Client.ListDatasetVersionsAsync(cli.Get(name), cli.Get(max), cancellationToken: ct);
            if (cli.Json)
            {
                cli.WriteJson(response, SextantJsonContext.Default.DatasetVersionsResponse);
                return;
            }
            var table = new Table().AddColumns("Version", "Created", "Files", "Size", "Digest", "Message");
            foreach (var v in response.Versions)
            {
                table.AddRow(v.Version.ToString(CultureInfo.InvariantCulture), CliOutput.Time(v.CreationTimestamp), v.FileCount.ToString("N0", CultureInfo.InvariantCulture),
                    CliOutput.Bytes(v.TotalSize), v.Digest[..12], Markup.Escape(v.Message));
            }
            cli.Console.Write(table);
        });
        return command;
    }

    private static Command Diff(ClientOptions options)
    {
        var from = new Argument<string>("from") { Description = "NAME@VERSION" };
        var to = new Argument<string>("to") { Description = "NAME@VERSION (or just a version; the latest when omitted)", Arity = ArgumentArity.ZeroOrOne };
        var command = new Command("diff", "Files added, removed and changed between two versions; for tables, schema, rows and statistics") { from, to };
        command.SetClientAction(options, async (cli, ct) =>
        {
            var (name, a) = Reference(cli.Get(from));
            var toText = cli.Get(to);
            var (otherName, b) = toText is null ? (name, "latest") : toText.Contains('@', StringComparison.Ordinal) ? Reference(toText) : (name, toText);
            if (otherName != name)
            {
                throw new CliException($"Both versions must be of one dataset; got '{name}' and '{otherName}'.");
            }
            var diff = await cli.Client.DiffDatasetAsync(name, a, b, ct);
            if (cli.Json)
            {
                cli.WriteJson(diff, SextantJsonContext.Default.DatasetDiff);
                return;
            }
            cli.Console.MarkupLine($"[bold]{Markup.Escape(diff.Name)}[/] {diff.From} -> {diff.To}: {diff.Added.Count} added, {diff.Removed.Count} removed, {diff.Changed.Count} changed");
            foreach (var f in diff.Added)
            {
                cli.Console.MarkupLine($"  [green]+ {Markup.Escape(f.Path)}[/] ({CliOutput.Bytes(f.Size)})");
            }
            foreach (var f in diff.Removed)
            {
                cli.Console.MarkupLine($"  [red]- {Markup.Escape(f.Path)}[/] ({CliOutput.Bytes(f.Size)})");
            }
            foreach (var f in diff.Changed)
            {
                cli.Console.MarkupLine($"  [yellow]~ {Markup.Escape(f.Path)}[/] ({CliOutput.Bytes(f.OldSize)} -> {CliOutput.Bytes(f.NewSize)})");
            }
            foreach (var t in diff.Tables)
            {
                cli.Console.MarkupLine($"[bold]{Markup.Escape(t.Path)}[/]: rows {t.OldRows:N0} -> {t.NewRows:N0}"
                    + (t.AddedColumns.Count > 0 ? $"; columns added: {Markup.Escape(string.Join(", ", t.AddedColumns))}" : "")
                    + (t.RemovedColumns.Count > 0 ? $"; columns removed: {Markup.Escape(string.Join(", ", t.RemovedColumns))}" : ""));
                var table = new Table().AddColumns("Column", "Type", "Nulls", "Distinct", "Mean", "Std", "Min", "Max");
                foreach (var c in t.Columns)
                {
                    table.AddRow(Markup.Escape(c.Name), Pair(c.OldType, c.NewType), Pair(c.OldNulls, c.NewNulls), Pair(c.OldDistinct, c.NewDistinct),
                        Pair(c.OldMean, c.NewMean), Pair(c.OldStd, c.NewStd), Pair(c.OldMin, c.NewMin), Pair(c.OldMax, c.NewMax));
                }
                cli.Console.Write(table);
            }
        });
        return command;
    }

    private static string Pair(string a, string b) => Markup.Escape(a == b ? a : $"{a} -> {b}");

    private static string Pair(long a, long b) => a == b ? a.ToString("N0", CultureInfo.InvariantCulture) : $"{a:N0} -> {b:N0}";

    private static string Pair(double? a, double? b) => a == b ? Text(a) : $"{Text(a)} -> {Text(b)}";

    private static string Text(double? value) => value is { } v ? CliOutput.Number(v) : "-";

    private static Command List(ClientOptions options)
    {
        var filter = new Option<string?>("--filter") { Description = "Part of the name" };
        var command = new Command("list", "List datasets") { filter };
        command.SetClientAction(options, async (cli, ct) =>
        {
            var response = await cli.Client.ListDatasetsAsync(cli.Get(filter), cancellationToken: ct);
            if (cli.Json)
            {
                cli.WriteJson(response, SextantJsonContext.Default.DatasetsResponse);
                return;
            }
            var table = new Table().AddColumns("Name", "Versions", "Latest", "Files", "Size", "Updated");
            foreach (var d in response.Datasets)
            {
                table.AddRow(Markup.Escape(d.Name), d.VersionCount.ToString(CultureInfo.InvariantCulture), d.Latest?.Version.ToString(CultureInfo.InvariantCulture) ?? "-",
                    d.Latest?.FileCount.ToString("N0", CultureInfo.InvariantCulture) ?? "-", CliOutput.Bytes(d.Latest?.TotalSize), CliOutput.Time(d.LastUpdatedTimestamp));
            }
            cli.Console.Write(table);
        });
        return command;
    }

    private static Command Profile(ClientOptions options)
    {
        var reference = new Argument<string>("dataset") { Description = "NAME or NAME@VERSION" };
        var command = new Command("profile", "Show the schema and profile of a version's tabular files") { reference };
        command.SetClientAction(options, async (cli, ct) =>
        {
            var (name, version) = Reference(cli.Get(reference));
            var profile = await cli.Client.GetDatasetProfileAsync(name, version, ct);
            if (cli.Json)
            {
                cli.WriteJson(profile, SextantJsonContext.Default.DatasetProfile);
                return;
            }
            foreach (var t in profile.Tables)
            {
                cli.Console.MarkupLine($"[bold]{Markup.Escape(t.Path)}[/] ({t.Format}): {t.Rows:N0} rows{(t.Error is null ? "" : " - " + Markup.Escape(t.Error))}");
                var table = new Table().AddColumns("Column", "Type", "Count", "Nulls", "Distinct", "Min", "Mean", "Max", "Top values");
                foreach (var c in t.Columns)
                {
                    table.AddRow(Markup.Escape(c.Name), c.Type, c.Count.ToString("N0", CultureInfo.InvariantCulture), c.Nulls.ToString("N0", CultureInfo.InvariantCulture),
                        c.DistinctEstimate.ToString("N0", CultureInfo.InvariantCulture), Text(c.Min), Text(c.Mean), Text(c.Max),
                        Markup.Escape(string.Join(", ", (c.TopCategories ?? []).Take(3).Select(k => $"{k.Value} ({k.Count})"))));
                }
                cli.Console.Write(table);
            }
        });
        return command;
    }
}
