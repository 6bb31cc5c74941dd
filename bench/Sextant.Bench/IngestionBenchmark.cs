using System.Diagnostics;
using System.Text;
using System.Text.Json;
using Sextant.Contracts;
using Sextant.Core.Storage;
using Sextant.Core.Tests.Storage;
using Sextant.Server;

namespace Sextant.Bench;

/// <summary>
/// Metric ingestion: 4 concurrent clients post log-batch requests of 1000 metrics over HTTP for N seconds,
/// then the same rows go straight into the store (TrackingService.LogBatchAsync, no HTTP) for the raw ceiling.
/// </summary>
internal static class IngestionBenchmark
{
    private const int Clients = 4;
    private const int MetricsPerBatch = 1000;

    public static async Task<int> RunAsync(string[] args)
    {
        var engine = args.FirstOrDefault() == "postgres" ? DatabaseEngine.Postgres : DatabaseEngine.Sqlite;
        var seconds = args.Length > 1 ? int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 20;
        var folder = Path.Combine(Path.GetTempPath(), "sextant-bench-" + Guid.NewGuid().ToString("N")[..8]);
        var dbUri = engine == DatabaseEngine.Postgres ? await PostgresServer.CreateDatabaseAsync() : null;

        await using (var server = await SextantServer.StartAsync(new SextantServerOptions { Port = 0, DataDirectory = folder, DatabaseUri = dbUri }))
        {
            using var http = new HttpClient { BaseAddress = server.Address };
            var runs = new string[Clients];
            for (var c = 0; c < Clients; c++)
            {
                var created = await http.PostAsync("/api/v1/runs", Json(new CreateRunRequest("0")));
                var run = JsonSerializer.Deserialize(await created.Content.ReadAsStringAsync(), SextantJsonContext.Default.RunResponse)!;
                runs[c] = run.Run.Info.RunId;
            }
            var (points, latencies, elapsed) = await DriveAsync(seconds, async (client, batch) =>
            {
                using var response = await http.PostAsync("/api/2.0/mlflow/runs/log-batch", Json(Batch(runs[client], batch)));
                response.EnsureSuccessStatusCode();
            });
            Report($"HTTP log-batch ({engine})", points, latencies, elapsed);
        }

        // Raw ceiling: the same validated rows straight into the store through the same group-commit writer.
        await using var db = await TestDatabase.CreateAsync(engine);
        var rawRuns = new string[Clients];
        for (var c = 0; c < Clients; c++)
        {
            rawRuns[c] = (await db.Tracking.CreateRunAsync(TestDatabase.Admin, new CreateRunRequest("0"))).Info.RunId;
        }
        var raw = await DriveAsync(seconds, (client, batch) => db.Tracking.LogBatchAsync(TestDatabase.Admin, Batch(rawRuns[client], batch)));
        Report($"store direct ({engine})", raw.Points, raw.Latencies, raw.Elapsed);
        return 0;
    }

    private static async Task<(long Points, List<double> Latencies, TimeSpan Elapsed)> DriveAsync(int seconds, Func<int, int, Task> send)
    {
        // Warm up: JIT, connection pools, prepared statements.
        await send(0, -1);
        var latencies = new List<double>();
        long points = 0;
        var clock = Stopwatch.StartNew();
        var deadline = TimeSpan.FromSeconds(seconds);
        await Task.WhenAll(Enumerable.Range(0, Clients).Select(client => Task.Run(async () =>
        {
            var local = new List<double>();
            for (var batch = 0; clock.Elapsed < deadline; batch++)
            {
                var start = Stopwatch.GetTimestamp();
                await send(client, batch);
                local.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
                Interlocked.Add(ref points, MetricsPerBatch);
            }
            lock (latencies)
            {
                latencies.AddRange(local);
            }
        })));
        return (points, latencies, clock.Elapsed);
    }

    private static LogBatchRequest Batch(string runId, int batch)
    {
        var metrics = new MetricInput[MetricsPerBatch];
        var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        for (var i = 0; i < MetricsPerBatch; i++)
        {
            // 10 metric keys, 100 steps each per request: the shape of a training loop's flush.
            metrics[i] = new MetricInput($"metric_{i % 10}", i * 0.001, now, ((long)(batch + 1) * 100) + (i / 10));
        }
        return new LogBatchRequest(runId, metrics);
    }

    private static StringContent Json<T>(T value) where T : class =>
        new(JsonSerializer.Serialize(value, typeof(T), SextantJsonContext.Default), Encoding.UTF8, "application/json");

    private static void Report(string name, long points, List<double> latencies, TimeSpan elapsed) =>
        Console.WriteLine($"{name}: {points / elapsed.TotalSeconds:N0} points/s, {latencies.Count} requests, p50 {Stats.Percentile(latencies, 0.5):N1} ms, p99 {Stats.Percentile(latencies, 0.99):N1} ms");
}
