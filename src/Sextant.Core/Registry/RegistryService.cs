using System.Data.Common;
using System.Globalization;
using System.Text.RegularExpressions;
using Dapper;
using Sextant.Contracts;
using Sextant.Core.Artifacts;
using Sextant.Core.Projects;
using Sextant.Core.Storage;
using Sextant.Core.Tracking;
using Sextant.Core.Tracking.Search;

namespace Sextant.Core.Registry;

/// <summary>
/// The model registry: registered models, their immutable numbered versions, tags and aliases, and model URIs
/// (<c>models:/name/3</c>, <c>models:/name@champion</c>, <c>models:/name/latest</c>). A version's files are copied
/// (as references to the same content-addressed blobs) under <c>registry/&lt;model id&gt;/&lt;version&gt;/</c>, so they
/// stay as registered whatever happens to the run's artifacts.
/// </summary>
public sealed partial class RegistryService(SextantDatabase database, TrackingService tracking, TrackingOptions options, IBlobStore blobs)
{
    /// <summary>Copied model files live under this artifact folder, which only the registry writes.</summary>
    public const string StorageRoot = "registry";

    public const int MaxNameLength = 256;
    public const int MaxDescriptionLength = 5000;
    public const int MaxSourceLength = 2048;
    public const int DefaultModelResults = 100;
    public const int MaxModelResults = 1000;
    public const int DefaultVersionResults = 10_000;
    public const int MaxVersionResults = 10_000;

    private const string Ready = "READY";
    private const string NoStage = "None";

    [GeneratedRegex(@"^[A-Za-z0-9_\-]{1,255}\z")]
    private static partial Regex AliasPattern();

    [GeneratedRegex(@"^[vV]\d+\z")]
    private static partial Regex VersionAliasPattern();

    public async Task<RegisteredModel> CreateModelAsync(Caller caller, CreateRegisteredModelRequest request, CancellationToken cancellationToken = default)
    {
        caller.Require(Role.Editor);
        var name = ModelName(request.Name, "name");
        var description = Description(request.Description);
        var tags = Tags(request.Tags);
        await using var connection = await database.OpenAsync(cancellationToken);
        await using var transaction = await SextantDatabase.BeginWriteAsync(connection, cancellationToken);
        var now = Clock.NowMs();
        var id = await connection.ExecuteScalarAsync<long?>(
            """
            INSERT INTO registered_models (project_id, name, description, creation_time, last_updated_time, next_version)
            VALUES (@project, @name, @description, @now, @now, 1) ON CONFLICT (project_id, name) DO NOTHING RETURNING id
            """,
            new { project = caller.ProjectId, name, description, now }, transaction)
            ?? throw SextantException.AlreadyExists($"Registered Model (name={name}) already exists.", "name");
        foreach (var tag in tags)
        {
            await UpsertTagAsync(connection, transaction, "registered_model_tags", "model_id", id, tag.Key, tag.Value);
        }
        await transaction.CommitAsync(cancellationToken);
        return await GetModelAsync(caller, name, cancellationToken);
    }

    public async Task<RegisteredModel> GetModelAsync(Caller caller, string? name, CancellationToken cancellationToken = default)
    {
        var modelName = ModelName(name, "name");
        await using var connection = await database.OpenAsync(cancellationToken);
        var models = await LoadModelsAsync(connection, "m.project_id = @project AND m.name = @name", new { project = caller.ProjectId, name = modelName });
        return models.Count == 1 ? models[0].Model : throw ModelNotFound(modelName);
    }

    public async Task<RegisteredModel> RenameModelAsync(Caller caller, string? name, string? newName, CancellationToken cancellationToken = default)
    {
        caller.Require(Role.Editor);
        var from = ModelName(name, "name");
        var to = ModelName(newName, "new_name");
        await using var connection = await database.OpenAsync(cancellationToken);
        try
        {
            var changed = await connection.ExecuteAsync(
                "UPDATE registered_models SET name = @to, last_updated_time = @now WHERE project_id = @project AND name = @from",
                new { to, from, now = Clock.NowMs(), project = caller.ProjectId });
            if (changed == 0)
            {
                throw ModelNotFound(from);
            }
        }
        catch (DbException e) when (SextantDatabase.IsUniqueViolation(e))
        {
            throw SextantException.AlreadyExists($"Registered Model (name={to}) already exists.", "new_name");
        }
        return await GetModelAsync(caller, to, cancellationToken);
    }

