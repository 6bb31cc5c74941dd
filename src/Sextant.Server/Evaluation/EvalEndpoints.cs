using Sextant.Contracts;
using Sextant.Core.Evaluation;
using Sextant.Server.Http;
using static Sextant.Server.Http.ApiResults;

namespace Sextant.Server.Evaluation;

/// <summary>
/// Evaluation's routes: eval datasets (?name= may hold folders), experiments and their comparison, scores on
/// traces (human feedback) and online evaluation rules.
/// </summary>
internal static class EvalEndpoints
{
    private const string Tag = "Evaluation";

    public static void MapEvalEndpoints(this IEndpointRouteBuilder app)
    {
        var json = SextantJsonContext.Default;
        app.MapGet("/api/v1/eval/datasets", async Task<IResult> (HttpContext ctx) =>
                Ok(await Datasets(ctx).ListAsync(ctx.Caller(), ctx.QueryInt("max_results"), ctx.Query("page_token"), ctx.RequestAborted), json.EvalDatasetsResponse))
            .Describe("ListEvalDatasets", "Eval datasets by name, with their latest version and item count", Tag);
        app.MapJsonPost("/api/v1/eval/datasets/items", json.AddEvalItemsRequest, async (ctx, caller, req) =>
                Ok(await Datasets(ctx).AddItemsAsync(caller, ctx.Query("name"), req, ctx.RequestAborted), json.EvalDatasetVersion))
            .Describe("AddEvalItems", "A new version of a dataset (made with its first): the latest version's items and these (mode=append), or only these (mode=replace)", Tag);
        app.MapPost("/api/v1/eval/datasets/import", async Task<IResult> (HttpContext ctx) =>
            {
                var caller = ctx.Caller();
                if (ctx.Request.ContentLength > EvalDatasetService.MaxImportBytes)
                {
                    return Error(413, ErrorCodes.RequestTooLarge, $"The file is {ctx.Request.ContentLength} bytes; an import takes at most {EvalDatasetService.MaxImportBytes}.");
                }
                var body = await BoundedBody.ReadAsync(ctx.Request.Body, EvalDatasetService.MaxImportBytes, ctx.RequestAborted);
                if (body is null)
                {
                    return Error(413, ErrorCodes.RequestTooLarge, $"The file is larger than the {EvalDatasetService.MaxImportBytes} bytes an import takes.");
                }
                var format = ctx.Query("format") ?? (ctx.Request.ContentType?.Contains("csv", StringComparison.OrdinalIgnoreCase) == true ? "csv" : "jsonl");
                return Ok(await Datasets(ctx).ImportAsync(caller, ctx.Query("name"), format, new MemoryStream(body), ctx.Query("mode"), ctx.Query("message"), ctx.RequestAborted),
                    json.EvalDatasetVersion);
            })
            .Describe("ImportEvalItems", "A new version of a dataset from a JSONL or CSV file (format=jsonl|csv); a broken line is a 400 naming it, and nothing is imported", Tag);
        app.MapJsonPost("/api/v1/eval/datasets/from-traces", json.EvalItemsFromTracesRequest, async (ctx, caller, req) =>
                Ok(await Datasets(ctx).FromTracesAsync(caller, ctx.Query("name"), req, ctx.RequestAborted), json.EvalDatasetVersion))
            .Describe("EvalItemsFromTraces", "A new version of a dataset from traces: each one's first generation (input messages; output as expected)", Tag);
        app.MapGet("/api/v1/eval/datasets/versions", async Task<IResult> (HttpContext ctx) =>
                Ok(await Datasets(ctx).VersionsAsync(ctx.Caller(), ctx.Query("name"), ctx.RequestAborted), json.EvalDatasetVersionsResponse))
            .Describe("ListEvalDatasetVersions", "A dataset's versions, newest first", Tag);
        app.MapGet("/api/v1/eval/datasets/items", async Task<IResult> (HttpContext ctx) =>
                Ok(await Datasets(ctx).ItemsAsync(ctx.Caller(), ctx.Query("name"), ctx.QueryInt("version"), ctx.QueryInt("max_results"), ctx.Query("page_token"),
                    ctx.RequestAborted), json.EvalItemsResponse))
            .Describe("ListEvalItems", "The items of a dataset version (the latest by default), in order", Tag);

        app.MapJsonPost("/api/v1/eval/experiments", json.CreateEvalExperimentRequest, async (ctx, caller, req) =>
                Ok(await Experiments(ctx).CreateAsync(caller, req, ctx.RequestAborted), json.EvalExperiment))
            .Describe("CreateEvalExperiment", "Run a dataset version against a target (prompt, model, http, or sdk), scored by evaluators; it runs in the background", Tag);
        app.MapGet("/api/v1/eval/experiments", async Task<IResult> (HttpContext ctx) =>
                Ok(await Experiments(ctx).ListAsync(ctx.Caller(), ctx.Query("dataset"), ctx.QueryInt("max_results"), ctx.Query("page_token"), ctx.RequestAborted),
                    json.EvalExperimentsResponse))
            .Describe("ListEvalExperiments", "Experiments, newest first, optionally of one dataset, with their summaries", Tag);
        app.MapGet("/api/v1/eval/experiments/{id}", async Task<IResult> (HttpContext ctx, string id) =>
                Ok(await Experiments(ctx).GetAsync(ctx.Caller(), id, ctx.RequestAborted), json.EvalExperiment))
            .Describe("GetEvalExperiment", "An experiment: status and summary (pass rate, errors, flaky items, per evaluator, latency, tokens, cost)", Tag);
        app.MapGet("/api/v1/eval/experiments/{id}/results", async Task<IResult> (HttpContext ctx, string id) =>
                Ok(await Experiments(ctx).ResultsAsync(ctx.Caller(), id, ctx.Query("status"), ctx.QueryInt("max_results"), ctx.Query("page_token"), ctx.RequestAborted),
                    json.ExperimentResultsResponse))
            .Describe("ListEvalExperimentResults", "Per item and repetition: input, expected, output, scores with reasons; status=fail|error|pass filters", Tag);
        app.MapGet("/api/v1/eval/experiments/{id}/items", async Task<IResult> (HttpContext ctx, string id) =>
                Ok(await Experiments(ctx).ItemSummariesAsync(ctx.Caller(), id, ctx.RequestAborted), json.IReadOnlyListExperimentItemSummary))
            .Describe("ListEvalExperimentItems", "Per item over its repetitions: pass rate and whether it is flaky", Tag);
        app.MapJsonPost("/api/v1/eval/experiments/{id}/results", json.PostExperimentResultsRequest, async (ctx, caller, req) =>
                Ok(await Experiments(ctx).PostResultsAsync(caller, (string?)ctx.Request.RouteValues["id"], req, ctx.RequestAborted), json.PostExperimentResultsResponse))
            .Describe("PostEvalExperimentResults", "Outputs of an sdk experiment's items, scored by its evaluators; complete=true finishes it", Tag);
        app.MapPost("/api/v1/eval/experiments/{id}/cancel", async Task<IResult> (HttpContext ctx, string id) =>
            {
                await Experiments(ctx).CancelAsync(ctx.Caller(), id, ctx.RequestAborted);
                return Empty();
            })
            .Describe("CancelEvalExperiment", "Stop a queued or running experiment; its finished results stay", Tag);
        app.MapGet("/api/v1/eval/compare", async Task<IResult> (HttpContext ctx) =>
                Ok(await Experiments(ctx).CompareAsync(ctx.Caller(), ctx.Query("baseline"), ctx.Query("candidate"), ctx.RequestAborted), json.ExperimentComparison))
            .Describe("CompareEvalExperiments", "Candidate minus baseline per metric with paired-bootstrap 95% intervals; items with regressions first", Tag);

        app.MapJsonPost("/api/v1/scores", json.CreateScoreRequest, async (ctx, caller, req) =>
                Ok(await Scores(ctx).CreateAsync(caller, req, ctx.RequestAborted), json.TraceScore))
            .Describe("CreateScore", "Feedback on a trace or span: a number, true/false (thumbs), a category, and/or a comment", Tag);
        app.MapGet("/api/v1/scores", async Task<IResult> (HttpContext ctx) =>
                Ok(await Scores(ctx).ListAsync(ctx.Caller(), ctx.Query("trace_id"), ctx.Query("name"), ctx.QueryInt("max_results"), ctx.Query("page_token"), ctx.RequestAborted),
                    json.TraceScoresResponse))
            .Describe("ListScores", "Scores, newest first, of one trace or by name", Tag);
        app.MapGet("/api/v1/scores/trends", async Task<IResult> (HttpContext ctx) =>
                Ok(await Scores(ctx).TrendsAsync(ctx.Caller(), ctx.Query("name"), ctx.QueryLong("since"), ctx.Query("by"), ctx.RequestAborted), json.ScoreTrendsResponse))
            .Describe("ScoreTrends", "Each score's mean and pass rate per day, or by=arm per prompt version and A/B arm (since=Unix ms; 30 days by default)", Tag);
        app.MapJson(HttpMethods.Put, "/api/v1/eval/online-rules", json.OnlineEvalRule, async (ctx, caller, req) =>
                Ok(await Scores(ctx).SetRuleAsync(caller, ctx.Query("name"), req, ctx.RequestAborted), json.OnlineEvalRule))
            .Describe("SetOnlineEvalRule", "Create or change an online evaluation rule: a filter, a sample rate and evaluators for production generations", Tag);
        app.MapGet("/api/v1/eval/online-rules", async Task<IResult> (HttpContext ctx) =>
                Ok(await Scores(ctx).ListRulesAsync(ctx.Caller(), ctx.RequestAborted), json.OnlineEvalRulesResponse))
            .Describe("ListOnlineEvalRules", "The project's online evaluation rules", Tag);
        app.MapDelete("/api/v1/eval/online-rules", async Task<IResult> (HttpContext ctx) =>
            {
                await Scores(ctx).DeleteRuleAsync(ctx.Caller(), ctx.Query("name"), ctx.RequestAborted);
                return Empty();
            })
            .Describe("DeleteOnlineEvalRule", "Remove an online evaluation rule (its scores stay)", Tag);
    }

    private static EvalDatasetService Datasets(HttpContext context) => context.RequestServices.GetRequiredService<EvalDatasetService>();

    private static ExperimentService Experiments(HttpContext context) => context.RequestServices.GetRequiredService<ExperimentService>();

    private static ScoreService Scores(HttpContext context) => context.RequestServices.GetRequiredService<ScoreService>();
}
