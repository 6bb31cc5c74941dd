using System.Diagnostics;
using System.Text;
using System.Text.Json;
using Microsoft.Data.Sqlite;
using Microsoft.Playwright;
using Sextant.Contracts;
using Sextant.Server;

namespace Sextant.Bench;

/// <summary>
/// The web UI in headless Chromium (Debian's /usr/bin/chromium, driven by Playwright):
/// 1. time to the first rows of the runs table of an experiment with N runs (default 100,000), beside the
///    time of the same page of runs through the API;
/// 2. time to render a comparison of 20 runs with 5 metrics of 10,000 points each (100 lines on 5 charts).
/// </summary>
internal static class UiBenchmark
{
    private const int Repeats = 10;

    public static async Task<int> RunAsync(string[] args)
    {
        var count = args.Length > 0 ? int.Parse(args[0], System.Globalization.CultureInfo.InvariantCulture) : 100_000;
        var folder = Path.Combine(Path.GetTempPath(), "sextant-ui-bench-" + Guid.NewGuid().ToString("N")[..8]);
        try
        {
            await using var server = await SextantServer.StartAsync(new SextantServerOptions { Port = 0, DataDirectory = folder });
            using var http = new HttpClient { BaseAddress = server.Address };
            var database = Path.Combine(folder, "sextant.db");

            var big = await CreateExperimentAsync(http, "ui-bench-runs");
            var seed = Stopwatch.StartNew();
            SearchBenchmark.Seed(database, big, count);
            Console.WriteLine($"seeded {count:N0} runs in {seed.Elapsed.TotalSeconds:N1} s");
            var compare = await CreateExperimentAsync(http, "ui-bench-compare");
            var runIds = SeedHistories(database, compare, runs: 20, metrics: 5, points: 10_000);
            Console.WriteLine("seeded 20 runs x 5 metrics x 10,000 points");

            using var playwright = await Playwright.CreateAsync();
            await using var browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
            {
                ExecutablePath = "/usr/bin/chromium",
                Headless = true,
                Args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
            });
            var context = await browser.NewContextAsync(new BrowserNewContextOptions { BaseURL = server.Address.ToString(), ViewportSize = new() { Width = 1440, Height = 900 } });

            // Warm-up: the first page load compiles the server's views and fills the browser's cache.
            var warm = await context.NewPageAsync();
            await warm.GotoAsync($"/ui/experiments/{big}");
            await warm.WaitForSelectorAsync("[data-testid=run-row]");
            await warm.CloseAsync();

            var firstRows = new List<double>();
            var interactive = new List<double>();
            for (var i = 0; i < Repeats; i++)
            {
                var page = await context.NewPageAsync();
                var start = Stopwatch.GetTimestamp();
                await page.GotoAsync($"/ui/experiments/{big}", new() { WaitUntil = WaitUntilState.Commit });
                await page.WaitForSelectorAsync("[data-testid=run-row]");
                firstRows.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
                if (Environment.GetEnvironmentVariable("SEXTANT_BENCH_TIMING") == "1")
                {
                    Console.WriteLine(await page.EvaluateAsync<string>("JSON.stringify(performance.getEntriesByType('navigation')[0])"));
                    Console.WriteLine(await page.EvaluateAsync<string>("JSON.stringify(performance.getEntriesByType('paint'))"));
                    Console.WriteLine($"first rows seen at {firstRows[^1]:N0} ms");
                }
                await page.WaitForSelectorAsync("main[data-interactive='true']");
                interactive.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
                await page.CloseAsync();
            }

            var api = new List<double>();
            var body = JsonSerializer.Serialize(new SearchRunsRequest([big.ToString(System.Globalization.CultureInfo.InvariantCulture)], MaxResults: 100), SextantJsonContext.Default.SearchRunsRequest);
            for (var i = 0; i < Repeats + 3; i++)
            {
                var start = Stopwatch.GetTimestamp();
                using var response = await http.PostAsync("/api/2.0/mlflow/runs/search", new StringContent(body, Encoding.UTF8, "application/json"));
                await response.Content.ReadAsStringAsync();
                response.EnsureSuccessStatusCode();
                if (i >= 3)
                {
                    api.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
                }
            }

            var compareTimes = new List<double>();
            var serverTimes = new List<string>();
            var coldCompare = 0.0;
            var url = $"/ui/compare?runs={string.Join(',', runIds)}";
            for (var i = 0; i < 1 + 5; i++)
            {
                var page = await context.NewPageAsync();
                var start = Stopwatch.GetTimestamp();
                await page.GotoAsync(url, new() { WaitUntil = WaitUntilState.Commit });
                await page.WaitForSelectorAsync("main[data-interactive='true']", new() { State = WaitForSelectorState.Attached });
                var tInteractive = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
                await page.WaitForSelectorAsync("[data-testid=history-time]", new() { State = WaitForSelectorState.Attached, Timeout = 60_000 });
                var tData = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
                await page.WaitForFunctionAsync(
                    "() => document.querySelectorAll('[data-testid=history-charts] .scatterlayer .trace').length === 100",
                    null, new() { Timeout = 60_000, PollingInterval = 20 });
                if (i == 0)
                {
                    coldCompare = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
                }
                else
                {
                    compareTimes.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
                    serverTimes.Add($"interactive {tInteractive:N0} ms, data on page {tData:N0} ms, " + await page.GetByTestId("history-time").InnerTextAsync());
                }
                await page.CloseAsync();
            }

            Console.WriteLine($"runs table, {count:N0} runs: first rows median {Stats.Percentile(firstRows, 0.5):N0} ms (max {firstRows.Max():N0} ms), interactive median {Stats.Percentile(interactive, 0.5):N0} ms; same page through the API median {Stats.Percentile(api, 0.5):N1} ms");
            Console.WriteLine($"compare 20 runs x 5 metrics x 10,000 points: median {Stats.Percentile(compareTimes, 0.5):N0} ms (max {compareTimes.Max():N0} ms) over {compareTimes.Count} loads, first load {coldCompare:N0} ms; server side: {string.Join("; ", serverTimes)}");
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

    private static async Task<long> CreateExperimentAsync(HttpClient http, string name)
    {
        var created = await http.PostAsync("/api/2.0/mlflow/experiments/create", new StringContent($$"""{"name": "{{name}}"}""", Encoding.UTF8, "application/json"));
        created.EnsureSuccessStatusCode();
        var id = JsonSerializer.Deserialize(await created.Content.ReadAsStringAsync(), SextantJsonContext.Default.CreateExperimentResponse)!.ExperimentId;
        return long.Parse(id, System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>Runs with full metric histories, written straight into SQLite.</summary>
    private static List<string> SeedHistories(string databasePath, long experimentId, int runs, int metrics, int points)
    {
        using var connection = new SqliteConnection($"Data Source={databasePath}");
        connection.Open();
        using var transaction = connection.BeginTransaction();
        using var run = SearchBenchmark.Command(connection, transaction,
            "INSERT INTO runs (id, run_uuid, project_id, experiment_id, name, user_id, status, start_time, end_time, lifecycle_stage) VALUES ($id, $uuid, 1, $exp, $name, 'bench', 'FINISHED', $start, $start, 'active')",
            "$id", "$uuid", "$exp", "$name", "$start");
        using var param = SearchBenchmark.Command(connection, transaction, "INSERT INTO params (run_id, key, value) VALUES ($run, $key, $value)", "$run", "$key", "$value");
        using var metric = SearchBenchmark.Command(connection, transaction,
            "INSERT INTO metrics (run_id, key, value, is_nan, step, timestamp) VALUES ($run, $key, $value, 0, $step, $ts)", "$run", "$key", "$value", "$step", "$ts");
        using var latest = SearchBenchmark.Command(connection, transaction,
            "INSERT INTO latest_metrics (run_id, key, value, is_nan, step, timestamp) VALUES ($run, $key, $value, 0, $step, $ts)", "$run", "$key", "$value", "$step", "$ts");
        var random = new Random(7);
        var ids = new List<string>();
        for (var r = 0; r < runs; r++)
        {
            var id = 5_000_000L + r;
            var uuid = Guid.NewGuid().ToString("N");
            ids.Add(uuid);
            SearchBenchmark.Execute(run, id, uuid, experimentId, $"cmp-{r}", 1_700_000_000_000L + r);
            SearchBenchmark.Execute(param, id, "lr", (0.001 * (r + 1)).ToString(System.Globalization.CultureInfo.InvariantCulture));
            for (var m = 0; m < metrics; m++)
            {
                var value = 0.0;
                for (var step = 0; step < points; step++)
                {
                    value = Math.Exp(-step / 2000.0) * (1 + m) + random.NextDouble() * 0.05;
                    SearchBenchmark.Execute(metric, id, $"m{m}", value, step, 1_700_000_000_000L + step * 100L);
                }
                SearchBenchmark.Execute(latest, id, $"m{m}", value, points - 1, 1_700_000_000_000L + (points - 1) * 100L);
            }
        }
        transaction.Commit();
        return ids;
    }
}