    public async Task<RegisteredModel> UpdateModelAsync(Caller caller, string? name, string? description, CancellationToken cancellationToken = default)
    {
        caller.Require(Role.Editor);
        var modelName = ModelName(name, "name");
        await using var connection = await database.OpenAsync(cancellationToken);
        var changed = await connection.ExecuteAsync(
            "UPDATE registered_models SET description = @description, last_updated_time = @now WHERE project_id = @project AND name = @name",
            new { description = Description(description), now = Clock.NowMs(), project = caller.ProjectId, name = modelName });
        return changed == 0 ? throw ModelNotFound(modelName) : await GetModelAsync(caller, modelName, cancellationToken);
    }

    /// <summary>Deletes a model with its versions, tags, aliases and copied files (the blobs stay: others may share them).</summary>
    public async Task DeleteModelAsync(Caller caller, string? name, CancellationToken cancellationToken = default)
    {
        caller.Require(Role.Editor);
        var modelName = ModelName(name, "name");
        await using var connection = await database.OpenAsync(cancellationToken);
        await using var transaction = await SextantDatabase.BeginWriteAsync(connection, cancellationToken);
        var id = await LockModelAsync(connection, caller, modelName, transaction);
        await DeleteFilesAsync(connection, transaction, caller.ProjectId, $"{StorageRoot}/{id}/");
        await connection.ExecuteAsync("DELETE FROM registered_models WHERE id = @id", new { id }, transaction);
        await transaction.CommitAsync(cancellationToken);
    }

    public async Task SetModelTagAsync(Caller caller, string? name, string? key, string? value, CancellationToken cancellationToken = default)
    {
        caller.Require(Role.Editor);
        var (tagKey, tagValue) = Tag(key, value);
        await using var connection = await database.OpenAsync(cancellationToken);
        await using var transaction = await SextantDatabase.BeginWriteAsync(connection, cancellationToken);
        var id = await ModelIdAsync(connection, caller, ModelName(name, "name"), transaction);
        await UpsertTagAsync(connection, transaction, "registered_model_tags", "model_id", id, tagKey, tagValue);
        await TouchModelAsync(connection, transaction, id);
        await transaction.CommitAsync(cancellationToken);
    }

    public async Task DeleteModelTagAsync(Caller caller, string? name, string? key, CancellationToken cancellationToken = default)
    {
        caller.Require(Role.Editor);
        var tagKey = TrackingValidation.Key(key, "key", options);
        await using var connection = await database.OpenAsync(cancellationToken);
        var id = await ModelIdAsync(connection, caller, ModelName(name, "name"), null);
        if (await connection.ExecuteAsync("DELETE FROM registered_model_tags WHERE model_id = @id AND key = @tagKey", new { id, tagKey }) == 0)
        {
            throw SextantException.NotFound($"No tag with key '{tagKey}' on registered model '{name}'.");
        }
    }

