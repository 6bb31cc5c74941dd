using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using Sextant.Core.Tests.Storage;

namespace Sextant.Bench;

/// <summary>
/// `sextant data add|get` as users run them (child processes of the real CLI against a child server):
/// 1. a folder of many small files (default 100,000 of 1-10 KB): first add, unchanged re-add, restore;
///    beside it, sha256sum of the same files (two processes, the machine's two cores) as the floor;
/// 2. one large file (default 2 GiB): add and restore with the peak memory (VmHWM) of the CLI and the server, and
///    the CLI's hashing throughput against sha256sum's on the same file.
/// </summary>
internal static class DataBenchmark
{
    public static async Task<int> RunAsync(string[] args)
    {
        var cli = args.FirstOrDefault() ?? throw new ArgumentException("pass the path to sextant.dll");
        var files = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 100_000;
        var gib = args.Length > 2 ? double.Parse(args[2], CultureInfo.InvariantCulture) : 2;
        var root = Path.Combine(Path.GetTempPath(), "sextant-data-bench-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(root);
        var (server, url) = await ChildServer.StartAsync(cli, Path.Combine(root, "server"));
        try
        {
            Console.WriteLine($"machine: {Environment.ProcessorCount} cores, {Environment.OSVersion}");

            // 1. Many small files.
            var small = Path.Combine(root, "small");
            var random = new Random(42);
            long bytes = 0;
            for (var i = 0; i < files; i++)
            {
                var folder = Path.Combine(small, (i / 1000).ToString("D3", CultureInfo.InvariantCulture));
                if (i % 1000 == 0)
                {
                    Directory.CreateDirectory(folder);
                }
                var content = new byte[random.Next(1024, 10 * 1024 + 1)];
                random.NextBytes(content);
                bytes += content.Length;
                await File.WriteAllBytesAsync(Path.Combine(folder, $"f{i:D6}.bin"), content);
            }
            Console.WriteLine($"small files: {files:N0} files, {bytes / 1048576.0:F1} MiB");
            var floor = Time("sh", $"-c \"find '{small}' -type f -print0 | xargs -0 -P2 -n 2000 sha256sum > /dev/null\"");
            Console.WriteLine($"  sha256sum of every file (2 processes): {floor.Seconds:F1} s");
            var first = Time("dotnet", $"exec \"{cli}\" data add \"{small}\" --name small --url {url}");
            Console.WriteLine($"  data add (first):    {first.Seconds:F1} s, {files / first.Seconds:N0} files/s, CLI peak RSS {first.PeakMiB:F0} MiB  [{first.Output}]");
            var again = Time("dotnet", $"exec \"{cli}\" data add \"{small}\" --name small --url {url}");
            Console.WriteLine($"  data add (unchanged): {again.Seconds:F1} s, {files / again.Seconds:N0} files/s  [{again.Output}]");
            var restore = Time("dotnet", $"exec \"{cli}\" data get small -o \"{Path.Combine(root, "small-out")}\" --url {url}");
            Console.WriteLine($"  data get:            {restore.Seconds:F1} s, {files / restore.Seconds:N0} files/s");
            Console.WriteLine($"  ratios to sha256sum: first add {first.Seconds / floor.Seconds:F1}x, unchanged re-add {again.Seconds / floor.Seconds:F1}x");
            Directory.Delete(small, recursive: true);
            Directory.Delete(Path.Combine(root, "small-out"), recursive: true);

            // 2. One large file, on a fresh server so that its peak memory is this phase's alone.
            server.Kill();
            await server.WaitForExitAsync();
            server.Dispose();
            (server, url) = await ChildServer.StartAsync(cli, Path.Combine(root, "server2"));
            Console.WriteLine($"  (fresh server: RSS {ProcStatus.Rss(server.Id):F0} MiB before the add)");
            var large = Path.Combine(root, "large.bin");
            var length = (long)(gib * 1024 * 1024 * 1024);
            await using (var file = new FileStream(large, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20))
            {
                var block = new byte[1 << 20];
                for (long written = 0; written < length; written += block.Length)
                {
                    random.NextBytes(block);
                    await file.WriteAsync(block.AsMemory(0, (int)Math.Min(block.Length, length - written)));
                }
            }
            var mib = length / 1048576.0;
            Console.WriteLine($"large file: {mib:N0} MiB");
            var sum = Time("sha256sum", $"\"{large}\"");
            var clock = Stopwatch.StartNew();
            await using (var stream = new FileStream(large, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.Asynchronous | FileOptions.SequentialScan))
            {
                await SHA256.HashDataAsync(stream);
            }
            var hashing = clock.Elapsed.TotalSeconds;
            Console.WriteLine($"  sha256sum: {mib / sum.Seconds:F0} MiB/s; Sextant's hashing (the CLI's code path): {mib / hashing:F0} MiB/s; ratio {sum.Seconds / hashing:F2}");
            ProcStatus.ResetPeak(server.Id);
            var add = Time("dotnet", $"exec \"{cli}\" data add \"{large}\" --name large --url {url}");
            var serverAdd = ProcStatus.Peak(server.Id);
            Console.WriteLine($"  data add: {add.Seconds:F1} s ({mib / add.Seconds:F0} MiB/s), CLI peak RSS {add.PeakMiB:F0} MiB, server peak RSS {serverAdd:F0} MiB  [{add.Output}]");
            ProcStatus.ResetPeak(server.Id);
            var get = Time("dotnet", $"exec \"{cli}\" data get large -o \"{Path.Combine(root, "large-out")}\" --url {url}");
            var serverGet = ProcStatus.Peak(server.Id);
            Console.WriteLine($"  data get: {get.Seconds:F1} s ({mib / get.Seconds:F0} MiB/s), CLI peak RSS {get.PeakMiB:F0} MiB, server peak RSS {serverGet:F0} MiB");
            return 0;
        }
        finally
        {
            server.Kill();
            await server.WaitForExitAsync();
            server.Dispose();
            Directory.Delete(root, recursive: true);
        }
    }

    private sealed record Timed(double Seconds, double PeakMiB, string Output);

    /// <summary>Runs a command under /usr/bin/time for its wall time and peak resident memory.</summary>
    private static Timed Time(string program, string arguments)
    {
        var start = new ProcessStartInfo("/usr/bin/time", $"-f \"%e %M\" {program} {arguments}") { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{program} {arguments} failed: {error} {output.Result}");
        }
        var last = error.Trim().Split('\n')[^1].Split(' ');
        return new Timed(double.Parse(last[0], CultureInfo.InvariantCulture), double.Parse(last[1], CultureInfo.InvariantCulture) / 1024,
            string.Join(' ', output.Result.Split('\n', StringSplitOptions.RemoveEmptyEntries)).Trim());
    }
}
