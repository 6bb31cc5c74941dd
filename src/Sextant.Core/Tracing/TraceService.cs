using System.Buffers;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Dapper;
using Sextant.Contracts;
using Sextant.Core.Projects;
using Sextant.Core.Storage;
using Sextant.Core.Tracking;

namespace Sextant.Core.Tracing;

/// <summary>
/// LLM traces: spans from the gateway, from SDKs (a batch with a result per span) and from OTLP; their cost from
/// the price catalog at ingestion; and the queries over them (traces, one trace, spans, sessions, costs).
/// </summary>
public sealed class TraceService(SextantDatabase database, SpanWriter writer, PriceCatalog prices)
{
    public const int MaxSpansPerRequest = 1000;
    public const int MaxSpanDataBytes = 1 << 20;
    public const int MaxNameLength = 1000;
    public const long MaxTokens = 1_000_000_000_000;
    public const int DefaultPageSize = 50;
    /// <summary>Cost reports take latency percentiles from at most this many of the range's most recent calls.</summary>
    public const int MaxLatencySamples = 100_000;
    public const int MaxPageSize = 1000;
    /// <summary>The latency percentiles of a costs row: p50, p95 and p99.</summary>
    private static readonly int[] LatencyPercents = [50, 95, 99];
    private static readonly string[] Kinds = ["generation", "span"];
    private static readonly string[] Statuses = ["ok", "error", "unset"];

    /// <summary>Stores a batch; each span gets 201 (stored), 200 (already stored) or 400 (with the field and reason).</summary>
    public async Task<IngestSpansResponse> IngestAsync(Caller caller, IReadOnlyList<Span?>? spans, CancellationToken cancellationToken = default)
    {
        caller.Require(Role.Editor);
        if (spans is null)
        {
            throw SextantException.Missing("spans");
        }
        if (spans.Count > MaxSpansPerRequest)
        {
            throw SextantException.Invalid("spans", $"At most {MaxSpansPerRequest} spans per request; got {spans.Count}.");
        }
        var results = new IngestResult[spans.Count];
        var valid = new List<(int Index, StoredSpan Span)>();
        for (var i = 0; i < spans.Count; i++)
        {
            try
            {
                valid.Add((i, await PrepareAsync(caller.ProjectId, spans[i], $"spans[{i}]", cancellationToken)));
            }
            catch (SextantException e)
            {
                results[i] = new IngestResult(i, 400, spans[i]?.SpanId, e.Message, e.Field);
            }
        }
        if (valid.Count > 0)
        {
            var stored = await writer.WriteAsync([.. valid.Select(v => v.Span)]);
            for (var j = 0; j < valid.Count; j++)
            {
                results[valid[j].Index] = new IngestResult(valid[j].Index, stored[j] ? 201 : 200, valid[j].Span.Span.SpanId);
            }
        }
        return new IngestSpansResponse(results, results.Count(r => r.Status == 201), results.Count(r => r.Status == 200), results.Count(r => r.Status == 400));
    }

    /// <summary>
    /// Stores an OTLP/HTTP export (protobuf or JSON). Spans that cannot be stored are counted and the first reason
    /// given, as OTLP's partial success; a body that is not an export at all is a 400.
    /// </summary>
    public async Task<(int Accepted, int Rejected, string? Error)> IngestOtlpAsync(Caller caller, byte[] body, bool json, CancellationToken cancellationToken = default)
    {
        caller.Require(Role.Editor);
        Otlp.ExportTraceServiceRequest request;
        try
        {
            request = json ? OtlpMapper.ParseJson(body) : OtlpMapper.ParseProtobuf(body);
        }
        catch (Exception e) when (e is Google.Protobuf.InvalidProtocolBufferException or Google.Protobuf.InvalidJsonException or JsonException or FormatException or InvalidOperationException or ArgumentException)
        {
            throw SextantException.Invalid("body", $"The body is not an OTLP trace export ({(json ? "JSON" : "protobuf")}): {e.Message}");
        }
        var mapped = OtlpMapper.Map(request);
        var valid = new List<StoredSpan>();
        var rejected = 0;
        string? error = null;
        for (var i = 0; i < mapped.Count; i++)
        {
            try
            {
                valid.Add(mapped[i].Span is { } span
                    ? await PrepareAsync(caller.ProjectId, span, $"span {span.SpanId}", cancellationToken)
                    : throw SextantException.Invalid("span", mapped[i].Error!));
            }
            catch (SextantException e)
            {
                rejected++;
                error ??= e.Message;
            }
        }
        foreach (var chunk in valid.Chunk(MaxSpansPerRequest))
        {
            await writer.WriteAsync(chunk);
        }
        return (valid.Count, rejected, error);
    }

