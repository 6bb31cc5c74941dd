using System.Diagnostics;
using Sextant.Core.Tests.Storage;

namespace Sextant.Server.Tests.Tracking;

/// <summary>Everything the server acknowledged survives kill -9 of the server process.</summary>
public sealed class CrashDurabilityTests : IDisposable
{
    private readonly string _data = Path.Combine(Path.GetTempPath(), "sextant-crash-" + Guid.NewGuid().ToString("N")[..8]);

    [Fact]
    public async Task Acknowledged_metrics_params_and_artifacts_survive_kill_9()
    {
        var port = FreePort.Next();
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}/"), Timeout = TimeSpan.FromSeconds(30) };
        var server = StartServer(port);
        string run;
        var acknowledged = 0;
        try
        {
            await WaitReadyAsync(http);
            var experiment = await http.CreateExperimentAsync("crash");
            run = await http.CreateRunAsync(experiment);
            await http.PostAsync("/api/2.0/mlflow/runs/log-parameter", new { run_id = run, key = "seed", value = "7" });
            await http.PutAsync($"/api/2.0/mlflow-artifacts/artifacts/{experiment}/{run}/artifacts/notes.txt", new StringContent("kept"));

            // Log concurrently and kill the server while requests are in flight.
            await KillUnderLoadAsync(server, async batch =>
            {
                var metrics = Enumerable.Range(0, 100).Select(i => new { key = $"w{batch.Sender}", value = (double)i, timestamp = 1L, step = (long)((batch.Number * 100) + i) }).ToArray();
                var answer = await http.PostAsync("/api/2.0/mlflow/runs/log-batch", new { run_id = run, metrics });
                if (answer.Status == 200)
                {
                    Interlocked.Add(ref acknowledged, metrics.Length);
                }
            });
        }
        finally
        {
            if (!server.HasExited)
            {
                server.Kill(entireProcessTree: true);
            }
        }
        Assert.True(acknowledged > 0);

        var restarted = StartServer(port);
        try
        {
            await WaitReadyAsync(http);
            var stored = 0;
            for (var w = 0; w < 4; w++)
            {
                string? token = null;
                do
                {
                    var page = await http.GetJsonAsync($"/api/2.0/mlflow/metrics/get-history?run_id={run}&metric_key=w{w}&page_token={token}");
                    stored += page.Json!["metrics"]?.AsArray().Count ?? 0;
                    token = page.Json!["next_page_token"]?.GetValue<string>();
                }
                while (token is not null);
            }
            // In-flight requests may have committed without their answer arriving: at least what was acknowledged.
            Assert.True(stored >= acknowledged, $"stored {stored} < acknowledged {acknowledged}");
            var runJson = await http.GetJsonAsync($"/api/2.0/mlflow/runs/get?run_id={run}");
            Assert.Equal("7", runJson.Json!["run"]!["data"]!["params"]![0]!["value"]!.GetValue<string>());
            var experiment = runJson.Json!["run"]!["info"]!["experiment_id"]!.GetValue<string>();
            Assert.Equal("kept", await http.GetStringAsync($"/api/2.0/mlflow-artifacts/artifacts/{experiment}/{run}/artifacts/notes.txt"));
        }
        finally
        {
            restarted.Kill(entireProcessTree: true);
            await restarted.WaitForExitAsync();
        }
    }

    /// <summary>Spans commit with synchronous=NORMAL by default: a killed server still keeps every acknowledged one.</summary>
    [Fact]
    public async Task Acknowledged_spans_survive_kill_9()
    {
        var port = FreePort.Next();
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}/"), Timeout = TimeSpan.FromSeconds(30) };
        var server = StartServer(port);
        // In the order the answers came: the last ones are those a premature acknowledgement would lose.
        var acknowledged = new System.Collections.Concurrent.ConcurrentQueue<string>();
        var start = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() * 1000;
        try
        {
            await WaitReadyAsync(http);
            await KillUnderLoadAsync(server, async _ =>
            {
                var traces = Enumerable.Range(0, 50).Select(_ => Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(16))).ToArray();
                var spans = traces.Select(trace => new
                {
                    trace_id = trace, span_id = Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(8)), name = "crash", kind = "span",
                    start_time = start, end_time = start + 1000, status = "ok",
                }).ToArray();
                var answer = await http.PostAsync("/api/v1/traces/ingest", new { spans });
                // 200: every span taken (207 would say which were not).
                if (answer.Status == 200)
                {
                    foreach (var trace in traces)
                    {
                        acknowledged.Enqueue(trace);
                    }
                }
            });
        }
        finally
        {
            if (!server.HasExited)
            {
                server.Kill(entireProcessTree: true);
            }
        }
        Assert.NotEmpty(acknowledged);

        var restarted = StartServer(port);
        try
        {
            await WaitReadyAsync(http);
            // The first acknowledged traces and the last 1,000 (every sender's last batches before the kill) are there.
            var all = acknowledged.ToArray();
            foreach (var trace in all.Take(50).Concat(all.Skip(Math.Max(50, all.Length - 1000))))
            {
                var stored = await http.GetJsonAsync($"/api/v1/traces/{trace}");
                Assert.True(stored.Status == 200, $"acknowledged trace {trace} is missing after kill -9 ({stored.Status})");
            }
        }
        finally
        {
            restarted.Kill(entireProcessTree: true);
            await restarted.WaitForExitAsync();
        }
    }

    /// <summary>Four senders call <paramref name="send"/> in a loop; after 1.5 s the server is killed (kill -9) mid-load.</summary>
    private static async Task KillUnderLoadAsync(Process server, Func<(int Sender, int Number), Task> send)
    {
        using var stop = new CancellationTokenSource();
        var senders = Enumerable.Range(0, 4).Select(sender => Task.Run(async () =>
        {
            for (var number = 0; !stop.IsCancellationRequested; number++)
            {
                try
                {
                    await send((sender, number));
                }
                catch (HttpRequestException)
                {
                    return;
                }
            }
        })).ToArray();
        await Task.Delay(1500);
        server.Kill(entireProcessTree: true);
        await server.WaitForExitAsync();
        await stop.CancelAsync();
        await Task.WhenAll(senders);
    }

    private Process StartServer(int port) => ServerProcess.Start($"--port {port} --data \"{_data}\"");

    private static Task WaitReadyAsync(HttpClient http) => ServerProcess.WaitReadyAsync(http);

    public void Dispose()
    {
        try
        {
            Directory.Delete(_data, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
