using Sextant.Core.Tests.Storage;

namespace Sextant.Server.Tests.Tracking;

/// <summary>Scale-out: several stateless server replicas on one PostgreSQL database.</summary>
public sealed class ReplicaTests
{
    [Fact]
    public async Task Two_replicas_started_together_share_one_database_and_see_each_others_writes()
    {
        var database = await PostgresServer.CreateDatabaseAsync();
        var folders = new[] { NewFolder(), NewFolder() };
        // Started at the same time: the migrations must run once (advisory lock), not twice.
        var servers = await Task.WhenAll(folders.Select(f => SextantServer.StartAsync(new SextantServerOptions { Port = 0, DataDirectory = f, DatabaseUri = database })));
        try
        {
            using var first = new HttpClient { BaseAddress = servers[0].Address };
            using var second = new HttpClient { BaseAddress = servers[1].Address };
            var experiment = await first.CreateExperimentAsync("shared");
            var run = await second.CreateRunAsync(experiment);

            var writes = Enumerable.Range(0, 20).Select(i => (i % 2 == 0 ? first : second).PostAsync("/api/2.0/mlflow/runs/log-batch", new
            {
                run_id = run,
                metrics = Enumerable.Range(0, 100).Select(s => new { key = "loss", value = 1.0 / (s + 1), timestamp = 1L, step = (long)((i * 100) + s) }).ToArray(),
                tags = new[] { new { key = $"from-{i % 2}", value = "yes" } },
            }));
            Assert.All(await Task.WhenAll(writes), a => Assert.Equal(200, a.Status));

            foreach (var http in new[] { first, second })
            {
                var runJson = await http.GetJsonAsync($"/api/2.0/mlflow/runs/get?run_id={run}");
                var tags = runJson.Json!["run"]!["data"]!["tags"]!.AsArray().Select(t => t!["key"]!.GetValue<string>()).ToList();
                Assert.Contains("from-0", tags);
                Assert.Contains("from-1", tags);
                var history = await http.GetJsonAsync($"/api/2.0/mlflow/metrics/get-history?run_id={run}&metric_key=loss");
                Assert.Equal(2000, history.Json!["metrics"]!.AsArray().Count);
                Assert.Equal(1999, runJson.Json!["run"]!["data"]!["metrics"]![0]!["step"]!.GetValue<long>());
            }
        }
        finally
        {
            foreach (var server in servers)
            {
                await server.DisposeAsync();
            }
        }
    }

    private static string NewFolder() => Path.Combine(Path.GetTempPath(), "sextant-replica-" + Guid.NewGuid().ToString("N")[..8]);
}
