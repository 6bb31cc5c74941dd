using Dapper;
using System.Globalization;
using Sextant.Contracts;
using Sextant.Core.Projects;
using Sextant.Core.Storage;
using Sextant.Core.Tracking.Search;

namespace Sextant.Core.Tracking;

public sealed partial class TrackingService
{
    /// <summary>Searches runs with MLflow's filter language and keyset paging.</summary>
    public async Task<SearchRunsResponse> SearchRunsAsync(Caller caller, SearchRunsRequest request, CancellationToken cancellationToken = default)
    {
        if (request.ExperimentIds is not { Count: > 0 })
        {
            throw SextantException.Missing("experiment_ids");
        }
        await using var connection = await database.OpenAsync(cancellationToken);
        var experimentIds = new List<long>(request.ExperimentIds.Count);
        for (var i = 0; i < request.ExperimentIds.Count; i++)
        {
            experimentIds.Add(await ExperimentIdAsync(connection, caller, request.ExperimentIds[i], $"experiment_ids[{i}]"));
        }
        var limit = PageSize(request.MaxResults, "max_results");
        var filters = ParseFilter(request.Filter, SearchTarget.Runs);
        var order = ParseOrder(request.OrderBy, SearchTarget.Runs);
        var lifecycle = LifecycleClause("r", request.RunViewType, "run_view_type");
        if (database.Engine == DatabaseEngine.Sqlite && options.InMemorySearch && experimentIds.Count == 1 && order.Count == 0 && RunIndexSnapshot.Covers(filters))
        {
            var experimentId = experimentIds[0];
            if (writer.Index.TryGet(experimentId, caller.ProjectId) is { } snapshot)
            {
                bool? wantDeleted = lifecycle.Length == 0 ? null : lifecycle.Contains("'deleted'", StringComparison.Ordinal);
                var (positions, found, nextToken) = snapshot.Search(filters, wantDeleted, limit, request.PageToken);
                var inputs = found.Count == 0 ? [] : await LoadInputsAsync(connection, string.Join(',', found));
                return new SearchRunsResponse(snapshot.Runs(positions, inputs), nextToken);
            }
            // Only the caller's own experiments are copied; no query at all while a copy is being read.
            if (writer.Index.CanStartBuild(experimentId) && await connection.ExecuteScalarAsync<long?>(
                    "SELECT id FROM experiments WHERE id = @experimentId AND project_id = @project", new { experimentId, project = caller.ProjectId }) is not null)
            {
                writer.Index.BuildInBackground(experimentId, ReadSearchIndexAsync);
            }
        }
        var sql = new SqlBuilder(database);
        var where = new List<string>
        {
            $"r.project_id = {sql.Param(caller.ProjectId)}",
            $"r.experiment_id IN ({string.Join(", ", experimentIds)})",
            lifecycle,
        };
        foreach (var filter in filters)
        {
            AddRunFilter(sql, where, filter);
        }
        var keys = new List<SearchSortKey>();
        foreach (var term in order)
        {
            AddRunSortKeys(sql, keys, term);
        }
        if (keys.Count == 0)
        {
            keys.Add(new SearchSortKey("r.start_time", SqlKind.Long, false));
        }
        keys.Add(new SearchSortKey("r.id", SqlKind.Long, true));
        var page = new KeysetPage(keys, request.PageToken);
        where.Add(page.Predicate(sql));
        var query = $"""
            SELECT r.id, {string.Join(", ", keys.Select((k, i) => $"{k.Expression} AS s{i}"))}
            FROM runs r {string.Join(" ", sql.Joins)}
            WHERE {string.Join(" AND ", where.Where(w => w.Length > 0))}
            ORDER BY {page.OrderBy()}
            LIMIT {limit + 1}
            """;
        var (ids, next) = await page.ReadAsync(connection, query, sql, limit, cancellationToken);
        return new SearchRunsResponse(await LoadRunsAsync(connection, ids), next);
    }

