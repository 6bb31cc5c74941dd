using System.Data.Common;
using System.Globalization;
using System.Text.Json;
using Dapper;
using Sextant.Contracts;
using Sextant.Core.Projects;
using Sextant.Core.Storage;

namespace Sextant.Core.Tracking;

public sealed partial class TrackingService
{
    private static readonly HashSet<string> RunStatuses = ["RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED"];

    public async Task<Run> CreateRunAsync(Caller caller, CreateRunRequest request, CancellationToken cancellationToken = default)
    {
        caller.Require(Role.Editor);
        await using var connection = await database.OpenAsync(cancellationToken);
        var (experimentId, stage) = await ExperimentStateAsync(connection, caller, request.ExperimentId);
        if (stage != Active)
        {
            throw SextantException.Invalid("experiment_id", $"The experiment {experimentId} must be in the 'active' state to create runs; it is '{stage}'.");
        }
        var tags = TrackingValidation.KeyValues(request.Tags?.Select(t => new KeyValueInput(t?.Key, t?.Value)).ToList(), "tags", options.MaxTagValueLength, options).ToList();
        var nameTag = tags.FirstOrDefault(t => t.Key == RunNameTag)?.Value;
        if (request.RunName is { Length: > 0 } && nameTag is not null && nameTag != request.RunName)
        {
            throw SextantException.Invalid("run_name", $"Both 'run_name' ('{request.RunName}') and the '{RunNameTag}' tag ('{nameTag}') were given with different values.");
        }
        var name = request.RunName is { Length: > 0 } ? request.RunName : nameTag ?? RunNames.Next();
        TrackingValidation.Value(name, "run_name", options.MaxTagValueLength);
        tags.RemoveAll(t => t.Key == RunNameTag);
        tags.Add(new KeyValue(RunNameTag, name));
        var uuid = Guid.NewGuid().ToString("N");
        var start = request.StartTime ?? Clock.NowMs();
        await using var transaction = await SextantDatabase.BeginWriteAsync(connection, cancellationToken);
        var id = await connection.QuerySingleAsync<long>(
            """
            INSERT INTO runs (run_uuid, project_id, experiment_id, name, user_id, status, start_time, lifecycle_stage)
            VALUES (@uuid, @project, @experimentId, @name, @user, 'RUNNING', @start, 'active') RETURNING id
            """,
            new { uuid, project = caller.ProjectId, experimentId, name, user = TrackingValidation.Value(request.UserId ?? "", "user_id", 256), start }, transaction);
        foreach (var tag in tags)
        {
            await connection.ExecuteAsync(
                "INSERT INTO run_tags (run_id, key, value) VALUES (@id, @Key, @Value) ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value",
                new { id, tag.Key, tag.Value }, transaction);
        }
        await CommitAsync(transaction, cancellationToken);
        return (await LoadRunsAsync(connection, [id]))[0];
    }

    public async Task<Run> GetRunAsync(Caller caller, string? runId, CancellationToken cancellationToken = default)
    {
        var id = TrackingValidation.RunId(runId);
        await using var connection = await database.OpenAsync(cancellationToken);
        var pk = await connection.QuerySingleOrDefaultAsync<long?>(
            "SELECT id FROM runs WHERE run_uuid = @id AND project_id = @project", new { id, project = caller.ProjectId });
        return pk is null ? throw RunNotFound(id) : (await LoadRunsAsync(connection, [pk.Value]))[0];
    }

