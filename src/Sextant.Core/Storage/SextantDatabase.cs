using System.Data.Common;
using System.Reflection;
using Dapper;
using Microsoft.Data.Sqlite;
using Npgsql;
using Sextant.Contracts;

namespace Sextant.Core.Storage;

/// <summary>
/// The metadata database: opens connections for either engine, runs migrations, and keeps the
/// few SQL dialect differences in one place.
/// </summary>
public sealed class SextantDatabase : IAsyncDisposable
{
    private readonly NpgsqlDataSource? _postgres;
    private readonly string? _sqliteConnectionString;
    private CancellationTokenSource? _stopCheckpoints;
    private Task? _checkpoints;
    private long _lastRestart;

    /// <summary>Past this size the background checkpointer waits for a moment without writers and empties the WAL.</summary>
    internal long MaxWalBytes { get; set; } = 64L << 20;

    static SextantDatabase()
    {
        DefaultTypeMap.MatchNamesWithUnderscores = true;
    }

    public SextantDatabase(DatabaseUri uri)
    {
        Uri = uri;
        if (uri.Engine == DatabaseEngine.Postgres)
        {
            _postgres = NpgsqlDataSource.Create(uri.ConnectionString);
        }
        else
        {
            var builder = new SqliteConnectionStringBuilder(uri.ConnectionString) { DefaultTimeout = 30 };
            var folder = Path.GetDirectoryName(builder.DataSource);
            if (!string.IsNullOrEmpty(folder))
            {
                Directory.CreateDirectory(folder);
            }
            _sqliteConnectionString = builder.ToString();
        }
    }

    public DatabaseUri Uri { get; }

    public DatabaseEngine Engine => Uri.Engine;

    internal NpgsqlDataSource? PostgresDataSource => _postgres;

    public async Task<DbConnection> OpenAsync(CancellationToken cancellationToken = default)
    {
        if (_postgres is not null)
        {
            return await _postgres.OpenConnectionAsync(cancellationToken);
        }
        var connection = new SqliteConnection(_sqliteConnectionString);
        await connection.OpenAsync(cancellationToken);
        // WAL lets readers run beside the single writer; synchronous=FULL makes every commit durable
        // even across power loss (group commit keeps the number of fsyncs small).
        using var pragma = connection.CreateCommand();
        pragma.CommandText = "PRAGMA busy_timeout = 30000; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;"
            + (_checkpoints is null ? "" : " PRAGMA wal_autocheckpoint = 0;");
        await pragma.ExecuteNonQueryAsync(cancellationToken);
        return connection;
    }

    /// <summary>
    /// SQLite: checkpoints the WAL into the database file in the background instead of in the commit that crosses
    /// 1,000 pages. A commit then only appends to the WAL (and syncs it), so the writers' group commits are not
    /// held up copying pages; the checkpointer copies them beside the writers (PASSIVE): again at once while it is
    /// behind and getting on, else five times a second. A busy writer starts the WAL over now and then
    /// (<see cref="LetWalRestartAsync"/>). The checkpointer empties the WAL file (TRUNCATE, which holds writers off
    /// until it is done) when the file is over <see cref="MaxWalBytes"/> and no commit came since its last look,
    /// or, when copying cannot keep up, past four times that size. For long-lived processes (the server).
    /// </summary>
    public void StartBackgroundCheckpoints()
    {
        if (_sqliteConnectionString is null || _checkpoints is not null)
        {
            return;
        }
        _stopCheckpoints = new CancellationTokenSource();
        var stop = _stopCheckpoints.Token;
        var walPath = new SqliteConnectionStringBuilder(_sqliteConnectionString).DataSource + "-wal";
        // A checkpoint blocks while it copies pages and syncs the files (milliseconds, more on a slow disk). If the
        // loop fails, checkpoints stop (SQLite's own would not run either: wal_autocheckpoint is 0), and stopping the
        // server says so.
        _checkpoints = DedicatedThread.Start("sextant checkpointer", () => Checkpoint(walPath, stop));
    }