    /// <summary>Registers a new version. Numbers are unique, increasing and without gaps, also under concurrent creation.</summary>
    public async Task<ModelVersion> CreateVersionAsync(Caller caller, CreateModelVersionRequest request, CancellationToken cancellationToken = default)
    {
        caller.Require(Role.Editor);
        var name = ModelName(request.Name, "name");
        var source = string.IsNullOrWhiteSpace(request.Source) ? throw SextantException.Missing("source") : TrackingValidation.Value(request.Source, "source", MaxSourceLength);
        var runId = string.IsNullOrEmpty(request.RunId) ? null : TrackingValidation.RunId(request.RunId);
        var runLink = string.IsNullOrEmpty(request.RunLink) ? null : TrackingValidation.Value(request.RunLink, "run_link", MaxSourceLength);
        var description = Description(request.Description);
        var tags = Tags(request.Tags);
        if (runId is not null)
        {
            // The run must be the caller's: a version may not point at another project's run.
            await tracking.RunArtifactRootAsync(caller, runId, cancellationToken: cancellationToken);
        }
        var declared = ModelFlavors.Declared(request.Flavor);
        var files = await SourceFolderAsync(caller, source, cancellationToken);
        var (flavor, signature) = await FlavorAsync(caller, files, declared, cancellationToken);
        await using var connection = await database.OpenAsync(cancellationToken);
        await using var transaction = await SextantDatabase.BeginWriteAsync(connection, cancellationToken);
        var now = Clock.NowMs();
        // Taking the number and raising it is one statement on the model's row: writers of one model queue on it.
        var taken = await connection.QuerySingleOrDefaultAsync<(long Id, long Version)?>(
            """
            UPDATE registered_models SET next_version = next_version + 1, last_updated_time = @now
            WHERE project_id = @project AND name = @name RETURNING id, next_version - 1
            """,
            new { now, project = caller.ProjectId, name }, transaction);
        if (taken is not { } model)
        {
            throw ModelNotFound(name);
        }
        string? storage = null;
        if (files is not null)
        {
            storage = $"{StorageRoot}/{model.Id}/{model.Version}";
            var copied = await connection.ExecuteAsync(
                """
                INSERT INTO artifact_files (project_id, path, sha256, size, modified_time)
                SELECT project_id, @storage || '/' || substr(path, length(@from) + 1), sha256, size, @now FROM artifact_files
                WHERE project_id = @project AND path >= @from AND path < @to
                """,
                new { storage, now, project = caller.ProjectId, from = files + "/", to = files + "0" }, transaction);
            if (copied == 0)
            {
                storage = null;
            }
        }
        var versionId = await connection.ExecuteScalarAsync<long>(
            """
            INSERT INTO model_versions (model_id, version, source, run_id, run_link, storage_path, description, status, user_id, creation_time, last_updated_time, flavor, signature)
            VALUES (@model, @version, @source, @runId, @runLink, @storage, @description, @status, @user, @now, @now, @flavor, @signature) RETURNING id
            """,
            new
            {
                model = model.Id, version = model.Version, source, runId, runLink, storage, description, status = Ready, user = "", now, flavor,
                signature = signature is null ? null : System.Text.Json.JsonSerializer.Serialize(signature, SextantJsonContext.Default.ModelSignature),
            },
            transaction);
        foreach (var tag in tags)
        {
            await UpsertTagAsync(connection, transaction, "model_version_tags", "version_id", versionId, tag.Key, tag.Value);
        }
        await transaction.CommitAsync(cancellationToken);
        return await GetVersionAsync(caller, name, model.Version.ToString(CultureInfo.InvariantCulture), cancellationToken);
    }

    public async Task<ModelVersion> GetVersionAsync(Caller caller, string? name, string? version, CancellationToken cancellationToken = default)
    {
        var modelName = ModelName(name, "name");
        var number = VersionNumber(version);
        await using var connection = await database.OpenAsync(cancellationToken);
        var versions = await LoadVersionsAsync(connection, "m.project_id = @project AND m.name = @name AND v.version = @number",
            new { project = caller.ProjectId, name = modelName, number }, "v.version");
        return versions.Count == 1 ? versions[0] : throw VersionNotFound(modelName, number);
    }

    public async Task<ModelVersion> UpdateVersionAsync(Caller caller, string? name, string? version, string? description, CancellationToken cancellationToken = default)
    {
        caller.Require(Role.Editor);
        var modelName = ModelName(name, "name");
        var number = VersionNumber(version);
        await using var connection = await database.OpenAsync(cancellationToken);
        var changed = await connection.ExecuteAsync(
            """
            UPDATE model_versions SET description = @description, last_updated_time = @now
            WHERE version = @number AND model_id = (SELECT id FROM registered_models WHERE project_id = @project AND name = @name)
            """,
            new { description = Description(description), now = Clock.NowMs(), number, project = caller.ProjectId, name = modelName });
        return changed == 0 ? throw VersionNotFound(modelName, number) : await GetVersionAsync(caller, modelName, version, cancellationToken);
    }

