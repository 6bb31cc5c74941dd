using System.Collections.Concurrent;
using System.Data.Common;
using System.Globalization;

namespace Sextant.Core.Tracking.Search;

/// <summary>
/// An in-memory copy of what run search filters on, per experiment, for the embedded SQLite store: run ids in the
/// default order (newest first), lifecycle, and the latest value of every metric, param and tag as columns. A
/// search whose filter and order it covers walks these arrays instead of joining tables; anything else goes to SQL.
/// <para>
/// Correctness rests on one rule: every tracking write in this process calls <see cref="Changed"/> after it
/// commits and before it is acknowledged, and a copy is used only while no write has happened since it was read.
/// Copies are read in the background after a search found none, so a busy experiment simply keeps using SQL.
/// The SQLite file must not be written by another process at the same time (the server owns it).
/// </para>
/// </summary>
internal sealed class RunIndex(int maxExperiments = 8, int maxRuns = 2_000_000)
{
    private long _generation;
    private readonly ConcurrentDictionary<long, RunIndexSnapshot> _snapshots = new();
    private readonly ConcurrentDictionary<long, Task> _building = new();

    public long Generation => Volatile.Read(ref _generation);

    /// <summary>Some tracking data changed: every copy is stale.</summary>
    public void Changed() => Interlocked.Increment(ref _generation);

    /// <summary>The experiment's copy when it is current.</summary>
    public RunIndexSnapshot? TryGet(long experimentId) =>
        _snapshots.TryGetValue(experimentId, out var snapshot) && snapshot.Generation == Generation ? snapshot : null;

    /// <summary>Starts reading a copy of the experiment unless one is being read already.</summary>
    public void BuildInBackground(long experimentId, Func<long, long, CancellationToken, Task<RunIndexSnapshot?>> read)
    {
        if (_building.ContainsKey(experimentId))
        {
            return;
        }
        var started = new TaskCompletionSource();
        if (!_building.TryAdd(experimentId, started.Task))
        {
            return;
        }
        _ = Task.Run(async () =>
        {
            try
            {
                await BuildAsync(experimentId, read);
            }
            catch (Exception)
            {
                // A copy that could not be read is simply not there: searches keep using SQL.
            }
            finally
            {
                _building.TryRemove(experimentId, out _);
                started.SetResult();
            }
        });
    }

    /// <summary>Reads a copy now and keeps it if nothing was written meanwhile; tests call this directly.</summary>
    public async Task<bool> BuildAsync(long experimentId, Func<long, long, CancellationToken, Task<RunIndexSnapshot?>> read, CancellationToken cancellationToken = default)
    {
        var generation = Generation;
        var snapshot = await read(experimentId, generation, cancellationToken);
        if (snapshot is null || snapshot.Count > maxRuns || Generation != generation)
        {
            return false;
        }
        if (_snapshots.Count >= maxExperiments && !_snapshots.ContainsKey(experimentId))
        {
            // Keep the most recently used copies.
            foreach (var stale in _snapshots.OrderBy(s => s.Value.LastUsed).Take(_snapshots.Count - maxExperiments + 1))
            {
                _snapshots.TryRemove(stale.Key, out _);
            }
        }
        _snapshots[experimentId] = snapshot;
        return true;
    }

