using System.Data.Common;
using System.Globalization;
using Dapper;
using Sextant.Contracts;
using Sextant.Core.Projects;
using Sextant.Core.Tracking;
using Sextant.Core.Tracking.Search;

namespace Sextant.Core.Registry;

public sealed partial class RegistryService
{
    /// <summary>Registered models by MLflow's filter language (name, tags) with keyset paging; name order by default.</summary>
    public async Task<SearchRegisteredModelsResponse> SearchModelsAsync(Caller caller, SearchRegistryRequest request, CancellationToken cancellationToken = default)
    {
        var limit = PageSize(request.MaxResults, DefaultModelResults, MaxModelResults);
        var sql = new SqlBuilder(database);
        var where = new List<string> { $"m.project_id = {sql.Param(caller.ProjectId)}" };
        foreach (var f in Filter(request.Filter, SearchTarget.Models))
        {
            where.Add(f.Entity == FilterEntity.Tag
                ? TagClause(sql, "registered_model_tags", "model_id", "m.id", f)
                : sql.Compare("m.name", f, SqlKind.Text));
        }
        var keys = new List<SearchSortKey>();
        foreach (var term in Order(request.OrderBy, SearchTarget.Models))
        {
            keys.Add(term.Key switch
            {
                "creation_timestamp" => new SearchSortKey("m.creation_time", SqlKind.Long, term.Ascending),
                "last_updated_timestamp" => new SearchSortKey("m.last_updated_time", SqlKind.Long, term.Ascending),
                _ => new SearchSortKey("m.name", SqlKind.Text, term.Ascending),
            });
        }
        if (keys.Count == 0)
        {
            keys.Add(new SearchSortKey("m.name", SqlKind.Text, true));
        }
        keys.Add(new SearchSortKey("m.id", SqlKind.Long, true));
        var page = new KeysetPage(keys, request.PageToken);
        where.Add(page.Predicate(sql));
        await using var connection = await database.OpenAsync(cancellationToken);
        var (ids, next) = await page.ReadAsync(connection,
            $"""
            SELECT m.id, {string.Join(", ", keys.Select((k, i) => $"{k.Expression} AS s{i}"))} FROM registered_models m
            WHERE {string.Join(" AND ", where.Where(w => w.Length > 0))} ORDER BY {page.OrderBy()} LIMIT {limit + 1}
            """,
            sql, limit, cancellationToken);
        var models = ids.Count == 0 ? [] : await LoadModelsAsync(connection, $"m.id IN ({string.Join(',', ids)})", null);
        var byId = ids.Select((id, i) => (id, i)).ToDictionary(x => x.id, x => x.i);
        return new SearchRegisteredModelsResponse(models.OrderBy(m => byId[m.Id]).Select(m => m.Model).ToList(), next);
    }

    /// <summary>Model versions by MLflow's filter language (name, run_id, source_path, version_number, tags).</summary>
    public async Task<SearchModelVersionsResponse> SearchVersionsAsync(Caller caller, SearchRegistryRequest request, CancellationToken cancellationToken = default)
    {
        var limit = PageSize(request.MaxResults, DefaultVersionResults, MaxVersionResults);
        var sql = new SqlBuilder(database);
        var where = new List<string> { $"m.project_id = {sql.Param(caller.ProjectId)}" };
        foreach (var f in Filter(request.Filter, SearchTarget.ModelVersions))
        {
            where.Add(f.Entity == FilterEntity.Tag
                ? TagClause(sql, "model_version_tags", "version_id", "v.id", f)
                : f.Key switch
                {
                    "run_id" => sql.Compare("v.run_id", f, SqlKind.Text),
                    "source_path" => sql.Compare("v.source", f, SqlKind.Text),
                    "version_number" => sql.Compare("v.version", f, SqlKind.Long),
                    _ => sql.Compare("m.name", f, SqlKind.Text),
                });
        }
        var keys = new List<SearchSortKey>();
        foreach (var term in Order(request.OrderBy, SearchTarget.ModelVersions))
        {
            keys.Add(term.Key switch
            {
                "creation_timestamp" => new SearchSortKey("v.creation_time", SqlKind.Long, term.Ascending),
                "last_updated_timestamp" => new SearchSortKey("v.last_updated_time", SqlKind.Long, term.Ascending),
                "version_number" => new SearchSortKey("v.version", SqlKind.Long, term.Ascending),
                _ => new SearchSortKey("m.name", SqlKind.Text, term.Ascending),
            });
        }
        if (keys.Count == 0)
        {
            keys.Add(new SearchSortKey("m.name", SqlKind.Text, true));
            keys.Add(new SearchSortKey("v.version", SqlKind.Long, false));
        }
        keys.Add(new SearchSortKey("v.id", SqlKind.Long, true));
        var page = new KeysetPage(keys, request.PageToken);
        where.Add(page.Predicate(sql));
        await using var connection = await database.OpenAsync(cancellationToken);
        var (ids, next) = await page.ReadAsync(connection,
            $"""
            SELECT v.id, {string.Join(", ", keys.Select((k, i) => $"{k.Expression} AS s{i}"))}
            FROM model_versions v JOIN registered_models m ON m.id = v.model_id
            WHERE {string.Join(" AND ", where.Where(w => w.Length > 0))} ORDER BY {page.OrderBy()} LIMIT {limit + 1}
            """,
            sql, limit, cancellationToken);
        if (ids.Count == 0)
        {
            return new SearchModelVersionsResponse([], next);
        }
        var order = string.Join(" ", ids.Select((id, i) => $"WHEN {id} THEN {i}"));
        var versions = await LoadVersionsAsync(connection, $"v.id IN ({string.Join(',', ids)})", null, $"CASE v.id {order} END");
        return new SearchModelVersionsResponse(versions, next);
    }