    /// <summary>Deletes a version, the aliases that point at it and its copied files. Its number is not given out again.</summary>
    public async Task DeleteVersionAsync(Caller caller, string? name, string? version, CancellationToken cancellationToken = default)
    {
        caller.Require(Role.Editor);
        var modelName = ModelName(name, "name");
        var number = VersionNumber(version);
        await using var connection = await database.OpenAsync(cancellationToken);
        await using var transaction = await SextantDatabase.BeginWriteAsync(connection, cancellationToken);
        var id = await LockModelAsync(connection, caller, modelName, transaction);
        if (await connection.ExecuteAsync("DELETE FROM model_versions WHERE model_id = @id AND version = @number", new { id, number }, transaction) == 0)
        {
            throw VersionNotFound(modelName, number);
        }
        await connection.ExecuteAsync("DELETE FROM model_aliases WHERE model_id = @id AND version = @number", new { id, number }, transaction);
        await DeleteFilesAsync(connection, transaction, caller.ProjectId, $"{StorageRoot}/{id}/{number}/");
        await TouchModelAsync(connection, transaction, id);
        await transaction.CommitAsync(cancellationToken);
    }

    public async Task SetVersionTagAsync(Caller caller, string? name, string? version, string? key, string? value, CancellationToken cancellationToken = default)
    {
        caller.Require(Role.Editor);
        var (tagKey, tagValue) = Tag(key, value);
        await using var connection = await database.OpenAsync(cancellationToken);
        await using var transaction = await SextantDatabase.BeginWriteAsync(connection, cancellationToken);
        var versionId = await VersionIdAsync(connection, caller, name, version, transaction);
        await UpsertTagAsync(connection, transaction, "model_version_tags", "version_id", versionId, tagKey, tagValue);
        await transaction.CommitAsync(cancellationToken);
    }

    public async Task DeleteVersionTagAsync(Caller caller, string? name, string? version, string? key, CancellationToken cancellationToken = default)
    {
        caller.Require(Role.Editor);
        var tagKey = TrackingValidation.Key(key, "key", options);
        await using var connection = await database.OpenAsync(cancellationToken);
        var versionId = await VersionIdAsync(connection, caller, name, version, null);
        if (await connection.ExecuteAsync("DELETE FROM model_version_tags WHERE version_id = @versionId AND key = @tagKey", new { versionId, tagKey }) == 0)
        {
            throw SextantException.NotFound($"No tag with key '{tagKey}' on version {version} of registered model '{name}'.");
        }
    }

    /// <summary>Points an alias at a version (creating or moving it). "latest" and v&lt;N&gt; are reserved.</summary>
    public async Task SetAliasAsync(Caller caller, string? name, string? alias, string? version, CancellationToken cancellationToken = default)
    {
        caller.Require(Role.Editor);
        var aliasName = Alias(alias);
        var modelName = ModelName(name, "name");
        var number = VersionNumber(version);
        await using var connection = await database.OpenAsync(cancellationToken);
        await using var transaction = await SextantDatabase.BeginWriteAsync(connection, cancellationToken);
        var id = await LockModelAsync(connection, caller, modelName, transaction);
        if (await connection.ExecuteScalarAsync<long?>("SELECT id FROM model_versions WHERE model_id = @id AND version = @number", new { id, number }, transaction) is null)
        {
            throw VersionNotFound(modelName, number);
        }
        await connection.ExecuteAsync(
            "INSERT INTO model_aliases (model_id, alias, version) VALUES (@id, @aliasName, @number) ON CONFLICT (model_id, alias) DO UPDATE SET version = excluded.version",
            new { id, aliasName, number }, transaction);
        await TouchModelAsync(connection, transaction, id);
        await transaction.CommitAsync(cancellationToken);
    }

