using System.Buffers.Binary;
using System.Data.Common;
using System.Globalization;
using System.Runtime.ExceptionServices;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Dapper;
using Sextant.Contracts;
using Sextant.Core.Artifacts;
using Sextant.Core.Projects;
using Sextant.Core.Storage;
using Sextant.Core.Tracking;

namespace Sextant.Core.Datasets;

/// <summary>
/// Versioned datasets. A version is a manifest of (path, size, SHA-256) stored as a blob; the files are blobs of the
/// content-addressed store, uploaded once per project (<c>project_blobs</c>). The client hashes, asks which blobs
/// are missing, uploads those in framed batches, uploads the manifest, then makes the version: when the manifest
/// equals the latest version's, no version is made. Tabular files are profiled when their version is made.
/// </summary>
public sealed partial class DatasetService(SextantDatabase database, IBlobStore blobs)
{
    public const int MaxBlobsPerRequest = 10_000;
    public const int MaxMessageLength = 5000;
    public const long MaxManifestBytes = 256L << 20;
    /// <summary>Tabular files above this size are stored without a profile (it would hold the request too long).</summary>
    public const long MaxProfiledFileBytes = 1L << 30;
    public const int MaxProfiledFiles = 200;
    public const int DefaultPageSize = 100;
    public const int MaxPageSize = 1000;
    private const int FrameHeader = 72;

    [GeneratedRegex(@"^[A-Za-z0-9][A-Za-z0-9._\-]{0,199}\z")]
    private static partial Regex NamePattern();

    public static string DatasetName(string? name, string field = "name") =>
        string.IsNullOrEmpty(name) ? throw SextantException.Missing(field)
        : NamePattern().IsMatch(name) ? name
        : throw SextantException.Invalid(field, $"'{field}' must be 1-200 letters, digits, '.', '_' or '-', starting with a letter or digit; got '{Shorten(name)}'.");

    private static string Shorten(string value) => value.Length > 100 ? value[..100] + "..." : value;

    private static string Sha(string? value, string field) =>
        DatasetManifest.IsSha256(value) ? value! : throw SextantException.Invalid(field, $"'{field}' must be a SHA-256 of 64 lower-case hex digits; got '{Shorten(value ?? "")}'.");

    private static List<string> Shas(IReadOnlyList<string>? values, string field)
    {
        if (values is null)
        {
            throw SextantException.Missing(field);
        }
        if (values.Count > MaxBlobsPerRequest)
        {
            throw SextantException.Invalid(field, $"'{field}' may list at most {MaxBlobsPerRequest} hashes per request; got {values.Count}.");
        }
        return [.. values.Select((v, i) => Sha(v, $"{field}[{i}]")).Distinct(StringComparer.Ordinal)];
    }

    // ---- Blobs ----

    /// <summary>The hashes among <paramref name="sha256"/> that the caller's project has not uploaded.</summary>
    public async Task<List<string>> MissingBlobsAsync(Caller caller, IReadOnlyList<string>? sha256, CancellationToken cancellationToken = default)
    {
        caller.Require(Role.Editor);
        var wanted = Shas(sha256, "sha256");
        await using var connection = await database.OpenAsync(cancellationToken);
        var known = await KnownBlobsAsync(connection, null, caller.ProjectId, wanted);
        return [.. wanted.Where(s => !known.ContainsKey(s))];
    }