    /// <summary>
    /// A tag comparison. = LIKE ILIKE IN need the tag; != and NOT IN also match items without it, as MLflow clients
    /// expect (they add <c>tags.`mlflow.prompt.is_prompt` != 'true'</c> to every model search).
    /// </summary>
    private static string TagClause(SqlBuilder sql, string table, string owner, string ownerColumn, FilterComparison f)
    {
        if (f.Op is FilterOp.NotEq or FilterOp.NotIn)
        {
            var positive = f with { Op = f.Op == FilterOp.NotEq ? FilterOp.Eq : FilterOp.In };
            return $"NOT EXISTS (SELECT 1 FROM {table} t WHERE t.{owner} = {ownerColumn} AND t.key = {sql.Param(f.Key)} AND {sql.Compare("t.value", positive, SqlKind.Text)})";
        }
        return $"EXISTS (SELECT 1 FROM {table} t WHERE t.{owner} = {ownerColumn} AND t.key = {sql.Param(f.Key)} AND {sql.Compare("t.value", f, SqlKind.Text)})";
    }

    // The same parsing and limits (clauses, IN lists, value lengths, order terms) as run and experiment search.
    private IReadOnlyList<FilterComparison> Filter(string? filter, SearchTarget target) => tracking.ParseFilter(filter, target);

    private IReadOnlyList<OrderTerm> Order(IReadOnlyList<string>? orderBy, SearchTarget target) => tracking.ParseOrder(orderBy, target);

    private static int PageSize(long? requested, int fallback, int max) =>
        requested is null or 0 ? fallback
            : requested < 0 || requested > max
                ? throw SextantException.Invalid("max_results", $"'max_results' must be between 1 and {max}; got {requested}.")
                : (int)requested.Value;

    private static async Task<List<(long Id, RegisteredModel Model)>> LoadModelsAsync(DbConnection connection, string where, object? parameters)
    {
        var rows = (await connection.QueryAsync<(long Id, string Name, string Description, long Created, long Updated)>(
            $"SELECT m.id, m.name, m.description, m.creation_time, m.last_updated_time FROM registered_models m WHERE {where}", parameters)).ToList();
        if (rows.Count == 0)
        {
            return [];
        }
        var ids = string.Join(',', rows.Select(r => r.Id));
        var tags = (await connection.QueryAsync<(long ModelId, string Key, string Value)>(
                $"SELECT model_id, key, value FROM registered_model_tags WHERE model_id IN ({ids}) ORDER BY key"))
            .ToLookup(t => t.ModelId, t => new KeyValue(t.Key, t.Value));
        var aliases = (await connection.QueryAsync<(long ModelId, string Alias, long Version)>(
                $"SELECT model_id, alias, version FROM model_aliases WHERE model_id IN ({ids}) ORDER BY alias"))
            .ToLookup(a => a.ModelId, a => new RegisteredModelAlias(a.Alias, a.Version.ToString(CultureInfo.InvariantCulture)));
        var latest = (await LoadVersionsAsync(connection,
                $"v.model_id IN ({ids}) AND v.version = (SELECT MAX(x.version) FROM model_versions x WHERE x.model_id = v.model_id)", null, "v.version"))
            .ToDictionary(v => v.Name);
        return rows.Select(r => (r.Id, new RegisteredModel(r.Name, r.Created, r.Updated, r.Description,
            latest.TryGetValue(r.Name, out var v) ? [v] : [], tags[r.Id].ToList(), aliases[r.Id].ToList()))).ToList();
    }

    private static async Task<List<ModelVersion>> LoadVersionsAsync(DbConnection connection, string where, object? parameters, string orderBy)
    {
        var rows = (await connection.QueryAsync<(long Id, long ModelId, string Name, long Version, string Source, string? RunId, string? RunLink, string Description, string Status, string UserId, long Created, long Updated, string? Flavor, string? Signature)>(
            $"""
            SELECT v.id, v.model_id, m.name, v.version, v.source, v.run_id, v.run_link, v.description, v.status, v.user_id, v.creation_time, v.last_updated_time, v.flavor, v.signature
            FROM model_versions v JOIN registered_models m ON m.id = v.model_id WHERE {where} ORDER BY {orderBy}
            """,
            parameters)).ToList();
        if (rows.Count == 0)
        {
            return [];
        }
        var tags = (await connection.QueryAsync<(long VersionId, string Key, string Value)>(
                $"SELECT version_id, key, value FROM model_version_tags WHERE version_id IN ({string.Join(',', rows.Select(r => r.Id))}) ORDER BY key"))
            .ToLookup(t => t.VersionId, t => new KeyValue(t.Key, t.Value));
        var aliases = (await connection.QueryAsync<(long ModelId, string Alias, long Version)>(
                $"SELECT model_id, alias, version FROM model_aliases WHERE model_id IN ({string.Join(',', rows.Select(r => r.ModelId).Distinct())}) ORDER BY alias"))
            .ToLookup(a => (a.ModelId, a.Version), a => a.Alias);
        return rows.Select(r => new ModelVersion(r.Name, r.Version.ToString(CultureInfo.InvariantCulture), r.Created, r.Updated, NoStage, r.Description,
            r.Source, r.RunId, r.Status, tags[r.Id].ToList(), r.RunLink, aliases[(r.ModelId, r.Version)].ToList(), r.UserId,
            r.Flavor, r.Signature is null ? null : System.Text.Json.JsonSerializer.Deserialize(r.Signature, SextantJsonContext.Default.ModelSignature))).ToList();
    }
}
