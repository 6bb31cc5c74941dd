using System.Data.Common;
using System.Globalization;
using Dapper;
using Sextant.Contracts;
using Sextant.Core.Projects;
using Sextant.Core.Storage;
using Sextant.Core.Tracking.Search;

namespace Sextant.Core.Tracking;

public sealed partial class TrackingService
{
    public async Task<string> CreateExperimentAsync(Caller caller, CreateExperimentRequest request, CancellationToken cancellationToken = default)
    {
        caller.Require(Role.Editor);
        var name = ExperimentName(request.Name, "name");
        var tags = TrackingValidation.KeyValues(request.Tags?.Select(t => new KeyValueInput(t?.Key, t?.Value)).ToList(), "tags", options.MaxTagValueLength, options);
        await using var connection = await database.OpenAsync(cancellationToken);
        await using var transaction = await SextantDatabase.BeginWriteAsync(connection, cancellationToken);
        var existing = await connection.QuerySingleOrDefaultAsync<string?>(
            "SELECT lifecycle_stage FROM experiments WHERE project_id = @project AND name = @name",
            new { project = caller.ProjectId, name }, transaction);
        if (existing is not null)
        {
            throw SextantException.AlreadyExists(existing == Deleted
                ? $"Experiment '{name}' already exists in deleted state. Restore it or choose another name."
                : $"Experiment '{name}' already exists.", "name");
        }
        var now = Clock.NowMs();
        var location = string.IsNullOrEmpty(request.ArtifactLocation) ? null : TrackingValidation.Value(request.ArtifactLocation, "artifact_location", 2048);
        // ON CONFLICT inside: two clients creating the same name at once (PostgreSQL's read committed) get ALREADY_EXISTS, not a 500.
        var id = await ExperimentRows.InsertAsync(connection, transaction, caller.ProjectId, name, location, now)
            ?? throw SextantException.AlreadyExists($"Experiment '{name}' already exists.", "name");
        foreach (var tag in tags)
        {
            await connection.ExecuteAsync(
                "INSERT INTO experiment_tags (experiment_id, key, value) VALUES (@id, @Key, @Value) ON CONFLICT (experiment_id, key) DO UPDATE SET value = excluded.value",
                new { id, tag.Key, tag.Value }, transaction);
        }
        await transaction.CommitAsync(cancellationToken);
        return id.ToString(CultureInfo.InvariantCulture);
    }