    public async Task<RunInfo> UpdateRunAsync(Caller caller, UpdateRunRequest request, CancellationToken cancellationToken = default)
    {
        caller.Require(Role.Editor);
        var run = await ResolveRunAsync(caller, TrackingValidation.RunId(request.RunId, request.RunUuid), requireActive: true, cancellationToken);
        if (request.Status is { } status && !RunStatuses.Contains(status))
        {
            throw SextantException.Invalid("status", $"Run status '{status}' is unknown: use one of {string.Join(", ", RunStatuses)}.");
        }
        if (request.RunName is { } runName)
        {
            TrackingValidation.Value(runName, "run_name", options.MaxTagValueLength);
        }
        await using var connection = await database.OpenAsync(cancellationToken);
        await using var transaction = await SextantDatabase.BeginWriteAsync(connection, cancellationToken);
        await connection.ExecuteAsync(
            """
            UPDATE runs SET status = COALESCE(@status, status), end_time = COALESCE(@end, end_time), name = COALESCE(@name, name)
            WHERE id = @id
            """,
            new { status = request.Status, end = request.EndTime, name = request.RunName is { Length: > 0 } ? request.RunName : null, id = run.Id }, transaction);
        if (request.RunName is { Length: > 0 })
        {
            await connection.ExecuteAsync(
                "INSERT INTO run_tags (run_id, key, value) VALUES (@id, @key, @value) ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value",
                new { id = run.Id, key = RunNameTag, value = request.RunName }, transaction);
        }
        await CommitAsync(transaction, cancellationToken);
        return (await LoadRunsAsync(connection, [run.Id]))[0].Info;
    }

    public Task DeleteRunAsync(Caller caller, string? runId, CancellationToken cancellationToken = default) =>
        SetRunLifecycleAsync(caller, runId, Deleted, cancellationToken);

    public Task RestoreRunAsync(Caller caller, string? runId, CancellationToken cancellationToken = default) =>
        SetRunLifecycleAsync(caller, runId, Active, cancellationToken);

    private async Task SetRunLifecycleAsync(Caller caller, string? runId, string stage, CancellationToken cancellationToken)
    {
        caller.Require(Role.Editor);
        var run = await ResolveRunAsync(caller, TrackingValidation.RunId(runId), requireActive: false, cancellationToken);
        await using var connection = await database.OpenAsync(cancellationToken);
        try
        {
            await connection.ExecuteAsync("UPDATE runs SET lifecycle_stage = @stage WHERE id = @id", new { stage, id = run.Id });
        }
        finally
        {
            writer.Index.Changed();
        }
    }

