using System.Data.Common;
using System.Threading.Channels;
using Dapper;
using Microsoft.Data.Sqlite;
using Npgsql;
using NpgsqlTypes;
using Sextant.Core.Storage;
using Sextant.Contracts;

using Sextant.Core.Tracking.Search;

namespace Sextant.Core.Tracking;

/// <summary>
/// The group-commit path for run logging: requests wait in a bounded queue, one writer commits many of
/// them in one transaction, and each request is acknowledged only after that commit. A full queue is
/// refused at once (503) instead of growing memory.
/// </summary>
public sealed class TrackingWriter : IAsyncDisposable
{
    private readonly SextantDatabase _database;
    private readonly TrackingOptions _options;
    private readonly Channel<TrackingWrite> _queue;
    private readonly Task _loop;
    private DbConnection? _sqliteConnection;
    private SqliteMetricStatements? _statements;
    private long _lastKeyCleanup;

    /// <summary>How long an idempotency key is remembered.</summary>
    internal static readonly TimeSpan IdempotencyWindow = TimeSpan.FromHours(24);

    public TrackingWriter(SextantDatabase database, TrackingOptions options)
    {
        _database = database;
        _options = options;
        Index = new RunIndex(maxRuns: options.InMemorySearchMaxRuns);
        _queue = Channel.CreateBounded<TrackingWrite>(new BoundedChannelOptions(options.WriteQueueCapacity)
        {
            SingleReader = true,
            FullMode = BoundedChannelFullMode.Wait,
        });
        _loop = Task.Run(RunAsync);
    }

    /// <summary>The in-memory search copies; every tracking write calls <see cref="RunIndex.Changed"/> after committing.</summary>
    internal RunIndex Index { get; }

    internal async Task WriteAsync(TrackingWrite write, CancellationToken cancellationToken)
    {
        if (!_queue.Writer.TryWrite(write))
        {
            throw new SextantException(
                ErrorCodes.TemporarilyUnavailable,
                $"The write queue is full ({_options.WriteQueueCapacity} requests waiting); retry shortly.",
                503);
        }
        // Not cancelled with the request: once queued, the write commits whether or not the client waits.
        await write.Done.Task;
    }

    private async Task RunAsync()
    {
        var batch = new List<TrackingWrite>();
        var reader = _queue.Reader;
        while (await reader.WaitToReadAsync())
        {
            batch.Clear();
            var points = 0;
            while (points < _options.MaxPointsPerCommit && reader.TryRead(out var write))
            {
                batch.Add(write);
                points += write.Metrics.Length;
            }
            // Whatever happens, every write of the batch is answered and the loop goes on.
            try
            {
                Dictionary<TrackingWrite, SextantException> failures;
                try
                {
                    failures = await CommitAsync(batch);
                }
                finally
                {
                    // Before any write of the batch is acknowledged.
                    Index.Changed();
                }
                foreach (var write in batch)
                {
                    if (failures.TryGetValue(write, out var failure))
                    {
                        write.Done.TrySetException(failure);
                    }
                    else
                    {
                        write.Done.TrySetResult();
                    }
                }
            }
            catch (Exception e)
            {
                foreach (var write in batch)
                {
                    write.Done.TrySetException(new SextantException(ErrorCodes.TemporarilyUnavailable, $"The write could not be committed: {e.Message}", 503));
                }
                try
                {
                    await ResetConnectionAsync();
                }
                catch (Exception)
                {
                    // A connection that cannot even be closed is dropped; the next batch opens a new one.
                    _sqliteConnection = null;
                    _statements = null;
                }
            }
        }
    }