    public async Task DeleteAliasAsync(Caller caller, string? name, string? alias, CancellationToken cancellationToken = default)
    {
        caller.Require(Role.Editor);
        var aliasName = Alias(alias);
        var modelName = ModelName(name, "name");
        await using var connection = await database.OpenAsync(cancellationToken);
        var id = await ModelIdAsync(connection, caller, modelName, null);
        if (await connection.ExecuteAsync("DELETE FROM model_aliases WHERE model_id = @id AND alias = @aliasName", new { id, aliasName }) == 0)
        {
            throw SextantException.NotFound($"Registered model '{modelName}' has no alias '{aliasName}'.");
        }
    }

    public async Task<ModelVersion> GetVersionByAliasAsync(Caller caller, string? name, string? alias, CancellationToken cancellationToken = default)
    {
        var modelName = ModelName(name, "name");
        var aliasName = string.IsNullOrEmpty(alias) ? throw SextantException.Missing("alias") : alias;
        await using var connection = await database.OpenAsync(cancellationToken);
        var versions = await LoadVersionsAsync(connection,
            "m.project_id = @project AND m.name = @name AND v.version = (SELECT a.version FROM model_aliases a WHERE a.model_id = m.id AND a.alias = @aliasName)",
            new { project = caller.ProjectId, name = modelName, aliasName }, "v.version");
        return versions.Count == 1 ? versions[0] : throw SextantException.NotFound($"Registered model '{modelName}' has no alias '{aliasName}'.");
    }

    /// <summary>MLflow's get-latest-versions: the newest version for each stage asked (Sextant has only the stage "None").</summary>
    public async Task<IReadOnlyList<ModelVersion>> GetLatestVersionsAsync(Caller caller, string? name, IReadOnlyList<string>? stages, CancellationToken cancellationToken = default)
    {
        var model = await GetModelAsync(caller, name, cancellationToken);
        var wanted = stages is null || stages.Count == 0 || stages.Any(s => string.Equals(s, NoStage, StringComparison.OrdinalIgnoreCase));
        return wanted ? model.LatestVersions : [];
    }

    /// <summary>Where the version's files are: the registry's own copy when there is one, else the source as given.</summary>
    public async Task<string> GetDownloadUriAsync(Caller caller, string? name, string? version, CancellationToken cancellationToken = default)
    {
        var modelName = ModelName(name, "name");
        var number = VersionNumber(version);
        await using var connection = await database.OpenAsync(cancellationToken);
        var row = await connection.QuerySingleOrDefaultAsync<(string Source, string? Storage)?>(
            """
            SELECT v.source, v.storage_path FROM model_versions v JOIN registered_models m ON m.id = v.model_id
            WHERE m.project_id = @project AND m.name = @name AND v.version = @number
            """,
            new { project = caller.ProjectId, name = modelName, number });
        return row is not { } r ? throw VersionNotFound(modelName, number)
            : r.Storage is not null ? "mlflow-artifacts:/" + r.Storage
            : r.Source;
    }

    /// <summary>Resolves <c>models:/name/3</c>, <c>models:/name/latest</c> or <c>models:/name@alias</c> to a version.</summary>
    public Task<ModelVersion> ResolveAsync(Caller caller, string? uri, CancellationToken cancellationToken = default)
    {
        const string Scheme = "models:/";
        if (string.IsNullOrEmpty(uri) || !uri.StartsWith(Scheme, StringComparison.Ordinal) || uri.Length == Scheme.Length)
        {
            throw SextantException.Invalid("uri", $"A model URI looks like models:/<name>/<version>, models:/<name>/latest or models:/<name>@<alias>; got '{uri}'.");
        }
        var rest = uri[Scheme.Length..];
        // An alias follows the last '/': a model name may itself hold '@'.
        var at = rest.LastIndexOf('@');
        if (at > 0 && at > rest.LastIndexOf('/'))
        {
            return GetVersionByAliasAsync(caller, rest[..at], rest[(at + 1)..], cancellationToken);
        }
        var slash = rest.LastIndexOf('/');
        if (slash <= 0 || slash == rest.Length - 1)
        {
            throw SextantException.Invalid("uri", $"The model URI '{uri}' names no version: add /<version>, /latest or @<alias>.");
        }
        var name = rest[..slash];
        var version = rest[(slash + 1)..];
        return version.Equals("latest", StringComparison.OrdinalIgnoreCase) ? LatestAsync(caller, name, cancellationToken) : GetVersionAsync(caller, name, version, cancellationToken);
    }

