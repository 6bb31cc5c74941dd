using Sextant.Contracts;
using Sextant.Core;
using Sextant.Core.Projects;
using Sextant.Server.Http;
using static Sextant.Server.Http.ApiResults;

namespace Sextant.Server.Projects;

/// <summary>Projects and API keys. Project admins manage their project's keys; server admins manage all.</summary>
internal static class ProjectEndpoints
{
    private const string Tag = "Projects and keys";

    public static void MapProjectEndpoints(this IEndpointRouteBuilder app)
    {
        var json = SextantJsonContext.Default;
        var api = app.MapGroup("/api/v1");

        api.MapGet("/whoami", (HttpContext ctx) =>
            {
                var caller = ctx.Caller();
                return Ok(new WhoAmIResponse(caller.ProjectName, caller.Role.ToString().ToLowerInvariant(), caller.Anonymous), json.WhoAmIResponse);
            })
            .Describe("WhoAmI", "The caller's project and role", Tag);
        api.MapGet("/projects", async (HttpContext ctx, ProjectService projects) =>
            {
                var caller = ctx.Caller();
                var all = await projects.ListAsync(ctx.RequestAborted);
                return Ok(new ProjectsResponse(caller.IsServerAdmin ? all : all.Where(p => p.Name == caller.ProjectName).ToList()), json.ProjectsResponse);
            })
            .Describe("ListProjects", "List the projects the caller can see", Tag);
        api.MapJsonPost("/projects", json.CreateProjectRequest, async (ctx, caller, req) =>
            {
                RequireServerAdmin(caller);
                var project = await ctx.RequestServices.GetRequiredService<ProjectService>().CreateAsync(req.Name, ctx.RequestAborted);
                return TypedResults.Json(project, json.Project, statusCode: 201);
            })
            .Describe("CreateProject", "Create a project (server admins)", Tag);

        api.MapGet("/keys", async (HttpContext ctx, ProjectService projects) =>
            {
                var caller = ctx.Caller();
                caller.Require(Role.Admin);
                var all = ctx.Query("all") == "true";
                if (all)
                {
                    RequireServerAdmin(caller);
                }
                return Ok(new KeysResponse(await projects.ListKeysAsync(all ? null : caller.ProjectId, ctx.RequestAborted)), json.KeysResponse);
            })
            .Describe("ListKeys", "List API keys of the caller's project (?all=true: every project, server admins)", Tag);
        api.MapJsonPost("/keys", json.CreateKeyRequest, async (ctx, caller, req) =>
            {
                caller.Require(Role.Admin);
                var projects = ctx.RequestServices.GetRequiredService<ProjectService>();
                var projectId = caller.ProjectId;
                if (!string.IsNullOrEmpty(req.Project) && req.Project != caller.ProjectName)
                {
                    RequireServerAdmin(caller);
                    projectId = (await projects.GetAsync(req.Project, ctx.RequestAborted)).Id;
                }
                var created = await projects.CreateKeyAsync(projectId, req.Name, req.Role, ctx.RequestAborted);
                return TypedResults.Json(created, json.CreateKeyResponse, statusCode: 201);
            })
            .Describe("CreateKey", "Create an API key; the secret is in this response only", Tag);
        api.MapDelete("/keys/{keyId}", async (HttpContext ctx, string keyId, ProjectService projects) =>
            {
                var caller = ctx.Caller();
                caller.Require(Role.Admin);
                await projects.RevokeKeyAsync(caller.IsServerAdmin ? null : caller.ProjectId, keyId, ctx.RequestAborted);
                return Empty();
            })
            .Describe("RevokeKey", "Revoke an API key", Tag);
    }

    private static void RequireServerAdmin(Caller caller)
    {
        if (!caller.IsServerAdmin)
        {
            throw new SextantException(ErrorCodes.PermissionDenied, "Only an admin of the 'default' project (a server admin) may manage other projects.", 403);
        }
    }
}
