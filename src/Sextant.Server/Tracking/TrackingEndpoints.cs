using Sextant.Contracts;
using Sextant.Core.Tracking;
using Sextant.Server.Http;
using static Sextant.Server.Http.ApiResults;

namespace Sextant.Server.Tracking;

/// <summary>The native tracking API: resources under /api/v1, the same services and wire types as the MLflow API.</summary>
internal static class TrackingEndpoints
{
    private const string Tag = "Tracking";

    public static void MapTrackingEndpoints(this IEndpointRouteBuilder app)
    {
        var json = SextantJsonContext.Default;
        var api = app.MapGroup("/api/v1");

        api.MapJsonPost("/experiments", json.CreateExperimentRequest, async (ctx, caller, req) =>
            {
                var id = await Tracking(ctx).CreateExperimentAsync(caller, req, ctx.RequestAborted);
                return TypedResults.Json(new ExperimentResponse(await Tracking(ctx).GetExperimentAsync(caller, id, ctx.RequestAborted)), json.ExperimentResponse, statusCode: 201);
            })
            .Describe("CreateExperiment", "Create an experiment", Tag);
        api.MapGet("/experiments", async Task<IResult> (HttpContext ctx) =>
                Ok(await Tracking(ctx).SearchExperimentsAsync(ctx.Caller(), ctx.SearchExperimentsQuery(), ctx.RequestAborted), json.SearchExperimentsResponse))
            .Describe("SearchExperiments", "Search experiments (filter, order_by, max_results, page_token, view_type)", Tag);
        api.MapGet("/experiments/{experimentId}", async (HttpContext ctx, string experimentId) =>
                Ok(new ExperimentResponse(await Tracking(ctx).GetExperimentAsync(ctx.Caller(), experimentId, ctx.RequestAborted)), json.ExperimentResponse))
            .Describe("GetExperiment", "Get an experiment", Tag);
        api.MapGet("/experiments/by-name/{name}", async (HttpContext ctx, string name) =>
                Ok(new ExperimentResponse(await Tracking(ctx).GetExperimentByNameAsync(ctx.Caller(), RawSegment(ctx, 5, name), ctx.RequestAborted)), json.ExperimentResponse))
            .Describe("GetExperimentByName", "Get an experiment by name", Tag);
        api.MapJsonPost("/experiments/{experimentId}/rename", json.UpdateExperimentRequest, async (ctx, caller, req) =>
            {
                var id = (string)ctx.Request.RouteValues["experimentId"]!;
                await Tracking(ctx).RenameExperimentAsync(caller, id, req.NewName, ctx.RequestAborted);
                return Ok(new ExperimentResponse(await Tracking(ctx).GetExperimentAsync(caller, id, ctx.RequestAborted)), json.ExperimentResponse);
            })
            .Describe("RenameExperiment", "Rename an experiment", Tag);
        api.MapDelete("/experiments/{experimentId}", async (HttpContext ctx, string experimentId) =>
            {
                await Tracking(ctx).DeleteExperimentAsync(ctx.Caller(), experimentId, ctx.RequestAborted);
                return Empty();
            })
            .Describe("DeleteExperiment", "Delete an experiment and its runs (restorable)", Tag);
        api.MapPost("/experiments/{experimentId}/restore", async (HttpContext ctx, string experimentId) =>
            {
                await Tracking(ctx).RestoreExperimentAsync(ctx.Caller(), experimentId, ctx.RequestAborted);
                return Empty();
            })
            .Describe("RestoreExperiment", "Restore a deleted experiment and its runs", Tag);
        api.MapJsonPost("/experiments/{experimentId}/tags", json.SetExperimentTagRequest, async (ctx, caller, req) =>
            {
                await Tracking(ctx).SetExperimentTagAsync(caller, (string)ctx.Request.RouteValues["experimentId"]!, req.Key, req.Value, ctx.RequestAborted);
                return Empty();
            })
            .Describe("SetExperimentTag", "Set an experiment tag", Tag);

        api.MapJsonPost("/runs", json.CreateRunRequest, async (ctx, caller, req) =>
                TypedResults.Json(new RunResponse(await Tracking(ctx).CreateRunAsync(caller, req, ctx.RequestAborted)), json.RunResponse, statusCode: 201))
            .Describe("CreateRun", "Create a run (a readable name is generated when none is given)", Tag);
        api.MapJsonPost("/runs/search", json.SearchRunsRequest, async (ctx, caller, req) =>
                Ok(await Tracking(ctx).SearchRunsAsync(caller, req, ctx.RequestAborted), json.SearchRunsResponse))
            .Describe("SearchRuns", "Search runs with MLflow's filter language, order and keyset page tokens", Tag);
        api.MapGet("/runs/{runId}", async (HttpContext ctx, string runId) =>
                Ok(new RunResponse(await Tracking(ctx).GetRunAsync(ctx.Caller(), runId, ctx.RequestAborted)), json.RunResponse))
            .Describe("GetRun", "Get a run with its last metrics, params, tags and inputs", Tag);
        api.MapJsonPost("/runs/{runId}/update", json.UpdateRunRequest, async (ctx, caller, req) =>
                Ok(new UpdateRunResponse(await Tracking(ctx).UpdateRunAsync(caller, req with { RunId = (string)ctx.Request.RouteValues["runId"]! }, ctx.RequestAborted)), json.UpdateRunResponse))
            .Describe("UpdateRun", "Set a run's status, end time or name", Tag);
        api.MapDelete("/runs/{runId}", async (HttpContext ctx, string runId) =>
            {
                await Tracking(ctx).DeleteRunAsync(ctx.Caller(), runId, ctx.RequestAborted);
                return Empty();
            })
            .Describe("DeleteRun", "Delete a run (restorable)", Tag);
        api.MapPost("/runs/{runId}/restore", async (HttpContext ctx, string runId) =>
            {
                await Tracking(ctx).RestoreRunAsync(ctx.Caller(), runId, ctx.RequestAborted);
                return Empty();
            })
            .Describe("RestoreRun", "Restore a deleted run", Tag);
        api.MapJsonPost("/runs/{runId}/log-batch", json.LogBatchRequest, async (ctx, caller, req) =>
            {
                await Tracking(ctx).LogBatchAsync(caller, req with { RunId = (string)ctx.Request.RouteValues["runId"]! }, ctx.IdempotencyKey(), ctx.RequestAborted);
                return Empty();
            })
            .Describe("LogBatch", "Log metrics, params and tags atomically; acknowledged after commit", Tag);
        api.MapJsonPost("/runs/{runId}/inputs", json.LogInputsRequest, async (ctx, caller, req) =>
            {
                await Tracking(ctx).LogInputsAsync(caller, req with { RunId = (string)ctx.Request.RouteValues["runId"]! }, ctx.RequestAborted);
                return Empty();
            })
            .Describe("LogInputs", "Record the datasets a run used", Tag);
        api.MapDelete("/runs/{runId}/tags/{key}", async (HttpContext ctx, string runId, string key) =>
            {
                await Tracking(ctx).DeleteTagAsync(ctx.Caller(), runId, RawSegment(ctx, 6, key), ctx.RequestAborted);
                return Empty();
            })
            .Describe("DeleteRunTag", "Delete a run tag", Tag);
        api.MapGet("/runs/{runId}/metrics/{key}/history", async (HttpContext ctx, string runId, string key) =>
                Ok(await Tracking(ctx).GetMetricHistoryAsync(ctx.Caller(), runId, RawSegment(ctx, 6, key), ctx.QueryLong("max_results"), ctx.Query("page_token"), ctx.RequestAborted), json.MetricHistoryResponse))
            .Describe("GetMetricHistory", "Every point of one metric, ordered by step, with page tokens", Tag);
    }

    /// <summary>
    /// A path segment decoded exactly once from the raw request target. Route values are decoded except for
    /// "%2F" (so "/" cannot split a segment), which leaves no way to tell "a%2Fb" typed by a user from "a/b";
    /// names and keys may contain both, so they are read from the raw target.
    /// </summary>
    private static string RawSegment(HttpContext ctx, int index, string routeValue)
    {
        var target = ctx.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpRequestFeature>()?.RawTarget;
        if (string.IsNullOrEmpty(target))
        {
            return routeValue;
        }
        var path = target.Split('?', 2)[0].Split('/');
        return index < path.Length ? Uri.UnescapeDataString(path[index]) : routeValue;
    }

    private static TrackingService Tracking(HttpContext context) => context.RequestServices.GetRequiredService<TrackingService>();
}
