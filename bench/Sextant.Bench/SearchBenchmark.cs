using System.Diagnostics;
using System.Text;
using System.Text.Json;
using Microsoft.Data.Sqlite;
using Sextant.Contracts;
using Sextant.Server;

namespace Sextant.Bench;

/// <summary>
/// Run search over HTTP on SQLite: N runs (default 100,000) with 3 metrics and 3 params each, filter
/// <c>metrics.acc &gt; 0.9 and params.model = 'x'</c>, 1000 results a page.
/// </summary>
internal static class SearchBenchmark
{
    public static async Task<int> RunAsync(string[] args)
    {
        var count = args.Length > 0 ? int.Parse(args[0], System.Globalization.CultureInfo.InvariantCulture) : 100_000;
        var folder = Path.Combine(Path.GetTempPath(), "sextant-search-" + Guid.NewGuid().ToString("N")[..8]);
        string experimentId;
        await using (var server = await SextantServer.StartAsync(new SextantServerOptions { Port = 0, DataDirectory = folder }))
        {
            using var http = new HttpClient { BaseAddress = server.Address };
            var created = await http.PostAsync("/api/2.0/mlflow/experiments/create", new StringContent("""{"name": "search-bench"}""", Encoding.UTF8, "application/json"));
            experimentId = JsonSerializer.Deserialize(await created.Content.ReadAsStringAsync(), SextantJsonContext.Default.CreateExperimentResponse)!.ExperimentId;
        }
        var seed = Stopwatch.StartNew();
        Seed(Path.Combine(folder, "sextant.db"), long.Parse(experimentId, System.Globalization.CultureInfo.InvariantCulture), count);
        Console.WriteLine($"seeded {count:N0} runs in {seed.Elapsed.TotalSeconds:N1} s");

        // The same query on the same file, first with every search in SQL, then with the in-memory copy.
        foreach (var inMemory in new[] { false, true })
        {
            var options = new SextantServerOptions { Port = 0, DataDirectory = folder };
            options.Tracking.InMemorySearch = inMemory;
            await using var server = await SextantServer.StartAsync(options);
            using var http = new HttpClient { BaseAddress = server.Address };
            var (latencies, results) = await MeasureAsync(http, experimentId);
            Console.WriteLine($"search {(inMemory ? "in-memory copy" : "SQL only")} ({count:N0} runs, {results} results): p50 {Stats.Percentile(latencies, 0.5):N1} ms, p99 {Stats.Percentile(latencies, 0.99):N1} ms over {latencies.Count} requests");
        }
        return 0;
    }

    private static async Task<(List<double> Latencies, int Results)> MeasureAsync(HttpClient http, string experimentId)
    {
        var body = JsonSerializer.Serialize(new SearchRunsRequest([experimentId], "metrics.acc > 0.9 and params.model = 'x'", MaxResults: 1000), SextantJsonContext.Default.SearchRunsRequest);
        var latencies = new List<double>();
        var results = 0;
        // Warm-up: at least 10 requests and 3 s, which also gives the in-memory copy time to be read.
        var warmUp = Stopwatch.StartNew();
        for (var i = 0; latencies.Count < 50; i++)
        {
            var start = Stopwatch.GetTimestamp();
            using var response = await http.PostAsync("/api/2.0/mlflow/runs/search", new StringContent(body, Encoding.UTF8, "application/json"));
            var text = await response.Content.ReadAsStringAsync();
            var elapsed = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
            response.EnsureSuccessStatusCode();
            if (i >= 10 && warmUp.Elapsed > TimeSpan.FromSeconds(3))
            {
                latencies.Add(elapsed);
            }
            results = JsonSerializer.Deserialize(text, SextantJsonContext.Default.SearchRunsResponse)!.Runs.Count;
        }
        return (latencies, results);
    }

    internal static void Seed(string databasePath, long experimentId, int count)
    {
        using var connection = new SqliteConnection($"Data Source={databasePath}");
        connection.Open();
        using var transaction = connection.BeginTransaction();
        var firstId = 1_000_000L;
        using var run = Command(connection, transaction,
            "INSERT INTO runs (id, run_uuid, project_id, experiment_id, name, user_id, status, start_time, end_time, lifecycle_stage) VALUES ($id, $uuid, 1, $exp, $name, 'bench', 'FINISHED', $start, $start, 'active')",
            "$id", "$uuid", "$exp", "$name", "$start");
        using var param = Command(connection, transaction, "INSERT INTO params (run_id, key, value) VALUES ($run, $key, $value)", "$run", "$key", "$value");
        using var latest = Command(connection, transaction,
            "INSERT INTO latest_metrics (run_id, key, value, is_nan, step, timestamp) VALUES ($run, $key, $value, 0, 0, 1)", "$run", "$key", "$value");
        using var metric = Command(connection, transaction,
            "INSERT INTO metrics (run_id, key, value, is_nan, step, timestamp) VALUES ($run, $key, $value, 0, 0, 1)", "$run", "$key", "$value");
        var random = new Random(42);
        string[] models = ["x", "y", "z", "w"];
        for (var i = 0; i < count; i++)
        {
            var id = firstId + i;
            Execute(run, id, Guid.NewGuid().ToString("N"), experimentId, $"run-{i}", 1_700_000_000_000L + i);
            Execute(param, id, "model", models[random.Next(models.Length)]);
            Execute(param, id, "lr", (random.Next(1, 10) / 1000.0).ToString(System.Globalization.CultureInfo.InvariantCulture));
            Execute(param, id, "batch", random.Next(16, 256).ToString(System.Globalization.CultureInfo.InvariantCulture));
            foreach (var key in new[] { "acc", "loss", "f1" })
            {
                var value = random.NextDouble();
                Execute(latest, id, key, value);
                Execute(metric, id, key, value);
            }
        }
        transaction.Commit();
        using var analyze = connection.CreateCommand();
        analyze.CommandText = "ANALYZE";
        analyze.ExecuteNonQuery();
    }

    internal static SqliteCommand Command(SqliteConnection connection, SqliteTransaction transaction, string sql, params string[] names)
    {
        var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = sql;
        foreach (var name in names)
        {
            command.Parameters.Add(new SqliteParameter { ParameterName = name });
        }
        return command;
    }

    internal static void Execute(SqliteCommand command, params object[] values)
    {
        for (var i = 0; i < values.Length; i++)
        {
            command.Parameters[i].Value = values[i];
        }
        command.ExecuteNonQuery();
    }
}
