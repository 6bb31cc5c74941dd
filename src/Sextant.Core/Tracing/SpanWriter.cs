using System.Collections.Concurrent;
using System.Data.Common;
using System.Diagnostics;
using System.Text.Json;
using Dapper;
using Sextant.Contracts;
using Sextant.Core.Storage;

namespace Sextant.Core.Tracing;

/// <summary>A validated span with its project and its stored JSON, ready to be written.</summary>
internal sealed record StoredSpan(long Project, Span Span, string Data, string? KeyId = null);

/// <summary>
/// The group-commit path for spans: writes wait in a bounded queue, one writer commits many of them in one
/// transaction (spans, then their traces' summaries), and each write is acknowledged after that commit. A full
/// queue is refused at once (503). Spans are deduplicated by (project, trace id, span id): a span sent twice is
/// stored once and reported as a duplicate.
/// </summary>
public sealed class SpanWriter : IAsyncDisposable
{
    public const int QueueCapacity = 10_000;
    private const int MaxSpansPerCommit = 5_000;
    /// <summary>
    /// After a commit of fewer than <see cref="GatherBelow"/> spans that ended less than <see cref="SteadyWithinMs"/> ago,
    /// the next commit waits <see cref="GatherMs"/> for more writes: at 1,000 gateway calls a second this cut the server's
    /// CPU per call by about a tenth (bench/RESULTS.md 9i), for at most that much more wait before an acknowledgement.
    /// </summary>
    private const int GatherBelow = 16, SteadyWithinMs = 20, GatherMs = 3;
    private readonly SextantDatabase _database;
    private readonly bool _syncEveryCommit;
    private readonly BlockingCollection<Write> _queue = new(new ConcurrentQueue<Write>(), QueueCapacity);
    private readonly Task _stopped;

    /// <param name="Traces">SQLite: the summary of each trace in the write as if all its spans are new, made by the caller's thread rather than the writer's.</param>
    /// <param name="Failed">Told when the write could not be stored, for a writer that does not wait for <paramref name="Done"/>.</param>
    private sealed record Write(IReadOnlyList<StoredSpan> Spans, TaskCompletionSource<bool[]> Done, Dictionary<(long Project, string TraceId), TraceRow>? Traces,
        Action<Exception>? Failed);

    /// <param name="syncEveryCommit">
    /// SQLite: sync the WAL at every commit (synchronous=FULL), so acknowledged spans also survive an operating-system
    /// crash or power loss. Off by default for spans (synchronous=NORMAL): a commit is written to the WAL before it is
    /// acknowledged, so a killed server (kill -9) loses nothing, and the WAL is synced at each checkpoint instead of at
    /// each commit. Everything else the server writes syncs every commit.
    /// </param>
    public SpanWriter(SextantDatabase database, bool syncEveryCommit = false)
    {
        _database = database;
        _syncEveryCommit = syncEveryCommit;
        // SQLite's calls block: a commit on the thread pool held one of its few threads while requests waited for it.
        _stopped = DedicatedThread.Start("sextant span writer", Run);
    }

    /// <returns>Per span: true when stored now, false when it was stored before.</returns>
    internal async Task<bool[]> WriteAsync(IReadOnlyList<StoredSpan> spans) => await Queue(spans, null);

    /// <summary>
    /// Queues a write and returns at once (a full queue or a stopping server throws here, 503); the task completes after
    /// its commit. A caller that does not wait for it passes <paramref name="failed"/>, which the writer's thread calls
    /// if the spans cannot be stored: nothing then resumes on the thread pool for each write.
    /// </summary>
    internal Task<bool[]> Queue(IReadOnlyList<StoredSpan> spans, Action<Exception>? failed)
    {
        var write = new Write(spans, new TaskCompletionSource<bool[]>(TaskCreationOptions.RunContinuationsAsynchronously),
            _database.Engine == DatabaseEngine.Sqlite ? Summaries(spans) : null, failed);
        bool queued;
        try
        {
            queued = _queue.TryAdd(write);
        }
        catch (InvalidOperationException)
        {
            throw new SextantException(ErrorCodes.TemporarilyUnavailable, "The server is stopping; the spans were not stored.", 503);
        }
        if (!queued)
        {
            throw new SextantException(ErrorCodes.TemporarilyUnavailable, $"The span queue is full ({QueueCapacity} writes waiting); retry shortly.", 503);
        }
        // Not cancelled with the request: once queued, the spans commit whether or not the client waits.
        return write.Done.Task;
    }

