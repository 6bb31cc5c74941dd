using System.Text.Json.Nodes;
using Sextant.Contracts;
using Sextant.Server.Http;
using static Sextant.Server.Http.ApiResults;

namespace Sextant.Server.Gateway;

/// <summary>The OpenAI-compatible gateway under /v1 and its configuration under /api/v1/gateway.</summary>
internal static class GatewayEndpoints
{
    private const string Tag = "Gateway";

    public static void MapGatewayEndpoints(this IEndpointRouteBuilder app)
    {
        var json = SextantJsonContext.Default;
        app.MapPost("/v1/chat/completions", async Task<IResult> (HttpContext ctx) =>
            {
                await Proxy(ctx).HandleAsync(ctx, "chat");
                return Results.Empty;
            })
            .Describe("ChatCompletions", "OpenAI-compatible chat completions (streaming by SSE and not), routed to the configured providers", Tag);
        app.MapPost("/v1/embeddings", async Task<IResult> (HttpContext ctx) =>
            {
                await Proxy(ctx).HandleAsync(ctx, "embeddings");
                return Results.Empty;
            })
            .Describe("Embeddings", "OpenAI-compatible embeddings, routed to the configured providers", Tag);
        app.MapGet("/v1/models", async Task<IResult> (HttpContext ctx) =>
            {
                var snapshot = await Registry(ctx).SnapshotAsync(ctx.Caller().ProjectId, ctx.RequestAborted);
                var data = new JsonArray([.. snapshot.Routes.Keys.Order(StringComparer.Ordinal)
                    .Select(name => (JsonNode)new JsonObject { ["id"] = name, ["object"] = "model", ["created"] = 0, ["owned_by"] = "sextant" })]);
                ctx.Response.ContentType = "application/json";
                await ctx.Response.WriteAsync(new JsonObject { ["object"] = "list", ["data"] = data }.ToJsonString(), ctx.RequestAborted);
                return Results.Empty;
            })
            .Describe("Models", "The models (routes) the gateway serves, in OpenAI's list format", Tag);

        app.MapGet("/api/v1/gateway/providers", async Task<IResult> (HttpContext ctx) =>
                Ok(new GatewayProvidersResponse(await Registry(ctx).ListProvidersAsync(ctx.Caller(), ctx.RequestAborted)), json.GatewayProvidersResponse))
            .Describe("ListGatewayProviders", "The gateway's providers (keys are never returned; has_api_key says whether one is set)", Tag);
        app.MapJson(HttpMethods.Put, "/api/v1/gateway/providers/{name}", json.GatewayProvider, async (ctx, caller, req) =>
                Ok(await Registry(ctx).SetProviderAsync(caller, (string)ctx.Request.RouteValues["name"]!, req, ctx.RequestAborted), json.GatewayProvider))
            .Describe("SetGatewayProvider", "Create or change a provider: kind, base_url, api_key (stored encrypted; omit to keep the current one)", Tag);
        app.MapDelete("/api/v1/gateway/providers/{name}", async Task<IResult> (HttpContext ctx, string name) =>
            {
                await Registry(ctx).DeleteAsync(ctx.Caller(), "gateway_providers", name, ctx.RequestAborted);
                return Empty();
            })
            .Describe("DeleteGatewayProvider", "Delete a provider set through the API", Tag);
        app.MapGet("/api/v1/gateway/routes", async Task<IResult> (HttpContext ctx) =>
                Ok(new GatewayRoutesResponse(await Registry(ctx).ListRoutesAsync(ctx.Caller(), ctx.RequestAborted)), json.GatewayRoutesResponse))
            .Describe("ListGatewayRoutes", "The gateway's routes: model names and where they go", Tag);
        app.MapJson(HttpMethods.Put, "/api/v1/gateway/routes/{name}", json.GatewayRoute, async (ctx, caller, req) =>
                Ok(await Registry(ctx).SetRouteAsync(caller, (string)ctx.Request.RouteValues["name"]!, req, ctx.RequestAborted), json.GatewayRoute))
            .Describe("SetGatewayRoute", "Create or change a route: targets with weights, fallback statuses, retries, time-out, circuit breaker", Tag);
        app.MapDelete("/api/v1/gateway/routes/{name}", async Task<IResult> (HttpContext ctx, string name) =>
            {
                await Registry(ctx).DeleteAsync(ctx.Caller(), "gateway_routes", name, ctx.RequestAborted);
                return Empty();
            })
            .Describe("DeleteGatewayRoute", "Delete a route set through the API", Tag);
        MapLimits(app);
    }

    private static void MapLimits(IEndpointRouteBuilder app)
    {
        var json = SextantJsonContext.Default;
        app.MapGet("/api/v1/gateway/limits", async Task<IResult> (HttpContext ctx) =>
                Ok(new GatewayLimitsResponse(await Limiter(ctx).ListAsync(ctx.Caller(), ctx.RequestAborted)), json.GatewayLimitsResponse))
            .Describe("ListGatewayLimits", "The project's gateway limits and its keys'", Tag);
        app.MapJson(HttpMethods.Put, "/api/v1/gateway/limits/project", json.GatewayLimit, async (ctx, caller, req) =>
                Ok(await Limiter(ctx).SetAsync(caller, null, req, ctx.RequestAborted), json.GatewayLimit))
            .Describe("SetProjectGatewayLimit", "Requests and tokens per minute, daily and monthly budget (USD) for the whole project; leave a field out for no limit", Tag);
        app.MapJson(HttpMethods.Put, "/api/v1/gateway/limits/keys/{keyId}", json.GatewayLimit, async (ctx, caller, req) =>
                Ok(await Limiter(ctx).SetAsync(caller, (string)ctx.Request.RouteValues["keyId"]!, req, ctx.RequestAborted), json.GatewayLimit))
            .Describe("SetKeyGatewayLimit", "The same limits for one API key of the project", Tag);
    }

    private static GatewayLimiter Limiter(HttpContext context) => context.RequestServices.GetRequiredService<GatewayLimiter>();

    private static GatewayProxy Proxy(HttpContext context) => context.RequestServices.GetRequiredService<GatewayProxy>();

    private static GatewayRegistry Registry(HttpContext context) => context.RequestServices.GetRequiredService<GatewayRegistry>();
}