    public async Task<Experiment> GetExperimentAsync(Caller caller, string? experimentId, CancellationToken cancellationToken = default)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        var id = await ExperimentIdAsync(connection, caller, experimentId, "experiment_id");
        var rows = await LoadExperimentsAsync(connection, "e.id = @id AND e.project_id = @project", new { id, project = caller.ProjectId });
        return rows.Count == 1 ? rows[0] : throw SextantException.NotFound($"No experiment with id={experimentId} exists.");
    }

    public async Task<Experiment> GetExperimentByNameAsync(Caller caller, string? name, CancellationToken cancellationToken = default)
    {
        if (string.IsNullOrEmpty(name))
        {
            throw SextantException.Missing("experiment_name");
        }
        TrackingValidation.NoNul(name, "experiment_name");
        await using var connection = await database.OpenAsync(cancellationToken);
        var rows = await LoadExperimentsAsync(connection, "e.name = @name AND e.project_id = @project", new { name, project = caller.ProjectId });
        return rows.Count == 1 ? rows[0] : throw SextantException.NotFound($"Could not find experiment with name '{name}'.");
    }

    public async Task RenameExperimentAsync(Caller caller, string? experimentId, string? newName, CancellationToken cancellationToken = default)
    {
        caller.Require(Role.Editor);
        var name = ExperimentName(newName, "new_name");
        await using var connection = await database.OpenAsync(cancellationToken);
        var (id, stage) = await ExperimentStateAsync(connection, caller, experimentId);
        if (stage != Active)
        {
            throw SextantException.Invalid("experiment_id", $"Cannot rename a non-active experiment (id={experimentId}).");
        }
        // The unique (project, name) constraint is the check: another experiment of that name makes the update fail.
        try
        {
            await connection.ExecuteAsync(
                "UPDATE experiments SET name = @name, last_update_time = @now WHERE id = @id AND project_id = @project",
                new { name, now = Clock.NowMs(), id, project = caller.ProjectId });
        }
        catch (DbException e) when (SextantDatabase.IsUniqueViolation(e))
        {
            throw SextantException.AlreadyExists($"Experiment '{name}' already exists.", "new_name");
        }
    }

    /// <summary>Marks the experiment and its runs deleted (MLflow's soft delete); restore undoes it.</summary>
    public Task DeleteExperimentAsync(Caller caller, string? experimentId, CancellationToken cancellationToken = default) =>
        SetExperimentLifecycleAsync(caller, experimentId, Deleted, cancellationToken);

    public Task RestoreExperimentAsync(Caller caller, string? experimentId, CancellationToken cancellationToken = default) =>
        SetExperimentLifecycleAsync(caller, experimentId, Active, cancellationToken);

    private async Task SetExperimentLifecycleAsync(Caller caller, string? experimentId, string stage, CancellationToken cancellationToken)
    {
        caller.Require(Role.Editor);
        await using var connection = await database.OpenAsync(cancellationToken);
        var id = await ExperimentIdAsync(connection, caller, experimentId, "experiment_id");
        await using var transaction = await SextantDatabase.BeginWriteAsync(connection, cancellationToken);
        var changed = await connection.ExecuteAsync(
            "UPDATE experiments SET lifecycle_stage = @stage, last_update_time = @now WHERE id = @id AND project_id = @project",
            new { stage, now = Clock.NowMs(), id, project = caller.ProjectId }, transaction);
        if (changed == 0)
        {
            throw SextantException.NotFound($"No experiment with id={experimentId} exists.");
        }
        await connection.ExecuteAsync("UPDATE runs SET lifecycle_stage = @stage WHERE experiment_id = @id", new { stage, id }, transaction);
        await CommitAsync(transaction, cancellationToken);
    }

    public async Task SetExperimentTagAsync(Caller caller, string? experimentId, string? key, string? value, CancellationToken cancellationToken = default)
    {
        caller.Require(Role.Editor);
        var tagKey = TrackingValidation.Key(key, "key", options);
        var tagValue = TrackingValidation.Value(value, "value", options.MaxTagValueLength);
        await using var connection = await database.OpenAsync(cancellationToken);
        var (id, _) = await ExperimentStateAsync(connection, caller, experimentId);
        await connection.ExecuteAsync(
            "INSERT INTO experiment_tags (experiment_id, key, value) VALUES (@id, @tagKey, @tagValue) ON CONFLICT (experiment_id, key) DO UPDATE SET value = excluded.value",
            new { id, tagKey, tagValue });
    }

    public async Task<SearchExperimentsResponse> SearchExperimentsAsync(Caller caller, SearchExperimentsRequest request, CancellationToken cancellationToken = default)
    {
        var limit = PageSize(request.MaxResults, "max_results");
        var filters = ParseFilter(request.Filter, SearchTarget.Experiments);
        var order = ParseOrder(request.OrderBy, SearchTarget.Experiments);
        var sql = new SqlBuilder(database);
        var where = new List<string> { $"e.project_id = {sql.Param(caller.ProjectId)}", LifecycleClause("e", request.ViewType, "view_type") };
        foreach (var f in filters)
        {
            where.Add(f.Entity == FilterEntity.Tag
                ? $"EXISTS (SELECT 1 FROM experiment_tags t WHERE t.experiment_id = e.id AND t.key = {sql.Param(f.Key)} AND {sql.Compare("t.value", f, SqlKind.Text)})"
                : sql.Compare(f.Key switch { "name" => "e.name", "creation_time" => "e.creation_time", _ => "e.last_update_time" }, f, f.Key == "name" ? SqlKind.Text : SqlKind.Long));
        }
        var keys = new List<SearchSortKey>();
        foreach (var term in order)
        {
            if (term.Entity == FilterEntity.Tag)
            {
                var alias = $"ot{keys.Count}";
                sql.Joins.Add($"LEFT JOIN experiment_tags {alias} ON {alias}.experiment_id = e.id AND {alias}.key = {sql.Param(term.Key)}");
                keys.Add(new SearchSortKey($"CASE WHEN {alias}.value IS NULL THEN 1 ELSE 0 END", SqlKind.Long, true));
                keys.Add(new SearchSortKey($"COALESCE({alias}.value, '')", SqlKind.Text, term.Ascending));
            }
            else
            {
                keys.Add(term.Key switch
                {
                    "name" => new SearchSortKey("e.name", SqlKind.Text, term.Ascending),
                    "creation_time" => new SearchSortKey("e.creation_time", SqlKind.Long, term.Ascending),
                    "last_update_time" => new SearchSortKey("e.last_update_time", SqlKind.Long, term.Ascending),
                    _ => new SearchSortKey("e.id", SqlKind.Long, term.Ascending),
                });
            }
        }
        if (keys.Count == 0)
        {
            keys.Add(new SearchSortKey("e.creation_time", SqlKind.Long, false));
        }
        keys.Add(new SearchSortKey("e.id", SqlKind.Long, true));
        var page = new KeysetPage(keys, request.PageToken);
        where.Add(page.Predicate(sql));
        var query = $"""
            SELECT e.id, {string.Join(", ", keys.Select((k, i) => $"{k.Expression} AS s{i}"))}
            FROM experiments e {string.Join(" ", sql.Joins)}
            WHERE {string.Join(" AND ", where.Where(w => w.Length > 0))}
            ORDER BY {page.OrderBy()}
            LIMIT {limit + 1}
            """;
        await using var connection = await database.OpenAsync(cancellationToken);
        var (ids, next) = await page.ReadAsync(connection, query, sql, limit, cancellationToken);
        if (ids.Count == 0)
        {
            return new SearchExperimentsResponse([], null);
        }
        var experiments = await LoadExperimentsAsync(connection, $"e.id IN ({string.Join(',', ids)})", null);
        var byId = experiments.ToDictionary(e => e.ExperimentId);
        return new SearchExperimentsResponse(ids.Select(id => byId[id.ToString(CultureInfo.InvariantCulture)]).ToList(), next);
    }

    /// <summary>
    /// Parses an experiment id. MLflow clients that never chose an experiment send "0"; in a project other than
    /// <c>default</c> that means the project's own Default experiment (the first one it was created with).
    /// </summary>
    private async Task<long> ExperimentIdAsync(DbConnection connection, Caller caller, string? experimentId, string field)
    {
        var id = TrackingValidation.ExperimentId(experimentId, field);
        if (id != 0 || caller.ProjectId == 1)
        {
            return id;
        }
        if (!_defaultExperiments.TryGetValue(caller.ProjectId, out var mapped))
        {
            mapped = await connection.ExecuteScalarAsync<long?>("SELECT MIN(id) FROM experiments WHERE project_id = @project", new { project = caller.ProjectId }) ?? 0;
            _defaultExperiments[caller.ProjectId] = mapped;
        }
        return mapped;
    }

    /// <summary>The id and lifecycle stage of one of the caller's experiments, without loading the whole experiment.</summary>
    private async Task<(long Id, string Stage)> ExperimentStateAsync(DbConnection connection, Caller caller, string? experimentId)
    {
        var id = await ExperimentIdAsync(connection, caller, experimentId, "experiment_id");
        var stage = await connection.QuerySingleOrDefaultAsync<string?>(
            "SELECT lifecycle_stage FROM experiments WHERE id = @id AND project_id = @project", new { id, project = caller.ProjectId });
        return stage is null ? throw SextantException.NotFound($"No experiment with id={experimentId} exists.") : (id, stage);
    }

    private string ExperimentName(string? name, string field)
    {
        if (string.IsNullOrWhiteSpace(name))
        {
            throw SextantException.Missing(field);
        }
        if (name.Length > options.MaxExperimentNameLength)
        {
            throw SextantException.Invalid(field, $"Experiment name is {name.Length} characters long; the limit is {options.MaxExperimentNameLength}.");
        }
        return TrackingValidation.NoNul(name, field);
    }

    private static async Task<List<Experiment>> LoadExperimentsAsync(DbConnection connection, string where, object? parameters)
    {
        var rows = (await connection.QueryAsync<(long Id, string Name, string ArtifactLocation, string LifecycleStage, long CreationTime, long LastUpdateTime)>(
            $"SELECT e.id, e.name, e.artifact_location, e.lifecycle_stage, e.creation_time, e.last_update_time FROM experiments e WHERE {where}",
            parameters)).ToList();
        if (rows.Count == 0)
        {
            return [];
        }
        var tags = (await connection.QueryAsync<(long ExperimentId, string Key, string Value)>(
                $"SELECT experiment_id, key, value FROM experiment_tags WHERE experiment_id IN ({string.Join(',', rows.Select(r => r.Id))}) ORDER BY key"))
            .ToLookup(t => t.ExperimentId, t => new KeyValue(t.Key, t.Value));
        return rows.Select(r => new Experiment(
            r.Id.ToString(CultureInfo.InvariantCulture), r.Name, r.ArtifactLocation, r.LifecycleStage, r.CreationTime, r.LastUpdateTime, tags[r.Id].ToList())).ToList();
    }

    private int PageSize(long? requested, string field)
    {
        if (requested is null or 0)
        {
            return options.DefaultSearchResults;
        }
        if (requested < 0 || requested > options.MaxSearchResults)
        {
            throw SextantException.Invalid(field, $"'{field}' must be between 1 and {options.MaxSearchResults}; got {requested}.");
        }
        return (int)requested.Value;
    }

    private static string LifecycleClause(string alias, string? viewType, string field) => (viewType ?? "ACTIVE_ONLY").ToUpperInvariant() switch
    {
        "ACTIVE_ONLY" or "1" => $"{alias}.lifecycle_stage = 'active'",
        "DELETED_ONLY" or "2" => $"{alias}.lifecycle_stage = 'deleted'",
        "ALL" or "3" => "",
        _ => throw SextantException.Invalid(field, $"'{field}' must be ACTIVE_ONLY, DELETED_ONLY or ALL; got '{viewType}'."),
    };

    internal IReadOnlyList<FilterComparison> ParseFilter(string? filter, SearchTarget target)
    {
        if (filter is not null)
        {
            TrackingValidation.NoNul(filter, "filter");
        }
        IReadOnlyList<FilterComparison> comparisons;
        try
        {
            comparisons = SearchFilterParser.Parse(filter, target);
        }
        catch (SearchSyntaxException e)
        {
            throw SextantException.Invalid("filter", e.Message);
        }
        if (comparisons.Count > options.MaxFilterClauses)
        {
            throw SextantException.Invalid("filter", $"A filter may have at most {options.MaxFilterClauses} comparisons; this one has {comparisons.Count}.");
        }
        if (comparisons.FirstOrDefault(c => (c.Value.Text?.Length ?? 0) > options.MaxFilterValueLength || (c.Value.List?.Any(v => v.Length > options.MaxFilterValueLength) ?? false)) is { } longValue)
        {
            throw SextantException.Invalid("filter", $"A filter value may be at most {options.MaxFilterValueLength} characters; the one at position {longValue.Position} is longer.");
        }
        if (comparisons.FirstOrDefault(c => c.Value.List?.Count > options.MaxInListValues) is { } longList)
        {
            throw SextantException.Invalid("filter", $"An IN list may have at most {options.MaxInListValues} values; the one at position {longList.Position} has {longList.Value.List!.Count}.");
        }
        return comparisons;
    }

    internal IReadOnlyList<OrderTerm> ParseOrder(IReadOnlyList<string>? orderBy, SearchTarget target)
    {
        if (orderBy?.Count > options.MaxOrderByTerms)
        {
            throw SextantException.Invalid("order_by", $"order_by may have at most {options.MaxOrderByTerms} terms; this one has {orderBy.Count}.");
        }
        foreach (var term in orderBy ?? [])
        {
            TrackingValidation.Value(term, "order_by", 500);
        }
        try
        {
            return SearchOrderParser.Parse(orderBy, target);
        }
        catch (SearchSyntaxException e)
        {
            throw SextantException.Invalid("order_by", e.Message);
        }
    }
}
