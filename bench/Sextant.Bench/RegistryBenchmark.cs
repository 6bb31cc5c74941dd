using System.Diagnostics;
using System.Text;
using Sextant.Client;
using Sextant.Server;

namespace Sextant.Bench;

/// <summary>
/// Resolving models:/name@alias and a lineage query of depth 5 over HTTP, beside the server's floor for a request
/// (/readyz, one SELECT 1): a model with 50 versions, the champion's run reading two datasets.
/// </summary>
internal static class RegistryBenchmark
{
    public static async Task<int> RunAsync(string[] args)
    {
        _ = args;
        var folder = Path.Combine(Path.GetTempPath(), "sextant-registry-" + Guid.NewGuid().ToString("N")[..8]);
        try
        {
            await using var server = await SextantServer.StartAsync(new SextantServerOptions { Port = 0, DataDirectory = folder });
            using var client = new SextantClient(server.Address);
            using var http = new HttpClient { BaseAddress = server.Address };
            string runId;
            await using (var run = await client.StartRunAsync("registry-bench"))
            {
                await run.LogArtifactAsync(new MemoryStream(new byte[1024]), "model/model.onnx");
                runId = run.RunId;
            }
            var inputs = $$$"""
                {"run_id": "{{{runId}}}", "datasets": [{"dataset": {"name": "customers", "digest": "d4", "source_type": "local", "source": "/d"}},
                 {"dataset": {"name": "holdout", "digest": "h1", "source_type": "local", "source": "/h"}}]}
                """;
            (await http.PostAsync("/api/2.0/mlflow/runs/log-inputs", new StringContent(inputs, Encoding.UTF8, "application/json"))).EnsureSuccessStatusCode();
            for (var i = 0; i < 50; i++)
            {
                await client.RegisterModelAsync("churn", $"runs:/{runId}/model");
            }
            await client.SetModelAliasAsync("churn", "champion", "42");

            var floor = await MeasureAsync(http, "/readyz");
            var resolve = await MeasureAsync(http, "/api/v1/models/resolve?uri=" + Uri.EscapeDataString("models:/churn@champion"));
            var lineage = await MeasureAsync(http, "/api/v1/lineage?direction=up&depth=5&uri=" + Uri.EscapeDataString("models:/churn@champion"));
            Console.WriteLine($"/readyz (floor): p50 {Stats.Percentile(floor, 0.5):N2} ms, p99 {Stats.Percentile(floor, 0.99):N2} ms");
            Console.WriteLine($"resolve models:/churn@champion: p50 {Stats.Percentile(resolve, 0.5):N2} ms, p99 {Stats.Percentile(resolve, 0.99):N2} ms");
            Console.WriteLine($"lineage depth 5 from models:/churn@champion: p50 {Stats.Percentile(lineage, 0.5):N2} ms, p99 {Stats.Percentile(lineage, 0.99):N2} ms");
            return 0;
        }
        finally
        {
            try
            {
                Directory.Delete(folder, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }

    private static async Task<List<double>> MeasureAsync(HttpClient http, string path)
    {
        var latencies = new List<double>();
        for (var i = 0; i < 550; i++)
        {
            var start = Stopwatch.GetTimestamp();
            using var response = await http.GetAsync(path);
            await response.Content.ReadAsStringAsync();
            response.EnsureSuccessStatusCode();
            if (i >= 50)
            {
                latencies.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
            }
        }
        return latencies;
    }
}
