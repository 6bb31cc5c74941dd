using System.Buffers;
using System.CommandLine;
using System.Text;
using System.Text.Json;
using Sextant.Client;
using Sextant.Contracts;
using Spectre.Console;

namespace Sextant.Cli.Commands;

/// <summary>`sextant artifacts list|get`.</summary>
internal static class ArtifactsCommand
{
    private const int BufferSize = 81920;

    public static Command Build()
    {
        var options = new ClientOptions();
        var command = options.CreateGroup("artifacts", "List and download run artifacts");
        command.Subcommands.Add(List(options));
        command.Subcommands.Add(Get(options));
        return command;
    }

    private static Command List(ClientOptions options)
    {
        var runId = new Argument<string>("run-id") { Description = "The run's id" };
        var path = new Option<string?>("--path") { Description = "A folder inside the run's artifacts (default: the root)" };
        var command = new Command("list", "List a run's artifact files and folders") { runId, path };
        command.SetClientAction(options, async (cli, ct) =>
        {
            var response = await cli.Client.ListArtifactsAsync(cli.Get(runId), cli.Get(path), ct);
            if (cli.Json)
            {
                cli.WriteJson(response, SextantJsonContext.Default.ListArtifactsResponse);
                return;
            }
            var table = new Table().AddColumns("Path", "Size");
            foreach (var file in response.Files)
            {
                table.AddRow(Markup.Escape(file.IsDir ? file.Path + "/" : file.Path), file.IsDir ? "" : CliOutput.Bytes(file.FileSize));
            }
            cli.Console.Write(table);
        });
        return command;
    }

    private static Command Get(ClientOptions options)
    {
        var runId = new Argument<string>("run-id") { Description = "The run's id" };
        var path = new Argument<string>("path") { Description = "The artifact's path inside the run" };
        var output = new Option<string?>("--output", "-o") { Description = "File to write (default: the artifact's file name, in the current folder)" };
        var command = new Command("get", "Download one artifact file") { runId, path, output };
        command.SetClientAction(options, async (cli, ct) =>
        {
            var artifactPath = cli.Get(path);
            var target = cli.Get(output) is { Length: > 0 } o ? o : Path.GetFileName(artifactPath.TrimEnd('/'));
            // Open first: a missing artifact must not leave an empty file behind.
            await using var download = await cli.Client.OpenArtifactAsync(cli.Get(runId), artifactPath, ct);
            long written;
            var file = new FileStream(target, FileMode.Create, FileAccess.Write, FileShare.None, BufferSize, FileOptions.Asynchronous);
            try
            {
                await using (file)
                {
                    written = cli.Json || !cli.Console.Profile.Capabilities.Interactive
                        ? await CopyAsync(download, file, _ => { }, ct)
                        : await CopyWithProgressAsync(cli.Console, artifactPath, download, file, ct);
                }
            }
            catch
            {
                // A partial file would pass for the artifact; remove what this command wrote.
                File.Delete(target);
                throw;
            }
            if (cli.Json)
            {
                WriteResultJson(cli.Get(runId), artifactPath, Path.GetFullPath(target), written);
                return;
            }
            cli.Console.MarkupLine($"Saved [bold]{Markup.Escape(artifactPath)}[/] to {Markup.Escape(target)} ({CliOutput.Bytes(written)}).");
        });
        return command;
    }

    private static async Task<long> CopyWithProgressAsync(IAnsiConsole console, string name, ArtifactDownload download, Stream destination, CancellationToken cancellationToken) =>
        await console.Progress()
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new DownloadedColumn(), new TransferSpeedColumn(), new RemainingTimeColumn())
            .StartAsync(async context =>
            {
                var task = context.AddTask(Markup.Escape(name), maxValue: download.Length ?? 1);
                // Without a Content-Length the bar cannot show a fraction; it spins until the end.
                task.IsIndeterminate = download.Length is null;
                var written = await CopyAsync(download, destination, total => task.Value = total, cancellationToken);
                task.MaxValue = Math.Max(written, 1);
                task.Value = task.MaxValue;
                return written;
            });

    private static async Task<long> CopyAsync(ArtifactDownload download, Stream destination, Action<long> progress, CancellationToken cancellationToken)
    {
        var buffer = new byte[BufferSize];
        long total = 0;
        int read;
        while ((read = await download.Content.ReadAsync(buffer, cancellationToken)) > 0)
        {
            await destination.WriteAsync(buffer.AsMemory(0, read), cancellationToken);
            total += read;
            progress(total);
        }
        if (download.Length is { } expected && expected != total)
        {
            throw new IOException($"The download ended after {total} of {expected} bytes.");
        }
        return total;
    }

    /// <summary>The download has no server JSON to echo, so scripts get what it did: where the bytes went and how many.</summary>
    private static void WriteResultJson(string runId, string path, string output, long bytes)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteString("run_id", runId);
            json.WriteString("path", path);
            json.WriteString("output", output);
            json.WriteNumber("bytes", bytes);
            json.WriteEndObject();
        }
        Console.Out.WriteLine(Encoding.UTF8.GetString(buffer.WrittenSpan));
    }
}