    /// <summary>Stores spans the server made itself (the gateway, OTLP), which are valid by construction.</summary>
    /// <param name="keyId">The API key that made the calls (the gateway's), for per-key spending.</param>
    /// <returns>The spans as stored: with their cost.</returns>
    public async Task<IReadOnlyList<Span>> RecordAsync(long project, IReadOnlyList<Span> spans, string? keyId = null, CancellationToken cancellationToken = default)
    {
        var (stored, committed) = await QueueAsync(project, spans, keyId, null, cancellationToken);
        await committed;
        return stored;
    }

    /// <summary>
    /// As <see cref="RecordAsync"/>, but returns once the spans are queued for the writer (with their cost) instead of
    /// after their commit, which <c>Committed</c> completes; <paramref name="failed"/> hears of a commit that failed.
    /// </summary>
    internal async Task<(IReadOnlyList<Span> Spans, Task Committed)> QueueAsync(long project, IReadOnlyList<Span> spans, string? keyId,
        Action<Exception>? failed, CancellationToken cancellationToken = default)
    {
        var prepared = new List<StoredSpan>(spans.Count);
        foreach (var span in spans)
        {
            prepared.Add(await PrepareAsync(project, span, "span", cancellationToken) with { KeyId = keyId });
        }
        var committed = writer.Queue(prepared, failed);
        return ([.. prepared.Select(p => p.Span)], committed);
    }

    /// <summary>A W3C trace-context id: <paramref name="length"/> lower-case hex digits, not all zero.</summary>
    internal static bool IsTraceContextId(string? value, int length)
    {
        if (value is null || value.Length != length)
        {
            return false;
        }
        var zero = true;
        foreach (var c in value)
        {
            if (c is not ((>= '0' and <= '9') or (>= 'a' and <= 'f')))
            {
                return false;
            }
            zero &= c == '0';
        }
        return !zero;
    }

    private async Task<StoredSpan> PrepareAsync(long project, Span? span, string field, CancellationToken cancellationToken)
    {
        if (span is null)
        {
            throw SextantException.Missing(field);
        }
        if (!IsTraceContextId(span.TraceId, 32))
        {
            throw SextantException.Invalid($"{field}.trace_id", $"'trace_id' must be 32 lower-case hex digits, not all zero (W3C trace context); got '{Short(span.TraceId)}'.");
        }
        if (!IsTraceContextId(span.SpanId, 16))
        {
            throw SextantException.Invalid($"{field}.span_id", $"'span_id' must be 16 lower-case hex digits, not all zero; got '{Short(span.SpanId)}'.");
        }
        if (span.ParentSpanId is not null && !IsTraceContextId(span.ParentSpanId, 16))
        {
            throw SextantException.Invalid($"{field}.parent_span_id", $"'parent_span_id' must be 16 lower-case hex digits; got '{Short(span.ParentSpanId)}'.");
        }
        if (string.IsNullOrEmpty(span.Name) || span.Name.Length > MaxNameLength || span.Name.Contains('\0', StringComparison.Ordinal) || span.StatusMessage?.Contains('\0', StringComparison.Ordinal) == true)
        {
            throw SextantException.Invalid($"{field}.name", $"'name' must be 1-{MaxNameLength} characters without NUL (and status_message without NUL).");
        }
        if (!Kinds.Contains(span.Kind))
        {
            throw SextantException.Invalid($"{field}.kind", $"'kind' must be generation or span; got '{Short(span.Kind)}'.");
        }
        if (!Statuses.Contains(span.Status))
        {
            throw SextantException.Invalid($"{field}.status", $"'status' must be ok, error or unset; got '{Short(span.Status)}'.");
        }
        if (span.StartTime <= 0 || span.EndTime < span.StartTime)
        {
            throw SextantException.Invalid($"{field}.end_time", $"'start_time' must be positive (Unix microseconds) and 'end_time' not before it; got {span.StartTime} and {span.EndTime}.");
        }
        CheckTokens(field, "input_tokens", span.InputTokens);
        CheckTokens(field, "output_tokens", span.OutputTokens);
        CheckTokens(field, "cached_input_tokens", span.CachedInputTokens);
        CheckTokens(field, "cache_write_tokens", span.CacheWriteTokens);
        CheckTokens(field, "reasoning_tokens", span.ReasoningTokens);
        if ((span.CachedInputTokens ?? 0) + (span.CacheWriteTokens ?? 0) > (span.InputTokens ?? long.MaxValue))
        {
            throw SextantException.Invalid($"{field}.cached_input_tokens", "Cached and cache-write tokens are part of 'input_tokens', so they cannot exceed it.");
        }
        CheckLabel(field, "model", span.Model);
        CheckLabel(field, "provider", span.Provider);
        CheckLabel(field, "user_id", span.UserId);
        CheckLabel(field, "session_id", span.SessionId);
        CheckLabel(field, "operation", span.Operation);
        var (data, dataBytes) = Data(span);
        if (dataBytes > MaxSpanDataBytes)
        {
            throw SextantException.Invalid($"{field}.input", $"A span's input, output, parameters, attributes and metadata may hold at most {MaxSpanDataBytes} bytes of JSON.");
        }
        var cost = span.Cost;
        if (span.Kind == "generation" && cost is null && !span.CacheHit)
        {
            cost = await CostAsync(project, span, cancellationToken);
        }
        cost = span.CacheHit ? 0 : cost;
        return new StoredSpan(project, span.Cost == cost ? span : span with { Cost = cost }, data);
    }