    private void Checkpoint(string walPath, CancellationToken stop)
    {
        SqliteConnection? connection = null;
        var (behind, progressed, idle) = (false, false, false);
        long copiedBefore = -1, versionBefore = -1;
        while (!stop.WaitHandle.WaitOne(behind && progressed ? 1 : 200))
        {
            try
            {
                if (connection is null)
                {
                    connection = new SqliteConnection(_sqliteConnectionString);
                    connection.Open();
                    connection.Execute("PRAGMA busy_timeout = 30000");
                }
                var wal = new FileInfo(walPath);
                var walBytes = wal.Exists ? wal.Length : 0;
                var mode = walBytes > MaxWalBytes && idle || walBytes > 4 * MaxWalBytes ? "TRUNCATE" : "PASSIVE";
                // Busy (1) when another connection is checkpointing; frames in the WAL, and how many of them are in
                // the database file now (-1 and -1 when busy or outside WAL mode).
                var (busy, frames, copied) = connection.QuerySingle<(long Busy, long Frames, long Copied)>($"PRAGMA wal_checkpoint({mode})");
                // Changes whenever another connection commits.
                var version = connection.ExecuteScalar<long>("PRAGMA data_version");
                idle = busy == 0 && frames >= 0 && copied == frames && version == versionBefore;
                versionBefore = version;
                (behind, progressed, copiedBefore) = (busy == 0 && copied < frames, copied != copiedBefore, copied);
            }
            catch (Exception e) when (e is SqliteException or IOException or UnauthorizedAccessException)
            {
                // Locked, or the WAL file went away while it was looked at: the next round starts on a fresh
                // connection; commits keep appending to the WAL meanwhile.
                connection?.Dispose();
                connection = null;
                (behind, progressed, idle) = (false, false, false);
            }
        }
        connection?.Dispose();
    }

    /// <summary>
    /// SQLite: lets a writer that commits back to back start the WAL over. SQLite writes a transaction's pages from
    /// the WAL's beginning again only when every frame in it is in the database file as the transaction begins; the
    /// background checkpointer copies beside the writer but seldom finishes in the moment between two commits, so the
    /// WAL would grow until a truncation held the writer off (for up to 1.4 s in the OTLP benchmark). Once a second
    /// the writer copies what is left (little, the checkpointer keeps up) itself just before it begins.
    /// </summary>
    internal async Task LetWalRestartAsync(DbConnection connection)
    {
        if (_checkpoints is null || Environment.TickCount64 - _lastRestart <= 1000)
        {
            return;
        }
        try
        {
            // Busy (1) while the background checkpointer is at work: the next commit tries again.
            var (busy, frames, copied) = await connection.QuerySingleAsync<(long Busy, long Frames, long Copied)>("PRAGMA wal_checkpoint(PASSIVE)");
            if (busy == 0 && frames == copied)
            {
                _lastRestart = Environment.TickCount64;
            }
        }
        catch (SqliteException)
        {
            // Only a way to keep the WAL small: the commit goes on without it.
        }
    }

    /// <summary>Whether a database error is a unique-constraint violation (a concurrent insert of the same key).</summary>
    public static bool IsUniqueViolation(DbException e) =>
        e is PostgresException { SqlState: PostgresErrorCodes.UniqueViolation } || e is SqliteException { SqliteExtendedErrorCode: 2067 or 1555 };

    /// <summary>
    /// Whether the database refused the data itself (a bad value, a constraint), as opposed to a failure that a
    /// retry may get past (a deadlock, a timeout, a full disk).
    /// </summary>
    public static bool IsDataError(DbException e) =>
        e is PostgresException p ? p.SqlState.StartsWith("22", StringComparison.Ordinal) || p.SqlState.StartsWith("23", StringComparison.Ordinal)
        : e is SqliteException { SqliteErrorCode: 18 or 19 or 20 };

    /// <summary>Starts a write transaction; on SQLite it takes the write lock at once (BEGIN IMMEDIATE).</summary>
    public static async Task<DbTransaction> BeginWriteAsync(DbConnection connection, CancellationToken cancellationToken = default) =>
        await connection.BeginTransactionAsync(cancellationToken);

