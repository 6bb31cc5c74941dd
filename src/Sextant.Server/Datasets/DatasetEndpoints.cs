using Sextant.Contracts;
using Sextant.Core.Artifacts;
using Sextant.Core.Datasets;
using Sextant.Server.Http;
using static Sextant.Server.Http.ApiResults;

namespace Sextant.Server.Datasets;

/// <summary>
/// Versioned datasets and the project's blobs. The upload protocol: hash locally, ask which blobs are missing,
/// POST those in framed batches, POST the manifest (one more blob), then create the version from the manifest.
/// </summary>
internal static class DatasetEndpoints
{
    private const string Tag = "Datasets";

    public static void MapDatasetEndpoints(this IEndpointRouteBuilder app)
    {
        var json = SextantJsonContext.Default;

        app.MapJsonPost("/api/v1/blobs/missing", json.BlobListRequest, async (ctx, caller, req) =>
                Ok(new MissingBlobsResponse(await Datasets(ctx).MissingBlobsAsync(caller, req.Sha256, ctx.RequestAborted)), json.MissingBlobsResponse))
            .Describe("MissingBlobs", "Which of these SHA-256 hashes the project has not uploaded (at most 10,000 per request)", Tag);
        app.MapPost("/api/v1/blobs", async Task<IResult> (HttpContext ctx) =>
                Ok(new StoredBlobsResponse(await Datasets(ctx).PutBlobsAsync(ctx.Caller(), ctx.Request.Body, ctx.RequestAborted)), json.StoredBlobsResponse))
            .Describe("UploadBlobs", "Upload a batch of blobs: for each, 64 hex digits of its SHA-256, its length (8 bytes, little-endian), its bytes", Tag);
        app.MapGet("/api/v1/blobs/{sha256}", async (HttpContext ctx, string sha256) =>
            {
                var (content, size) = await Datasets(ctx).OpenBlobAsync(ctx.Caller(), sha256, ctx.RequestAborted);
                ctx.Response.ContentLength = size;
                return TypedResults.Stream(content, "application/octet-stream");
            })
            .Describe("DownloadBlob", "Download one blob of the project (verified against its hash as it is sent)", Tag);
        app.MapJsonPost("/api/v1/blobs/read", json.BlobListRequest, async (ctx, caller, req) =>
            {
                var list = await Datasets(ctx).CheckReadableAsync(caller, req.Sha256, ctx.RequestAborted);
                return (IResult)new FramedBlobsResult(list);
            })
            .Describe("DownloadBlobs", "Download several blobs in the upload framing (at most 10,000 per request)", Tag);

        app.MapGet("/api/v1/datasets", async Task<IResult> (HttpContext ctx) =>
                Ok(await Datasets(ctx).ListDatasetsAsync(ctx.Caller(), ctx.Query("filter"), ctx.QueryLong("max_results"), ctx.Query("page_token"), ctx.RequestAborted), json.DatasetsResponse))
            .Describe("ListDatasets", "List versioned datasets (filter: part of the name), by name", Tag);
        app.MapGet("/api/v1/datasets/{name}", async Task<IResult> (HttpContext ctx, string name) =>
                Ok(await Datasets(ctx).GetDatasetAsync(ctx.Caller(), name, ctx.RequestAborted), SextantJsonContext.Default.DatasetInfo))
            .Describe("GetDataset", "A dataset and its latest version", Tag);
        app.MapJsonPost("/api/v1/datasets/{name}/versions", json.CreateDatasetVersionRequest, async (ctx, caller, req) =>
            {
                var created = await Datasets(ctx).CreateVersionAsync(caller, (string)ctx.Request.RouteValues["name"]!, req, ctx.RequestAborted);
                return Ok(created, json.CreateDatasetVersionResponse);
            })
            .Describe("CreateDatasetVersion", "Make a version from an uploaded manifest; the dataset is created on its first version. Unchanged content makes no version", Tag);
        app.MapGet("/api/v1/datasets/{name}/versions", async Task<IResult> (HttpContext ctx, string name) =>
                Ok(await Datasets(ctx).ListVersionsAsync(ctx.Caller(), name, ctx.QueryLong("max_results"), ctx.Query("page_token"), ctx.RequestAborted), json.DatasetVersionsResponse))
            .Describe("ListDatasetVersions", "A dataset's versions, newest first", Tag);
        app.MapGet("/api/v1/datasets/{name}/versions/{version}", async Task<IResult> (HttpContext ctx, string name, string version) =>
                Ok(await Datasets(ctx).GetVersionAsync(ctx.Caller(), name, version, ctx.RequestAborted), json.DatasetVersion))
            .Describe("GetDatasetVersion", "One version (a number, v<N> or latest)", Tag);
        app.MapGet("/api/v1/datasets/{name}/versions/{version}/manifest", async (HttpContext ctx, string name, string version) =>
                TypedResults.Stream(await Datasets(ctx).OpenManifestAsync(ctx.Caller(), name, version, ctx.RequestAborted), "application/json"))
            .Describe("GetDatasetManifest", "A version's manifest: {\"files\": [{path, size, sha256}]} in path order", Tag);
        app.MapGet("/api/v1/datasets/{name}/versions/{version}/profile", async Task<IResult> (HttpContext ctx, string name, string version) =>
                Ok(await Datasets(ctx).GetProfileAsync(ctx.Caller(), name, version, ctx.RequestAborted), json.DatasetProfile))
            .Describe("GetDatasetProfile", "The schema and profile of a version's tabular files", Tag);
        app.MapGet("/api/v1/datasets/{name}/diff", async Task<IResult> (HttpContext ctx, string name) =>
                Ok(await Datasets(ctx).DiffAsync(ctx.Caller(), name, ctx.Query("from"), ctx.Query("to"), ctx.RequestAborted), json.DatasetDiff))
            .Describe("DiffDatasetVersions", "Files added, removed and changed between two versions (from, to; to defaults to latest), with schema and statistics of tables", Tag);
    }

    private static DatasetService Datasets(HttpContext context) => context.RequestServices.GetRequiredService<DatasetService>();

    /// <summary>Streams blobs in the upload framing. A damaged blob aborts the connection: no client takes the batch for complete.</summary>
    private sealed class FramedBlobsResult(IReadOnlyList<StoredBlob> list) : IResult
    {
        public async Task ExecuteAsync(HttpContext httpContext)
        {
            httpContext.Response.ContentType = "application/octet-stream";
            httpContext.Response.ContentLength = list.Sum(b => 72 + b.Size);
            try
            {
                await Datasets(httpContext).WriteFramesAsync(list, httpContext.Response.Body, httpContext.RequestAborted);
            }
            catch (BlobCorruptedException)
            {
                httpContext.Abort();
            }
        }
    }
}