    private static void CheckTokens(string field, string name, long? value)
    {
        if (value is < 0 or > MaxTokens)
        {
            throw SextantException.Invalid($"{field}.{name}", $"'{name}' must be between 0 and {MaxTokens}; got {value}.");
        }
    }

    private static void CheckLabel(string field, string name, string? value)
    {
        if (value is { Length: > 256 })
        {
            throw SextantException.Invalid($"{field}.{name}", $"'{name}' is longer than 256 characters.");
        }
        if (value?.Contains('\0', StringComparison.Ordinal) == true)
        {
            throw SextantException.Invalid($"{field}.{name}", $"'{name}' contains a NUL character.");
        }
    }

    private static readonly JsonWriterOptions DataWriterOptions = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>This thread's buffer for <see cref="Data"/> (which does not await, so nothing else uses it meanwhile).</summary>
    [ThreadStatic]
    private static ArrayBufferWriter<byte>? _dataBuffer;

    /// <summary>The span's JSON column: input, output, parameters, attributes, tags and metadata, written once; and its size in UTF-8.</summary>
    private static (string Json, int Bytes) Data(Span span)
    {
        var buffer = _dataBuffer ??= new ArrayBufferWriter<byte>(4096);
        buffer.ResetWrittenCount();
        using (var writer = new Utf8JsonWriter(buffer, DataWriterOptions))
        {
            writer.WriteStartObject();
            if (span.Input is { } input)
            {
                writer.WritePropertyName("input");
                input.WriteTo(writer);
            }
            if (span.Output is { } output)
            {
                writer.WritePropertyName("output");
                output.WriteTo(writer);
            }
            foreach (var (name, values) in new[] { ("parameters", span.Parameters), ("attributes", span.Attributes) })
            {
                if (values is null)
                {
                    continue;
                }
                writer.WriteStartObject(name);
                foreach (var (key, value) in values)
                {
                    writer.WritePropertyName(key);
                    value.WriteTo(writer);
                }
                writer.WriteEndObject();
            }
            if (span.Tags is { } tags)
            {
                writer.WriteStartArray("tags");
                foreach (var tag in tags)
                {
                    writer.WriteStringValue(tag);
                }
                writer.WriteEndArray();
            }
            if (span.Metadata is { } metadata)
            {
                writer.WriteStartObject("metadata");
                foreach (var (key, value) in metadata)
                {
                    writer.WriteString(key, value);
                }
                writer.WriteEndObject();
            }
            writer.WriteEndObject();
        }
        var json = Encoding.UTF8.GetString(buffer.WrittenSpan);
        if (buffer.Capacity > 1 << 20)
        {
            // One very large span does not keep its buffer for the thread's life.
            _dataBuffer = null;
        }
        return (json, buffer.WrittenCount);
    }