    /// <summary>
    /// A case-sensitive LIKE, as MLflow's filter language means it. No escape character on either engine:
    /// PostgreSQL's default backslash escape would otherwise make a pattern ending in a backslash an error there
    /// and a literal on SQLite.
    /// </summary>
    public string Like(string column, string parameter) => Engine == DatabaseEngine.Postgres
        ? $"{column} LIKE {parameter} ESCAPE ''"
        : $"{column} GLOB {parameter}";

    /// <summary>The value to bind for <see cref="Like"/>: SQLite's LIKE ignores case, so it runs as GLOB.</summary>
    public string LikePattern(string pattern)
    {
        if (Engine == DatabaseEngine.Postgres)
        {
            return pattern;
        }
        var glob = new System.Text.StringBuilder(pattern.Length + 8);
        foreach (var c in pattern)
        {
            glob.Append(c switch
            {
                '%' => "*",
                '_' => "?",
                '*' => "[*]",
                '?' => "[?]",
                '[' => "[[]",
                _ => c.ToString(),
            });
        }
        return glob.ToString();
    }

    /// <summary>A case-insensitive LIKE.</summary>
    public string ILike(string column, string parameter) => Engine == DatabaseEngine.Postgres
        ? $"{column} ILIKE {parameter} ESCAPE ''"
        : $"lower({column}) LIKE lower({parameter})";

    /// <summary>Applies the migrations this database has not seen yet, each in its own transaction.</summary>
    public Task MigrateAsync(CancellationToken cancellationToken = default) => MigrateAsync(long.MaxValue, cancellationToken);

    /// <summary>Applies the migrations up to a version (tests of a migration start from the schema before it).</summary>
    internal async Task MigrateAsync(long upTo, CancellationToken cancellationToken = default)
    {
        await using var connection = await OpenAsync(cancellationToken);
        if (Engine == DatabaseEngine.Sqlite)
        {
            await connection.ExecuteAsync("PRAGMA journal_mode = WAL;");
        }
        else
        {
            // Replicas starting together must not migrate twice.
            await connection.ExecuteAsync("SELECT pg_advisory_lock(741852963)");
        }
        try
        {
            await connection.ExecuteAsync("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)");
            var applied = (await connection.QueryAsync<long>("SELECT version FROM schema_migrations")).ToHashSet();
            foreach (var (version, sql) in LoadMigrations(Engine))
            {
                if (applied.Contains(version) || version > upTo)
                {
                    continue;
                }
                await using var transaction = await BeginWriteAsync(connection, cancellationToken);
                await connection.ExecuteAsync(sql, transaction: transaction);
                await connection.ExecuteAsync(
                    "INSERT INTO schema_migrations (version, applied_at) VALUES (@version, @now)",
                    new { version, now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() },
                    transaction);
                await transaction.CommitAsync(cancellationToken);
            }
        }
        finally
        {
            if (Engine == DatabaseEngine.Postgres)
            {
                await connection.ExecuteAsync("SELECT pg_advisory_unlock(741852963)");
            }
        }
    }

    private static IEnumerable<(long Version, string Sql)> LoadMigrations(DatabaseEngine engine)
    {
        var assembly = Assembly.GetExecutingAssembly();
        var prefix = "Sextant.Migrations." + (engine == DatabaseEngine.Postgres ? "postgres" : "sqlite") + "/";
        foreach (var name in assembly.GetManifestResourceNames().Where(n => n.StartsWith(prefix, StringComparison.Ordinal)).Order(StringComparer.Ordinal))
        {
            var file = name[prefix.Length..];
            var version = long.Parse(file[..file.IndexOf('_', StringComparison.Ordinal)], System.Globalization.CultureInfo.InvariantCulture);
            using var stream = assembly.GetManifestResourceStream(name)!;
            using var reader = new StreamReader(stream);
            yield return (version, reader.ReadToEnd());
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_checkpoints is not null)
        {
            await _stopCheckpoints!.CancelAsync();
            await _checkpoints;
            _stopCheckpoints.Dispose();
        }
        if (_postgres is not null)
        {
            await _postgres.DisposeAsync();
        }
        else
        {
            SqliteConnection.ClearAllPools();
        }
    }
}
