using System.Globalization;
using Dapper;
using Sextant.Core.Projects;

namespace Sextant.Core.Tracking;

/// <summary>Run counts and last activity of an experiment, for overviews such as the web UI's experiment list.</summary>
public sealed record ExperimentStats(string ExperimentId, long Runs, long? LastActivity);

/// <summary>The metric, param and tag keys seen in an experiment's recent runs, for choosing table columns.</summary>
public sealed record RunKeys(IReadOnlyList<string> Metrics, IReadOnlyList<string> Params, IReadOnlyList<string> Tags);

public sealed partial class TrackingService
{
    /// <summary>How many recent runs <see cref="RunKeysAsync"/> looks at.</summary>
    public const int RunKeysSample = 1000;

    /// <summary>Active run counts and the latest run start or end of each experiment.</summary>
    public async Task<IReadOnlyDictionary<string, ExperimentStats>> ExperimentStatsAsync(Caller caller, IReadOnlyList<string> experimentIds, CancellationToken cancellationToken = default)
    {
        var ids = new List<long>(experimentIds.Count);
        foreach (var id in experimentIds)
        {
            if (long.TryParse(id, NumberStyles.None, CultureInfo.InvariantCulture, out var value))
            {
                ids.Add(value);
            }
        }
        var result = new Dictionary<string, ExperimentStats>(StringComparer.Ordinal);
        if (ids.Count == 0)
        {
            return result;
        }
        await using var connection = await database.OpenAsync(cancellationToken);
        var rows = await connection.QueryAsync<(long ExperimentId, long Runs, long? LastStart, long? LastEnd)>(
            $"""
            SELECT experiment_id, COUNT(*), MAX(start_time), MAX(end_time) FROM runs
            WHERE project_id = @project AND lifecycle_stage = 'active' AND experiment_id IN ({string.Join(',', ids)})
            GROUP BY experiment_id
            """,
            new { project = caller.ProjectId });
        foreach (var r in rows)
        {
            var id = FormatId(r.ExperimentId);
            result[id] = new ExperimentStats(id, r.Runs, r.LastEnd is { } end && end > (r.LastStart ?? 0) ? end : r.LastStart);
        }
        return result;
    }

    /// <summary>The distinct metric, param and tag keys of the experiment's latest <see cref="RunKeysSample"/> runs, sorted.</summary>
    public async Task<RunKeys> RunKeysAsync(Caller caller, string? experimentId, CancellationToken cancellationToken = default)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        var id = await ExperimentIdAsync(connection, caller, experimentId, "experiment_id");
        var recent = $"SELECT id FROM runs WHERE experiment_id = {id} AND project_id = @project ORDER BY start_time DESC, id LIMIT {RunKeysSample}";
        async Task<IReadOnlyList<string>> Keys(string table) =>
            (await connection.QueryAsync<string>($"SELECT DISTINCT key FROM {table} WHERE run_id IN ({recent}) ORDER BY key", new { project = caller.ProjectId })).ToList();
        return new RunKeys(await Keys("latest_metrics"), await Keys("params"), await Keys("run_tags"));
    }

    /// <summary>The artifact folder of a run ("experiment/run/artifacts"), for <see cref="Artifacts.ArtifactService"/>.</summary>
    /// <param name="requireActive">Refuse a deleted run (for writes).</param>
    public async Task<string> RunArtifactRootAsync(Caller caller, string? runId, bool requireActive = false, CancellationToken cancellationToken = default)
    {
        var run = await ResolveRunAsync(caller, TrackingValidation.RunId(runId), requireActive, cancellationToken);
        return RunArtifactRoot(run.ExperimentId, run.Uuid);
    }
}