    /// <summary>The sizes of the blobs among <paramref name="wanted"/> that the project holds.</summary>
    private async Task<Dictionary<string, long>> KnownBlobsAsync(DbConnection connection, DbTransaction? transaction, long project, IReadOnlyList<string> wanted)
    {
        var known = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var chunk in wanted.Chunk(database.Engine == DatabaseEngine.Postgres ? 10_000 : 900))
        {
            var rows = database.Engine == DatabaseEngine.Postgres
                ? await connection.QueryAsync<(string Sha, long Size)>("SELECT sha256, size FROM project_blobs WHERE project_id = @project AND sha256 = ANY(@chunk)", new { project, chunk }, transaction)
                : await connection.QueryAsync<(string Sha, long Size)>("SELECT sha256, size FROM project_blobs WHERE project_id = @project AND sha256 IN @chunk", new { project, chunk }, transaction);
            foreach (var (sha, size) in rows)
            {
                known[sha] = size;
            }
        }
        return known;
    }

    /// <summary>
    /// Stores a framed batch: each blob is its SHA-256 as 64 hex characters, its length as a little-endian 64-bit
    /// integer, then its bytes. Each blob is checked against its declared hash. The whole batch is made durable with
    /// one sync before it is recorded. When a blob fails, those before it are still recorded, then the error is raised.
    /// </summary>
    public async Task<List<StoredBlob>> PutBlobsAsync(Caller caller, Stream body, CancellationToken cancellationToken = default)
    {
        caller.Require(Role.Editor);
        var stored = new List<StoredBlob>();
        ExceptionDispatchInfo? failure = null;
        try
        {
            var header = new byte[FrameHeader];
            for (var index = 0; ; index++)
            {
                var got = await body.ReadAtLeastAsync(header, FrameHeader, throwOnEndOfStream: false, cancellationToken);
                if (got == 0)
                {
                    break;
                }
                if (got < FrameHeader)
                {
                    throw SextantException.Invalid("body", $"blob {index}: the body ends inside its {FrameHeader}-byte header (64 hex digits of SHA-256, then an 8-byte length).");
                }
                if (index >= MaxBlobsPerRequest)
                {
                    throw SextantException.Invalid("body", $"a batch holds at most {MaxBlobsPerRequest} blobs.");
                }
                var sha = Encoding.ASCII.GetString(header, 0, 64);
                if (!DatasetManifest.IsSha256(sha))
                {
                    throw SextantException.Invalid("body", $"blob {index}: its header does not start with 64 lower-case hex digits of SHA-256.");
                }
                var length = BinaryPrimitives.ReadInt64LittleEndian(header.AsSpan(64));
                if (length < 0)
                {
                    throw SextantException.Invalid("body", $"blob {index}: its length is negative ({length}).");
                }
                var part = new BoundedReadStream(body, length);
                try
                {
                    var blob = await blobs.PutAsync(part, sha, durable: false, cancellationToken);
                    if (part.Remaining > 0)
                    {
                        // The bytes that came hash as declared, but fewer came than the frame said.
                        throw SextantException.Invalid("body", $"blob {index} ({sha}): the body ends after {length - part.Remaining} of its {length} bytes.");
                    }
                    stored.Add(new StoredBlob(blob.Sha256, blob.Size));
                }
                catch (BlobMismatchException e)
                {
                    throw SextantException.Invalid("body", part.Remaining > 0
                        ? $"blob {index} ({sha}): the body ends after {length - part.Remaining} of its {length} bytes."
                        : $"blob {index}: {e.Message}; it was not stored (did the file change while it was being sent?).");
                }
            }
        }
        catch (Exception e)
        {
            failure = ExceptionDispatchInfo.Capture(e);
        }
        if (stored.Count > 0)
        {
            blobs.Sync();
            await RecordBlobsAsync(caller.ProjectId, stored, CancellationToken.None);
        }
        failure?.Throw();
        return stored;
    }

    private async Task RecordBlobsAsync(long project, IReadOnlyList<StoredBlob> stored, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        await using var transaction = await SextantDatabase.BeginWriteAsync(connection, cancellationToken);
        if (database.Engine == DatabaseEngine.Postgres)
        {
            await connection.ExecuteAsync(
                "INSERT INTO project_blobs (project_id, sha256, size) SELECT @project, s, z FROM unnest(@shas, @sizes) AS t(s, z) ON CONFLICT DO NOTHING",
                new { project, shas = stored.Select(b => b.Sha256).ToArray(), sizes = stored.Select(b => b.Size).ToArray() }, transaction);
        }
        else
        {
            await connection.ExecuteAsync("INSERT INTO project_blobs (project_id, sha256, size) VALUES (@project, @Sha256, @Size) ON CONFLICT DO NOTHING",
                stored.Select(b => new { project, b.Sha256, b.Size }), transaction);
        }
        await transaction.CommitAsync(cancellationToken);
    }

    /// <summary>Opens a blob the caller's project holds; 404 otherwise (whether or not another project has it).</summary>
    public async Task<(Stream Content, long Size)> OpenBlobAsync(Caller caller, string? sha256, CancellationToken cancellationToken = default)
    {
        var sha = Sha(sha256, "sha256");
        await using var connection = await database.OpenAsync(cancellationToken);
        var size = await connection.ExecuteScalarAsync<long?>("SELECT size FROM project_blobs WHERE project_id = @project AND sha256 = @sha", new { project = caller.ProjectId, sha });
        var stream = size is null ? null : blobs.OpenRead(sha);
        return stream is null ? throw SextantException.NotFound($"No blob {sha} in this project.") : (stream, size!.Value);
    }

    /// <summary>Checks that the project holds every blob listed; their sizes in the order asked.</summary>
    public async Task<List<StoredBlob>> CheckReadableAsync(Caller caller, IReadOnlyList<string>? sha256, CancellationToken cancellationToken = default)
    {
        if (sha256 is null)
        {
            throw SextantException.Missing("sha256");
        }
        if (sha256.Count > MaxBlobsPerRequest)
        {
            throw SextantException.Invalid("sha256", $"'sha256' may list at most {MaxBlobsPerRequest} hashes per request; got {sha256.Count}.");
        }
        var wanted = sha256.Select((v, i) => Sha(v, $"sha256[{i}]")).ToList();
        await using var connection = await database.OpenAsync(cancellationToken);
        var known = await KnownBlobsAsync(connection, null, caller.ProjectId, [.. wanted.Distinct(StringComparer.Ordinal)]);
        return [.. wanted.Select(s => known.TryGetValue(s, out var size) ? new StoredBlob(s, size) : throw SextantException.NotFound($"No blob {s} in this project."))];
    }

    /// <summary>Writes blobs in the upload framing; a blob found damaged fails the stream before its last bytes.</summary>
    public async Task WriteFramesAsync(IReadOnlyList<StoredBlob> list, Stream output, CancellationToken cancellationToken)
    {
        var header = new byte[FrameHeader];
        foreach (var blob in list)
        {
            await using var content = blobs.OpenRead(blob.Sha256) ?? throw new BlobCorruptedException(blob.Sha256, "(missing from the store)");
            Encoding.ASCII.GetBytes(blob.Sha256, header);
            BinaryPrimitives.WriteInt64LittleEndian(header.AsSpan(64), blob.Size);
            await output.WriteAsync(header, cancellationToken);
            await content.CopyToAsync(output, cancellationToken);
        }
    }

    // ---- Datasets and versions ----

    public async Task<CreateDatasetVersionResponse> CreateVersionAsync(Caller caller, string? name, CreateDatasetVersionRequest request, CancellationToken cancellationToken = default)
    {
        caller.Require(Role.Editor);
        var datasetName = DatasetName(name);
        var manifestSha = Sha(request.ManifestSha256, "manifest_sha256");
        var message = request.Message ?? "";
        if (message.Length > MaxMessageLength || (request.Description?.Length ?? 0) > MaxMessageLength)
        {
            throw SextantException.Invalid(message.Length > MaxMessageLength ? "message" : "description", $"At most {MaxMessageLength} characters.");
        }
        var files = await ReadManifestAsync(caller, manifestSha, cancellationToken);
        var (tables, notProfiled) = await ProfileAsync(caller, datasetName, files, cancellationToken);
        string? profileSha = null;
        if (tables.Count > 0)
        {
            using var profile = new MemoryStream(JsonSerializer.SerializeToUtf8Bytes(new DatasetProfile(tables, notProfiled), SextantJsonContext.Default.DatasetProfile));
            profileSha = (await blobs.PutAsync(profile, cancellationToken)).Sha256;
        }
        var summaries = JsonSerializer.Serialize(tables.Select(t => new TableSummary(t.Path, t.Format, t.Rows, t.Columns.Count)).ToList(), CoreJsonContext.Default.ListTableSummary);

        await using var connection = await database.OpenAsync(cancellationToken);
        await using var transaction = await SextantDatabase.BeginWriteAsync(connection, cancellationToken);
        var now = Clock.NowMs();
        await connection.ExecuteAsync(
            """
            INSERT INTO versioned_datasets (project_id, name, description, creation_time, last_updated_time, next_version)
            VALUES (@project, @datasetName, @description, @now, @now, 1) ON CONFLICT (project_id, name) DO NOTHING
            """,
            new { project = caller.ProjectId, datasetName, description = request.Description ?? "", now }, transaction);
        // Locks the dataset's row (PostgreSQL): versions of one dataset are made one at a time.
        var datasetId = await connection.ExecuteScalarAsync<long>(
            "UPDATE versioned_datasets SET last_updated_time = last_updated_time WHERE project_id = @project AND name = @datasetName RETURNING id",
            new { project = caller.ProjectId, datasetName }, transaction);
        var latest = await connection.QuerySingleOrDefaultAsync<(long Version, string Digest)?>(
            "SELECT version, digest FROM dataset_versions WHERE dataset_id = @datasetId ORDER BY version DESC LIMIT 1", new { datasetId }, transaction);
        if (latest is { } same && same.Digest == manifestSha)
        {
            if (request.Description is not null)
            {
                await connection.ExecuteAsync("UPDATE versioned_datasets SET description = @Description, last_updated_time = @now WHERE id = @datasetId",
                    new { request.Description, now, datasetId }, transaction);
            }
            await transaction.CommitAsync(cancellationToken);
            return new CreateDatasetVersionResponse(await GetVersionAsync(caller, datasetName, same.Version.ToString(CultureInfo.InvariantCulture), cancellationToken), false);
        }
        var number = await connection.ExecuteScalarAsync<long>(
            "UPDATE versioned_datasets SET next_version = next_version + 1, last_updated_time = @now WHERE id = @datasetId RETURNING next_version - 1",
            new { now, datasetId }, transaction);
        if (request.Description is not null)
        {
            await connection.ExecuteAsync("UPDATE versioned_datasets SET description = @Description WHERE id = @datasetId", new { request.Description, datasetId }, transaction);
        }
        await connection.ExecuteAsync(
            """
            INSERT INTO dataset_versions (dataset_id, version, digest, file_count, total_size, message, creation_time, tables, profile_sha256)
            VALUES (@datasetId, @number, @manifestSha, @count, @size, @message, @now, @summaries, @profileSha)
            """,
            new { datasetId, number, manifestSha, count = files.Count, size = files.Sum(f => f.Size), message, now, summaries, profileSha }, transaction);
        await transaction.CommitAsync(cancellationToken);
        return new CreateDatasetVersionResponse(await GetVersionAsync(caller, datasetName, number.ToString(CultureInfo.InvariantCulture), cancellationToken), true);
    }

    /// <summary>Reads and checks an uploaded manifest: canonical, inside its folder, and every file's blob held by the project.</summary>
    private async Task<List<ManifestEntry>> ReadManifestAsync(Caller caller, string manifestSha, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        var size = await connection.ExecuteScalarAsync<long?>("SELECT size FROM project_blobs WHERE project_id = @project AND sha256 = @manifestSha",
            new { project = caller.ProjectId, manifestSha });
        if (size is null)
        {
            throw SextantException.Invalid("manifest_sha256", $"The manifest blob {manifestSha} has not been uploaded to this project; upload it first (POST /api/v1/blobs).");
        }
        if (size > MaxManifestBytes)
        {
            throw SextantException.Invalid("manifest_sha256", $"The manifest is {size} bytes; at most {MaxManifestBytes} are accepted.");
        }
        var bytes = await ReadBlobAsync(manifestSha, cancellationToken);
        List<ManifestEntry> files;
        try
        {
            files = DatasetManifest.Parse(bytes);
        }
        catch (Exception e) when (e is FormatException or JsonException or InvalidOperationException)
        {
            throw SextantException.Invalid("manifest_sha256", $"The manifest is not valid: {e.Message}.");
        }
        if (DatasetManifest.Validate(files) is { } problem)
        {
            throw SextantException.Invalid("manifest", $"The manifest is not valid: {problem}.");
        }
        if (DatasetManifest.Digest(DatasetManifest.Serialize(files)) != manifestSha)
        {
            throw SextantException.Invalid("manifest_sha256", "The manifest is not in canonical form: files sorted by path (ordinal), written as DatasetManifest.Serialize writes them.");
        }
        var known = await KnownBlobsAsync(connection, null, caller.ProjectId, [.. files.Select(f => f.Sha256).Distinct(StringComparer.Ordinal)]);
        foreach (var file in files)
        {
            if (!known.TryGetValue(file.Sha256, out var stored))
            {
                throw SextantException.Invalid("manifest", $"The content of '{file.Path}' ({file.Sha256}) has not been uploaded; upload its blob first.");
            }
            if (stored != file.Size)
            {
                throw SextantException.Invalid("manifest", $"'{file.Path}' is listed with {file.Size} bytes, but its blob holds {stored}.");
            }
        }
        return files;
    }

    private async Task<byte[]> ReadBlobAsync(string sha, CancellationToken cancellationToken)
    {
        await using var stream = blobs.OpenRead(sha) ?? throw SextantException.NotFound($"Blob {sha} is missing from the store.");
        using var buffer = new MemoryStream();
        await stream.CopyToAsync(buffer, cancellationToken);
        return buffer.ToArray();
    }

    /// <summary>Profiles the tabular files; a file whose path and content are those of the latest version keeps its profile.</summary>
    private async Task<(List<TableProfile> Tables, int NotProfiled)> ProfileAsync(Caller caller, string name, List<ManifestEntry> files, CancellationToken cancellationToken)
    {
        var tabular = files.Where(f => TabularProfiler.FormatOf(f.Path) is not null).ToList();
        if (tabular.Count == 0)
        {
            return ([], 0);
        }
        var previous = new Dictionary<(string, string), TableProfile>();
        var latest = await LatestRowAsync(caller, name, cancellationToken);
        if (latest is { ProfileSha256: { } oldProfile })
        {
            var oldFiles = DatasetManifest.Parse(await ReadBlobAsync(latest.Digest, cancellationToken)).ToDictionary(f => f.Path, f => f.Sha256, StringComparer.Ordinal);
            var profile = JsonSerializer.Deserialize(await ReadBlobAsync(oldProfile, cancellationToken), SextantJsonContext.Default.DatasetProfile);
            foreach (var table in profile?.Tables ?? [])
            {
                if (oldFiles.TryGetValue(table.Path, out var sha))
                {
                    previous[(table.Path, sha)] = table;
                }
            }
        }
        var result = new List<TableProfile>();
        // Tables past the cap are left out (the profile says how many), so a folder of many small CSV files makes
        // neither the request nor the stored profile unbounded.
        foreach (var file in tabular.Take(MaxProfiledFiles))
        {
            var format = TabularProfiler.FormatOf(file.Path)!;
            if (previous.TryGetValue((file.Path, file.Sha256), out var kept))
            {
                result.Add(kept);
            }
            else if (file.Size > MaxProfiledFileBytes)
            {
                result.Add(new TableProfile(file.Path, format, 0, [], Error: $"not profiled: larger than the {MaxProfiledFileBytes >> 20} MiB profile limit"));
            }
            else
            {
                result.Add(await TabularProfiler.ProfileAsync(file.Path, format,
                    () => (format == "parquet" ? blobs.OpenSeekable(file.Sha256) : blobs.OpenRead(file.Sha256)) ?? throw SextantException.NotFound($"Blob {file.Sha256} is missing from the store."),
                    cancellationToken));
            }
        }
        return (result, Math.Max(0, tabular.Count - MaxProfiledFiles));
    }

    private sealed record VersionRow(string Name, long Version, string Digest, long FileCount, long TotalSize, string Message, long CreationTime, string Tables, string? ProfileSha256);

    private const string VersionColumns =
        "d.name AS Name, v.version AS Version, v.digest AS Digest, v.file_count AS FileCount, v.total_size AS TotalSize, v.message AS Message, v.creation_time AS CreationTime, v.tables AS Tables, v.profile_sha256 AS ProfileSha256";

    private async Task<VersionRow?> LatestRowAsync(Caller caller, string name, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        return await connection.QuerySingleOrDefaultAsync<VersionRow>(
            $"SELECT {VersionColumns} FROM dataset_versions v JOIN versioned_datasets d ON d.id = v.dataset_id WHERE d.project_id = @project AND d.name = @name ORDER BY v.version DESC LIMIT 1",
            new { project = caller.ProjectId, name });
    }

    private static DatasetVersion ToVersion(VersionRow row) => new(
        row.Name, row.Version, $"datasets:/{row.Name}@{row.Version}", row.Digest, row.FileCount, row.TotalSize, row.Message, row.CreationTime,
        JsonSerializer.Deserialize(row.Tables, CoreJsonContext.Default.ListTableSummary) ?? []);

    /// <summary>"3", "v3" or "latest" (also empty).</summary>
    public static long? VersionSpec(string? version, string field = "version")
    {
        if (string.IsNullOrEmpty(version) || version == "latest")
        {
            return null;
        }
        var digits = version[0] is 'v' or 'V' ? version[1..] : version;
        return long.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n > 0
            ? n
            : throw SextantException.Invalid(field, $"'{field}' must be a version number (3 or v3) or 'latest'; got '{Shorten(version)}'.");
    }

    private async Task<VersionRow> VersionRowAsync(Caller caller, string? name, string? version, CancellationToken cancellationToken, string versionField = "version")
    {
        var datasetName = DatasetName(name);
        var number = VersionSpec(version, versionField);
        await using var connection = await database.OpenAsync(cancellationToken);
        var row = await connection.QuerySingleOrDefaultAsync<VersionRow>(
            $"""
            SELECT {VersionColumns} FROM dataset_versions v JOIN versioned_datasets d ON d.id = v.dataset_id
            WHERE d.project_id = @project AND d.name = @datasetName {(number is null ? "" : "AND v.version = @number")} ORDER BY v.version DESC LIMIT 1
            """,
            new { project = caller.ProjectId, datasetName, number });
        if (row is not null)
        {
            return row;
        }
        var exists = await connection.ExecuteScalarAsync<long?>("SELECT id FROM versioned_datasets WHERE project_id = @project AND name = @datasetName",
            new { project = caller.ProjectId, datasetName });
        throw SextantException.NotFound(exists is null ? $"No dataset named '{datasetName}'." : $"Dataset '{datasetName}' has no version {version}.");
    }

    public async Task<DatasetVersion> GetVersionAsync(Caller caller, string? name, string? version, CancellationToken cancellationToken = default) =>
        ToVersion(await VersionRowAsync(caller, name, version, cancellationToken));

    /// <summary>Resolves datasets:/name@version (or datasets:/name for the latest).</summary>
    public async Task<DatasetVersion> ResolveAsync(Caller caller, string? uri, string field = "uri", CancellationToken cancellationToken = default)
    {
        if (uri is null || !uri.StartsWith("datasets:/", StringComparison.Ordinal))
        {
            throw SextantException.Invalid(field, $"A dataset version URI looks like datasets:/<name>@<version>; got '{Shorten(uri ?? "")}'.");
        }
        var rest = uri["datasets:/".Length..];
        var at = rest.LastIndexOf('@');
        var (name, version) = (at < 0 ? rest : rest[..at], at < 0 ? null : rest[(at + 1)..]);
        if (version is "")
        {
            throw SextantException.Invalid(field, $"'{Shorten(uri)}' has nothing after '@'; give a version (3, v3 or latest).");
        }
        // Checked here so that the error names the URI's field.
        DatasetName(name, field);
        VersionSpec(version, field);
        return await GetVersionAsync(caller, name, version, cancellationToken);
    }

    public async Task<Stream> OpenManifestAsync(Caller caller, string? name, string? version, CancellationToken cancellationToken = default)
    {
        var row = await VersionRowAsync(caller, name, version, cancellationToken);
        return blobs.OpenRead(row.Digest) ?? throw SextantException.NotFound($"The manifest of {row.Name}@{row.Version} is missing from the blob store.");
    }

    public async Task<List<ManifestEntry>> GetManifestAsync(Caller caller, string? name, string? version, CancellationToken cancellationToken = default)
    {
        var row = await VersionRowAsync(caller, name, version, cancellationToken);
        return DatasetManifest.Parse(await ReadBlobAsync(row.Digest, cancellationToken));
    }

    public async Task<DatasetProfile> GetProfileAsync(Caller caller, string? name, string? version, CancellationToken cancellationToken = default)
    {
        var row = await VersionRowAsync(caller, name, version, cancellationToken);
        return row.ProfileSha256 is null ? new DatasetProfile([])
            : JsonSerializer.Deserialize(await ReadBlobAsync(row.ProfileSha256, cancellationToken), SextantJsonContext.Default.DatasetProfile) ?? new DatasetProfile([]);
    }

    public async Task<DatasetVersionsResponse> ListVersionsAsync(Caller caller, string? name, long? maxResults, string? pageToken, CancellationToken cancellationToken = default)
    {
        var datasetName = DatasetName(name);
        var limit = PageSize(maxResults);
        var before = long.MaxValue;
        if (!string.IsNullOrEmpty(pageToken))
        {
            var values = PageToken.Decode(pageToken, 1);
            before = long.TryParse(values[0], CultureInfo.InvariantCulture, out var b) ? b : throw SextantException.Invalid("page_token", "Invalid page_token.");
        }
        await using var connection = await database.OpenAsync(cancellationToken);
        var exists = await connection.ExecuteScalarAsync<long?>("SELECT id FROM versioned_datasets WHERE project_id = @project AND name = @datasetName",
            new { project = caller.ProjectId, datasetName }) ?? throw SextantException.NotFound($"No dataset named '{datasetName}'.");
        var rows = (await connection.QueryAsync<VersionRow>(
            $"SELECT {VersionColumns} FROM dataset_versions v JOIN versioned_datasets d ON d.id = v.dataset_id WHERE d.id = @exists AND v.version < @before ORDER BY v.version DESC LIMIT @take",
            new { exists, before, take = limit + 1 })).ToList();
        var next = rows.Count > limit ? PageToken.Encode([rows[limit - 1].Version.ToString(CultureInfo.InvariantCulture)]) : null;
        return new DatasetVersionsResponse([.. rows.Take(limit).Select(ToVersion)], next);
    }

    public async Task<DatasetsResponse> ListDatasetsAsync(Caller caller, string? nameContains, long? maxResults, string? pageToken, CancellationToken cancellationToken = default)
    {
        var limit = PageSize(maxResults);
        var after = "";
        if (!string.IsNullOrEmpty(pageToken))
        {
            after = PageToken.Decode(pageToken, 1)[0] ?? "";
        }
        await using var connection = await database.OpenAsync(cancellationToken);
        var datasets = (await connection.QueryAsync<(long Id, string Name, string Description, long Created, long Updated, long Versions)>(
            $"""
            SELECT d.id, d.name, d.description, d.creation_time, d.last_updated_time, (SELECT COUNT(*) FROM dataset_versions v WHERE v.dataset_id = d.id)
            FROM versioned_datasets d WHERE d.project_id = @project AND d.name > @after {(string.IsNullOrEmpty(nameContains) ? "" : "AND instr(lower(d.name), lower(@nameContains)) > 0")}
            ORDER BY d.name LIMIT @take
            """.Replace("instr(lower(d.name), lower(@nameContains)) > 0", database.Engine == DatabaseEngine.Postgres ? "strpos(lower(d.name), lower(@nameContains)) > 0" : "instr(lower(d.name), lower(@nameContains)) > 0", StringComparison.Ordinal),
            new { project = caller.ProjectId, after, nameContains, take = limit + 1 })).ToList();
        var result = new List<DatasetInfo>();
        foreach (var d in datasets.Take(limit))
        {
            var latest = await connection.QuerySingleOrDefaultAsync<VersionRow>(
                $"SELECT {VersionColumns} FROM dataset_versions v JOIN versioned_datasets d ON d.id = v.dataset_id WHERE d.id = @Id ORDER BY v.version DESC LIMIT 1", new { d.Id });
            result.Add(new DatasetInfo(d.Name, d.Description, d.Created, d.Updated, d.Versions, latest is null ? null : ToVersion(latest)));
        }
        return new DatasetsResponse(result, datasets.Count > limit ? PageToken.Encode([datasets[limit - 1].Name]) : null);
    }

    public async Task<DatasetInfo> GetDatasetAsync(Caller caller, string? name, CancellationToken cancellationToken = default)
    {
        var datasetName = DatasetName(name);
        await using var connection = await database.OpenAsync(cancellationToken);
        var d = await connection.QuerySingleOrDefaultAsync<(long Id, string Name, string Description, long Created, long Updated)?>(
            "SELECT id, name, description, creation_time, last_updated_time FROM versioned_datasets WHERE project_id = @project AND name = @datasetName",
            new { project = caller.ProjectId, datasetName }) ?? throw SextantException.NotFound($"No dataset named '{datasetName}'.");
        var count = await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM dataset_versions WHERE dataset_id = @Id", new { d.Id });
        var latest = await connection.QuerySingleOrDefaultAsync<VersionRow>(
            $"SELECT {VersionColumns} FROM dataset_versions v JOIN versioned_datasets d ON d.id = v.dataset_id WHERE d.id = @Id ORDER BY v.version DESC LIMIT 1", new { d.Id });
        return new DatasetInfo(d.Name, d.Description, d.Created, d.Updated, count, latest is null ? null : ToVersion(latest));
    }

    private static int PageSize(long? maxResults) => maxResults is null or 0 ? DefaultPageSize
        : maxResults is < 0 or > MaxPageSize ? throw SextantException.Invalid("max_results", $"'max_results' must be between 1 and {MaxPageSize}; got {maxResults}.")
        : (int)maxResults.Value;

    /// <summary>Files added, removed and changed from <paramref name="from"/> to <paramref name="to"/>; for tables, schema, rows and statistics.</summary>
    public async Task<DatasetDiff> DiffAsync(Caller caller, string? name, string? from, string? to, CancellationToken cancellationToken = default)
    {
        if (string.IsNullOrEmpty(from))
        {
            throw SextantException.Missing("from");
        }
        var a = await VersionRowAsync(caller, name, from, cancellationToken, "from");
        var b = await VersionRowAsync(caller, name, to, cancellationToken, "to");
        var oldFiles = DatasetManifest.Parse(await ReadBlobAsync(a.Digest, cancellationToken)).ToDictionary(f => f.Path, StringComparer.Ordinal);
        var newFiles = DatasetManifest.Parse(await ReadBlobAsync(b.Digest, cancellationToken)).ToDictionary(f => f.Path, StringComparer.Ordinal);
        var added = newFiles.Values.Where(f => !oldFiles.ContainsKey(f.Path)).OrderBy(f => f.Path, StringComparer.Ordinal).ToList();
        var removed = oldFiles.Values.Where(f => !newFiles.ContainsKey(f.Path)).OrderBy(f => f.Path, StringComparer.Ordinal).ToList();
        var changed = newFiles.Values.Where(f => oldFiles.TryGetValue(f.Path, out var o) && o.Sha256 != f.Sha256).OrderBy(f => f.Path, StringComparer.Ordinal)
            .Select(f => new FileChange(f.Path, oldFiles[f.Path].Size, f.Size, oldFiles[f.Path].Sha256, f.Sha256)).ToList();
        var tables = new List<TableDiff>();
        if (changed.Any(c => TabularProfiler.FormatOf(c.Path) is not null))
        {
            var oldProfiles = (await GetProfileAsync(caller, a.Name, a.Version.ToString(CultureInfo.InvariantCulture), cancellationToken)).Tables.DistinctBy(t => t.Path).ToDictionary(t => t.Path, StringComparer.Ordinal);
            var newProfiles = (await GetProfileAsync(caller, b.Name, b.Version.ToString(CultureInfo.InvariantCulture), cancellationToken)).Tables.DistinctBy(t => t.Path).ToDictionary(t => t.Path, StringComparer.Ordinal);
            foreach (var change in changed)
            {
                if (oldProfiles.TryGetValue(change.Path, out var o) && newProfiles.TryGetValue(change.Path, out var n) && o.Error is null && n.Error is null)
                {
                    tables.Add(DiffTable(o, n));
                }
            }
        }
        return new DatasetDiff(a.Name, a.Version, b.Version, added, removed, changed, tables);
    }

    private static TableDiff DiffTable(TableProfile o, TableProfile n)
    {
        // Profiles written before column names were made unique may repeat one: the first of a name counts.
        var oldColumns = o.Columns.DistinctBy(c => c.Name, StringComparer.Ordinal).ToDictionary(c => c.Name, StringComparer.Ordinal);
        var newColumns = n.Columns.DistinctBy(c => c.Name, StringComparer.Ordinal).ToDictionary(c => c.Name, StringComparer.Ordinal);
        return new TableDiff(o.Path, o.Rows, n.Rows,
            [.. n.Columns.Where(c => !oldColumns.ContainsKey(c.Name)).Select(c => c.Name)],
            [.. o.Columns.Where(c => !newColumns.ContainsKey(c.Name)).Select(c => c.Name)],
            [.. newColumns.Values.Where(c => oldColumns.ContainsKey(c.Name)).Select(c =>
            {
                var p = oldColumns[c.Name];
                return new ColumnChange(c.Name, p.Type, c.Type, p.Nulls, c.Nulls, p.DistinctEstimate, c.DistinctEstimate, p.Mean, c.Mean, p.Std, c.Std, p.Min, c.Min, p.Max, c.Max);
            })]);
    }
}

/// <summary>Reads at most <paramref name="length"/> bytes of <paramref name="inner"/>, leaving the rest for the next reader.</summary>
internal sealed class BoundedReadStream(Stream inner, long length) : Stream
{
    public long Remaining { get; private set; } = length;

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        if (Remaining == 0)
        {
            return 0;
        }
        var read = inner.Read(buffer[..(int)Math.Min(buffer.Length, Remaining)]);
        Remaining -= read;
        return read;
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (Remaining == 0)
        {
            return 0;
        }
        var read = await inner.ReadAsync(buffer[..(int)Math.Min(buffer.Length, Remaining)], cancellationToken);
        Remaining -= read;
        return read;
    }

    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