    /// <summary>The cost of a generation's usage at its start, or null without a price or usage.</summary>
    private async Task<double?> CostAsync(long project, Span span, CancellationToken cancellationToken)
    {
        if (span.InputTokens is null && span.OutputTokens is null)
        {
            return null;
        }
        // The gateway names the provider's system beside the provider's own name (a provider named "claude" is anthropic).
        var provider = span.Attributes is { } attributes && attributes.TryGetValue("gen_ai.provider.name", out var system) && system.ValueKind == JsonValueKind.String
            ? system.GetString() : span.Provider;
        var price = await prices.FindAsync(project, provider, span.Model, span.StartTime / 1000, cancellationToken);
        return price is null ? null : PriceCatalog.Cost(price, span.InputTokens ?? 0, span.OutputTokens ?? 0, span.CachedInputTokens ?? 0, span.CacheWriteTokens ?? 0, span.ReasoningTokens ?? 0);
    }

    private static string Short(string? value) => value is null ? "" : value.Length > 80 ? value[..80] + "..." : value;

    // ---- Queries ----

    /// <summary>Filters of the trace and span lists; times are Unix microseconds.</summary>
    public sealed record TraceFilter(long? From = null, long? To = null, string? UserId = null, string? SessionId = null, string? Model = null, string? Status = null,
        string? Tag = null, double? MinCost = null, double? MinLatencyMs = null, string? Name = null);

    public async Task<TracesResponse> ListTracesAsync(Caller caller, TraceFilter filter, long? maxResults, string? pageToken, CancellationToken cancellationToken = default)
    {
        var limit = PageSize(maxResults);
        var (where, parameters) = TraceWhere(caller, filter);
        if (!string.IsNullOrEmpty(pageToken))
        {
            var values = PageToken.Decode(pageToken, 2);
            if (!long.TryParse(values[0], CultureInfo.InvariantCulture, out var start) || values[1] is null)
            {
                throw SextantException.Invalid("page_token", "Invalid page_token.");
            }
            where.Add("(start_time < @afterStart OR (start_time = @afterStart AND trace_id < @afterId))");
            parameters.Add("afterStart", start);
            parameters.Add("afterId", values[1]);
        }
        await using var connection = await database.OpenAsync(cancellationToken);
        var rows = (await connection.QueryAsync<TraceRow>(
            $"SELECT {TraceRow.Columns} FROM traces WHERE {string.Join(" AND ", where)} ORDER BY start_time DESC, trace_id DESC LIMIT @take",
            AddTake(parameters, limit + 1))).ToList();
        var next = rows.Count > limit ? PageToken.Encode([rows[limit - 1].StartTime.ToString(CultureInfo.InvariantCulture), rows[limit - 1].TraceId]) : null;
        return new TracesResponse([.. rows.Take(limit).Select(r => r.ToSummary())], next);
    }

    private static DynamicParameters AddTake(DynamicParameters parameters, int take)
    {
        parameters.Add("take", take);
        return parameters;
    }

    private (List<string> Where, DynamicParameters Parameters) TraceWhere(Caller caller, TraceFilter filter)
    {
        // Exact substring of the JSON arrays, case-sensitive on both engines (LIKE would treat % and _ as wildcards).
        var contains = database.Engine == DatabaseEngine.Postgres ? "strpos({0}, {1}) > 0" : "instr({0}, {1}) > 0";
        var (where, parameters) = CommonWhere(caller, filter);
        if (!string.IsNullOrEmpty(filter.Model)) { where.Add(string.Format(System.Globalization.CultureInfo.InvariantCulture, contains, "models", "@model")); parameters.Add("model", JsonSerializer.Serialize(filter.Model, CoreJsonContext.Default.String)); }
        if (!string.IsNullOrEmpty(filter.Tag)) { where.Add(string.Format(System.Globalization.CultureInfo.InvariantCulture, contains, "tags", "@tag")); parameters.Add("tag", JsonSerializer.Serialize(filter.Tag, CoreJsonContext.Default.String)); }
        if (!string.IsNullOrEmpty(filter.Name)) { where.Add("name = @name"); parameters.Add("name", filter.Name); }
        switch (filter.Status)
        {
            case null or "": break;
            case "error": where.Add("error_count > 0"); break;
            case "ok": where.Add("error_count = 0"); break;
            default: throw SextantException.Invalid("status", $"'status' must be ok or error; got '{Short(filter.Status)}'.");
        }
        return (where, parameters);
    }

