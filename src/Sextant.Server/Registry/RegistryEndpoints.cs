using Sextant.Contracts;
using Sextant.Core.Lineage;
using Sextant.Core.Registry;
using Sextant.Server.Http;
using static Sextant.Server.Http.ApiResults;

namespace Sextant.Server.Registry;

/// <summary>
/// The model registry: MLflow 2.x's registered-models and model-versions routes (under /api/2.0/mlflow and
/// /ajax-api/2.0/mlflow), and the native model URI resolver. DELETE routes take their fields from a JSON body,
/// as MLflow clients send them, or from the query string.
/// </summary>
internal static class RegistryEndpoints
{
    private const string Tag = "MLflow model registry";

    public static void MapRegistryEndpoints(this IEndpointRouteBuilder app)
    {
        MapMlflow(app.MapGroup("/api/2.0/mlflow"), "");
        MapMlflow(app.MapGroup("/ajax-api/2.0/mlflow"), "Ajax");
        app.MapGet("/api/v1/models/resolve", async Task<IResult> (HttpContext ctx) =>
                Ok(new ModelVersionResponse(await Registry(ctx).ResolveAsync(ctx.Caller(), ctx.Query("uri"), ctx.RequestAborted)), SextantJsonContext.Default.ModelVersionResponse))
            .Describe("ResolveModelUri", "Resolve models:/name/<version>, models:/name/latest or models:/name@alias to a model version", "Model registry");
        app.MapGet("/api/v1/lineage", async Task<IResult> (HttpContext ctx) =>
                Ok(await ctx.RequestServices.GetRequiredService<LineageService>().GetAsync(ctx.Caller(), ctx.Query("uri"), ctx.Query("direction"), ctx.QueryLong("depth"), ctx.RequestAborted),
                    SextantJsonContext.Default.LineageResponse))
            .Describe("GetLineage", "The lineage graph around a datasets:/, runs:/ or models:/ URI (direction up, down or both; depth 1-10)", "Lineage");
    }