    private async Task<Dictionary<TrackingWrite, SextantException>> CommitAsync(List<TrackingWrite> batch)
    {
        var failures = new Dictionary<TrackingWrite, SextantException>();
        var connection = _database.Engine == DatabaseEngine.Sqlite
            ? _sqliteConnection ??= await _database.OpenAsync()
            : await _database.OpenAsync();
        try
        {
            await using var transaction = await SextantDatabase.BeginWriteAsync(connection);
            var replays = new HashSet<TrackingWrite>();
            foreach (var write in batch)
            {
                if (write.Params.Length == 0 && write.Tags.Length == 0)
                {
                    if (!await ClaimAsync(connection, transaction, write))
                    {
                        replays.Add(write);
                    }
                    continue;
                }
                await transaction.SaveAsync("w");
                SextantException? failure;
                var replay = false;
                try
                {
                    replay = !await ClaimAsync(connection, transaction, write);
                    failure = replay ? null : await WriteParamsAndTagsAsync(connection, transaction, write);
                }
                catch (DbException e) when (SextantDatabase.IsDataError(e))
                {
                    // A value the database refuses fails its own request only. Anything else (a deadlock, a
                    // full disk, a timeout) is not the request's fault: it fails the whole commit as a 503.
                    failure = SextantException.Invalid("body", $"The database refused this write: {e.Message}");
                }
                if (failure is null)
                {
                    await transaction.ReleaseAsync("w");
                    if (replay)
                    {
                        replays.Add(write);
                    }
                }
                else
                {
                    await transaction.RollbackAsync("w");
                    failures[write] = failure;
                }
            }
            await ForgetOldRequestKeysAsync(connection, transaction);
            var accepted = batch.Where(w => w.Metrics.Length > 0 && !failures.ContainsKey(w) && !replays.Contains(w)).ToList();
            if (accepted.Count > 0)
            {
                if (connection is NpgsqlConnection npgsql)
                {
                    await CopyMetricsAsync(npgsql, accepted);
                    await UpsertLatestPostgresAsync(npgsql, transaction, Latest(accepted));
                }
                else
                {
                    InsertMetricsSqlite((SqliteConnection)connection, accepted, Latest(accepted));
                }
            }
            await transaction.CommitAsync();
        }
        finally
        {
            if (connection != _sqliteConnection)
            {
                await connection.DisposeAsync();
            }
        }
        return failures;
    }

    /// <summary>
    /// Records a write's idempotency key; false when a write with that key was already committed (a client's
    /// retry after an answer it never got), which is then acknowledged without being applied again.
    /// </summary>
    private static async Task<bool> ClaimAsync(DbConnection connection, DbTransaction transaction, TrackingWrite write)
    {
        if (write.IdempotencyKey is null)
        {
            return true;
        }
        var inserted = await connection.ExecuteAsync(
            "INSERT INTO write_requests (key, created_at) VALUES (@key, @now) ON CONFLICT (key) DO NOTHING",
            new { key = $"{write.RunId}:{write.IdempotencyKey}", now = Clock.NowMs() }, transaction);
        return inserted == 1;
    }

    private async Task ForgetOldRequestKeysAsync(DbConnection connection, DbTransaction transaction)
    {
        var now = Clock.NowMs();
        if (now - _lastKeyCleanup < (long)TimeSpan.FromMinutes(10).TotalMilliseconds)
        {
            return;
        }
        _lastKeyCleanup = now;
        await connection.ExecuteAsync("DELETE FROM write_requests WHERE created_at < @cutoff",
            new { cutoff = now - (long)IdempotencyWindow.TotalMilliseconds }, transaction);
    }

    private static async Task<SextantException?> WriteParamsAndTagsAsync(DbConnection connection, DbTransaction transaction, TrackingWrite write)
    {
        // The runs row is locked before run_tags, in the same order as UpdateRun, so the two cannot deadlock.
        if (write.Tags.LastOrDefault(t => t.Key == TrackingService.RunNameTag) is { } runName)
        {
            await connection.ExecuteAsync("UPDATE runs SET name = @Value WHERE id = @run", new { run = write.RunId, runName.Value }, transaction);
        }
        foreach (var param in write.Params.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            var inserted = await connection.ExecuteAsync(
                "INSERT INTO params (run_id, key, value) VALUES (@run, @Key, @Value) ON CONFLICT (run_id, key) DO NOTHING",
                new { run = write.RunId, param.Key, param.Value }, transaction);
            if (inserted == 0)
            {
                var existing = await connection.QuerySingleAsync<string>(
                    "SELECT value FROM params WHERE run_id = @run AND key = @Key", new { run = write.RunId, param.Key }, transaction);
                if (existing != param.Value)
                {
                    return SextantException.Invalid("params",
                        $"Changing param values is not allowed. Param with key='{param.Key}' was already logged with value='{existing}' for run ID='{write.RunUuid}'. Attempted logging new value '{param.Value}'.");
                }
            }
        }
        foreach (var tag in write.Tags.OrderBy(t => t.Key, StringComparer.Ordinal))
        {
            await connection.ExecuteAsync(
                "INSERT INTO run_tags (run_id, key, value) VALUES (@run, @Key, @Value) ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value",
                new { run = write.RunId, tag.Key, tag.Value }, transaction);
        }
        return null;
    }

