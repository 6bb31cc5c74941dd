using System.Collections.Concurrent;
using System.Data.Common;
using System.Globalization;
using Microsoft.Data.Sqlite;
using Sextant.Contracts;

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
internal sealed class RunIndex(int maxExperiments = 4, int maxRuns = 500_000, long maxCells = 20_000_000)
{
    /// <summary>Copies give up past this many cells (runs times columns, about 8 bytes each).</summary>
    public long MaxCells => maxCells;

    /// <summary>Experiments with more runs than this are always searched in SQL (a copy takes about 0.3 KB a run).</summary>
    public int MaxRuns => maxRuns;

    private long _generation;
    private readonly ConcurrentDictionary<long, RunIndexSnapshot> _snapshots = new();
    private readonly ConcurrentDictionary<long, byte> _building = new();

    public long Generation => Volatile.Read(ref _generation);

    /// <summary>Some tracking data changed: every copy is stale.</summary>
    public void Changed() => Interlocked.Increment(ref _generation);

    /// <summary>The experiment's copy when it is current and the experiment is the caller's project's.</summary>
    public RunIndexSnapshot? TryGet(long experimentId, long projectId)
    {
        if (!_snapshots.TryGetValue(experimentId, out var snapshot))
        {
            return null;
        }
        if (snapshot.Generation != Generation)
        {
            // Stale for good: free its memory now.
            _snapshots.TryRemove(new KeyValuePair<long, RunIndexSnapshot>(experimentId, snapshot));
            return null;
        }
        return snapshot.ProjectId == projectId ? snapshot : null;
    }

    private readonly ConcurrentDictionary<long, long> _tooBig = new();

    /// <summary>
    /// Whether a copy of the experiment could be started now: none is being read, and no recent read found it too
    /// big to copy (it is tried again after ten minutes).
    /// </summary>
    public bool CanStartBuild(long experimentId) =>
        !_building.ContainsKey(experimentId)
        && !(_tooBig.TryGetValue(experimentId, out var when) && Environment.TickCount64 - when < 600_000);

