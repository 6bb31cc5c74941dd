using System.Diagnostics;
using Sextant.Core.Tests.Storage;

namespace Sextant.Bench;

/// <summary>Server start to ready (a fresh data folder, as a user starts it) and idle memory (RSS after 3 s idle).</summary>
internal static class StartupBenchmark
{
    public static async Task<int> RunAsync(string[] args)
    {
        var cli = args.FirstOrDefault() ?? throw new ArgumentException("pass the path to sextant.dll");
        var samples = new List<double>();
        long rssKb = 0;
        using var http = new HttpClient();
        for (var i = 0; i < 5; i++)
        {
            var port = FreePort.Next();
            var folder = Path.Combine(Path.GetTempPath(), "sextant-start-" + Guid.NewGuid().ToString("N")[..8]);
            var clock = Stopwatch.StartNew();
            using var process = Process.Start(new ProcessStartInfo("dotnet", $"exec \"{cli}\" server --port {port} --data {folder}") { RedirectStandardOutput = true, UseShellExecute = false })!;
            try
            {
                while (true)
                {
                    try
                    {
                        if ((await http.GetAsync($"http://127.0.0.1:{port}/readyz")).IsSuccessStatusCode)
                        {
                            break;
                        }
                    }
                    catch (HttpRequestException)
                    {
                        await Task.Delay(5);
                    }
                }
                samples.Add(clock.Elapsed.TotalMilliseconds);
                await Task.Delay(3000);
                var status = await File.ReadAllLinesAsync($"/proc/{process.Id}/status");
                rssKb = long.Parse(status.First(l => l.StartsWith("VmRSS:", StringComparison.Ordinal)).Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], System.Globalization.CultureInfo.InvariantCulture);
            }
            finally
            {
                process.Kill(entireProcessTree: true);
                await process.WaitForExitAsync();
                Directory.Delete(folder, recursive: true);
            }
        }
        Console.WriteLine($"start to ready: median {Stats.Percentile(samples, 0.5):N0} ms, max {samples.Max():N0} ms over {samples.Count} starts; idle RSS {rssKb / 1024.0:N0} MB");
        return 0;
    }
}
