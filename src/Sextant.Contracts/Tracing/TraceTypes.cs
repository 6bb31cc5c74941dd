using System.Text.Json;

namespace Sextant.Contracts;

/// <summary>
/// One span as stored and returned: a generation (an LLM call) or a generic span of a trace. Times are Unix
/// microseconds. Token counts follow one convention whatever the provider reported: <see cref="InputTokens"/>
/// includes cached and cache-write tokens, <see cref="OutputTokens"/> includes reasoning tokens.
/// </summary>
/// <param name="Cost">In USD; null when the model has no known price (never shown as 0).</param>
public sealed record Span(
    string TraceId,
    string SpanId,
    string? ParentSpanId,
    string Name,
    string Kind,
    long StartTime,
    long EndTime,
    string Status,
    string? StatusMessage = null,
    string? Provider = null,
    string? Model = null,
    string? Operation = null,
    long? InputTokens = null,
    long? OutputTokens = null,
    long? CachedInputTokens = null,
    long? CacheWriteTokens = null,
    long? ReasoningTokens = null,
    bool TokensEstimated = false,
    double? Cost = null,
    double? CostSaved = null,
    double? TimeToFirstTokenMs = null,
    string? UserId = null,
    string? SessionId = null,
    JsonElement? Input = null,
    JsonElement? Output = null,
    IReadOnlyDictionary<string, JsonElement>? Parameters = null,
    IReadOnlyDictionary<string, JsonElement>? Attributes = null,
    IReadOnlyList<string>? Tags = null,
    IReadOnlyDictionary<string, string>? Metadata = null,
    bool CacheHit = false);

/// <summary>A batch of spans from an SDK; each gets its own result.</summary>
public sealed record IngestSpansRequest(IReadOnlyList<Span?>? Spans);

/// <summary>Per span: 201 stored, 200 already stored (same span id), or 400 with the reason.</summary>
public sealed record IngestResult(int Index, int Status, string? SpanId = null, string? Error = null, string? Field = null);

public sealed record IngestSpansResponse(IReadOnlyList<IngestResult> Results, int Accepted, int Duplicates, int Rejected);

/// <summary>A trace as listed: its root's name and what its spans add up to.</summary>
/// <param name="Cost">Sum over the generations with a known price; <see cref="CostUnknown"/> counts those without one.</param>
public sealed record TraceSummary(
    string TraceId,
    string Name,
    long StartTime,
    long EndTime,
    string Status,
    int SpanCount,
    int GenerationCount,
    long InputTokens,
    long OutputTokens,
    double? Cost,
    int CostUnknown,
    string? UserId,
    string? SessionId,
    IReadOnlyList<string> Models,
    IReadOnlyList<string> Tags);

public sealed record TracesResponse(IReadOnlyList<TraceSummary> Traces, string? NextPageToken = null);

public sealed record TraceResponse(TraceSummary Trace, IReadOnlyList<Span> Spans);

public sealed record SpansResponse(IReadOnlyList<Span> Spans, string? NextPageToken = null);

/// <summary>Requests, tokens, cost and latency of generations, grouped by model, user, day or project.</summary>
public sealed record CostRow(
    string Key,
    long Requests,
    long Errors,
    long InputTokens,
    long OutputTokens,
    long CachedInputTokens,
    double Cost,
    long CostUnknown,
    double CostSaved,
    double LatencyP50Ms,
    double LatencyP95Ms,
    double LatencyP99Ms);

public sealed record CostsResponse(string By, long From, long To, IReadOnlyList<CostRow> Rows);

/// <summary>A session: the traces that share a session id.</summary>
public sealed record SessionSummary(string SessionId, string? UserId, long StartTime, long EndTime, int TraceCount, long InputTokens, long OutputTokens, double? Cost);

public sealed record SessionsResponse(IReadOnlyList<SessionSummary> Sessions, string? NextPageToken = null);

/// <summary>A price of a model in USD per million tokens, effective from a date; patterns use * as a wildcard.</summary>
public sealed record Price(
    string Model,
    string? Provider,
    long EffectiveFrom,
    double? Input,
    double? Output,
    double? CachedInput = null,
    double? CacheWrite = null,
    double? Reasoning = null,
    IReadOnlyList<PriceTier>? Tiers = null,
    string Source = "user",
    long? Id = null);

/// <summary>Prices that apply instead when a request's input tokens exceed <see cref="AboveInputTokens"/>.</summary>
public sealed record PriceTier(long AboveInputTokens, double? Input, double? Output, double? CachedInput = null, double? CacheWrite = null);

public sealed record PricesResponse(IReadOnlyList<Price> Prices);

public sealed record RecomputeCostsRequest(long? From = null, long? To = null);

public sealed record RecomputeCostsResponse(long Spans, long Priced, long Unknown);