    /// <summary>Starts reading a copy of the experiment unless one is being read already.</summary>
    public void BuildInBackground(long experimentId, Func<long, long, CancellationToken, Task<RunIndexSnapshot?>> read)
    {
        if (!_building.TryAdd(experimentId, 0))
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
            }
        });
    }

    /// <summary>Reads a copy now and keeps it if nothing was written meanwhile; tests call this directly.</summary>
    public async Task<bool> BuildAsync(long experimentId, Func<long, long, CancellationToken, Task<RunIndexSnapshot?>> read, CancellationToken cancellationToken = default)
    {
        var generation = Generation;
        var snapshot = await read(experimentId, generation, cancellationToken);
        if (snapshot is null)
        {
            _tooBig[experimentId] = Environment.TickCount64;
            return false;
        }
        if (Generation != generation)
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
    /// <returns>The copy, or null when the experiment is too big to copy (over maxRuns runs or maxCells cells).</returns>
    public static async Task<RunIndexSnapshot?> ReadAsync(DbConnection connection, long experimentId, long generation, int maxRuns, long maxCells, CancellationToken cancellationToken)
    {
        // A deferred (read) transaction: a consistent WAL snapshot that never holds the write lock, so writers go on.
        await using var transaction = ((SqliteConnection)connection).BeginTransaction(deferred: true);
        long projectId;
        await using (var counting = Command(connection, transaction,
            $"SELECT e.project_id, (SELECT COUNT(*) FROM runs WHERE experiment_id = {experimentId}) FROM experiments e WHERE e.id = {experimentId}"))
        await using (var reader = await counting.ExecuteReaderAsync(cancellationToken))
        {
            if (!reader.Read() || reader.GetInt64(1) > maxRuns)
            {
                return null;
            }
            projectId = reader.GetInt64(0);
        }
        var runs = new RunColumns();
        var shared = new Dictionary<string, string>(StringComparer.Ordinal);
        // Users, statuses and lifecycle stages repeat: each distinct one is kept once.
        string Shared(string value)
        {
            if (shared.TryGetValue(value, out var kept))
            {
                return kept;
            }
            if (shared.Count < 10_000)
            {
                shared[value] = value;
            }
            return value;
        }
        await using (var command = Command(connection, transaction,
            $"SELECT id, start_time, lifecycle_stage, run_uuid, name, user_id, status, end_time FROM runs WHERE experiment_id = {experimentId} ORDER BY start_time DESC, id"))
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken))
        {
            while (reader.Read())
            {
                runs.Ids.Add(reader.GetInt64(0));
                runs.StartTimes.Add(reader.GetInt64(1));
                runs.Lifecycles.Add(Shared(reader.GetString(2)));
                runs.Uuids.Add(reader.GetString(3));
                runs.Names.Add(reader.GetString(4));
                runs.UserIds.Add(Shared(reader.GetString(5)));
                runs.Statuses.Add(Shared(reader.GetString(6)));
                runs.EndTimes.Add(reader.IsDBNull(7) ? null : reader.GetInt64(7));
            }
        }
        var count = runs.Ids.Count;
        var position = new Dictionary<long, int>(count);
        for (var i = 0; i < count; i++)
        {
            position[runs.Ids[i]] = i;
        }
        // Every key is a column over all runs: keys that only a few runs have (fold_17_loss) cost as much as
        // common ones, so the copy gives up past a budget of cells rather than grow without bound.
        var cells = (long)count;
        var metrics = new Dictionary<string, MetricColumn>(StringComparer.Ordinal);
        await using (var command = Command(connection, transaction,
            $"SELECT m.run_id, m.key, m.value, m.is_nan, m.step, m.timestamp FROM latest_metrics m JOIN runs r ON r.id = m.run_id WHERE r.experiment_id = {experimentId}"))
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken))
        {
            while (reader.Read())
            {
                var key = reader.GetString(1);
                if (!metrics.TryGetValue(key, out var column))
                {
                    cells += 4L * count;
                    if (cells > maxCells)
                    {
                        return null;
                    }
                    metrics[key] = column = new MetricColumn(count);
                }
                var i = position[reader.GetInt64(0)];
                column.Values[i] = reader.GetInt64(3) != 0 ? double.NaN : reader.GetDouble(2);
                column.Steps[i] = reader.GetInt64(4);
                column.Timestamps[i] = reader.GetInt64(5);
                column.Present[i] = true;
            }
        }
        var budget = maxCells - cells;
        var parameters = await TextColumnsAsync(connection, transaction, "params", experimentId, position, count, budget, cancellationToken);
        if (parameters is null)
        {
            return null;
        }
        budget -= (long)parameters.Count * count;
        var tags = await TextColumnsAsync(connection, transaction, "run_tags", experimentId, position, count, budget, cancellationToken);
        if (tags is null)
        {
            return null;
        }
        await transaction.CommitAsync(cancellationToken);
        return new RunIndexSnapshot(generation, experimentId, projectId, runs, metrics, parameters, tags);
    }

    private static async Task<Dictionary<string, string?[]>?> TextColumnsAsync(
        DbConnection connection, DbTransaction transaction, string table, long experimentId, Dictionary<long, int> position, int count, long maxCells, CancellationToken cancellationToken)
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
                if ((long)(columns.Count + 1) * count > maxCells)
                {
                    return null;
                }
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

/// <summary>The runs table of one experiment as columns, in the default search order.</summary>
internal sealed class RunColumns
{
    public List<long> Ids { get; } = [];
    public List<long> StartTimes { get; } = [];
    public List<string> Lifecycles { get; } = [];
    public List<string> Uuids { get; } = [];
    public List<string> Names { get; } = [];
    public List<string> UserIds { get; } = [];
    public List<string> Statuses { get; } = [];
    public List<long?> EndTimes { get; } = [];
}

/// <summary>The latest point of one metric key for every run: value NaN and <see cref="Present"/> false when absent.</summary>
internal sealed class MetricColumn
{
    public MetricColumn(int count)
    {
        Values = new double[count];
        Steps = new long[count];
        Timestamps = new long[count];
        Present = new bool[count];
        Array.Fill(Values, double.NaN);
    }

    public bool[] Present { get; }

    public double[] Values { get; }
    public long[] Steps { get; }
    public long[] Timestamps { get; }
}

/// <summary>One experiment's runs as columns, in the default search order: start time descending, then id.</summary>
internal sealed class RunIndexSnapshot
{
    private readonly long _experimentId;
    private readonly long[] ids;
    private readonly long[] startTimes;
    private readonly bool[] deleted;
    private readonly string[] _lifecycles;
    private readonly string[] _uuids;
    private readonly string[] _names;
    private readonly string[] _userIds;
    private readonly string[] _statuses;
    private readonly long?[] _endTimes;
    private readonly Dictionary<string, MetricColumn> metrics;
    private readonly Dictionary<string, string?[]> parameters;
    private readonly Dictionary<string, string?[]> tags;
    private readonly string[] _metricKeys;
    private readonly string[] _paramKeys;
    private readonly string[] _tagKeys;