    private static Dictionary<(long Project, string TraceId), TraceRow> Summaries(IReadOnlyList<StoredSpan> spans)
    {
        if (spans.Count == 1)
        {
            // A gateway call's single span.
            var (project, span) = (spans[0].Project, spans[0].Span);
            return new Dictionary<(long Project, string TraceId), TraceRow>(1) { [(project, span.TraceId)] = Merge(NewTrace(span.TraceId), [span]) };
        }
        return spans.GroupBy(s => (s.Project, s.Span.TraceId)).ToDictionary(trace => trace.Key, trace => Merge(NewTrace(trace.Key.TraceId), [.. trace.Select(s => s.Span)]));
    }

    private void Run()
    {
        var batch = new List<Write>();
        var (lastCommit, lastCount) = (0L, int.MaxValue);
        while (_queue.TryTake(out var first, Timeout.Infinite))
        {
            if (lastCount < GatherBelow && Stopwatch.GetElapsedTime(lastCommit).TotalMilliseconds < SteadyWithinMs)
            {
                // A steady trickle of small writes (gateway calls, one span each): a commit's fixed cost (its locks and
                // the WAL frames of the pages every span touches) is shared by waiting a moment for the next ones. A
                // lone write, or a stream of big ones, commits at once.
                Thread.Sleep(GatherMs);
            }
            batch.Clear();
            batch.Add(first);
            var count = first.Spans.Count;
            while (count < MaxSpansPerCommit && _queue.TryTake(out var write))
            {
                batch.Add(write);
                count += write.Spans.Count;
            }
            try
            {
                // SQLite's commit runs on this thread (its async calls complete synchronously); PostgreSQL's is waited for.
                var results = CommitAsync(batch).GetAwaiter().GetResult();
                (lastCommit, lastCount) = (Stopwatch.GetTimestamp(), count);
                for (var i = 0; i < batch.Count; i++)
                {
                    batch[i].Done.TrySetResult(results[i]);
                }
            }
            catch (Exception)
            {
                // One bad write must not fail the others: commit each on its own.
                foreach (var write in batch)
                {
                    try
                    {
                        write.Done.TrySetResult(CommitAsync([write]).GetAwaiter().GetResult()[0]);
                    }
                    catch (Exception e)
                    {
                        write.Done.TrySetException(e);
                        if (write.Failed is { } failed)
                        {
                            // Observed here, by the callback, rather than by an await that never comes.
                            _ = write.Done.Task.Exception;
                            Tell(failed, e);
                        }
                    }
                }
            }
        }
    }

    private static void Tell(Action<Exception> failed, Exception e)
    {
        try
        {
            failed(e);
        }
        catch (Exception)
        {
            // A callback that fails must not stop the writer.
        }
    }

    private DbConnection? _sqlite;
    private SqliteSpanStatements? _statements;

    private async Task<bool[][]> CommitAsync(IReadOnlyList<Write> writes)
    {
        var sqlite = _database.Engine == DatabaseEngine.Sqlite;
        // SQLite: one connection for the writer's life, with its statements prepared once.
        var connection = sqlite ? _sqlite ??= await _database.OpenAsync() : await _database.OpenAsync();
        if (sqlite && _statements is null)
        {
            _statements = new SqliteSpanStatements((Microsoft.Data.Sqlite.SqliteConnection)connection);
            // The traces' key index takes inserts at random places (trace ids are random): a 4 MiB page cache keeps
            // its upper levels and recent leaves in memory (SQLite's default is 2 MiB; 8 MiB gave no more spans a
            // second once the spans' key stopped taking random inserts).
            await connection.ExecuteAsync("PRAGMA cache_size = -4096; PRAGMA synchronous = " + (_syncEveryCommit ? "FULL" : "NORMAL"));
        }
        try
        {
            if (sqlite)
            {
                await _database.LetWalRestartAsync(connection);
            }
            await using var transaction = await SextantDatabase.BeginWriteAsync(connection);
            var results = sqlite ? await WriteSqliteAsync(connection, transaction, writes) : await WritePostgresAsync(connection, transaction, writes);
            await transaction.CommitAsync();
            return results;
        }
        catch
        {
            if (sqlite)
            {
                // Start the next commit on a fresh connection.
                _statements?.Dispose();
                _statements = null;
                await connection.DisposeAsync();
                _sqlite = null;
            }
            throw;
        }
        finally
        {
            if (!sqlite)
            {
                await connection.DisposeAsync();
            }
        }
    }

