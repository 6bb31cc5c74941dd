using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using Dapper;
using Sextant.Contracts;
using Sextant.Core.Storage;
using Sextant.Core.Tracking;

namespace Sextant.Core.Projects;

/// <summary>Projects (tenants) and their API keys. Keys are stored as SHA-256 hashes; the secret is shown once.</summary>
public sealed partial class ProjectService(SextantDatabase database)
{
    public const string DefaultProject = "default";
    private const string KeyPrefix = "sx_";
    private const int MaxCachedKeys = 10_000;
    private long _revocations;
    private static readonly TimeSpan CacheLifetime = TimeSpan.FromSeconds(10);

    private readonly ConcurrentDictionary<string, (Caller Caller, DateTime Expires)> _keyCache = new();

    [GeneratedRegex("^[a-z0-9][a-z0-9_.-]{0,62}$")]
    private static partial Regex ProjectNamePattern();

    /// <summary>Creates the <c>default</c> project and its <c>Default</c> experiment (id 0, as MLflow clients expect).</summary>
    public async Task EnsureDefaultProjectAsync(CancellationToken cancellationToken = default)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        await using var transaction = await SextantDatabase.BeginWriteAsync(connection, cancellationToken);
        var now = Clock.NowMs();
        await connection.ExecuteAsync(
            "INSERT INTO projects (id, name, created_at) VALUES (1, @name, @now) ON CONFLICT DO NOTHING",
            new { name = DefaultProject, now }, transaction);
        await connection.ExecuteAsync(
            """
            INSERT INTO experiments (id, project_id, name, artifact_location, lifecycle_stage, creation_time, last_update_time)
            VALUES (0, 1, 'Default', 'mlflow-artifacts:/0', 'active', @now, @now) ON CONFLICT DO NOTHING
            """,
            new { now }, transaction);
        if (database.Engine == DatabaseEngine.Postgres)
        {
            // Rows inserted with explicit ids do not move identity sequences.
            await connection.ExecuteAsync("SELECT setval(pg_get_serial_sequence('projects', 'id'), GREATEST((SELECT MAX(id) FROM projects), 1))", transaction: transaction);
        }
        await transaction.CommitAsync(cancellationToken);
    }

    public async Task<IReadOnlyList<Project>> ListAsync(CancellationToken cancellationToken = default)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        var rows = await connection.QueryAsync<(string Name, long CreatedAt)>("SELECT name, created_at FROM projects ORDER BY name");
        return rows.Select(r => new Project(r.Name, r.CreatedAt)).ToList();
    }

    public async Task<(long Id, string Name)> GetAsync(string name, CancellationToken cancellationToken = default)
    {
        if (name.Contains('\0', StringComparison.Ordinal))
        {
            throw SextantException.NotFound("Project names cannot contain NUL characters.");
        }
        await using var connection = await database.OpenAsync(cancellationToken);
        var id = await connection.QuerySingleOrDefaultAsync<long?>("SELECT id FROM projects WHERE name = @name", new { name });
        return id is null ? throw SextantException.NotFound($"Project '{name}' does not exist.") : (id.Value, name);
    }

    public async Task<Project> CreateAsync(string? name, CancellationToken cancellationToken = default)
    {
        if (string.IsNullOrEmpty(name))
        {
            throw SextantException.Missing("name");
        }
        if (!ProjectNamePattern().IsMatch(name))
        {
            throw SextantException.Invalid("name", $"Project name '{name}' is invalid: use 1-63 characters of a-z, 0-9, '_', '.', '-', starting with a letter or digit.");
        }
        await using var connection = await database.OpenAsync(cancellationToken);
        await using var transaction = await SextantDatabase.BeginWriteAsync(connection, cancellationToken);
        var now = Clock.NowMs();
        var id = await connection.QuerySingleOrDefaultAsync<long?>(
            "INSERT INTO projects (name, created_at) VALUES (@name, @now) ON CONFLICT (name) DO NOTHING RETURNING id",
            new { name, now }, transaction);
        if (id is null)
        {
            throw SextantException.AlreadyExists($"Project '{name}' already exists.", "name");
        }
        await ExperimentRows.InsertAsync(connection, transaction, id.Value, "Default", null, now);
        await transaction.CommitAsync(cancellationToken);
        return new Project(name, now);
    }

    public async Task<CreateKeyResponse> CreateKeyAsync(long projectId, string? name, string? role, CancellationToken cancellationToken = default)
    {
        if (string.IsNullOrWhiteSpace(name))
        {
            throw SextantException.Missing("name");
        }
        if (name.Length > 200 || name.Contains('\0', StringComparison.Ordinal))
        {
            throw SextantException.Invalid("name", "Key name must be at most 200 characters, without NUL characters.");
        }
        var parsedRole = ParseRole(role);
        var keyId = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6));
        var secret = KeyPrefix + keyId + "_" + Base64Url(RandomNumberGenerator.GetBytes(32));
        var now = Clock.NowMs();
        await using var connection = await database.OpenAsync(cancellationToken);
        var project = await connection.QuerySingleAsync<string>("SELECT name FROM projects WHERE id = @projectId", new { projectId });
        await connection.ExecuteAsync(
            """
            INSERT INTO api_keys (key_id, project_id, name, role, secret_hash, created_at)
            VALUES (@keyId, @projectId, @name, @role, @hash, @now)
            """,
            new { keyId, projectId, name, role = RoleName(parsedRole), hash = Hash(secret), now });
        var key = new ApiKey(keyId, name, project, RoleName(parsedRole), KeyPrefix + keyId, now, null);
        return new CreateKeyResponse(key, secret);
    }

    /// <summary>Lists keys of one project, or of every project when <paramref name="projectId"/> is null.</summary>
    public async Task<IReadOnlyList<ApiKey>> ListKeysAsync(long? projectId, CancellationToken cancellationToken = default)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        var rows = await connection.QueryAsync<(string KeyId, string Name, string Project, string Role, long CreatedAt, long? RevokedAt)>(
            """
            SELECT k.key_id, k.name, p.name AS project, k.role, k.created_at, k.revoked_at
            FROM api_keys k JOIN projects p ON p.id = k.project_id
            WHERE @projectId IS NULL OR k.project_id = @projectId
            ORDER BY k.id
            """,
            new { projectId });
        return rows.Select(r => new ApiKey(r.KeyId, r.Name, r.Project, r.Role, KeyPrefix + r.KeyId, r.CreatedAt, r.RevokedAt)).ToList();
    }

    public async Task RevokeKeyAsync(long? projectId, string keyId, CancellationToken cancellationToken = default)
    {
        if (keyId.Contains('\0', StringComparison.Ordinal))
        {
            throw SextantException.NotFound($"API key '{keyId}' does not exist.");
        }
        await using var connection = await database.OpenAsync(cancellationToken);
        var changed = await connection.ExecuteAsync(
            "UPDATE api_keys SET revoked_at = @now WHERE key_id = @keyId AND (@projectId IS NULL OR project_id = @projectId) AND revoked_at IS NULL",
            new { now = Clock.NowMs(), keyId, projectId });
        if (changed == 0)
        {
            var exists = await connection.ExecuteScalarAsync<long?>(
                "SELECT id FROM api_keys WHERE key_id = @keyId AND (@projectId IS NULL OR project_id = @projectId)", new { keyId, projectId });
            if (exists is null)
            {
                throw SextantException.NotFound($"API key '{keyId}' does not exist.");
            }
        }
        Interlocked.Increment(ref _revocations);
        _keyCache.Clear();
    }

    /// <summary>Resolves a secret to its caller, or null when unknown or revoked.</summary>
    public async Task<Caller?> AuthenticateAsync(string secret, CancellationToken cancellationToken = default)
    {
        if (!secret.StartsWith(KeyPrefix, StringComparison.Ordinal) || secret.Length > 200)
        {
            // Not a Sextant key: no database round trip, nothing cached.
            return null;
        }
        var hash = Hash(secret);
        if (_keyCache.TryGetValue(hash, out var cached) && cached.Expires > DateTime.UtcNow)
        {
            return cached.Caller;
        }
        // A revoke that happens while this lookup runs must not be undone by caching what the lookup read.
        var generation = Volatile.Read(ref _revocations);
        await using var connection = await database.OpenAsync(cancellationToken);
        var row = await connection.QuerySingleOrDefaultAsync<(long ProjectId, string Project, string Role, string KeyId)?>(
            """
            SELECT k.project_id, p.name, k.role, k.key_id FROM api_keys k JOIN projects p ON p.id = k.project_id
            WHERE k.secret_hash = @hash AND k.revoked_at IS NULL
            """,
            new { hash });
        var caller = row is { } r ? new Caller(r.ProjectId, r.Project, ParseRole(r.Role), Anonymous: false, r.KeyId) : null;
        if (caller is not null && generation == Volatile.Read(ref _revocations))
        {
            // Only real keys are cached (unknown secrets would let anyone grow it), and it stays bounded.
            if (_keyCache.Count >= MaxCachedKeys)
            {
                _keyCache.Clear();
            }
            _keyCache[hash] = (caller, DateTime.UtcNow + CacheLifetime);
        }
        return caller;
    }

    public async Task<bool> AnyKeyAsync(CancellationToken cancellationToken = default)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        return await connection.ExecuteScalarAsync<long?>("SELECT id FROM api_keys WHERE revoked_at IS NULL LIMIT 1") is not null;
    }

    public static Role ParseRole(string? role) => role?.ToLowerInvariant() switch
    {
        "viewer" => Role.Viewer,
        "editor" => Role.Editor,
        "admin" => Role.Admin,
        null or "" => throw SextantException.Missing("role"),
        _ => throw SextantException.Invalid("role", $"Role '{role}' is unknown: use viewer, editor or admin."),
    };

    private static string RoleName(Role role) => role.ToString().ToLowerInvariant();

    private static string Hash(string secret) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(secret)));

    private static string Base64Url(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');
}
