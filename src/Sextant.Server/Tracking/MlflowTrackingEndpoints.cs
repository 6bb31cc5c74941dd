using Sextant.Contracts;
using Sextant.Core.Tracking;
using Sextant.Server.Http;
using static Sextant.Server.Http.ApiResults;

namespace Sextant.Server.Tracking;

/// <summary>MLflow 2.x's tracking REST API, so MLflow clients work unchanged against Sextant.</summary>
internal static class MlflowTrackingEndpoints
{
    private const string Tag = "MLflow tracking";

    public static void MapMlflowTrackingEndpoints(this IEndpointRouteBuilder app)
    {
        MapAt(app.MapGroup("/api/2.0/mlflow"), "");
        MapAt(app.MapGroup("/ajax-api/2.0/mlflow"), "Ajax");
    }

    private static void MapAt(RouteGroupBuilder api, string suffix)
    {
        var json = SextantJsonContext.Default;

        api.MapJsonPost("/experiments/create", json.CreateExperimentRequest, async (ctx, caller, req) =>
                Ok(new CreateExperimentResponse(await Tracking(ctx).CreateExperimentAsync(caller, req, ctx.RequestAborted)), json.CreateExperimentResponse))
            .Describe("MlflowCreateExperiment" + suffix, "Create an experiment", Tag);
        api.MapGet("/experiments/get", async Task<IResult> (HttpContext ctx) =>
                Ok(new ExperimentResponse(await Tracking(ctx).GetExperimentAsync(ctx.Caller(), ctx.Query("experiment_id"), ctx.RequestAborted)), json.ExperimentResponse))
            .Describe("MlflowGetExperiment" + suffix, "Get an experiment by id", Tag);
        api.MapGet("/experiments/get-by-name", async Task<IResult> (HttpContext ctx) =>
                Ok(new ExperimentResponse(await Tracking(ctx).GetExperimentByNameAsync(ctx.Caller(), ctx.Query("experiment_name"), ctx.RequestAborted)), json.ExperimentResponse))
            .Describe("MlflowGetExperimentByName" + suffix, "Get an experiment by name", Tag);
        api.MapJsonPost("/experiments/search", json.SearchExperimentsRequest, async (ctx, caller, req) =>
                Ok(await Tracking(ctx).SearchExperimentsAsync(caller, req, ctx.RequestAborted), json.SearchExperimentsResponse))
            .Describe("MlflowSearchExperiments" + suffix, "Search experiments", Tag);
        api.MapGet("/experiments/search", async Task<IResult> (HttpContext ctx) =>
                Ok(await Tracking(ctx).SearchExperimentsAsync(ctx.Caller(), ctx.SearchExperimentsQuery(), ctx.RequestAborted), json.SearchExperimentsResponse))
            .Describe("MlflowSearchExperimentsGet" + suffix, "Search experiments (query string)", Tag);
        api.MapJsonPost("/experiments/update", json.UpdateExperimentRequest, async (ctx, caller, req) =>
            {
                await Tracking(ctx).RenameExperimentAsync(caller, req.ExperimentId, req.NewName, ctx.RequestAborted);
                return Empty();
            })
            .Describe("MlflowUpdateExperiment" + suffix, "Rename an experiment", Tag);
        api.MapJsonPost("/experiments/delete", json.ExperimentIdRequest, async (ctx, caller, req) =>
            {
                await Tracking(ctx).DeleteExperimentAsync(caller, req.ExperimentId, ctx.RequestAborted);
                return Empty();
            })
            .Describe("MlflowDeleteExperiment" + suffix, "Delete an experiment and its runs", Tag);
        api.MapJsonPost("/experiments/restore", json.ExperimentIdRequest, async (ctx, caller, req) =>
            {
                await Tracking(ctx).RestoreExperimentAsync(caller, req.ExperimentId, ctx.RequestAborted);
                return Empty();
            })
            .Describe("MlflowRestoreExperiment" + suffix, "Restore a deleted experiment", Tag);
        api.MapJsonPost("/experiments/set-experiment-tag", json.SetExperimentTagRequest, async (ctx, caller, req) =>
            {
                await Tracking(ctx).SetExperimentTagAsync(caller, req.ExperimentId, req.Key, req.Value, ctx.RequestAborted);
                return Empty();
            })
            .Describe("MlflowSetExperimentTag" + suffix, "Set an experiment tag", Tag);

        api.MapJsonPost("/runs/create", json.CreateRunRequest, async (ctx, caller, req) =>
                Ok(new RunResponse(await Tracking(ctx).CreateRunAsync(caller, req, ctx.RequestAborted)), json.RunResponse))
            .Describe("MlflowCreateRun" + suffix, "Create a run", Tag);
        api.MapJsonPost("/runs/update", json.UpdateRunRequest, async (ctx, caller, req) =>
                Ok(new UpdateRunResponse(await Tracking(ctx).UpdateRunAsync(caller, req, ctx.RequestAborted)), json.UpdateRunResponse))
            .Describe("MlflowUpdateRun" + suffix, "Update a run's status, end time or name", Tag);
        api.MapGet("/runs/get", async Task<IResult> (HttpContext ctx) =>
                Ok(new RunResponse(await Tracking(ctx).GetRunAsync(ctx.Caller(), ctx.Query("run_id") ?? ctx.Query("run_uuid"), ctx.RequestAborted)), json.RunResponse))
            .Describe("MlflowGetRun" + suffix, "Get a run", Tag);
        api.MapJsonPost("/runs/delete", json.RunIdRequest, async (ctx, caller, req) =>
            {
                await Tracking(ctx).DeleteRunAsync(caller, req.RunId ?? req.RunUuid, ctx.RequestAborted);
                return Empty();
            })
            .Describe("MlflowDeleteRun" + suffix, "Delete a run", Tag);
        api.MapJsonPost("/runs/restore", json.RunIdRequest, async (ctx, caller, req) =>
            {
                await Tracking(ctx).RestoreRunAsync(caller, req.RunId ?? req.RunUuid, ctx.RequestAborted);
                return Empty();
            })
            .Describe("MlflowRestoreRun" + suffix, "Restore a deleted run", Tag);
        api.MapJsonPost("/runs/search", json.SearchRunsRequest, async (ctx, caller, req) =>
                Ok(await Tracking(ctx).SearchRunsAsync(caller, req, ctx.RequestAborted), json.SearchRunsResponse))
            .Describe("MlflowSearchRuns" + suffix, "Search runs with MLflow's filter language", Tag);
        api.MapJsonPost("/runs/log-metric", json.LogMetricRequest, async (ctx, caller, req) =>
            {
                await Tracking(ctx).LogBatchAsync(caller, new LogBatchRequest(req.RunId ?? req.RunUuid, [new MetricInput(req.Key, req.Value, req.Timestamp, req.Step)]), ctx.IdempotencyKey(), ctx.RequestAborted);
                return Empty();
            })
            .Describe("MlflowLogMetric" + suffix, "Log one metric point", Tag);
        api.MapJsonPost("/runs/log-parameter", json.LogParamRequest, async (ctx, caller, req) =>
            {
                await Tracking(ctx).LogBatchAsync(caller, new LogBatchRequest(req.RunId ?? req.RunUuid, Params: [new KeyValueInput(req.Key, req.Value)]), ctx.IdempotencyKey(), ctx.RequestAborted);
                return Empty();
            })
            .Describe("MlflowLogParam" + suffix, "Log one param (write-once)", Tag);
        api.MapJsonPost("/runs/set-tag", json.SetTagRequest, async (ctx, caller, req) =>
            {
                await Tracking(ctx).LogBatchAsync(caller, new LogBatchRequest(req.RunId ?? req.RunUuid, Tags: [new KeyValueInput(req.Key, req.Value)]), ctx.IdempotencyKey(), ctx.RequestAborted);
                return Empty();
            })
            .Describe("MlflowSetTag" + suffix, "Set a run tag", Tag);
        api.MapJsonPost("/runs/delete-tag", json.DeleteTagRequest, async (ctx, caller, req) =>
            {
                await Tracking(ctx).DeleteTagAsync(caller, req.RunId, req.Key, ctx.RequestAborted);
                return Empty();
            })
            .Describe("MlflowDeleteTag" + suffix, "Delete a run tag", Tag);
        api.MapJsonPost("/runs/log-batch", json.LogBatchRequest, async (ctx, caller, req) =>
            {
                await Tracking(ctx).LogBatchAsync(caller, req, ctx.IdempotencyKey(), ctx.RequestAborted);
                return Empty();
            })
            .Describe("MlflowLogBatch" + suffix, "Log metrics, params and tags in one atomic batch", Tag);
        api.MapJsonPost("/runs/log-inputs", json.LogInputsRequest, async (ctx, caller, req) =>
            {
                await Tracking(ctx).LogInputsAsync(caller, req, ctx.RequestAborted);
                return Empty();
            })
            .Describe("MlflowLogInputs" + suffix, "Log the datasets a run used", Tag);
        api.MapGet("/metrics/get-history", async Task<IResult> (HttpContext ctx) =>
                Ok(await Tracking(ctx).GetMetricHistoryAsync(ctx.Caller(), ctx.Query("run_id") ?? ctx.Query("run_uuid"), ctx.Query("metric_key"),
                    ctx.QueryLong("max_results"), ctx.Query("page_token"), ctx.RequestAborted), json.MetricHistoryResponse))
            .Describe("MlflowGetMetricHistory" + suffix, "Get every point of one metric of a run", Tag);
    }

    private static TrackingService Tracking(HttpContext context) => context.RequestServices.GetRequiredService<TrackingService>();
}
