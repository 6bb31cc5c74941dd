using Microsoft.Data.Sqlite;
using SQLitePCL;

namespace Sextant.Core.Tracking;

/// <summary>
/// The two statements of the SQLite metric hot path, prepared once on the writer's connection and bound by
/// position through SQLitePCL. ADO.NET parameters look every name up again on each execution, which made
/// binding, not SQLite, the ingestion ceiling.
/// </summary>
internal sealed class SqliteMetricStatements : IDisposable
{
    private const string InsertSql = "INSERT INTO metrics (run_id, key, value, is_nan, step, timestamp) VALUES (?1, ?2, ?3, ?4, ?5, ?6)";

    private readonly sqlite3 _db;
    private readonly sqlite3_stmt _insert;
    private readonly sqlite3_stmt _latest;

    public SqliteMetricStatements(SqliteConnection connection, string latestUpsertTail)
    {
        _db = connection.Handle!;
        _insert = Prepare(InsertSql);
        _latest = Prepare("INSERT INTO latest_metrics (run_id, key, value, is_nan, step, timestamp) VALUES (?1, ?2, ?3, ?4, ?5, ?6) " + latestUpsertTail);
    }

    public void Insert(long runId, MetricPoint point) => Execute(_insert, runId, point);

    public void UpsertLatest(long runId, MetricPoint point) => Execute(_latest, runId, point);

    private void Execute(sqlite3_stmt statement, long runId, MetricPoint point)
    {
        var nan = double.IsNaN(point.Value);
        raw.sqlite3_bind_int64(statement, 1, runId);
        raw.sqlite3_bind_text(statement, 2, point.Key);
        raw.sqlite3_bind_double(statement, 3, nan ? 0 : point.Value);
        raw.sqlite3_bind_int(statement, 4, nan ? 1 : 0);
        raw.sqlite3_bind_int64(statement, 5, point.Step);
        raw.sqlite3_bind_int64(statement, 6, point.Timestamp);
        var rc = raw.sqlite3_step(statement);
        raw.sqlite3_reset(statement);
        if (rc != raw.SQLITE_DONE)
        {
            throw new SqliteException($"SQLite error {rc}: {raw.sqlite3_errmsg(_db).utf8_to_string()}", rc);
        }
    }

    private sqlite3_stmt Prepare(string sql)
    {
        var rc = raw.sqlite3_prepare_v2(_db, sql, out var statement);
        return rc == raw.SQLITE_OK ? statement : throw new SqliteException($"SQLite error {rc}: {raw.sqlite3_errmsg(_db).utf8_to_string()}", rc);
    }

    public void Dispose()
    {
        _insert.Dispose();
        _latest.Dispose();
    }
}
