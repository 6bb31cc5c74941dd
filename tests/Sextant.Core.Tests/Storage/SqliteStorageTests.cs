using Dapper;
using Microsoft.Data.Sqlite;
using Sextant.Core.Storage;

namespace Sextant.Core.Tests.Storage;

/// <summary>SQLite specifics: the spans migration keeps what was stored, and the background checkpointer.</summary>
public sealed class SqliteStorageTests : IDisposable
{
    private readonly string _folder = Path.Combine(Path.GetTempPath(), "sextant-sqlite-" + Guid.NewGuid().ToString("N")[..10]);

    private string DbPath => Path.Combine(_folder, "sextant.db");

    [Fact]
    public async Task Spans_and_traces_keep_their_rows_and_their_keys_when_they_become_rowid_tables_and_spans_are_keyed_by_their_trace_row()
    {
        await using var database = new SextantDatabase(DatabaseUri.Sqlite(DbPath));
        await database.MigrateAsync(upTo: 6);
        await using (var connection = await database.OpenAsync())
        {
            await connection.ExecuteAsync("INSERT INTO projects (id, name, created_at) VALUES (1, 'default', 0)");
            await connection.ExecuteAsync(
                """
                INSERT INTO spans (project_id, trace_id, span_id, name, kind, start_time, end_time, status, tokens_estimated, cache_hit, data, api_key_id, cost)
                VALUES (1, 't1', 's1', 'root', 'span', 10, 20, 'ok', 0, 0, '{}', NULL, NULL), (1, 't1', 's2', 'llm', 'generation', 11, 19, 'ok', 0, 0, '{"a":1}', 'k1', 0.5)
                """);
            await connection.ExecuteAsync(
                """
                INSERT INTO traces (project_id, trace_id, name, named_by_root, start_time, end_time, error_count, span_count, generation_count, input_tokens, output_tokens,
                    cost, cost_unknown, user_id, session_id, models, tags)
                VALUES (1, 't1', 'root', 1, 10, 20, 0, 2, 1, 5, 6, 0.5, 0, 'alice', NULL, '[]', '[]')
                """);
        }
        await database.MigrateAsync();
        await using var after = await database.OpenAsync();
        var spans = (await after.QueryAsync<(string SpanId, string Data, string? Key, double? Cost)>("SELECT span_id, data, api_key_id, cost FROM spans ORDER BY span_id")).ToList();
        Assert.Equal([("s1", "{}", null, null), ("s2", """{"a":1}""", "k1", 0.5)], spans);
        Assert.Equal("alice", await after.ExecuteScalarAsync<string>("SELECT user_id FROM traces WHERE trace_id = 't1'"));
        // Migration 10: the spans point at their trace's row, and are keyed by it.
        var traceRow = await after.ExecuteScalarAsync<long>("SELECT id FROM traces WHERE trace_id = 't1'");
        Assert.Equal([traceRow, traceRow], await after.QueryAsync<long>("SELECT trace_row FROM spans ORDER BY span_id"));
        // The keys still deduplicate: the writer's inserts name them as their conflict targets.
        Assert.Equal(0, await after.ExecuteAsync(
            """
            INSERT INTO spans (project_id, trace_id, span_id, name, kind, start_time, end_time, status, tokens_estimated, cache_hit, data, trace_row)
            VALUES (1, 't1', 's1', 'again', 'span', 10, 20, 'ok', 0, 0, '{}', @traceRow) ON CONFLICT (trace_row, span_id) DO NOTHING
            """, new { traceRow }));
        Assert.Equal(0, await after.ExecuteAsync(
            """
            INSERT INTO traces (project_id, trace_id, name, named_by_root, start_time, end_time, error_count, span_count, generation_count, input_tokens, output_tokens,
                cost, cost_unknown, models, tags)
            VALUES (1, 't1', 'again', 1, 10, 20, 0, 2, 1, 5, 6, 0.5, 0, '[]', '[]') ON CONFLICT (project_id, trace_id) DO NOTHING
            """));
    }

    [Fact]
    public async Task The_background_checkpointer_copies_commits_into_the_file_and_empties_a_large_wal()
    {
        await using var database = new SextantDatabase(DatabaseUri.Sqlite(DbPath)) { MaxWalBytes = 1 << 20 };
        await database.MigrateAsync();
        database.StartBackgroundCheckpoints();
        await using (var connection = await database.OpenAsync())
        {
            // Commits no longer checkpoint themselves.
            Assert.Equal(0, await connection.ExecuteScalarAsync<long>("PRAGMA wal_autocheckpoint"));
            await connection.ExecuteAsync("CREATE TABLE filler (id INTEGER PRIMARY KEY, text TEXT NOT NULL)");
            for (var i = 0; i < 8; i++)
            {
                await using var transaction = await SextantDatabase.BeginWriteAsync(connection);
                await connection.ExecuteAsync("INSERT INTO filler (text) SELECT printf('%.1000c', 'x') FROM (WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 500) SELECT i FROM n)",
                    transaction: transaction);
                await transaction.CommitAsync();
            }
        }
        // About 4 MB went through the WAL: the checkpointer copies it into the file and, past 1 MB, empties the WAL file.
        // SQLite removes the WAL file when the last connection closes: gone counts as empty.
        long WalBytes() => File.Exists(DbPath + "-wal") ? new FileInfo(DbPath + "-wal").Length : 0;
        for (var i = 0; i < 100 && WalBytes() > 1 << 20; i++)
        {
            await Task.Delay(100);
        }
        Assert.True(WalBytes() <= 1 << 20, $"the WAL is still {WalBytes()} bytes");
        // A reader without the WAL (a fresh connection to the file alone would need it otherwise) sees every row.
        await using var check = new SqliteConnection($"Data Source={DbPath}");
        await check.OpenAsync();
        Assert.Equal(4000, await check.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM filler"));
    }

    public void Dispose()
    {
        SqliteConnection.ClearAllPools();
        try
        {
            Directory.Delete(_folder, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