    /// <summary>The greatest (step, timestamp, value) point per run and key in this commit.</summary>
    private static List<(long RunId, MetricPoint Point)> Latest(List<TrackingWrite> writes)
    {
        var latest = new Dictionary<(long, string), MetricPoint>();
        foreach (var write in writes)
        {
            foreach (var point in write.Metrics)
            {
                if (!latest.TryGetValue((write.RunId, point.Key), out var current) || IsAfter(point, current))
                {
                    latest[(write.RunId, point.Key)] = point;
                }
            }
        }
        // A fixed order (run, key) keeps concurrent commits of two replicas from deadlocking on PostgreSQL.
        return latest.OrderBy(kv => kv.Key.Item1).ThenBy(kv => kv.Key.Item2, StringComparer.Ordinal).Select(kv => (kv.Key.Item1, kv.Value)).ToList();
    }

    private static bool IsAfter(MetricPoint a, MetricPoint b) =>
        a.Step != b.Step ? a.Step > b.Step
        : a.Timestamp != b.Timestamp ? a.Timestamp > b.Timestamp
        : StoredValue(a.Value) > StoredValue(b.Value);

    private static double StoredValue(double value) => double.IsNaN(value) ? 0 : value;

    private void InsertMetricsSqlite(SqliteConnection connection, List<TrackingWrite> writes, List<(long RunId, MetricPoint Point)> latest)
    {
        _statements ??= new SqliteMetricStatements(connection, LatestUpsertTail);
        foreach (var write in writes)
        {
            foreach (var point in write.Metrics)
            {
                _statements.Insert(write.RunId, point);
            }
        }
        foreach (var (runId, point) in latest)
        {
            _statements.UpsertLatest(runId, point);
        }
    }

    private const string LatestUpsertTail = """
        ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value, is_nan = excluded.is_nan, step = excluded.step, timestamp = excluded.timestamp
        WHERE (excluded.step, excluded.timestamp, excluded.value) > (latest_metrics.step, latest_metrics.timestamp, latest_metrics.value)
        """;

    private static async Task CopyMetricsAsync(NpgsqlConnection connection, List<TrackingWrite> writes)
    {
        await using var importer = await connection.BeginBinaryImportAsync(
            "COPY metrics (run_id, key, value, is_nan, step, timestamp) FROM STDIN (FORMAT BINARY)");
        foreach (var write in writes)
        {
            foreach (var point in write.Metrics)
            {
                await importer.StartRowAsync();
                await importer.WriteAsync(write.RunId, NpgsqlDbType.Bigint);
                await importer.WriteAsync(point.Key, NpgsqlDbType.Text);
                await importer.WriteAsync(StoredValue(point.Value), NpgsqlDbType.Double);
                await importer.WriteAsync((short)(double.IsNaN(point.Value) ? 1 : 0), NpgsqlDbType.Smallint);
                await importer.WriteAsync(point.Step, NpgsqlDbType.Bigint);
                await importer.WriteAsync(point.Timestamp, NpgsqlDbType.Bigint);
            }
        }
        await importer.CompleteAsync();
    }

    private static async Task UpsertLatestPostgresAsync(NpgsqlConnection connection, DbTransaction transaction, List<(long RunId, MetricPoint Point)> latest)
    {
        await using var command = new NpgsqlCommand(
            """
            INSERT INTO latest_metrics (run_id, key, value, is_nan, step, timestamp)
            SELECT * FROM unnest(@r, @k, @v, @n, @s, @t)
            """ + "\n" + LatestUpsertTail,
            connection, (NpgsqlTransaction)transaction);
        command.Parameters.AddWithValue("r", latest.Select(l => l.RunId).ToArray());
        command.Parameters.AddWithValue("k", latest.Select(l => l.Point.Key).ToArray());
        command.Parameters.AddWithValue("v", latest.Select(l => StoredValue(l.Point.Value)).ToArray());
        command.Parameters.AddWithValue("n", latest.Select(l => (short)(double.IsNaN(l.Point.Value) ? 1 : 0)).ToArray());
        command.Parameters.AddWithValue("s", latest.Select(l => l.Point.Step).ToArray());
        command.Parameters.AddWithValue("t", latest.Select(l => l.Point.Timestamp).ToArray());
        await command.ExecuteNonQueryAsync();
    }

    private async Task ResetConnectionAsync()
    {
        _statements?.Dispose();
        _statements = null;
        if (_sqliteConnection is not null)
        {
            await _sqliteConnection.DisposeAsync();
            _sqliteConnection = null;
        }
    }

    public async ValueTask DisposeAsync()
    {
        // Writes already queued are still committed; new ones are refused by the completed channel.
        _queue.Writer.TryComplete();
        await _loop;
        await ResetConnectionAsync();
    }
}