    /// <summary>Logs metrics, params and tags atomically through the group-commit writer.</summary>
    /// <param name="idempotencyKey">The client's key for this request (the Idempotency-Key header): a retry with the same key is not applied twice.</param>
    public async Task LogBatchAsync(Caller caller, LogBatchRequest request, string? idempotencyKey = null, CancellationToken cancellationToken = default)
    {
        caller.Require(Role.Editor);
        if (idempotencyKey is not null && (idempotencyKey.Length is 0 or > 128 || !idempotencyKey.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' or ':')))
        {
            throw SextantException.Invalid("Idempotency-Key", "The Idempotency-Key header must be 1-128 characters of letters, digits, '-', '_', '.' or ':'.");
        }
        var runId = TrackingValidation.RunId(request.RunId);
        TrackingValidation.BatchSize(request, options);
        var metrics = TrackingValidation.Metrics(request.Metrics, options);
        var parameters = TrackingValidation.Params(request.Params, options);
        var tags = TrackingValidation.KeyValues(request.Tags, "tags", options.MaxTagValueLength, options);
        var run = await ResolveRunAsync(caller, runId, requireActive: true, cancellationToken);
        if (metrics.Length + parameters.Length + tags.Length == 0)
        {
            return;
        }
        await writer.WriteAsync(new TrackingWrite(run.Id, run.Uuid, metrics, parameters, tags, idempotencyKey), cancellationToken);
    }

    public async Task DeleteTagAsync(Caller caller, string? runId, string? key, CancellationToken cancellationToken = default)
    {
        caller.Require(Role.Editor);
        var tagKey = TrackingValidation.Key(key, "key", options);
        var run = await ResolveRunAsync(caller, TrackingValidation.RunId(runId), requireActive: true, cancellationToken);
        await using var connection = await database.OpenAsync(cancellationToken);
        int deleted;
        try
        {
            deleted = await connection.ExecuteAsync("DELETE FROM run_tags WHERE run_id = @id AND key = @tagKey", new { id = run.Id, tagKey });
        }
        finally
        {
            writer.Index.Changed();
        }
        if (deleted == 0)
        {
            throw SextantException.NotFound($"No tag with name '{tagKey}' in run with id {run.Uuid}.");
        }
    }

    public async Task LogInputsAsync(Caller caller, LogInputsRequest request, CancellationToken cancellationToken = default)
    {
        caller.Require(Role.Editor);
        var run = await ResolveRunAsync(caller, TrackingValidation.RunId(request.RunId), requireActive: true, cancellationToken);
        var inputs = request.Datasets ?? [];
        for (var i = 0; i < inputs.Count; i++)
        {
            var field = $"datasets[{i}]";
            var dataset = inputs[i]?.Dataset ?? throw SextantException.Missing($"{field}.dataset");
            if (await DatasetVersionReferenceAsync(caller, dataset, $"{field}.dataset.source", cancellationToken) is { } versioned)
            {
                dataset = versioned;
                inputs = [.. inputs.Select((input, j) => j == i ? input with { Dataset = versioned } : input)];
            }
            TrackingValidation.Value(dataset.Name, $"{field}.dataset.name", 500);
            TrackingValidation.Value(dataset.Digest, $"{field}.dataset.digest", 36);
            TrackingValidation.Value(dataset.SourceType, $"{field}.dataset.source_type", 36);
            TrackingValidation.Value(dataset.Source, $"{field}.dataset.source", 65535);
            // MLflow's limits for a dataset's schema and profile.
            if (dataset.Schema is not null)
            {
                TrackingValidation.Value(dataset.Schema, $"{field}.dataset.schema", 1_048_575);
            }
            if (dataset.Profile is not null)
            {
                TrackingValidation.Value(dataset.Profile, $"{field}.dataset.profile", 16_384);
            }
            if (dataset.Name.Length == 0 || dataset.Digest.Length == 0)
            {
                throw SextantException.Invalid($"{field}.dataset", $"{field}.dataset needs a non-empty name and digest.");
            }
            TrackingValidation.KeyValues(inputs[i].Tags?.Select(t => new KeyValueInput(t?.Key, t?.Value)).ToList(), $"{field}.tags", options.MaxTagValueLength, options);
        }
        await using var connection = await database.OpenAsync(cancellationToken);
        await using var transaction = await SextantDatabase.BeginWriteAsync(connection, cancellationToken);
        foreach (var input in inputs)
        {
            var d = input.Dataset;
            // Insert-or-ignore first: parallel runs logging the same dataset must not collide on its unique key.
            await connection.ExecuteAsync(
                """
                INSERT INTO datasets (experiment_id, name, digest, source_type, source, schema, profile)
                VALUES (@experiment, @Name, @Digest, @SourceType, @Source, @Schema, @Profile)
                ON CONFLICT (experiment_id, name, digest) DO NOTHING
                """,
                new { experiment = run.ExperimentId, d.Name, d.Digest, d.SourceType, d.Source, d.Schema, d.Profile }, transaction);
            var datasetId = await connection.QuerySingleAsync<long>(
                "SELECT id FROM datasets WHERE experiment_id = @experiment AND name = @Name AND digest = @Digest",
                new { experiment = run.ExperimentId, d.Name, d.Digest }, transaction);
            var tags = input.Tags?.ToList() ?? [];
            await connection.ExecuteAsync(
                """
                INSERT INTO run_inputs (run_id, dataset_id, context, tags_json) VALUES (@run, @datasetId, @context, @tags)
                ON CONFLICT (run_id, dataset_id) DO UPDATE SET context = excluded.context, tags_json = excluded.tags_json
                """,
                new
                {
                    run = run.Id,
                    datasetId,
                    context = tags.FirstOrDefault(t => t.Key == "mlflow.data.context")?.Value,
                    tags = JsonSerializer.Serialize(tags, CoreJsonContext.Default.ListKeyValue),
                },
                transaction);
        }
        await CommitAsync(transaction, cancellationToken);
    }

    /// <summary>
    /// A run input that names a Sextant dataset version (source type "sextant", or a source that is, or holds as its
    /// "uri" or "url", datasets:/name@version) is recorded against that version: its source becomes the canonical
    /// datasets:/name@N and its digest the version's, so lineage and the dataset pages find the run.
    /// </summary>
    private async Task<Dataset?> DatasetVersionReferenceAsync(Caller caller, Dataset dataset, string field, CancellationToken cancellationToken)
    {
        var source = dataset.Source ?? "";
        string? candidate = null;
        if (source.StartsWith("datasets:/", StringComparison.Ordinal))
        {
            candidate = source;
        }
        else if (source.TrimStart().StartsWith('{'))
        {
            // MLflow writes a source as JSON, e.g. {"url": "..."} or {"uri": "..."}: only those fields count.
            try
            {
                using var json = JsonDocument.Parse(source);
                foreach (var property in new[] { "uri", "url" })
                {
                    if (json.RootElement.ValueKind == JsonValueKind.Object && json.RootElement.TryGetProperty(property, out var value)
                        && value.ValueKind == JsonValueKind.String && value.GetString()!.StartsWith("datasets:/", StringComparison.Ordinal))
                    {
                        candidate = value.GetString();
                        break;
                    }
                }
            }
            catch (JsonException)
            {
                // Not JSON after all: an ordinary source.
            }
        }
        var match = candidate is null ? null : DatasetUriPattern().Match(candidate);
        if (match is not { Success: true })
        {
            // datasets:/name/digest is how lineage names a dataset MLflow logged: an ordinary source, unless the
            // caller said it is a Sextant version.
            return dataset.SourceType == "sextant"
                ? throw SextantException.Invalid(field, $"A dataset of source type 'sextant' names its version as datasets:/<name>@<version>; got '{(source.Length > 200 ? source[..200] : source)}'.")
                : null;
        }
        var name = match.Groups["name"].Value;
        var version = match.Groups["version"].Success ? match.Groups["version"].Value : null;
        var number = Datasets.DatasetService.VersionSpec(version, field);
        await using var connection = await database.OpenAsync(cancellationToken);
        var found = await connection.QuerySingleOrDefaultAsync<(long Version, string Digest)?>(
            $"""
            SELECT v.version, v.digest FROM dataset_versions v JOIN versioned_datasets d ON d.id = v.dataset_id
            WHERE d.project_id = @project AND d.name = @name {(number is null ? "" : "AND v.version = @number")} ORDER BY v.version DESC LIMIT 1
            """,
            new { project = caller.ProjectId, name, number });
        if (found is not { } resolved)
        {
            throw SextantException.Invalid(field, $"No dataset version '{match.Value}' in this project.");
        }
        return dataset with
        {
            Name = string.IsNullOrEmpty(dataset.Name) ? name : dataset.Name,
            // One digest per version (not per content): two versions with the same files stay two inputs.
            Digest = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(
                System.Text.Encoding.UTF8.GetBytes($"datasets:/{name}@{resolved.Version.ToString(CultureInfo.InvariantCulture)}\n{resolved.Digest}")))[..32],
            SourceType = "sextant",
            Source = $"datasets:/{name}@{resolved.Version.ToString(CultureInfo.InvariantCulture)}",
        };
    }

    [System.Text.RegularExpressions.GeneratedRegex(@"^datasets:/(?<name>[A-Za-z0-9][A-Za-z0-9._\-]{0,199})(@(?<version>[A-Za-z0-9]+))?\z")]
    private static partial System.Text.RegularExpressions.Regex DatasetUriPattern();

    public async Task<MetricHistoryResponse> GetMetricHistoryAsync(Caller caller, string? runId, string? metricKey, long? maxResults, string? pageToken, CancellationToken cancellationToken = default)
    {
        var key = string.IsNullOrEmpty(metricKey) ? throw SextantException.Missing("metric_key") : TrackingValidation.NoNul(metricKey, "metric_key");
        var run = await ResolveRunAsync(caller, TrackingValidation.RunId(runId), requireActive: false, cancellationToken);
        var limit = maxResults is null or 0 ? options.MaxHistoryPageSize
            : maxResults < 0 || maxResults > options.MaxHistoryPageSize
                ? throw SextantException.Invalid("max_results", $"'max_results' must be between 1 and {options.MaxHistoryPageSize}; got {maxResults}.")
                : (int)maxResults.Value;
        long afterStep = long.MinValue, afterId = long.MinValue;
        if (!string.IsNullOrEmpty(pageToken))
        {
            var values = PageToken.Decode(pageToken, 2);
            if (!long.TryParse(values[0], CultureInfo.InvariantCulture, out afterStep) || !long.TryParse(values[1], CultureInfo.InvariantCulture, out afterId))
            {
                throw SextantException.Invalid("page_token", "Invalid page_token for metric history.");
            }
        }
        await using var connection = await database.OpenAsync(cancellationToken);
        var rows = (await connection.QueryAsync<(long Id, double Value, long IsNan, long Step, long Timestamp)>(
            $"""
            SELECT id, value, is_nan, step, timestamp FROM metrics
            WHERE run_id = @run AND key = @key AND (step > @afterStep OR (step = @afterStep AND id > @afterId))
            ORDER BY step, id LIMIT {limit + 1}
            """,
            new { run = run.Id, key, afterStep, afterId })).ToList();
        string? next = null;
        if (rows.Count > limit)
        {
            rows.RemoveAt(limit);
            next = PageToken.Encode([rows[^1].Step.ToString(CultureInfo.InvariantCulture), rows[^1].Id.ToString(CultureInfo.InvariantCulture)]);
        }
        return new MetricHistoryResponse(rows.Select(r => new Metric(key, r.IsNan != 0 ? double.NaN : r.Value, r.Timestamp, r.Step)).ToList(), next);
    }

    /// <summary>Commits a tracking write and marks the in-memory search copies stale, whatever the outcome.</summary>
    private async Task CommitAsync(System.Data.Common.DbTransaction transaction, CancellationToken cancellationToken)
    {
        try
        {
            await transaction.CommitAsync(cancellationToken);
        }
        finally
        {
            writer.Index.Changed();
        }
    }

    internal sealed record RunRef(long Id, string Uuid, long ExperimentId, string LifecycleStage);

    internal async Task<RunRef> ResolveRunAsync(Caller caller, string runId, bool requireActive, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        var row = await connection.QuerySingleOrDefaultAsync<(long Id, long ExperimentId, string LifecycleStage)?>(
            "SELECT id, experiment_id, lifecycle_stage FROM runs WHERE run_uuid = @runId AND project_id = @project",
            new { runId, project = caller.ProjectId });
        if (row is not { } r)
        {
            throw RunNotFound(runId);
        }
        if (requireActive && r.LifecycleStage != Active)
        {
            throw SextantException.Invalid("run_id", $"The run {runId} must be in the 'active' state. Current state is {r.LifecycleStage}.");
        }
        return new RunRef(r.Id, runId, r.ExperimentId, r.LifecycleStage);
    }

    private static SextantException RunNotFound(string runId) => SextantException.NotFound($"Run with id={runId} not found.");

    /// <summary>Loads whole runs (info, last metrics, params, tags, inputs) in the order of <paramref name="ids"/>.</summary>
    /// <remarks>
    /// Read with plain data readers by column position rather than Dapper: a search page is up to thousands of
    /// runs with several rows each, and this is most of a search's time.
    /// </remarks>
    private static async Task<List<Run>> LoadRunsAsync(DbConnection connection, List<long> ids)
    {
        if (ids.Count == 0)
        {
            return [];
        }
        var idList = string.Join(',', ids);
        var infos = new Dictionary<long, (string RunUuid, long ExperimentId, string Name, string UserId, string Status, long StartTime, long? EndTime, string LifecycleStage)>(ids.Count);
        await ReadRowsAsync(connection,
            $"SELECT id, run_uuid, experiment_id, name, user_id, status, start_time, end_time, lifecycle_stage FROM runs WHERE id IN ({idList})",
            r => infos[r.GetInt64(0)] = (r.GetString(1), r.GetInt64(2), r.GetString(3), r.GetString(4), r.GetString(5), r.GetInt64(6), r.IsDBNull(7) ? null : r.GetInt64(7), r.GetString(8)));
        var metrics = new Dictionary<long, List<Metric>>(ids.Count);
        await ReadRowsAsync(connection,
            $"SELECT run_id, key, value, is_nan, timestamp, step FROM latest_metrics WHERE run_id IN ({idList}) ORDER BY run_id, key",
            r => ListOf(metrics, r.GetInt64(0)).Add(new Metric(r.GetString(1), r.GetInt64(3) != 0 ? double.NaN : r.GetDouble(2), r.GetInt64(4), r.GetInt64(5))));
        var parameters = new Dictionary<long, List<KeyValue>>(ids.Count);
        await ReadRowsAsync(connection,
            $"SELECT run_id, key, value FROM params WHERE run_id IN ({idList}) ORDER BY run_id, key",
            r => ListOf(parameters, r.GetInt64(0)).Add(new KeyValue(r.GetString(1), r.GetString(2))));
        var tags = new Dictionary<long, List<KeyValue>>(ids.Count);
        await ReadRowsAsync(connection,
            $"SELECT run_id, key, value FROM run_tags WHERE run_id IN ({idList}) ORDER BY run_id, key",
            r => ListOf(tags, r.GetInt64(0)).Add(new KeyValue(r.GetString(1), r.GetString(2))));
        var inputs = await LoadInputsAsync(connection, idList);
        var runs = new List<Run>(ids.Count);
        foreach (var id in ids)
        {
            var r = infos[id];
            var info = new RunInfo(r.RunUuid, r.RunUuid, r.Name, r.ExperimentId.ToString(CultureInfo.InvariantCulture), r.UserId, r.Status,
                r.StartTime, r.EndTime, RunArtifactUri(r.ExperimentId, r.RunUuid), r.LifecycleStage);
            runs.Add(new Run(info, new RunData(
                metrics.GetValueOrDefault(id) ?? [],
                parameters.GetValueOrDefault(id) ?? [],
                tags.GetValueOrDefault(id) ?? []),
                new RunInputs(inputs.GetValueOrDefault(id) ?? [])));
        }
        return runs;
    }

    /// <summary>The dataset inputs of the runs in <paramref name="idList"/> (comma-separated row ids).</summary>
    internal static async Task<Dictionary<long, List<DatasetInput>>> LoadInputsAsync(DbConnection connection, string idList)
    {
        var inputs = new Dictionary<long, List<DatasetInput>>();
        await ReadRowsAsync(connection,
            $"""
            SELECT ri.run_id, ri.tags_json, d.name, d.digest, d.source_type, d.source, d.schema, d.profile
            FROM run_inputs ri JOIN datasets d ON d.id = ri.dataset_id WHERE ri.run_id IN ({idList}) ORDER BY d.id
            """,
            r => ListOf(inputs, r.GetInt64(0)).Add(new DatasetInput(
                JsonSerializer.Deserialize(r.GetString(1), CoreJsonContext.Default.ListKeyValue),
                new Dataset(r.GetString(2), r.GetString(3), r.GetString(4), r.GetString(5), r.IsDBNull(6) ? null : r.GetString(6), r.IsDBNull(7) ? null : r.GetString(7)))));
        return inputs;
    }

    private static List<T> ListOf<T>(Dictionary<long, List<T>> lists, long id)
    {
        if (!lists.TryGetValue(id, out var list))
        {
            lists[id] = list = [];
        }
        return list;
    }

    /// <summary>Runs a query and hands each row to <paramref name="row"/>; SQLite's reader is synchronous underneath.</summary>
    private static async Task ReadRowsAsync(DbConnection connection, string sql, Action<DbDataReader> row)
    {
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        await using var reader = await command.ExecuteReaderAsync();
        var sqlite = reader is Microsoft.Data.Sqlite.SqliteDataReader;
        while (sqlite ? reader.Read() : await reader.ReadAsync())
        {
            row(reader);
        }
    }
}