    /// <summary>The filters traces and spans share: project, time range, user, session, minimum cost and latency.</summary>
    private static (List<string> Where, DynamicParameters Parameters) CommonWhere(Caller caller, TraceFilter filter)
    {
        var where = new List<string> { "project_id = @project" };
        var parameters = new DynamicParameters();
        parameters.Add("project", caller.ProjectId);
        if (filter.From is { } from) { where.Add("start_time >= @from"); parameters.Add("from", from); }
        if (filter.To is { } to) { where.Add("start_time < @to"); parameters.Add("to", to); }
        if (!string.IsNullOrEmpty(filter.UserId)) { where.Add("user_id = @user"); parameters.Add("user", filter.UserId); }
        if (!string.IsNullOrEmpty(filter.SessionId)) { where.Add("session_id = @session"); parameters.Add("session", filter.SessionId); }
        if (filter.MinCost is { } minCost) { where.Add("cost >= @minCost"); parameters.Add("minCost", minCost); }
        if (filter.MinLatencyMs is { } minLatency) { where.Add("end_time - start_time >= @minLatency"); parameters.Add("minLatency", (long)(minLatency * 1000)); }
        return (where, parameters);
    }

    private static int PageSize(long? maxResults) => maxResults is null or 0 ? DefaultPageSize
        : maxResults is < 0 or > MaxPageSize ? throw SextantException.Invalid("max_results", $"'max_results' must be between 1 and {MaxPageSize}; got {maxResults}.")
        : (int)maxResults.Value;

    public async Task<TraceResponse> GetTraceAsync(Caller caller, string? traceId, CancellationToken cancellationToken = default)
    {
        if (!IsTraceContextId(traceId, 32))
        {
            throw SextantException.Invalid("trace_id", $"'trace_id' must be 32 lower-case hex digits; got '{Short(traceId)}'.");
        }
        await using var connection = await database.OpenAsync(cancellationToken);
        var row = await connection.QuerySingleOrDefaultAsync<TraceRow>($"SELECT {TraceRow.Columns} FROM traces WHERE project_id = @project AND trace_id = @traceId",
            new { project = caller.ProjectId, traceId }) ?? throw SextantException.NotFound($"No trace {traceId}.");
        // Sorted here: ORDER BY start_time made SQLite walk the (project, start_time) index over the whole project
        // instead of the primary key's few rows of this trace.
        var spans = await connection.QueryAsync<SpanRow>($"SELECT {SpanRow.Columns} FROM spans WHERE {SpansOf("@project", "@traceId")}",
            new { project = caller.ProjectId, traceId });
        return new TraceResponse(row.ToSummary(), [.. spans.OrderBy(s => s.StartTime).ThenBy(s => s.SpanId, StringComparer.Ordinal).Select(s => s.ToSpan())]);
    }

    /// <summary>
    /// The condition for one trace's spans. SQLite keys spans by their trace summary's row id (appended in arrival
    /// order, where trace ids are random: migration 0010), PostgreSQL by (project_id, trace_id).
    /// </summary>
    private string SpansOf(string project, string traceId) => database.Engine == DatabaseEngine.Sqlite
        ? $"trace_row = (SELECT id FROM traces WHERE project_id = {project} AND trace_id = {traceId})"
        : $"project_id = {project} AND trace_id = {traceId}";

    public async Task<SpansResponse> ListSpansAsync(Caller caller, TraceFilter filter, string? kind, long? maxResults, string? pageToken, CancellationToken cancellationToken = default)
    {
        var limit = PageSize(maxResults);
        var (where, parameters) = CommonWhere(caller, filter);
        if (!string.IsNullOrEmpty(filter.Model)) { where.Add("model = @model"); parameters.Add("model", filter.Model); }
        if (!string.IsNullOrEmpty(kind))
        {
            where.Add("kind = @kind");
            parameters.Add("kind", Kinds.Contains(kind) ? kind : throw SextantException.Invalid("kind", $"'kind' must be generation or span; got '{Short(kind)}'."));
        }
        if (!string.IsNullOrEmpty(filter.Status))
        {
            where.Add("status = @status");
            parameters.Add("status", Statuses.Contains(filter.Status) ? filter.Status : throw SextantException.Invalid("status", $"'status' must be ok, error or unset; got '{Short(filter.Status)}'."));
        }
        if (!string.IsNullOrEmpty(pageToken))
        {
            var values = PageToken.Decode(pageToken, 3);
            if (!long.TryParse(values[0], CultureInfo.InvariantCulture, out var start) || values[1] is null || values[2] is null)
            {
                throw SextantException.Invalid("page_token", "Invalid page_token.");
            }
            where.Add("(start_time < @afterStart OR (start_time = @afterStart AND (trace_id < @afterTrace OR (trace_id = @afterTrace AND span_id < @afterSpan))))");
            parameters.Add("afterStart", start);
            parameters.Add("afterTrace", values[1]);
            parameters.Add("afterSpan", values[2]);
        }
        await using var connection = await database.OpenAsync(cancellationToken);
        var rows = (await connection.QueryAsync<SpanRow>(
            $"SELECT {SpanRow.Columns} FROM spans WHERE {string.Join(" AND ", where)} ORDER BY start_time DESC, trace_id DESC, span_id DESC LIMIT @take",
            AddTake(parameters, limit + 1))).ToList();
        var next = rows.Count > limit ? PageToken.Encode([rows[limit - 1].StartTime.ToString(CultureInfo.InvariantCulture), rows[limit - 1].TraceId, rows[limit - 1].SpanId]) : null;
        return new SpansResponse([.. rows.Take(limit).Select(r => r.ToSpan())], next);
    }