    /// <summary>Reads the experiment's runs and their latest metrics, params and tags in one read transaction.</summary>
    public static async Task<RunIndexSnapshot> ReadAsync(DbConnection connection, long experimentId, long generation, CancellationToken cancellationToken)
    {
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        var ids = new List<long>();
        var starts = new List<long>();
        var deleted = new List<bool>();
        await using (var runs = Command(connection, transaction, $"SELECT id, start_time, lifecycle_stage FROM runs WHERE experiment_id = {experimentId} ORDER BY start_time DESC, id"))
        await using (var reader = await runs.ExecuteReaderAsync(cancellationToken))
        {
            while (reader.Read())
            {
                ids.Add(reader.GetInt64(0));
                starts.Add(reader.GetInt64(1));
                deleted.Add(reader.GetString(2) != "active");
            }
        }
        var position = new Dictionary<long, int>(ids.Count);
        for (var i = 0; i < ids.Count; i++)
        {
            position[ids[i]] = i;
        }
        var metrics = new Dictionary<string, double[]>(StringComparer.Ordinal);
        await using (var command = Command(connection, transaction,
            $"SELECT m.run_id, m.key, m.value, m.is_nan FROM latest_metrics m JOIN runs r ON r.id = m.run_id WHERE r.experiment_id = {experimentId}"))
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken))
        {
            while (reader.Read())
            {
                var key = reader.GetString(1);
                if (!metrics.TryGetValue(key, out var column))
                {
                    column = new double[ids.Count];
                    Array.Fill(column, double.NaN);
                    metrics[key] = column;
                }
                column[position[reader.GetInt64(0)]] = reader.GetInt64(3) != 0 ? double.NaN : reader.GetDouble(2);
            }
        }
        var parameters = await TextColumnsAsync(connection, transaction, "params", experimentId, position, ids.Count, cancellationToken);
        var tags = await TextColumnsAsync(connection, transaction, "run_tags", experimentId, position, ids.Count, cancellationToken);
        await transaction.CommitAsync(cancellationToken);
        return new RunIndexSnapshot(generation, [.. ids], [.. starts], [.. deleted], metrics, parameters, tags);
    }

    private static async Task<Dictionary<string, string?[]>> TextColumnsAsync(
        DbConnection connection, DbTransaction transaction, string table, long experimentId, Dictionary<long, int> position, int count, CancellationToken cancellationToken)
    {
        var columns = new Dictionary<string, string?[]>(StringComparer.Ordinal);
        // Values repeat a lot (a model name, a learning rate): each distinct value is kept once per key.
        var distinct = new Dictionary<string, Dictionary<string, string>>(StringComparer.Ordinal);
        await using var command = Command(connection, transaction,
            $"SELECT t.run_id, t.key, t.value FROM {table} t JOIN runs r ON r.id = t.run_id WHERE r.experiment_id = {experimentId}");
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (reader.Read())
        {
            var key = reader.GetString(1);
            if (!columns.TryGetValue(key, out var column))
            {
                column = new string?[count];
                columns[key] = column;
                distinct[key] = new Dictionary<string, string>(StringComparer.Ordinal);
            }
            var value = reader.GetString(2);
            var values = distinct[key];
            if (values.Count < 10_000)
            {
                if (!values.TryGetValue(value, out var shared))
                {
                    values[value] = shared = value;
                }
                value = shared;
            }
            column[position[reader.GetInt64(0)]] = value;
        }
        return columns;
    }

    private static DbCommand Command(DbConnection connection, DbTransaction transaction, string sql)
    {
        var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = sql;
        return command;
    }
}

