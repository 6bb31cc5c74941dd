using System.Globalization;
using Sextant.Contracts;
using Sextant.Core;
using Sextant.Core.Tracing;
using Sextant.Server.Http;
using static Sextant.Server.Http.ApiResults;

namespace Sextant.Server.Tracing;

/// <summary>LLM traces: batch ingestion for SDKs, trace, span and session queries, costs and the price catalog.</summary>
internal static class TraceEndpoints
{
    private const string Tag = "Traces";

    public static void MapTraceEndpoints(this IEndpointRouteBuilder app)
    {
        var json = SextantJsonContext.Default;
        app.MapJsonPost("/api/v1/traces/ingest", json.IngestSpansRequest, async (ctx, caller, req) =>
            {
                var response = await Traces(ctx).IngestAsync(caller, req.Spans, ctx.RequestAborted);
                // Like HTTP 207: the body says what became of each span when not all of them were taken.
                return TypedResults.Json(response, json.IngestSpansResponse, statusCode: response.Rejected > 0 ? 207 : 200);
            })
            .Describe("IngestSpans", "Store a batch of spans (at most 1,000); each gets 201 stored, 200 already stored (same span id) or 400 with the reason", Tag);
        app.MapGet("/api/v1/traces", async Task<IResult> (HttpContext ctx) =>
                Ok(await Traces(ctx).ListTracesAsync(ctx.Caller(), Filter(ctx), ctx.QueryLong("max_results"), ctx.Query("page_token"), ctx.RequestAborted), json.TracesResponse))
            .Describe("ListTraces", "Traces, newest first (from/to in Unix ms; user, session, model, status, tag, min_cost, min_latency_ms, name)", Tag);
        app.MapGet("/api/v1/traces/{traceId}", async Task<IResult> (HttpContext ctx, string traceId) =>
                Ok(await Traces(ctx).GetTraceAsync(ctx.Caller(), traceId, ctx.RequestAborted), json.TraceResponse))
            .Describe("GetTrace", "One trace with all its spans", Tag);
        app.MapGet("/api/v1/spans", async Task<IResult> (HttpContext ctx) =>
                Ok(await Traces(ctx).ListSpansAsync(ctx.Caller(), Filter(ctx), ctx.Query("kind"), ctx.QueryLong("max_results"), ctx.Query("page_token"), ctx.RequestAborted), json.SpansResponse))
            .Describe("ListSpans", "Spans, newest first, with the trace filters and kind (generation or span)", Tag);
        app.MapGet("/api/v1/sessions", async Task<IResult> (HttpContext ctx) =>
                Ok(await Traces(ctx).ListSessionsAsync(ctx.Caller(), Micros(ctx, "from"), Micros(ctx, "to"), ctx.Query("user"), ctx.QueryLong("max_results"), ctx.RequestAborted), json.SessionsResponse))
            .Describe("ListSessions", "Sessions (traces sharing a session id), latest first", Tag);
        app.MapGet("/api/v1/costs", async Task<IResult> (HttpContext ctx) =>
                Ok(await Traces(ctx).CostsAsync(ctx.Caller(), ctx.Query("by"), Micros(ctx, "from"), Micros(ctx, "to"), ctx.RequestAborted), json.CostsResponse))
            .Describe("GetCosts", "Requests, tokens, cost and latency p50/p95/p99 of generations by model, user, provider, day or project (from/to in Unix ms; default the last 7 days)", Tag);
        app.MapJsonPost("/api/v1/costs/recompute", json.RecomputeCostsRequest, async (ctx, caller, req) =>
                Ok(await Traces(ctx).RecomputeAsync(caller, Checked(req.From, "from"), Checked(req.To, "to"), ctx.RequestAborted), json.RecomputeCostsResponse))
            .Describe("RecomputeCosts", "Compute again, with today's prices, the cost of generations between from and to (Unix ms)", Tag);
        app.MapGet("/api/v1/prices", async Task<IResult> (HttpContext ctx) =>
                Ok(new PricesResponse(await ctx.RequestServices.GetRequiredService<PriceCatalog>().ListAsync(ctx.Caller(), ctx.Query("model"), ctx.RequestAborted)), json.PricesResponse))
            .Describe("ListPrices", "The price catalog: the project's prices, shared ones, then those shipped with Sextant (USD per million tokens)", Tag);
        app.MapJsonPost("/api/v1/prices", json.Price, async (ctx, caller, req) =>
                Ok(await ctx.RequestServices.GetRequiredService<PriceCatalog>().SetAsync(caller, req, ctx.Query("shared") is "true", ctx.RequestAborted), json.Price))
            .Describe("SetPrice", "Add a price (a model name or pattern with *, effective_from in Unix ms); ?shared=true for every project (server admin)", Tag);
    }

    private static TraceService.TraceFilter Filter(HttpContext ctx) => new(
        Micros(ctx, "from"), Micros(ctx, "to"), ctx.Query("user"), ctx.Query("session"), ctx.Query("model"), ctx.Query("status"), ctx.Query("tag"),
        Number(ctx, "min_cost"), Number(ctx, "min_latency_ms"), ctx.Query("name"));

    /// <summary>A time given in Unix milliseconds, as microseconds (how spans are stored).</summary>
    private static long? Micros(HttpContext ctx, string name) => ctx.QueryLong(name) is { } ms
        ? ms is >= 0 and < long.MaxValue / 1000 ? ms * 1000 : throw SextantException.Invalid(name, $"'{name}' must be a time in Unix milliseconds; got {ms}.")
        : null;

    private static long? Checked(long? ms, string name) => ms is { } v
        ? v is >= 0 and < long.MaxValue / 1000 ? v * 1000 : throw SextantException.Invalid(name, $"'{name}' must be a time in Unix milliseconds; got {v}.")
        : null;

    private static double? Number(HttpContext ctx, string name)
    {
        var text = ctx.Query(name);
        return string.IsNullOrEmpty(text) ? null
            : double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) && double.IsFinite(value) ? value
            : throw SextantException.Invalid(name, $"'{name}' must be a number; got '{text}'.");
    }

    private static TraceService Traces(HttpContext context) => context.RequestServices.GetRequiredService<TraceService>();
}