    /// <summary>
    /// SQLite: trace by trace, the summary first (a new trace is one insert, which gives the row id its spans are
    /// keyed by), then its spans under that row; an existing trace is read, and its new spans merged into it.
    /// </summary>
    private async Task<bool[][]> WriteSqliteAsync(DbConnection connection, DbTransaction transaction, IReadOnlyList<Write> writes)
    {
        var results = new bool[writes.Count][];
        var traces = new Dictionary<(long Project, string TraceId), List<(StoredSpan Stored, int Write, int Index)>>();
        for (var w = 0; w < writes.Count; w++)
        {
            results[w] = new bool[writes[w].Spans.Count];
            for (var i = 0; i < writes[w].Spans.Count; i++)
            {
                var stored = writes[w].Spans[i];
                if (!traces.TryGetValue((stored.Project, stored.Span.TraceId), out var members))
                {
                    traces.Add((stored.Project, stored.Span.TraceId), members = []);
                }
                members.Add((stored, w, i));
            }
        }
        foreach (var ((project, traceId), members) in traces)
        {
            // A trace's spans usually come in one write, whose summary is made already.
            var fresh = members.TrueForAll(m => m.Write == members[0].Write)
                ? writes[members[0].Write].Traces![(project, traceId)]
                : Merge(NewTrace(traceId), [.. members.Select(m => m.Stored.Span)]);
            TraceRow? existing = null;
            if (_statements!.InsertTrace(project, fresh) is not { } traceRow)
            {
                existing = await connection.QuerySingleAsync<TraceRow>(
                    $"SELECT id AS Id, {TraceRow.Columns} FROM traces WHERE project_id = @project AND trace_id = @traceId", new { project, traceId }, transaction);
                traceRow = existing.Id;
            }
            var inserted = new List<Span>(members.Count);
            foreach (var (stored, w, i) in members)
            {
                results[w][i] = _statements.InsertSpan(stored, traceRow);
                if (results[w][i])
                {
                    inserted.Add(stored.Span);
                }
            }
            // A new trace's row counted every span; one sent twice in this commit is stored once.
            if (existing is not null ? inserted.Count > 0 : inserted.Count < members.Count)
            {
                await connection.ExecuteAsync(UpdateTrace, Parameters(project, Merge(existing ?? NewTrace(traceId), inserted)), transaction);
            }
        }
        return results;
    }

    /// <summary>PostgreSQL: the spans, then their traces' summaries (a new trace is one insert; an existing one is locked, read, merged).</summary>
    private static async Task<bool[][]> WritePostgresAsync(DbConnection connection, DbTransaction transaction, IReadOnlyList<Write> writes)
    {
        var results = new bool[writes.Count][];
        var inserted = new List<StoredSpan>();
        for (var w = 0; w < writes.Count; w++)
        {
            results[w] = new bool[writes[w].Spans.Count];
            for (var i = 0; i < writes[w].Spans.Count; i++)
            {
                var stored = writes[w].Spans[i];
                results[w][i] = await InsertSpanAsync(connection, transaction, stored);
                if (results[w][i])
                {
                    inserted.Add(stored);
                }
            }
        }
        foreach (var trace in inserted.GroupBy(s => (s.Project, s.Span.TraceId)))
        {
            var fresh = Merge(NewTrace(trace.Key.TraceId), [.. trace.Select(s => s.Span)]);
            if (await connection.ExecuteAsync(InsertTrace, Parameters(trace.Key.Project, fresh), transaction) == 1)
            {
                continue;
            }
            var row = await connection.QuerySingleAsync<TraceRow>(
                $"SELECT {TraceRow.Columns} FROM traces WHERE project_id = @project AND trace_id = @traceId FOR UPDATE", new { project = trace.Key.Project, traceId = trace.Key.TraceId }, transaction);
            await connection.ExecuteAsync(UpdateTrace, Parameters(trace.Key.Project, Merge(row, [.. trace.Select(s => s.Span)])), transaction);
        }
        return results;
    }