    private async Task<ModelVersion> LatestAsync(Caller caller, string name, CancellationToken cancellationToken)
    {
        var model = await GetModelAsync(caller, name, cancellationToken);
        return model.LatestVersions.Count == 1 ? model.LatestVersions[0] : throw SextantException.NotFound($"Registered model '{name}' has no versions.");
    }

    // ---- validation and helpers

    private static string ModelName(string? name, string field)
    {
        if (string.IsNullOrWhiteSpace(name))
        {
            throw SextantException.Missing(field);
        }
        if (name.Length > MaxNameLength)
        {
            throw SextantException.Invalid(field, $"A registered model name is at most {MaxNameLength} characters; this one has {name.Length}.");
        }
        return TrackingValidation.NoNul(name, field);
    }

    private static string Description(string? description) =>
        description is null ? "" : TrackingValidation.Value(description, "description", MaxDescriptionLength);

    private List<KeyValue> Tags(IReadOnlyList<KeyValue>? tags)
    {
        var result = new List<KeyValue>();
        for (var i = 0; i < (tags?.Count ?? 0); i++)
        {
            var (key, value) = Tag(tags![i]?.Key, tags[i]?.Value, $"tags[{i}]");
            result.Add(new KeyValue(key, value));
        }
        return result;
    }

    private (string Key, string Value) Tag(string? key, string? value, string field = "") =>
        (TrackingValidation.Key(key, field.Length == 0 ? "key" : field + ".key", options),
         TrackingValidation.Value(value ?? throw SextantException.Missing(field.Length == 0 ? "value" : field + ".value"), field.Length == 0 ? "value" : field + ".value", options.MaxTagValueLength));

    private static string Alias(string? alias)
    {
        if (string.IsNullOrEmpty(alias))
        {
            throw SextantException.Missing("alias");
        }
        if (alias.Equals("latest", StringComparison.OrdinalIgnoreCase) || VersionAliasPattern().IsMatch(alias))
        {
            throw SextantException.Invalid("alias", $"The alias '{alias}' is reserved: 'latest' and v<number> already name versions.");
        }
        if (!AliasPattern().IsMatch(alias))
        {
            throw SextantException.Invalid("alias", $"An alias is 1-255 letters, digits, '_' or '-'; got '{alias}'.");
        }
        return alias;
    }

    private static long VersionNumber(string? version)
    {
        if (string.IsNullOrEmpty(version))
        {
            throw SextantException.Missing("version");
        }
        return long.TryParse(version, NumberStyles.None, CultureInfo.InvariantCulture, out var number) && number > 0
            ? number
            : throw SextantException.Invalid("version", $"A model version is a positive integer; got '{version}'.");
    }

    private static SextantException ModelNotFound(string name) => SextantException.NotFound($"Registered Model with name={name} not found");

    private static SextantException VersionNotFound(string name, long version) =>
        SextantException.NotFound($"Model Version (name={name}, version={version}) not found");

    private static async Task<long> ModelIdAsync(DbConnection connection, Caller caller, string name, DbTransaction? transaction) =>
        await connection.ExecuteScalarAsync<long?>("SELECT id FROM registered_models WHERE project_id = @project AND name = @name",
            new { project = caller.ProjectId, name }, transaction) ?? throw ModelNotFound(name);

    /// <summary>
    /// The model's id, with its row locked for the rest of the transaction (PostgreSQL; SQLite's write transactions
    /// are serial already): writers of one model (new versions, aliases, deletes) then take turns.
    /// </summary>
    private static async Task<long> LockModelAsync(DbConnection connection, Caller caller, string name, DbTransaction transaction) =>
        await connection.ExecuteScalarAsync<long?>(
            "UPDATE registered_models SET last_updated_time = @now WHERE project_id = @project AND name = @name RETURNING id",
            new { now = Clock.NowMs(), project = caller.ProjectId, name }, transaction) ?? throw ModelNotFound(name);