    public RunIndexSnapshot(long generation, long experimentId, long projectId, RunColumns runs, Dictionary<string, MetricColumn> metrics,
        Dictionary<string, string?[]> parameters, Dictionary<string, string?[]> tags)
    {
        Generation = generation;
        ProjectId = projectId;
        _experimentId = experimentId;
        ids = [.. runs.Ids];
        startTimes = [.. runs.StartTimes];
        _lifecycles = [.. runs.Lifecycles];
        deleted = [.. runs.Lifecycles.Select(l => l != "active")];
        _uuids = [.. runs.Uuids];
        _names = [.. runs.Names];
        _userIds = [.. runs.UserIds];
        _statuses = [.. runs.Statuses];
        _endTimes = [.. runs.EndTimes];
        this.metrics = metrics;
        this.parameters = parameters;
        this.tags = tags;
        // A run's metrics, params and tags are listed by key, as the SQL path sorts them.
        _metricKeys = [.. metrics.Keys.Order(StringComparer.Ordinal)];
        _paramKeys = [.. parameters.Keys.Order(StringComparer.Ordinal)];
        _tagKeys = [.. tags.Keys.Order(StringComparer.Ordinal)];
    }

    public long Generation { get; }

    /// <summary>The project the experiment belongs to: the copy answers only its callers.</summary>
    public long ProjectId { get; }

    public int Count => ids.Length;

    public long LastUsed { get; private set; } = Environment.TickCount64;

    /// <summary>The whole runs at <paramref name="positions"/> (from <see cref="Search"/>), with their dataset inputs.</summary>
    public List<Run> Runs(List<int> positions, Dictionary<long, List<DatasetInput>> inputs)
    {
        var runs = new List<Run>(positions.Count);
        var experiment = _experimentId.ToString(CultureInfo.InvariantCulture);
        foreach (var i in positions)
        {
            var runMetrics = new List<Metric>();
            foreach (var key in _metricKeys)
            {
                var column = metrics[key];
                if (column.Present[i])
                {
                    runMetrics.Add(new Metric(key, column.Values[i], column.Timestamps[i], column.Steps[i]));
                }
            }
            var info = new RunInfo(_uuids[i], _uuids[i], _names[i], experiment, _userIds[i], _statuses[i], startTimes[i], _endTimes[i],
                TrackingService.RunArtifactUri(_experimentId, _uuids[i]), _lifecycles[i]);
            runs.Add(new Run(info, new RunData(runMetrics, Values(_paramKeys, parameters, i), Values(_tagKeys, tags, i)),
                new RunInputs(inputs.GetValueOrDefault(ids[i]) ?? [])));
        }
        return runs;
    }

    private static List<KeyValue> Values(string[] keys, Dictionary<string, string?[]> columns, int i)
    {
        var values = new List<KeyValue>();
        foreach (var key in keys)
        {
            if (columns[key][i] is { } value)
            {
                values.Add(new KeyValue(key, value));
            }
        }
        return values;
    }

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
    public (List<int> Positions, List<long> Ids, string? NextPageToken) Search(IReadOnlyList<FilterComparison> filters, bool? wantDeleted, int limit, string? pageToken)
    {
        LastUsed = Environment.TickCount64;
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
        var predicates = new List<Func<int, bool>>(filters.Count);
        foreach (var f in filters)
        {
            var predicate = Predicate(f);
            if (predicate is null)
            {
                return ([], [], null);
            }
            predicates.Add(predicate);
        }
        var result = new List<long>(Math.Min(limit, 1024));
        var positions = new List<int>(Math.Min(limit, 1024));
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
                return (positions, result, PageToken.Encode([startTimes[lastIncluded].ToString(CultureInfo.InvariantCulture), ids[lastIncluded].ToString(CultureInfo.InvariantCulture)]));
            }
            result.Add(ids[i]);
            positions.Add(i);
            lastIncluded = i;
        }
        return (positions, result, null);
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
            if (!metrics.TryGetValue(f.Key, out var metric))
            {
                return null;
            }
            var column = metric.Values;
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
