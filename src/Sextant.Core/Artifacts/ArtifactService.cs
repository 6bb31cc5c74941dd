using System.Data.Common;
using Dapper;
using Sextant.Contracts;
using Sextant.Core.Projects;
using Sextant.Core.Storage;

namespace Sextant.Core.Artifacts;

/// <summary>
/// A per-project tree of artifact files whose contents live in the blob store. Paths follow MLflow's
/// artifact proxy layout: <c>&lt;experiment&gt;/&lt;run&gt;/artifacts/&lt;file&gt;</c>.
/// </summary>
public sealed class ArtifactService(SextantDatabase database, IBlobStore blobs)
{
    private const long ArtifactLockBase = 0x5E_7A_47_00_0000_0000;

    /// <summary>Registered model files (under registry/) are immutable: only the registry writes them.</summary>
    private static string Writable(string normalized) =>
        normalized == Registry.RegistryService.StorageRoot || normalized.StartsWith(Registry.RegistryService.StorageRoot + "/", StringComparison.Ordinal)
            ? throw new SextantException(ErrorCodes.PermissionDenied, $"'{normalized}' belongs to a registered model version, whose files cannot be changed or deleted.", 403, "path")
            : normalized;

    public async Task<BlobInfo> PutAsync(Caller caller, string? path, Stream content, CancellationToken cancellationToken = default)
    {
        caller.Require(Role.Editor);
        var normalized = Writable(ArtifactPath.Normalize(path, "path", allowEmpty: false));
        await using (var connection = await database.OpenAsync(cancellationToken))
        {
            await EnsureNoFileFolderClashAsync(connection, null, caller.ProjectId, normalized);
        }
        var blob = await blobs.PutAsync(content, cancellationToken);
        await using var write = await database.OpenAsync(cancellationToken);
        await using var transaction = await SextantDatabase.BeginWriteAsync(write, cancellationToken);
        if (database.Engine == DatabaseEngine.Postgres)
        {
            // SQLite's write transactions are serial already; PostgreSQL's read committed ones need this lock so
            // two uploads (of "a" and "a/b") cannot both pass the check below.
            await write.ExecuteAsync("SELECT pg_advisory_xact_lock(@key)", new { key = ArtifactLockBase + caller.ProjectId }, transaction);
        }
        // Checked again inside the write: another upload may have made a clash meanwhile.
        await EnsureNoFileFolderClashAsync(write, transaction, caller.ProjectId, normalized);
        await write.ExecuteAsync(
            """
            INSERT INTO artifact_files (project_id, path, sha256, size, modified_time) VALUES (@project, @path, @Sha256, @Size, @now)
            ON CONFLICT (project_id, path) DO UPDATE SET sha256 = excluded.sha256, size = excluded.size, modified_time = excluded.modified_time
            """,
            new { project = caller.ProjectId, path = normalized, blob.Sha256, blob.Size, now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() },
            transaction);
        await transaction.CommitAsync(cancellationToken);
        return blob;
    }

    /// <summary>A path cannot be a file and a folder at once: no file may sit below it, and no ancestor may be a file.</summary>
    private static async Task EnsureNoFileFolderClashAsync(DbConnection connection, DbTransaction? transaction, long project, string path)
    {
        var below = await connection.ExecuteScalarAsync<string?>(
            "SELECT path FROM artifact_files WHERE project_id = @project AND path >= @from AND path < @to LIMIT 1",
            new { project, from = path + "/", to = path + "0" }, transaction);
        if (below is not null)
        {
            throw SextantException.Invalid("path", $"'{path}' is a folder of artifacts; it cannot also be a file.");
        }
        var segments = path.Split('/');
        var ancestors = Enumerable.Range(1, segments.Length - 1).Select(n => string.Join('/', segments[..n])).ToArray();
        foreach (var ancestor in ancestors)
        {
            var file = await connection.ExecuteScalarAsync<string?>(
                "SELECT path FROM artifact_files WHERE project_id = @project AND path = @ancestor", new { project, ancestor }, transaction);
            if (file is not null)
            {
                throw SextantException.Invalid("path", $"'{ancestor}' is a file; it cannot also be a folder holding '{path}'.");
            }
        }
    }

    /// <summary>Opens a stored file; 404 when there is none at that path.</summary>
    public async Task<(Stream Content, long Size)> OpenAsync(Caller caller, string? path, CancellationToken cancellationToken = default)
    {
        var normalized = ArtifactPath.Normalize(path, "path", allowEmpty: false);
        await using var connection = await database.OpenAsync(cancellationToken);
        var row = await connection.QuerySingleOrDefaultAsync<(string Sha256, long Size)?>(
            "SELECT sha256, size FROM artifact_files WHERE project_id = @project AND path = @normalized",
            new { project = caller.ProjectId, normalized });
        if (row is not { } file)
        {
            throw SextantException.NotFound($"No artifact at '{normalized}'.");
        }
        var stream = blobs.OpenRead(file.Sha256) ?? throw SextantException.NotFound($"The content of artifact '{normalized}' is missing from the blob store.");
        return (stream, file.Size);
    }

    /// <summary>The files and folders directly under <paramref name="folder"/>; paths are relative to <paramref name="root"/>.</summary>
    public async Task<IReadOnlyList<ArtifactFile>> ListAsync(Caller caller, string root, string? folder, CancellationToken cancellationToken = default)
    {
        var relative = ArtifactPath.Normalize(folder, "path", allowEmpty: true);
        var full = string.Join('/', new[] { root, relative }.Where(p => p.Length > 0));
        var prefix = full.Length == 0 ? "" : full + "/";
        await using var connection = await database.OpenAsync(cancellationToken);
        var rows = await connection.QueryAsync<(string Path, long Size)>(
            prefix.Length == 0
                ? "SELECT path, size FROM artifact_files WHERE project_id = @project ORDER BY path"
                : "SELECT path, size FROM artifact_files WHERE project_id = @project AND path >= @from AND path < @to ORDER BY path",
            new { project = caller.ProjectId, from = prefix, to = prefix.Length == 0 ? "" : prefix[..^1] + "0" });
        var result = new List<ArtifactFile>();
        var seenFolders = new HashSet<string>(StringComparer.Ordinal);
        var rootPrefix = root.Length == 0 ? "" : root + "/";
        foreach (var (path, size) in rows)
        {
            var rest = path[prefix.Length..];
            var slash = rest.IndexOf('/', StringComparison.Ordinal);
            if (slash < 0)
            {
                result.Add(new ArtifactFile(path[rootPrefix.Length..], false, size));
            }
            else if (seenFolders.Add(rest[..slash]))
            {
                result.Add(new ArtifactFile((prefix + rest[..slash])[rootPrefix.Length..], true, null));
            }
        }
        return result;
    }

    /// <summary>Deletes a file or a whole folder. The blobs stay: other paths may share them.</summary>
    public async Task DeleteAsync(Caller caller, string? path, CancellationToken cancellationToken = default)
    {
        caller.Require(Role.Editor);
        var normalized = Writable(ArtifactPath.Normalize(path, "path", allowEmpty: false));
        await using var connection = await database.OpenAsync(cancellationToken);
        var deleted = await connection.ExecuteAsync(
            "DELETE FROM artifact_files WHERE project_id = @project AND (path = @normalized OR (path >= @from AND path < @to))",
            new { project = caller.ProjectId, normalized, from = normalized + "/", to = normalized + "0" });
        if (deleted == 0)
        {
            throw SextantException.NotFound($"No artifact at '{normalized}'.");
        }
    }
}
