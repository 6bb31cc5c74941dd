using System.Data.Common;
using Sextant.Core.Projects;
using Sextant.Core.Storage;

namespace Sextant.Core.Tracking;

/// <summary>One point of a sampled metric series: NaN values are kept as NaN.</summary>
public readonly record struct SeriesPoint(long Step, long Timestamp, double Value);

/// <summary>A metric's history for one run, sampled down to at most a given number of points.</summary>
public sealed record MetricSeries(string RunId, string Key, long TotalPoints, IReadOnlyList<SeriesPoint> Points);

public sealed partial class TrackingService
{
    /// <summary>
    /// The history of <paramref name="metricKey"/> for each run, in step order, sampled to at most
    /// <paramref name="maxPoints"/> points a run for charts: the history is cut into equal buckets and each bucket
    /// keeps its first, lowest and highest point, so spikes survive; the last point is always kept.
    /// </summary>
    public async Task<IReadOnlyList<MetricSeries>> MetricSeriesAsync(Caller caller, IReadOnlyList<string> runIds, string metricKey, int maxPoints, CancellationToken cancellationToken = default)
    {
        if (maxPoints < 3)
        {
            throw SextantException.Invalid("max_points", "'max_points' must be at least 3.");
        }
        if (runIds.Count == 0)
        {
            return [];
        }
        // Each run's history is read on its own connection, a few at a time: SQLite's WAL readers and PostgreSQL's
        // pool both serve them in parallel, and a comparison of 20 long histories is bound by these reads.
        var resolved = new List<RunRef>(runIds.Count);
        foreach (var runId in runIds)
        {
            resolved.Add(await ResolveRunAsync(caller, TrackingValidation.RunId(runId), requireActive: false, cancellationToken));
        }
        var result = new MetricSeries[resolved.Count];
        var workers = Math.Min(resolved.Count, Math.Clamp(Environment.ProcessorCount, 2, 4));
        await Parallel.ForAsync(0, workers, new ParallelOptions { MaxDegreeOfParallelism = workers, CancellationToken = cancellationToken },
            async (worker, ct) =>
            {
                // One connection and one prepared statement a worker; worker w reads runs w, w + workers, ...
                await using var connection = await database.OpenAsync(ct);
                await using var command = connection.CreateCommand();
                command.CommandText = "SELECT step, timestamp, value, is_nan FROM metrics WHERE run_id = @run AND key = @key ORDER BY step, id";
                var run = AddParameter(command, "@run");
                AddParameter(command, "@key").Value = metricKey;
                var points = new List<SeriesPoint>();
                // Microsoft.Data.Sqlite is synchronous underneath: its ReadAsync only adds a task per row.
                var sqlite = database.Engine == DatabaseEngine.Sqlite;
                for (var i = worker; i < resolved.Count; i += workers)
                {
                    run.Value = resolved[i].Id;
                    points.Clear();
                    await using (var reader = await command.ExecuteReaderAsync(ct))
                    {
                        while (sqlite ? reader.Read() : await reader.ReadAsync(ct))
                        {
                            points.Add(new SeriesPoint(reader.GetInt64(0), reader.GetInt64(1), reader.GetInt64(3) != 0 ? double.NaN : reader.GetDouble(2)));
                        }
                    }
                    result[i] = new MetricSeries(runIds[i], metricKey, points.Count, Sample(points, maxPoints));
                }
            });
        return result;
    }

    private static DbParameter AddParameter(DbCommand command, string name)
    {
        var parameter = command.CreateParameter();
        parameter.ParameterName = name;
        command.Parameters.Add(parameter);
        return parameter;
    }

    internal static List<SeriesPoint> Sample(List<SeriesPoint> points, int maxPoints)
    {
        if (points.Count <= maxPoints)
        {
            return [.. points];
        }
        var buckets = (maxPoints - 1) / 3;
        var sampled = new List<SeriesPoint>(maxPoints);
        var size = (double)(points.Count - 1) / buckets;
        for (var b = 0; b < buckets; b++)
        {
            var from = (int)(b * size);
            var to = Math.Min((int)((b + 1) * size), points.Count - 1);
            int low = from, high = from;
            for (var i = from; i < to; i++)
            {
                if (points[i].Value < points[low].Value || double.IsNaN(points[low].Value))
                {
                    low = i;
                }
                if (points[i].Value > points[high].Value || double.IsNaN(points[high].Value))
                {
                    high = i;
                }
            }
            // First, lowest and highest of the bucket, in step order, without repeats.
            Span<int> picks = [from, Math.Min(low, high), Math.Max(low, high)];
            var previous = -1;
            foreach (var index in picks)
            {
                if (index > previous)
                {
                    sampled.Add(points[index]);
                    previous = index;
                }
            }
        }
        sampled.Add(points[^1]);
        return sampled;
    }
}
