using System.Diagnostics;
using System.Globalization;
using System.Net;
using Microsoft.Data.Sqlite;
using Sextant.Core.Projects;
using Sextant.Core.Storage;
using Sextant.Core.Tests.Storage;

namespace Sextant.Bench;

/// <summary>
/// The trace list over many spans (default 10 million: 5 million traces of a request span and an LLM call), loaded
/// straight into a migrated SQLite file with prepared statements, then served by the real server (a child process):
/// the first page of traces, unfiltered and filtered by user and by model, p50 and p99 over repeated requests.
/// </summary>
internal static class TraceListBenchmark
{
    public static async Task<int> RunAsync(string[] args)
    {
        var cli = args.FirstOrDefault() ?? throw new ArgumentException("pass the path to sextant.dll");
        var spans = args.Length > 1 ? long.Parse(args[1], CultureInfo.InvariantCulture) : 10_000_000;
        var folder = Path.Combine(Path.GetTempPath(), "sextant-tracelist-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(folder);
        try
        {
            var database = new SextantDatabase(DatabaseUri.Sqlite(Path.Combine(folder, "sextant.db")));
            await database.MigrateAsync();
            await new ProjectService(database).EnsureDefaultProjectAsync();
            var clock = Stopwatch.StartNew();
            await LoadAsync(database, spans / 2);
            Console.WriteLine($"loaded {spans:N0} spans ({spans / 2:N0} traces) in {clock.Elapsed.TotalSeconds:F0} s; file {new FileInfo(Path.Combine(folder, "sextant.db")).Length / 1048576.0:N0} MiB");

            var (server, url) = await ChildServer.StartAsync(cli, folder);
            try
            {
                using var http = new HttpClient { BaseAddress = new Uri(url + "/") };
                foreach (var (label, query) in new[]
                {
                    ("first page, no filter", "api/v1/traces?max_results=50"),
                    ("first page, one user", "api/v1/traces?max_results=50&user=user-7"),
                    ("first page, one model", "api/v1/traces?max_results=50&model=claude-sonnet-4-5"),
                    ("first page, errors", "api/v1/traces?max_results=50&status=error"),
                    ("one trace and its spans", $"api/v1/traces/{spans / 4:x32}"),
                })
                {
                    for (var i = 0; i < 5; i++)
                    {
                        (await http.GetAsync(query)).EnsureSuccessStatusCode();
                    }
                    var samples = new List<double>();
                    for (var i = 0; i < 100; i++)
                    {
                        var one = Stopwatch.StartNew();
                        (await http.GetAsync(query)).EnsureSuccessStatusCode();
                        samples.Add(one.Elapsed.TotalMilliseconds);
                    }
                    Console.WriteLine($"  {label,-24} p50 {Stats.Percentile(samples, 0.5),7:F2} ms   p99 {Stats.Percentile(samples, 0.99),7:F2} ms");
                }
                var floor = new List<double>();
                for (var i = 0; i < 100; i++)
                {
                    var one = Stopwatch.StartNew();
                    (await http.GetAsync("healthz")).EnsureSuccessStatusCode();
                    floor.Add(one.Elapsed.TotalMilliseconds);
                }
                Console.WriteLine($"  {"/healthz (floor)",-24} p50 {Stats.Percentile(floor, 0.5),7:F2} ms   p99 {Stats.Percentile(floor, 0.99),7:F2} ms");
            }
            finally
            {
                await ChildServer.StopAsync(server);
            }
            return 0;
        }
        finally
        {
            SqliteConnection.ClearAllPools();
            Directory.Delete(folder, recursive: true);
        }
    }

    private static readonly string[] SpanParameters = ["$t", "$s", "$p", "$n", "$k", "$start", "$end", "$status", "$m", "$in", "$out", "$cost", "$u"];
    private static readonly string[] TraceParameters = ["$t", "$start", "$end", "$errors", "$in", "$out", "$cost", "$u", "$session", "$models"];

    /// <summary>
    /// What migration 0010 costs at the first start of an upgraded server: spans loaded into the schema before it
    /// (keyed by trace id), then the migration timed on its own.
    /// </summary>
    public static async Task<int> MigrationAsync(string[] args)
    {
        var spans = args.Length > 0 ? long.Parse(args[0], CultureInfo.InvariantCulture) : 10_000_000;
        var folder = Path.Combine(Path.GetTempPath(), "sextant-migration-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(folder);
        try
        {
            await using var database = new SextantDatabase(DatabaseUri.Sqlite(Path.Combine(folder, "sextant.db")));
            await database.MigrateAsync(upTo: 9);
            await new ProjectService(database).EnsureDefaultProjectAsync();
            var clock = Stopwatch.StartNew();
            await LoadAsync(database, spans / 2, keyedByTraceRow: false);
            Console.WriteLine($"loaded {spans:N0} spans ({spans / 2:N0} traces) before migration 0010 in {clock.Elapsed.TotalSeconds:F0} s; file {new FileInfo(Path.Combine(folder, "sextant.db")).Length / 1048576.0:N0} MiB");
            clock.Restart();
            await database.MigrateAsync();
            Console.WriteLine($"migration 0010 (spans keyed by their trace's row): {clock.Elapsed.TotalSeconds:F1} s");
            return 0;
        }
        finally
        {
            SqliteConnection.ClearAllPools();
            Directory.Delete(folder, recursive: true);
        }
    }

    /// <param name="keyedByTraceRow">Whether the schema has migration 0010 (spans keyed by their trace's row).</param>
    private static async Task LoadAsync(SextantDatabase database, long traces, bool keyedByTraceRow = true)
    {
        await using var connection = (SqliteConnection)await database.OpenAsync();
        await using (var pragma = connection.CreateCommand())
        {
            pragma.CommandText = "PRAGMA synchronous = OFF";
            await pragma.ExecuteNonQueryAsync();
        }
        var models = new[] { "gpt-4o-mini", "gpt-4.1", "claude-sonnet-4-5" };
        var start = DateTimeOffset.UtcNow.AddDays(-30).ToUnixTimeMilliseconds() * 1000;
        var step = 30L * 86_400_000_000 / traces;
        var random = new Random(5);
        const int batch = 100_000;
        for (long done = 0; done < traces; done += batch)
        {
            await using var transaction = (SqliteTransaction)await connection.BeginTransactionAsync();
            await using var span = connection.CreateCommand();
            span.Transaction = transaction;
            span.CommandText =
                $$"""
                INSERT INTO spans (project_id, trace_id, span_id, parent_span_id, name, kind, start_time, end_time, status, model, provider, input_tokens, output_tokens,
                    tokens_estimated, cost, user_id, cache_hit, data{{(keyedByTraceRow ? ", trace_row" : "")}})
                VALUES (1, $t, $s, $p, $n, $k, $start, $end, $status, $m, 'openai', $in, $out, 0, $cost, $u, 0, '{}'{{(keyedByTraceRow ? ", (SELECT id FROM traces WHERE project_id = 1 AND trace_id = $t)" : "")}})
                """;
            var p = SpanParameters.Select(n => span.Parameters.Add(n, SqliteType.Text)).ToArray();
            await span.PrepareAsync();
            await using var trace = connection.CreateCommand();
            trace.Transaction = transaction;
            trace.CommandText =
                """
                INSERT INTO traces (project_id, trace_id, name, named_by_root, start_time, end_time, error_count, span_count, generation_count, input_tokens, output_tokens,
                    cost, cost_unknown, user_id, session_id, models, tags)
                VALUES (1, $t, 'handle request', 1, $start, $end, $errors, 2, 1, $in, $out, $cost, 0, $u, $session, $models, '[]')
                """;
            var q = TraceParameters.Select(n => trace.Parameters.Add(n, SqliteType.Text)).ToArray();
            await trace.PrepareAsync();
            for (var i = done; i < Math.Min(traces, done + batch); i++)
            {
                var id = i.ToString("x32", CultureInfo.InvariantCulture);
                var t0 = start + i * step;
                var model = models[i % 3];
                var error = random.Next(50) == 0;
                var (input, output) = (100 + random.Next(2000), 10 + random.Next(300));
                var cost = (input * 0.15 + output * 0.6) / 1_000_000;
                var user = $"user-{i % 1000}";
                // The trace first: its spans are keyed by its row.
                q[0].Value = id; q[1].Value = t0; q[2].Value = t0 + 900_000; q[3].Value = error ? 1 : 0; q[4].Value = input; q[5].Value = output; q[6].Value = cost;
                q[7].Value = user; q[8].Value = $"session-{i / 10}"; q[9].Value = $"[\"{model}\"]";
                await trace.ExecuteNonQueryAsync();
                foreach (var (s, parent, name, kind, begin, end, m) in new[]
                {
                    ($"{i:x8}00000001"[^16..], (string?)null, "handle request", "span", t0, t0 + 900_000, (string?)null),
                    ($"{i:x8}00000002"[^16..], $"{i:x8}00000001"[^16..], "chat " + model, "generation", t0 + 100_000, t0 + 800_000, model),
                })
                {
                    p[0].Value = id; p[1].Value = s; p[2].Value = (object?)parent ?? DBNull.Value; p[3].Value = name; p[4].Value = kind;
                    p[5].Value = begin; p[6].Value = end; p[7].Value = error && kind == "generation" ? "error" : "ok"; p[8].Value = (object?)m ?? DBNull.Value;
                    p[9].Value = kind == "generation" ? input : DBNull.Value; p[10].Value = kind == "generation" ? output : DBNull.Value;
                    p[11].Value = kind == "generation" ? cost : DBNull.Value; p[12].Value = user;
                    await span.ExecuteNonQueryAsync();
                }
            }
            await transaction.CommitAsync();
        }
        await using var analyze = connection.CreateCommand();
        analyze.CommandText = "PRAGMA synchronous = FULL";
        await analyze.ExecuteNonQueryAsync();
    }
}