    /// <summary>Generations that started in [from, to), oldest first (online evaluation walks forward through them).</summary>
    internal async Task<List<Span>> GenerationsAsync(long project, long from, long to, string? model, int limit, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        var rows = await connection.QueryAsync<SpanRow>(
            $"SELECT {SpanRow.Columns} FROM spans WHERE project_id = @project AND start_time >= @from AND start_time < @to AND kind = 'generation'"
            + (model is null ? "" : " AND model = @model") + " ORDER BY start_time LIMIT @limit",
            new { project, from, to, model, limit });
        return [.. rows.Select(r => r.ToSpan())];
    }

    public async Task<SessionsResponse> ListSessionsAsync(Caller caller, long? from, long? to, string? userId, long? maxResults, CancellationToken cancellationToken = default)
    {
        var limit = PageSize(maxResults);
        await using var connection = await database.OpenAsync(cancellationToken);
        var rows = await connection.QueryAsync<(string Session, string? User, long Start, long End, long Traces, long Input, long Output, double Cost, long Unknown, long Generations)>(
            $"""
            SELECT session_id, MIN(user_id), MIN(start_time), MAX(end_time), COUNT(*), SUM(input_tokens), SUM(output_tokens), SUM(cost), SUM(cost_unknown), SUM(generation_count)
            FROM traces WHERE project_id = @project AND session_id IS NOT NULL {(from is null ? "" : "AND start_time >= @from")} {(to is null ? "" : "AND start_time < @to")}
            {(string.IsNullOrEmpty(userId) ? "" : "AND user_id = @userId")}
            GROUP BY session_id ORDER BY MAX(end_time) DESC, session_id LIMIT @limit
            """,
            new { project = caller.ProjectId, from, to, userId, limit });
        return new SessionsResponse([.. rows.Select(r => new SessionSummary(r.Session, r.User, r.Start, r.End, (int)r.Traces, r.Input, r.Output,
            r.Generations > 0 && r.Unknown == r.Generations ? null : r.Cost))]);
    }

