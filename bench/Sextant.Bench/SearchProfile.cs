using System.Diagnostics;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Sextant.Contracts;
using Sextant.Core.Projects;
using Sextant.Core.Tracking;
using Sextant.Server;

namespace Sextant.Bench;

/// <summary>Where the time of one run search goes, in process: the service call and the JSON, without HTTP.</summary>
internal static class SearchProfile
{
    public static async Task<int> RunAsync(string[] args)
    {
        var count = args.Length > 0 ? int.Parse(args[0], System.Globalization.CultureInfo.InvariantCulture) : 100_000;
        var folder = Path.Combine(Path.GetTempPath(), "sextant-profile-" + Guid.NewGuid().ToString("N")[..8]);
        await using var server = await SextantServer.StartAsync(new SextantServerOptions { Port = 0, DataDirectory = folder });
        var tracking = server.Services.GetRequiredService<TrackingService>();
        var caller = new Caller(1, ProjectService.DefaultProject, Role.Admin, Anonymous: true);
        var experimentId = await tracking.CreateExperimentAsync(caller, new CreateExperimentRequest("profile"));
        SearchBenchmark.Seed(Path.Combine(folder, "sextant.db"), long.Parse(experimentId, System.Globalization.CultureInfo.InvariantCulture), count);
        var before = GC.GetTotalMemory(forceFullCollection: true);
        var build = Stopwatch.StartNew();
        await tracking.BuildSearchIndexAsync(long.Parse(experimentId, System.Globalization.CultureInfo.InvariantCulture));
        Console.WriteLine($"in-memory copy of {count:N0} runs read in {build.ElapsedMilliseconds:N0} ms, {(GC.GetTotalMemory(forceFullCollection: true) - before) / 1024.0 / 1024.0:N1} MiB");
        var request = new SearchRunsRequest([experimentId], "metrics.acc > 0.9 and params.model = 'x'", MaxResults: 1000);
        var service = new List<double>();
        var json = new List<double>();
        for (var i = 0; i < 60; i++)
        {
            var start = Stopwatch.GetTimestamp();
            var response = await tracking.SearchRunsAsync(caller, request);
            var searched = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
            start = Stopwatch.GetTimestamp();
            var bytes = JsonSerializer.SerializeToUtf8Bytes(response, SextantJsonContext.Default.SearchRunsResponse);
            var serialized = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
            if (i >= 10)
            {
                service.Add(searched);
                json.Add(serialized);
            }
            _ = bytes.Length;
        }
        Console.WriteLine($"service p50 {Stats.Percentile(service, 0.5):N1} ms, JSON p50 {Stats.Percentile(json, 0.5):N1} ms");
        return 0;
    }
}