    private static async Task<long> VersionIdAsync(DbConnection connection, Caller caller, string? name, string? version, DbTransaction? transaction)
    {
        var modelName = ModelName(name, "name");
        var number = VersionNumber(version);
        return await connection.ExecuteScalarAsync<long?>(
            "SELECT v.id FROM model_versions v JOIN registered_models m ON m.id = v.model_id WHERE m.project_id = @project AND m.name = @modelName AND v.version = @number",
            new { project = caller.ProjectId, modelName, number }, transaction) ?? throw VersionNotFound(modelName, number);
    }

    private static Task<int> UpsertTagAsync(DbConnection connection, DbTransaction transaction, string table, string owner, long id, string key, string value) =>
        connection.ExecuteAsync(
            $"INSERT INTO {table} ({owner}, key, value) VALUES (@id, @key, @value) ON CONFLICT ({owner}, key) DO UPDATE SET value = excluded.value",
            new { id, key, value }, transaction);

    private static Task<int> TouchModelAsync(DbConnection connection, DbTransaction transaction, long id) =>
        connection.ExecuteAsync("UPDATE registered_models SET last_updated_time = @now WHERE id = @id", new { now = Clock.NowMs(), id }, transaction);

    private static Task<int> DeleteFilesAsync(DbConnection connection, DbTransaction transaction, long project, string prefix) =>
        connection.ExecuteAsync("DELETE FROM artifact_files WHERE project_id = @project AND path >= @from AND path < @to",
            new { project, from = prefix, to = prefix[..^1] + "0" }, transaction);

    /// <summary>
    /// The artifact folder a source names when it is one of this server's (runs:/RUN/path or mlflow-artifacts:/path),
    /// or null for any other location (then nothing is copied and the source is kept as given).
    /// </summary>
    /// <summary>The flavor and signature of the files under <paramref name="folder"/> (none: opaque, unless a flavor was declared).</summary>
    private async Task<(string Flavor, ModelSignature? Signature)> FlavorAsync(Caller caller, string? folder, string? declared, CancellationToken cancellationToken)
    {
        var files = new List<ModelFlavors.ModelFile>();
        if (folder is not null)
        {
            await using var connection = await database.OpenAsync(cancellationToken);
            files.AddRange(await connection.QueryAsync<ModelFlavors.ModelFile>(
                "SELECT path AS Path, sha256 AS Sha256, size AS Size FROM artifact_files WHERE project_id = @project AND path >= @from AND path < @to ORDER BY path",
                new { project = caller.ProjectId, from = folder + "/", to = folder + "0" }));
        }
        // Loading a model is CPU work: off the request's thread.
        return await Task.Run(() => ModelFlavors.Detect(files, declared, blobs), cancellationToken);
    }

    private async Task<string?> SourceFolderAsync(Caller caller, string source, CancellationToken cancellationToken)
    {
        string? folder = null;
        if (source.StartsWith("runs:/", StringComparison.Ordinal))
        {
            var rest = source["runs:/".Length..];
            var slash = rest.IndexOf('/', StringComparison.Ordinal);
            var run = slash < 0 ? rest : rest[..slash];
            var path = slash < 0 ? "" : rest[(slash + 1)..].Trim('/');
            var root = await tracking.RunArtifactRootAsync(caller, run, cancellationToken: cancellationToken);
            folder = path.Length == 0 ? root : root + "/" + path;
        }
        else if (source.StartsWith("mlflow-artifacts:/", StringComparison.Ordinal))
        {
            folder = source["mlflow-artifacts:/".Length..].Trim('/');
        }
        if (folder is null || folder.Length == 0 || folder.Split('/').Any(p => p is "" or "." or "..")
            || folder == StorageRoot || folder.StartsWith(StorageRoot + "/", StringComparison.Ordinal))
        {
            return null;
        }
        return folder;
    }
}