    /// <summary>Requests, tokens, cost and latency percentiles of generations between two times, by model, user, day or project.</summary>
    public async Task<CostsResponse> CostsAsync(Caller caller, string? by, long? from, long? to, CancellationToken cancellationToken = default)
    {
        var group = by ?? "model";
        var key = group switch
        {
            "model" => "COALESCE(s.model, '(none)')",
            "user" => "COALESCE(s.user_id, '(none)')",
            "provider" => "COALESCE(s.provider, '(none)')",
            "day" => "s.start_time / 86400000000",
            "project" => "p.name",
            _ => throw SextantException.Invalid("by", $"'by' must be model, user, provider, day or project; got '{Short(by)}'."),
        };
        var end = to ?? Clock.NowMs() * 1000 + 1;
        var start = from ?? end - 7L * 86_400_000_000;
        // The server's admin sees every project by project; everyone else their own project.
        var everyProject = group == "project" && caller.IsServerAdmin;
        var where = $"{(everyProject ? "1 = 1" : "s.project_id = @project")} AND s.kind = 'generation' AND s.start_time >= @start AND s.start_time < @end";
        await using var connection = await database.OpenAsync(cancellationToken);
        // Counts and sums in SQL, cast so that every row has the same types (SQLite's SUM of no REAL is an INTEGER).
        var sums = (await connection.QueryAsync<(string Key, long Requests, long Errors, long Input, long Output, long Cached, double Cost, long Unknown, double Saved)>(
            $"""
            SELECT CAST({key} AS TEXT), COUNT(*), SUM(CASE WHEN s.status = 'error' THEN 1 ELSE 0 END), CAST(COALESCE(SUM(s.input_tokens), 0) AS BIGINT),
                CAST(COALESCE(SUM(s.output_tokens), 0) AS BIGINT), CAST(COALESCE(SUM(s.cached_input_tokens), 0) AS BIGINT),
                CAST(COALESCE(SUM(s.cost), 0) AS DOUBLE PRECISION), SUM(CASE WHEN s.cost IS NULL AND s.cache_hit = 0 THEN 1 ELSE 0 END),
                CAST(COALESCE(SUM(s.cost_saved), 0) AS DOUBLE PRECISION)
            FROM spans s JOIN projects p ON p.id = s.project_id WHERE {where} GROUP BY CAST({key} AS TEXT)
            """,
            new { project = caller.ProjectId, start, end })).ToList();
        // Latency percentiles over the durations of the most recent calls (at most MaxLatencySamples in all), ranked in
        // the database: only the two ranks each percentile falls between come back, so that the server holds a few rows
        // per group rather than every duration (a costs query over a busy week used to allocate megabytes of arrays).
        var ranks = string.Join(", ", LatencyPercents.SelectMany(q => new[] { $"{q} * (n - 1) / 100", $"{q} * (n - 1) / 100 + 1" }));
        var picked = (await connection.QueryAsync<(string Key, long Rank, long Count, long Duration)>(
            $"""
            WITH sample AS (
                SELECT CAST({key} AS TEXT) AS k, s.end_time - s.start_time AS d FROM spans s JOIN projects p ON p.id = s.project_id WHERE {where}
                ORDER BY s.start_time DESC LIMIT {MaxLatencySamples}),
            ranked AS (SELECT k, d, ROW_NUMBER() OVER (PARTITION BY k ORDER BY d) - 1 AS i, COUNT(*) OVER (PARTITION BY k) AS n FROM sample)
            SELECT k, i, n, d FROM ranked WHERE i IN ({ranks})
            """,
            new { project = caller.ProjectId, start, end })).ToLookup(r => r.Key);
        var result = sums.Select(g =>
        {
            var rows = picked[g.Key].ToDictionary(r => r.Rank, r => r.Duration / 1000.0);
            var count = picked[g.Key].Select(r => r.Count).FirstOrDefault();
            var latency = LatencyPercents.Select(q => Percentiles.Interpolated(count, q, rank => rows[rank])).ToArray();
            var label = group == "day"
                ? DateTimeOffset.FromUnixTimeMilliseconds(long.Parse(g.Key, CultureInfo.InvariantCulture) * 86_400_000).ToString("yyyy-MM-dd", CultureInfo.InvariantCulture)
                : g.Key;
            return new CostRow(label, g.Requests, g.Errors, g.Input, g.Output, g.Cached, g.Cost, g.Unknown, g.Saved, latency[0], latency[1], latency[2]);
        }).OrderBy(r => group == "day" ? r.Key : "").ThenByDescending(r => r.Cost).ThenBy(r => r.Key, StringComparer.Ordinal).ToList();
        return new CostsResponse(group, start, end, result);
    }

    /// <summary>Computes again, with today's catalog, the cost of the caller's generations that started in a time range.</summary>
    public async Task<RecomputeCostsResponse> RecomputeAsync(Caller caller, long? from, long? to, CancellationToken cancellationToken = default)
    {
        caller.Require(Role.Admin);
        var start = from ?? 0;
        var end = to ?? long.MaxValue;
        await using var connection = await database.OpenAsync(cancellationToken);
        var spans = (await connection.QueryAsync<SpanRow>(
            $"SELECT {SpanRow.Columns} FROM spans WHERE project_id = @project AND kind = 'generation' AND cache_hit = 0 AND start_time >= @start AND start_time < @end",
            new { project = caller.ProjectId, start, end })).ToList();
        long priced = 0, unknown = 0;
        var changed = new List<(string Trace, string Span, double? Cost)>();
        foreach (var row in spans)
        {
            var span = row.ToSpan();
            var cost = await CostAsync(caller.ProjectId, span, cancellationToken);
            if (cost is null) { unknown++; } else { priced++; }
            changed.Add((span.TraceId, span.SpanId, cost));
        }
        await using var transaction = await SextantDatabase.BeginWriteAsync(connection, cancellationToken);
        foreach (var (trace, span, cost) in changed)
        {
            await connection.ExecuteAsync($"UPDATE spans SET cost = @cost WHERE {SpansOf("@project", "@trace")} AND span_id = @span",
                new { cost, project = caller.ProjectId, trace, span }, transaction);
        }
        // The traces' totals follow their spans.
        foreach (var trace in changed.Select(c => c.Trace).Distinct())
        {
            await connection.ExecuteAsync(
                $"""
                UPDATE traces SET
                    cost = (SELECT COALESCE(SUM(cost), 0) FROM spans WHERE {SpansOf("@project", "@trace")} AND kind = 'generation'),
                    cost_unknown = (SELECT COUNT(*) FROM spans WHERE {SpansOf("@project", "@trace")} AND kind = 'generation' AND cost IS NULL AND cache_hit = 0)
                WHERE project_id = @project AND trace_id = @trace
                """,
                new { project = caller.ProjectId, trace }, transaction);
        }
        await transaction.CommitAsync(cancellationToken);
        return new RecomputeCostsResponse(spans.Count, priced, unknown);
    }
}