    private static TraceRow NewTrace(string traceId) => new() { TraceId = traceId, StartTime = long.MaxValue, EndTime = long.MinValue };

    private static async Task<bool> InsertSpanAsync(DbConnection connection, DbTransaction transaction, StoredSpan stored)
    {
        var s = stored.Span;
        return await connection.ExecuteAsync(
            """
            INSERT INTO spans (project_id, trace_id, span_id, parent_span_id, name, kind, start_time, end_time, status, status_message, provider, model, operation,
                input_tokens, output_tokens, cached_input_tokens, cache_write_tokens, reasoning_tokens, tokens_estimated, cost, cost_saved, time_to_first_token_ms,
                user_id, session_id, cache_hit, data, api_key_id)
            VALUES (@Project, @TraceId, @SpanId, @ParentSpanId, @Name, @Kind, @StartTime, @EndTime, @Status, @StatusMessage, @Provider, @Model, @Operation,
                @InputTokens, @OutputTokens, @CachedInputTokens, @CacheWriteTokens, @ReasoningTokens, @TokensEstimated, @Cost, @CostSaved, @TimeToFirstTokenMs,
                @UserId, @SessionId, @CacheHit, @Data, @KeyId)
            ON CONFLICT (project_id, trace_id, span_id) DO NOTHING
            """,
            new
            {
                stored.Project, s.TraceId, s.SpanId, s.ParentSpanId, s.Name, s.Kind, s.StartTime, s.EndTime, s.Status, s.StatusMessage, s.Provider, s.Model, s.Operation,
                s.InputTokens, s.OutputTokens, s.CachedInputTokens, s.CacheWriteTokens, s.ReasoningTokens, TokensEstimated = s.TokensEstimated ? 1 : 0, s.Cost, s.CostSaved,
                s.TimeToFirstTokenMs, s.UserId, s.SessionId, CacheHit = s.CacheHit ? 1 : 0, stored.Data, stored.KeyId,
            },
            transaction) == 1;
    }

    private const string InsertTrace =
        """
        INSERT INTO traces (project_id, trace_id, name, named_by_root, start_time, end_time, error_count, span_count, generation_count, input_tokens, output_tokens,
            cost, cost_unknown, user_id, session_id, models, tags)
        VALUES (@project, @TraceId, @Name, @NamedByRoot, @StartTime, @EndTime, @ErrorCount, @SpanCount, @GenerationCount, @InputTokens, @OutputTokens,
            @Cost, @CostUnknown, @UserId, @SessionId, @Models, @Tags)
        ON CONFLICT (project_id, trace_id) DO NOTHING
        """;

    private const string UpdateTrace =
        """
        UPDATE traces SET name = @Name, named_by_root = @NamedByRoot, start_time = @StartTime, end_time = @EndTime, error_count = @ErrorCount, span_count = @SpanCount,
            generation_count = @GenerationCount, input_tokens = @InputTokens, output_tokens = @OutputTokens, cost = @Cost, cost_unknown = @CostUnknown,
            user_id = @UserId, session_id = @SessionId, models = @Models, tags = @Tags
        WHERE project_id = @project AND trace_id = @TraceId
        """;

    private static object Parameters(long project, TraceRow row) => new
    {
        project, row.TraceId, row.Name, row.NamedByRoot, row.StartTime, row.EndTime, row.ErrorCount, row.SpanCount, row.GenerationCount, row.InputTokens, row.OutputTokens,
        row.Cost, row.CostUnknown, row.UserId, row.SessionId, row.Models, row.Tags,
    };

