using Microsoft.Data.Sqlite;
using SQLitePCL;
using Sextant.Contracts;

namespace Sextant.Core.Tracing;

/// <summary>
/// The span writer's two SQLite statements (insert a new trace's summary; insert a span under its trace's row),
/// prepared once on the writer's connection and bound by position: preparing and binding by name on every span cost
/// more than SQLite's own work.
/// </summary>
internal sealed class SqliteSpanStatements : IDisposable
{
    private readonly sqlite3 _db;
    private readonly sqlite3_stmt _span;
    private readonly sqlite3_stmt _trace;

    public SqliteSpanStatements(SqliteConnection connection)
    {
        _db = connection.Handle!;
        _span = Prepare(
            """
            INSERT INTO spans (project_id, trace_id, span_id, parent_span_id, name, kind, start_time, end_time, status, status_message, provider, model, operation,
                input_tokens, output_tokens, cached_input_tokens, cache_write_tokens, reasoning_tokens, tokens_estimated, cost, cost_saved, time_to_first_token_ms,
                user_id, session_id, cache_hit, data, api_key_id, trace_row)
            VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28)
            ON CONFLICT (trace_row, span_id) DO NOTHING
            """);
        _trace = Prepare(
            """
            INSERT INTO traces (project_id, trace_id, name, named_by_root, start_time, end_time, error_count, span_count, generation_count, input_tokens, output_tokens,
                cost, cost_unknown, user_id, session_id, models, tags)
            VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)
            ON CONFLICT (project_id, trace_id) DO NOTHING
            """);
    }

    /// <param name="traceRow">The row id of the span's trace summary.</param>
    /// <returns>Whether the span was new.</returns>
    public bool InsertSpan(StoredSpan stored, long traceRow)
    {
        var s = stored.Span;
        var i = 1;
        Bind(_span, i++, stored.Project);
        Bind(_span, i++, s.TraceId);
        Bind(_span, i++, s.SpanId);
        Bind(_span, i++, s.ParentSpanId);
        Bind(_span, i++, s.Name);
        Bind(_span, i++, s.Kind);
        Bind(_span, i++, s.StartTime);
        Bind(_span, i++, s.EndTime);
        Bind(_span, i++, s.Status);
        Bind(_span, i++, s.StatusMessage);
        Bind(_span, i++, s.Provider);
        Bind(_span, i++, s.Model);
        Bind(_span, i++, s.Operation);
        Bind(_span, i++, s.InputTokens);
        Bind(_span, i++, s.OutputTokens);
        Bind(_span, i++, s.CachedInputTokens);
        Bind(_span, i++, s.CacheWriteTokens);
        Bind(_span, i++, s.ReasoningTokens);
        Bind(_span, i++, s.TokensEstimated ? 1 : 0);
        Bind(_span, i++, s.Cost);
        Bind(_span, i++, s.CostSaved);
        Bind(_span, i++, s.TimeToFirstTokenMs);
        Bind(_span, i++, s.UserId);
        Bind(_span, i++, s.SessionId);
        Bind(_span, i++, s.CacheHit ? 1 : 0);
        Bind(_span, i++, stored.Data);
        Bind(_span, i++, stored.KeyId);
        Bind(_span, i, traceRow);
        return Step(_span) == 1;
    }

    /// <returns>The new trace's row id; null when the trace exists (its row must be read and merged).</returns>
    public long? InsertTrace(long project, TraceRow row)
    {
        var i = 1;
        Bind(_trace, i++, project);
        Bind(_trace, i++, row.TraceId);
        Bind(_trace, i++, row.Name);
        Bind(_trace, i++, row.NamedByRoot);
        Bind(_trace, i++, row.StartTime);
        Bind(_trace, i++, row.EndTime);
        Bind(_trace, i++, row.ErrorCount);
        Bind(_trace, i++, row.SpanCount);
        Bind(_trace, i++, row.GenerationCount);
        Bind(_trace, i++, row.InputTokens);
        Bind(_trace, i++, row.OutputTokens);
        Bind(_trace, i++, (double?)row.Cost);
        Bind(_trace, i++, row.CostUnknown);
        Bind(_trace, i++, row.UserId);
        Bind(_trace, i++, row.SessionId);
        Bind(_trace, i++, row.Models);
        Bind(_trace, i, row.Tags);
        return Step(_trace) == 1 ? raw.sqlite3_last_insert_rowid(_db) : null;
    }

    private static void Bind(sqlite3_stmt statement, int index, string? value)
    {
        if (value is null)
        {
            raw.sqlite3_bind_null(statement, index);
        }
        else
        {
            raw.sqlite3_bind_text(statement, index, value);
        }
    }

    private static void Bind(sqlite3_stmt statement, int index, long? value)
    {
        if (value is { } v)
        {
            raw.sqlite3_bind_int64(statement, index, v);
        }
        else
        {
            raw.sqlite3_bind_null(statement, index);
        }
    }

    private static void Bind(sqlite3_stmt statement, int index, double? value)
    {
        if (value is { } v)
        {
            raw.sqlite3_bind_double(statement, index, v);
        }
        else
        {
            raw.sqlite3_bind_null(statement, index);
        }
    }

    /// <returns>The rows the statement changed.</returns>
    private int Step(sqlite3_stmt statement)
    {
        var rc = raw.sqlite3_step(statement);
        raw.sqlite3_reset(statement);
        return rc == raw.SQLITE_DONE
            ? raw.sqlite3_changes(_db)
            : throw new SqliteException($"SQLite error {rc}: {raw.sqlite3_errmsg(_db).utf8_to_string()}", rc);
    }

    private sqlite3_stmt Prepare(string sql)
    {
        var rc = raw.sqlite3_prepare_v2(_db, sql, out var statement);
        return rc == raw.SQLITE_OK ? statement : throw new SqliteException($"SQLite error {rc}: {raw.sqlite3_errmsg(_db).utf8_to_string()}", rc);
    }

    public void Dispose()
    {
        _span.Dispose();
        _trace.Dispose();
    }
}