/// <summary>A row of the spans table.</summary>
internal sealed class SpanRow
{
    public const string Columns =
        "trace_id AS TraceId, span_id AS SpanId, parent_span_id AS ParentSpanId, name AS Name, kind AS Kind, start_time AS StartTime, end_time AS EndTime, status AS Status, " +
        "status_message AS StatusMessage, provider AS Provider, model AS Model, operation AS Operation, input_tokens AS InputTokens, output_tokens AS OutputTokens, " +
        "cached_input_tokens AS CachedInputTokens, cache_write_tokens AS CacheWriteTokens, reasoning_tokens AS ReasoningTokens, tokens_estimated AS TokensEstimated, " +
        "cost AS Cost, cost_saved AS CostSaved, time_to_first_token_ms AS TimeToFirstTokenMs, user_id AS UserId, session_id AS SessionId, cache_hit AS CacheHit, data AS Data";

    public string TraceId { get; set; } = "";
    public string SpanId { get; set; } = "";
    public string? ParentSpanId { get; set; }
    public string Name { get; set; } = "";
    public string Kind { get; set; } = "";
    public long StartTime { get; set; }
    public long EndTime { get; set; }
    public string Status { get; set; } = "";
    public string? StatusMessage { get; set; }
    public string? Provider { get; set; }
    public string? Model { get; set; }
    public string? Operation { get; set; }
    public long? InputTokens { get; set; }
    public long? OutputTokens { get; set; }
    public long? CachedInputTokens { get; set; }
    public long? CacheWriteTokens { get; set; }
    public long? ReasoningTokens { get; set; }
    public long TokensEstimated { get; set; }
    public double? Cost { get; set; }
    public double? CostSaved { get; set; }
    public double? TimeToFirstTokenMs { get; set; }
    public string? UserId { get; set; }
    public string? SessionId { get; set; }
    public long CacheHit { get; set; }
    public string Data { get; set; } = "{}";

    public Span ToSpan()
    {
        // Stored values nest a few levels deeper than they came (the data object, its parameters or attributes), so a
        // value that nested as deep as a request may is read back with room to spare.
        using var data = JsonDocument.Parse(Data, new JsonDocumentOptions { MaxDepth = 256 });
        var root = data.RootElement;
        JsonElement? Get(string name) => root.TryGetProperty(name, out var value) && value.ValueKind != JsonValueKind.Null ? value.Clone() : null;
        return new Span(TraceId, SpanId, ParentSpanId, Name, Kind, StartTime, EndTime, Status, StatusMessage, Provider, Model, Operation, InputTokens, OutputTokens,
            CachedInputTokens, CacheWriteTokens, ReasoningTokens, TokensEstimated != 0, Cost, CostSaved, TimeToFirstTokenMs, UserId, SessionId, Get("input"), Get("output"),
            Get("parameters") is { } p ? p.Deserialize(SextantJsonContext.Default.IReadOnlyDictionaryStringJsonElement) : null,
            Get("attributes") is { } a ? a.Deserialize(SextantJsonContext.Default.IReadOnlyDictionaryStringJsonElement) : null,
            Get("tags") is { } t ? t.Deserialize(SextantJsonContext.Default.IReadOnlyListString) : null,
            Get("metadata") is { } m ? m.Deserialize(SextantJsonContext.Default.IReadOnlyDictionaryStringString) : null,
            CacheHit != 0);
    }
}