/// <summary>One experiment's runs as columns, in the default search order: start time descending, then id.</summary>
internal sealed class RunIndexSnapshot(
    long generation,
    long[] ids,
    long[] startTimes,
    bool[] deleted,
    Dictionary<string, double[]> metrics,
    Dictionary<string, string?[]> parameters,
    Dictionary<string, string?[]> tags)
{
    public long Generation { get; } = generation;

    public int Count => ids.Length;

    public long LastUsed { get; private set; } = Environment.TickCount64;

    /// <summary>Whether every filter is one this copy answers exactly as the SQL search does; the others go to SQL.</summary>
    public static bool Covers(IReadOnlyList<FilterComparison> filters) => filters.All(f => f.Entity switch
    {
        FilterEntity.Metric => f.Op is FilterOp.Eq or FilterOp.NotEq or FilterOp.Lt or FilterOp.Le or FilterOp.Gt or FilterOp.Ge && f.Value.Number is not null,
        FilterEntity.Param or FilterEntity.Tag => f.Op is FilterOp.Eq or FilterOp.NotEq or FilterOp.In or FilterOp.NotIn,
        _ => false,
    });

    /// <summary>
    /// One page of run ids in the default order, after the row the page token names; the token has the SQL
    /// path's format (start time, id), so paging may move between the two.
    /// </summary>
    public (List<long> Ids, string? NextPageToken) Search(IReadOnlyList<FilterComparison> filters, bool? wantDeleted, int limit, string? pageToken)
    {
        LastUsed = Environment.TickCount64;
        var predicates = new List<Func<int, bool>>(filters.Count);
        foreach (var f in filters)
        {
            var predicate = Predicate(f);
            if (predicate is null)
            {
                return ([], null);
            }
            predicates.Add(predicate);
        }
        var from = 0;
        if (!string.IsNullOrEmpty(pageToken))
        {
            var after = PageToken.Decode(pageToken, 2);
            if (!long.TryParse(after[0], NumberStyles.Integer, CultureInfo.InvariantCulture, out var start)
                || !long.TryParse(after[1], NumberStyles.Integer, CultureInfo.InvariantCulture, out var id))
            {
                throw SextantException.Invalid("page_token", "Invalid page_token: it does not belong to this query's sort order.");
            }
            from = FirstAfter(start, id);
        }
        var result = new List<long>(Math.Min(limit, 1024));
        var lastIncluded = -1;
        for (var i = from; i < ids.Length; i++)
        {
            if (wantDeleted is { } d && deleted[i] != d)
            {
                continue;
            }
            var match = true;
            foreach (var predicate in predicates)
            {
                if (!predicate(i))
                {
                    match = false;
                    break;
                }
            }
            if (!match)
            {
                continue;
            }
            if (result.Count == limit)
            {
                return (result, PageToken.Encode([startTimes[lastIncluded].ToString(CultureInfo.InvariantCulture), ids[lastIncluded].ToString(CultureInfo.InvariantCulture)]));
            }
            result.Add(ids[i]);
            lastIncluded = i;
        }
        return (result, null);
    }

    /// <summary>The first position strictly after (start, id) in the order start descending, id ascending.</summary>
    private int FirstAfter(long start, long id)
    {
        int low = 0, high = ids.Length;
        while (low < high)
        {
            var mid = (low + high) >>> 1;
            var after = startTimes[mid] < start || (startTimes[mid] == start && ids[mid] > id);
            if (after)
            {
                high = mid;
            }
            else
            {
                low = mid + 1;
            }
        }
        return low;
    }

    private Func<int, bool>? Predicate(FilterComparison f)
    {
        if (f.Entity == FilterEntity.Metric)
        {
            if (!metrics.TryGetValue(f.Key, out var column))
            {
                return null;
            }
            var x = f.Value.Number!.Value;
            // A missing metric and a NaN one are both NaN here, and neither matches any comparison (as in SQL,
            // where NaN rows are left out and a missing row does not join).
            return f.Op switch
            {
                FilterOp.Eq => i => column[i] == x,
                FilterOp.NotEq => i => !double.IsNaN(column[i]) && column[i] != x,
                FilterOp.Lt => i => column[i] < x,
                FilterOp.Le => i => column[i] <= x,
                FilterOp.Gt => i => column[i] > x,
                _ => i => column[i] >= x,
            };
        }
        if (!(f.Entity == FilterEntity.Param ? parameters : tags).TryGetValue(f.Key, out var values))
        {
            return null;
        }
        if (f.Op is FilterOp.In or FilterOp.NotIn)
        {
            var set = new HashSet<string>(f.Value.List!, StringComparer.Ordinal);
            return f.Op == FilterOp.In
                ? i => values[i] is { } v && set.Contains(v)
                : i => values[i] is { } v && !set.Contains(v);
        }
        var text = f.Value.Text ?? f.Value.Number?.ToString(CultureInfo.InvariantCulture);
        return f.Op == FilterOp.Eq
            ? i => values[i] is { } v && string.Equals(v, text, StringComparison.Ordinal)
            : i => values[i] is { } v && !string.Equals(v, text, StringComparison.Ordinal);
    }
}