    /// <summary>
    /// Metric, param and tag filters are inner joins on their (run, key) primary keys, not EXISTS: at most one
    /// row matches per run, and a join lets the planner start from the most selective index.
    /// </summary>
    private static void AddRunFilter(SqlBuilder sql, List<string> where, FilterComparison f)
    {
        var alias = $"f{sql.Joins.Count}";
        switch (f.Entity)
        {
            case FilterEntity.Metric:
                sql.Joins.Add($"JOIN latest_metrics {alias} ON {alias}.run_id = r.id AND {alias}.key = {sql.Param(f.Key)} AND {alias}.is_nan = 0 AND {sql.Compare($"{alias}.value", f, SqlKind.Double)}");
                break;
            case FilterEntity.Param:
                sql.Joins.Add($"JOIN params {alias} ON {alias}.run_id = r.id AND {alias}.key = {sql.Param(f.Key)} AND {sql.Compare($"{alias}.value", f, SqlKind.Text)}");
                break;
            case FilterEntity.Tag:
                sql.Joins.Add($"JOIN run_tags {alias} ON {alias}.run_id = r.id AND {alias}.key = {sql.Param(f.Key)} AND {sql.Compare($"{alias}.value", f, SqlKind.Text)}");
                break;
            case FilterEntity.Dataset:
                // A run may have several inputs: EXISTS keeps one row per run.
                where.Add($"EXISTS (SELECT 1 FROM run_inputs ri JOIN datasets d ON d.id = ri.dataset_id WHERE ri.run_id = r.id AND {sql.Compare(f.Key == "context" ? "ri.context" : "d." + f.Key, f, SqlKind.Text)})");
                break;
            default:
                where.Add(sql.Compare(RunAttributeColumn(f.Key), f, f.Key is "start_time" or "end_time" ? SqlKind.Long : SqlKind.Text));
                break;
        }
    }

    private static string RunAttributeColumn(string key) => key switch
    {
        "run_id" => "r.run_uuid",
        "run_name" => "r.name",
        "status" => "r.status",
        "user_id" => "r.user_id",
        "lifecycle_stage" => "r.lifecycle_stage",
        "start_time" => "r.start_time",
        "end_time" => "r.end_time",
        "artifact_uri" => "('mlflow-artifacts:/' || CAST(r.experiment_id AS TEXT) || '/' || r.run_uuid || '/artifacts')",
        _ => throw SextantException.Invalid("filter", $"Unknown run attribute '{key}'."),
    };

    private static void AddRunSortKeys(SqlBuilder sql, List<SearchSortKey> keys, OrderTerm term)
    {
        var alias = $"o{keys.Count}";
        string? joinTable = term.Entity switch
        {
            FilterEntity.Metric => "latest_metrics",
            FilterEntity.Param => "params",
            FilterEntity.Tag => "run_tags",
            _ => null,
        };
        if (joinTable is not null)
        {
            sql.Joins.Add($"LEFT JOIN {joinTable} {alias} ON {alias}.run_id = r.id AND {alias}.key = {sql.Param(term.Key)}");
            // Runs without the key sort last in either direction, as in MLflow.
            keys.Add(new SearchSortKey($"CASE WHEN {alias}.value IS NULL THEN 1 ELSE 0 END", SqlKind.Long, true));
            keys.Add(term.Entity == FilterEntity.Metric
                ? new SearchSortKey($"COALESCE({alias}.value, 0)", SqlKind.Double, term.Ascending)
                : new SearchSortKey($"COALESCE({alias}.value, '')", SqlKind.Text, term.Ascending));
            return;
        }
        var column = RunAttributeColumn(term.Key);
        if (term.Key == "end_time")
        {
            keys.Add(new SearchSortKey("CASE WHEN r.end_time IS NULL THEN 1 ELSE 0 END", SqlKind.Long, true));
            keys.Add(new SearchSortKey("COALESCE(r.end_time, 0)", SqlKind.Long, term.Ascending));
            return;
        }
        keys.Add(new SearchSortKey(column, term.Key == "start_time" ? SqlKind.Long : SqlKind.Text, term.Ascending));
    }

    /// <summary>Reads the experiment's in-memory search copy now (tests and benchmarks; searches start it themselves).</summary>
    internal Task<bool> BuildSearchIndexAsync(long experimentId, CancellationToken cancellationToken = default) =>
        writer.Index.BuildAsync(experimentId, ReadSearchIndexAsync, cancellationToken);

    private async Task<RunIndexSnapshot?> ReadSearchIndexAsync(long experimentId, long generation, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        return await RunIndex.ReadAsync(connection, experimentId, generation, writer.Index.MaxRuns, writer.Index.MaxCells, cancellationToken);
    }

    internal static string FormatId(long id) => id.ToString(CultureInfo.InvariantCulture);
}