    private static void MapMlflow(RouteGroupBuilder api, string suffix)
    {
        var json = SextantJsonContext.Default;

        // Registered models.
        api.MapJsonPost("/registered-models/create", json.CreateRegisteredModelRequest, async (ctx, caller, req) =>
                Ok(new RegisteredModelResponse(await Registry(ctx).CreateModelAsync(caller, req, ctx.RequestAborted)), json.RegisteredModelResponse))
            .Describe("MlflowCreateRegisteredModel" + suffix, "Create a registered model", Tag);
        api.MapGet("/registered-models/get", async Task<IResult> (HttpContext ctx) =>
                Ok(new RegisteredModelResponse(await Registry(ctx).GetModelAsync(ctx.Caller(), ctx.Query("name"), ctx.RequestAborted)), json.RegisteredModelResponse))
            .Describe("MlflowGetRegisteredModel" + suffix, "Get a registered model", Tag);
        api.MapJsonPost("/registered-models/rename", json.RenameRegisteredModelRequest, async (ctx, caller, req) =>
                Ok(new RegisteredModelResponse(await Registry(ctx).RenameModelAsync(caller, req.Name, req.NewName, ctx.RequestAborted)), json.RegisteredModelResponse))
            .Describe("MlflowRenameRegisteredModel" + suffix, "Rename a registered model", Tag);
        api.MapJson(HttpMethods.Patch, "/registered-models/update", json.UpdateRegisteredModelRequest, async (ctx, caller, req) =>
                Ok(new RegisteredModelResponse(await Registry(ctx).UpdateModelAsync(caller, req.Name, req.Description, ctx.RequestAborted)), json.RegisteredModelResponse))
            .Describe("MlflowUpdateRegisteredModel" + suffix, "Update a registered model's description", Tag);
        api.MapJson(HttpMethods.Delete, "/registered-models/delete", json.RegisteredModelNameRequest, async (ctx, caller, req) =>
            {
                await Registry(ctx).DeleteModelAsync(caller, req.Name ?? ctx.Query("name"), ctx.RequestAborted);
                return Empty();
            })
            .Describe("MlflowDeleteRegisteredModel" + suffix, "Delete a registered model and its versions", Tag);
        api.MapGet("/registered-models/search", async Task<IResult> (HttpContext ctx) =>
                Ok(await Registry(ctx).SearchModelsAsync(ctx.Caller(), SearchQuery(ctx), ctx.RequestAborted), json.SearchRegisteredModelsResponse))
            .Describe("MlflowSearchRegisteredModels" + suffix, "Search registered models", Tag);
        api.MapJsonPost("/registered-models/get-latest-versions", json.GetLatestVersionsRequest, async (ctx, caller, req) =>
                Ok(new ModelVersionsResponse(await Registry(ctx).GetLatestVersionsAsync(caller, req.Name, req.Stages, ctx.RequestAborted)), json.ModelVersionsResponse))
            .Describe("MlflowGetLatestVersions" + suffix, "The latest version of a registered model for each stage", Tag);
        api.MapGet("/registered-models/get-latest-versions", async Task<IResult> (HttpContext ctx) =>
                Ok(new ModelVersionsResponse(await Registry(ctx).GetLatestVersionsAsync(ctx.Caller(), ctx.Query("name"), Many(ctx, "stages"), ctx.RequestAborted)), json.ModelVersionsResponse))
            .Describe("MlflowGetLatestVersionsGet" + suffix, "The latest version of a registered model for each stage (query string)", Tag);
        api.MapJsonPost("/registered-models/set-tag", json.SetRegisteredModelTagRequest, async (ctx, caller, req) =>
            {
                await Registry(ctx).SetModelTagAsync(caller, req.Name, req.Key, req.Value, ctx.RequestAborted);
                return Empty();
            })
            .Describe("MlflowSetRegisteredModelTag" + suffix, "Set a tag on a registered model", Tag);
        api.MapJson(HttpMethods.Delete, "/registered-models/delete-tag", json.DeleteRegisteredModelTagRequest, async (ctx, caller, req) =>
            {
                await Registry(ctx).DeleteModelTagAsync(caller, req.Name ?? ctx.Query("name"), req.Key ?? ctx.Query("key"), ctx.RequestAborted);
                return Empty();
            })
            .Describe("MlflowDeleteRegisteredModelTag" + suffix, "Delete a tag of a registered model", Tag);
        api.MapJsonPost("/registered-models/alias", json.SetModelAliasRequest, async (ctx, caller, req) =>
            {
                await Registry(ctx).SetAliasAsync(caller, req.Name, req.Alias, req.Version, ctx.RequestAborted);
                return Empty();
            })
            .Describe("MlflowSetRegisteredModelAlias" + suffix, "Point an alias at a version", Tag);
        api.MapJson(HttpMethods.Delete, "/registered-models/alias", json.DeleteModelAliasRequest, async (ctx, caller, req) =>
            {
                await Registry(ctx).DeleteAliasAsync(caller, req.Name ?? ctx.Query("name"), req.Alias ?? ctx.Query("alias"), ctx.RequestAborted);
                return Empty();
            })
            .Describe("MlflowDeleteRegisteredModelAlias" + suffix, "Delete an alias", Tag);
        api.MapGet("/registered-models/alias", async Task<IResult> (HttpContext ctx) =>
                Ok(new ModelVersionResponse(await Registry(ctx).GetVersionByAliasAsync(ctx.Caller(), ctx.Query("name"), ctx.Query("alias"), ctx.RequestAborted)), json.ModelVersionResponse))
            .Describe("MlflowGetModelVersionByAlias" + suffix, "The version an alias points at", Tag);

        // Model versions.
        api.MapJsonPost("/model-versions/create", json.CreateModelVersionRequest, async (ctx, caller, req) =>
                Ok(new ModelVersionResponse(await Registry(ctx).CreateVersionAsync(caller, req, ctx.RequestAborted)), json.ModelVersionResponse))
            .Describe("MlflowCreateModelVersion" + suffix, "Register a new version of a model", Tag);
        api.MapGet("/model-versions/get", async Task<IResult> (HttpContext ctx) =>
                Ok(new ModelVersionResponse(await Registry(ctx).GetVersionAsync(ctx.Caller(), ctx.Query("name"), ctx.Query("version"), ctx.RequestAborted)), json.ModelVersionResponse))
            .Describe("MlflowGetModelVersion" + suffix, "Get a model version", Tag);
        api.MapJson(HttpMethods.Patch, "/model-versions/update", json.UpdateModelVersionRequest, async (ctx, caller, req) =>
                Ok(new ModelVersionResponse(await Registry(ctx).UpdateVersionAsync(caller, req.Name, req.Version, req.Description, ctx.RequestAborted)), json.ModelVersionResponse))
            .Describe("MlflowUpdateModelVersion" + suffix, "Update a model version's description", Tag);
        api.MapJson(HttpMethods.Delete, "/model-versions/delete", json.ModelVersionRequest, async (ctx, caller, req) =>
            {
                await Registry(ctx).DeleteVersionAsync(caller, req.Name ?? ctx.Query("name"), req.Version ?? ctx.Query("version"), ctx.RequestAborted);
                return Empty();
            })
            .Describe("MlflowDeleteModelVersion" + suffix, "Delete a model version", Tag);
        api.MapGet("/model-versions/search", async Task<IResult> (HttpContext ctx) =>
                Ok(await Registry(ctx).SearchVersionsAsync(ctx.Caller(), SearchQuery(ctx), ctx.RequestAborted), json.SearchModelVersionsResponse))
            .Describe("MlflowSearchModelVersions" + suffix, "Search model versions", Tag);
        api.MapGet("/model-versions/get-download-uri", async Task<IResult> (HttpContext ctx) =>
                Ok(new ModelDownloadUriResponse(await Registry(ctx).GetDownloadUriAsync(ctx.Caller(), ctx.Query("name"), ctx.Query("version"), ctx.RequestAborted)), json.ModelDownloadUriResponse))
            .Describe("MlflowGetModelVersionDownloadUri" + suffix, "Where a model version's files can be downloaded", Tag);
        api.MapJsonPost("/model-versions/set-tag", json.SetModelVersionTagRequest, async (ctx, caller, req) =>
            {
                await Registry(ctx).SetVersionTagAsync(caller, req.Name, req.Version, req.Key, req.Value, ctx.RequestAborted);
                return Empty();
            })
            .Describe("MlflowSetModelVersionTag" + suffix, "Set a tag on a model version", Tag);
        api.MapJson(HttpMethods.Delete, "/model-versions/delete-tag", json.DeleteModelVersionTagRequest, async (ctx, caller, req) =>
            {
                await Registry(ctx).DeleteVersionTagAsync(caller, req.Name ?? ctx.Query("name"), req.Version ?? ctx.Query("version"), req.Key ?? ctx.Query("key"), ctx.RequestAborted);
                return Empty();
            })
            .Describe("MlflowDeleteModelVersionTag" + suffix, "Delete a tag of a model version", Tag);
    }

    private static SearchRegistryRequest SearchQuery(HttpContext ctx) =>
        new(ctx.Query("filter"), ctx.QueryLong("max_results"), Many(ctx, "order_by"), ctx.Query("page_token"));

    private static List<string> Many(HttpContext ctx, string name) =>
        ctx.Request.Query[name].Where(v => !string.IsNullOrEmpty(v)).Select(v => v!).ToList();

    private static RegistryService Registry(HttpContext context) => context.RequestServices.GetRequiredService<RegistryService>();
}
