using Sextant.Contracts;
using Sextant.Core.Artifacts;
using Sextant.Core.Tracking;
using Sextant.Server.Http;
using static Sextant.Server.Http.ApiResults;

namespace Sextant.Server.Artifacts;

/// <summary>Run artifacts: native routes, MLflow's artifacts/list and MLflow's artifact proxy (mlflow-artifacts).</summary>
internal static class ArtifactEndpoints
{
    private const string Tag = "Artifacts";
    private const string MlflowTag = "MLflow artifacts";

    public static void MapArtifactEndpoints(this IEndpointRouteBuilder app)
    {
        var json = SextantJsonContext.Default;

        // Native: artifacts of one run.
        app.MapPut("/api/v1/runs/{runId}/artifacts/{**path}", async (HttpContext ctx, string runId, string path) =>
            {
                var root = await RunRootAsync(ctx, runId, requireActive: true);
                await Artifacts(ctx).PutAsync(ctx.Caller(), Combine(root, path), ctx.Request.Body, ctx.RequestAborted);
                return Empty();
            })
            .Describe("UploadRunArtifact", "Upload one artifact file to a run (streamed, any size)", Tag);
        app.MapGet("/api/v1/runs/{runId}/artifacts/{**path}", async (HttpContext ctx, string runId, string path) =>
                await DownloadAsync(ctx, Combine(await RunRootAsync(ctx, runId, requireActive: false), path)))
            .Describe("DownloadRunArtifact", "Download one artifact file of a run", Tag);
        app.MapGet("/api/v1/runs/{runId}/artifacts", async (HttpContext ctx, string runId) =>
            {
                var root = await RunRootAsync(ctx, runId, requireActive: false);
                var files = await Artifacts(ctx).ListAsync(ctx.Caller(), root, ctx.Query("path"), ctx.RequestAborted);
                return Ok(new ListArtifactsResponse(RootUri(root), files), json.ListArtifactsResponse);
            })
            .Describe("ListRunArtifacts", "List the files and folders of a run's artifact folder", Tag);

        // MLflow tracking API: paths relative to the run's artifact root.
        foreach (var (prefix, suffix) in new[] { ("/api/2.0/mlflow", ""), ("/ajax-api/2.0/mlflow", "Ajax") })
        {
            app.MapGet(prefix + "/artifacts/list", async Task<IResult> (HttpContext ctx) =>
                {
                    var root = await RunRootAsync(ctx, ctx.Query("run_id") ?? ctx.Query("run_uuid"), requireActive: false);
                    var files = await Artifacts(ctx).ListAsync(ctx.Caller(), root, ctx.Query("path"), ctx.RequestAborted);
                    return Ok(new ListArtifactsResponse(RootUri(root), files), json.ListArtifactsResponse);
                })
                .Describe("MlflowListArtifacts" + suffix, "List a run's artifacts", MlflowTag);
        }

        // MLflow artifact proxy: paths are "<experiment>/<run>/artifacts/<file>".
        app.MapPut("/api/2.0/mlflow-artifacts/artifacts/{**path}", async (HttpContext ctx, string path) =>
            {
                await Artifacts(ctx).PutAsync(ctx.Caller(), path, ctx.Request.Body, ctx.RequestAborted);
                return Empty();
            })
            .Describe("MlflowUploadArtifact", "Upload an artifact through the MLflow artifact proxy", MlflowTag);
        app.MapGet("/api/2.0/mlflow-artifacts/artifacts/{**path}", (HttpContext ctx, string path) => DownloadAsync(ctx, path))
            .Describe("MlflowDownloadArtifact", "Download an artifact through the MLflow artifact proxy", MlflowTag);
        app.MapGet("/api/2.0/mlflow-artifacts/artifacts", async Task<IResult> (HttpContext ctx) =>
            {
                var files = await Artifacts(ctx).ListAsync(ctx.Caller(), "", ctx.Query("path"), ctx.RequestAborted);
                // The proxy lists names relative to the listed folder.
                var names = files.Select(f => f with { Path = f.Path[(f.Path.LastIndexOf('/') + 1)..] }).ToList();
                return Ok(new ListArtifactsResponse(null, names), json.ListArtifactsResponse);
            })
            .Describe("MlflowListArtifactsProxy", "List a folder through the MLflow artifact proxy", MlflowTag);
        app.MapDelete("/api/2.0/mlflow-artifacts/artifacts/{**path}", async (HttpContext ctx, string path) =>
            {
                await Artifacts(ctx).DeleteAsync(ctx.Caller(), path, ctx.RequestAborted);
                return Empty();
            })
            .Describe("MlflowDeleteArtifact", "Delete an artifact file or folder through the MLflow artifact proxy", MlflowTag);
    }

    private static async Task<IResult> DownloadAsync(HttpContext ctx, string path)
    {
        var (content, size) = await Artifacts(ctx).OpenAsync(ctx.Caller(), path, ctx.RequestAborted);
        // The length comes from the catalogue: the stream is verified as it is read and so cannot seek. A blob found
        // damaged at the end cuts the connection before the last bytes, so no client takes it for complete.
        ctx.Response.ContentLength = size;
        return TypedResults.Stream(content, "application/octet-stream", fileDownloadName: path[(path.LastIndexOf('/') + 1)..]);
    }

    private static Task<string> RunRootAsync(HttpContext ctx, string? runId, bool requireActive) =>
        ctx.RequestServices.GetRequiredService<TrackingService>().RunArtifactRootAsync(ctx.Caller(), runId, requireActive, ctx.RequestAborted);

    private static string Combine(string root, string path) => root + "/" + ArtifactPath.Normalize(path, "path", allowEmpty: false);

    private static string RootUri(string root) => "mlflow-artifacts:/" + root;

    private static ArtifactService Artifacts(HttpContext context) => context.RequestServices.GetRequiredService<ArtifactService>();

}