    private static TraceRow Merge(TraceRow row, List<Span> spans)
    {
        var models = Set(row.Models);
        var tags = Set(row.Tags);
        foreach (var s in spans.Count == 1 ? spans : (IEnumerable<Span>)spans.OrderBy(s => s.StartTime))
        {
            if (s.ParentSpanId is null && row.NamedByRoot == 0)
            {
                (row.Name, row.NamedByRoot) = (s.Name, 1);
            }
            else if (row.Name.Length == 0)
            {
                row.Name = s.Name;
            }
            row.StartTime = Math.Min(row.StartTime, s.StartTime);
            row.EndTime = Math.Max(row.EndTime, s.EndTime);
            row.ErrorCount += s.Status == "error" ? 1 : 0;
            row.SpanCount++;
            if (s.Kind == "generation")
            {
                row.GenerationCount++;
                row.InputTokens += s.InputTokens ?? 0;
                row.OutputTokens += s.OutputTokens ?? 0;
                if (s.Cost is { } cost)
                {
                    row.Cost += cost;
                }
                else if (!s.CacheHit)
                {
                    row.CostUnknown++;
                }
            }
            row.UserId ??= s.UserId;
            row.SessionId ??= s.SessionId;
            if (s.Model is { Length: > 0 } model && models.Count < 50)
            {
                models.Add(model);
            }
            foreach (var tag in s.Tags ?? [])
            {
                if (tags.Count < 50)
                {
                    tags.Add(tag);
                }
            }
        }
        row.Models = Json(models);
        row.Tags = Json(tags);
        return row;

        static SortedSet<string> Set(string json) =>
            new(json == "[]" ? [] : JsonSerializer.Deserialize(json, CoreJsonContext.Default.ListString) ?? [], StringComparer.Ordinal);

        static string Json(SortedSet<string> set) => set.Count == 0 ? "[]" : JsonSerializer.Serialize(set.ToList(), CoreJsonContext.Default.ListString);
    }

    public async ValueTask DisposeAsync()
    {
        _queue.CompleteAdding();
        await _stopped;
        _statements?.Dispose();
        if (_sqlite is not null)
        {
            await _sqlite.DisposeAsync();
        }
    }
}

/// <summary>A row of the traces table.</summary>
internal sealed class TraceRow
{
    public const string Columns =
        "trace_id AS TraceId, name AS Name, named_by_root AS NamedByRoot, start_time AS StartTime, end_time AS EndTime, error_count AS ErrorCount, span_count AS SpanCount, " +
        "generation_count AS GenerationCount, input_tokens AS InputTokens, output_tokens AS OutputTokens, cost AS Cost, cost_unknown AS CostUnknown, user_id AS UserId, " +
        "session_id AS SessionId, models AS Models, tags AS Tags";

    /// <summary>The row id (SQLite: the key spans find their trace by); read only where it is needed.</summary>
    public long Id { get; set; }
    public string TraceId { get; set; } = "";
    public string Name { get; set; } = "";
    public long NamedByRoot { get; set; }
    public long StartTime { get; set; }
    public long EndTime { get; set; }
    public long ErrorCount { get; set; }
    public long SpanCount { get; set; }
    public long GenerationCount { get; set; }
    public long InputTokens { get; set; }
    public long OutputTokens { get; set; }
    public double Cost { get; set; }
    public long CostUnknown { get; set; }
    public string? UserId { get; set; }
    public string? SessionId { get; set; }
    public string Models { get; set; } = "[]";
    public string Tags { get; set; } = "[]";

    public TraceSummary ToSummary() => new(TraceId, Name, StartTime, EndTime, ErrorCount > 0 ? "error" : "ok", (int)SpanCount, (int)GenerationCount, InputTokens, OutputTokens,
        GenerationCount > 0 && CostUnknown == GenerationCount ? null : Cost, (int)CostUnknown, UserId, SessionId,
        JsonSerializer.Deserialize(Models, CoreJsonContext.Default.ListString) ?? [], JsonSerializer.Deserialize(Tags, CoreJsonContext.Default.ListString) ?? []);
}
