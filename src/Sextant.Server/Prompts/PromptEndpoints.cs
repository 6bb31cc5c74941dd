using Sextant.Contracts;
using Sextant.Core.Prompts;
using Sextant.Server.Http;
using static Sextant.Server.Http.ApiResults;

namespace Sextant.Server.Prompts;

/// <summary>
/// The prompt registry's routes. A prompt's name may hold folders (support/answer), so it travels in the query
/// string (?name=support/answer) rather than in the path.
/// </summary>
internal static class PromptEndpoints
{
    private const string Tag = "Prompts";

    public static void MapPromptEndpoints(this IEndpointRouteBuilder app)
    {
        var json = SextantJsonContext.Default;
        app.MapGet("/api/v1/prompts", async Task<IResult> (HttpContext ctx) =>
                Ok(await Prompts(ctx).ListAsync(ctx.Caller(), ctx.Query("prefix"), (int?)ctx.QueryLong("max_results"), ctx.Query("page_token"), ctx.RequestAborted), json.PromptsResponse))
            .Describe("ListPrompts", "Prompts by name, optionally under a folder (prefix=support/), with their labels", Tag);
        app.MapJsonPost("/api/v1/prompts/versions", json.CreatePromptVersionRequest, async (ctx, caller, req) =>
                Ok(await Prompts(ctx).CreateVersionAsync(caller, ctx.Query("name"), req, ctx.RequestAborted), json.PromptVersion))
            .Describe("CreatePromptVersion", "Create a prompt's next version (and the prompt with its first); labels given move to it", Tag);
        app.MapGet("/api/v1/prompts/versions", async Task<IResult> (HttpContext ctx) =>
                Ok(new PromptVersionsResponse(await Prompts(ctx).ListVersionsAsync(ctx.Caller(), ctx.Query("name"), ctx.RequestAborted)), json.PromptVersionsResponse))
            .Describe("ListPromptVersions", "Every version of a prompt, newest first", Tag);
        app.MapGet("/api/v1/prompts/get", async Task<IResult> (HttpContext ctx) =>
                Ok(await Prompts(ctx).GetAsync(ctx.Caller(), ctx.Query("name"), (int?)ctx.QueryLong("version"), ctx.Query("label"), ctx.RequestAborted), json.PromptVersion))
            .Describe("GetPrompt", "A prompt version by number (version=3) or label (label=staging); the production label's by default", Tag);
        app.MapJson(HttpMethods.Put, "/api/v1/prompts/labels", json.SetPromptLabelRequest, async (ctx, caller, req) =>
            {
                await Prompts(ctx).SetLabelAsync(caller, ctx.Query("name"), ctx.Query("label"), req.Version, ctx.RequestAborted);
                return Empty();
            })
            .Describe("SetPromptLabel", "Point a label at a version (a deployment, kept in the audit log; production needs an admin key)", Tag);
        app.MapDelete("/api/v1/prompts/labels", async Task<IResult> (HttpContext ctx) =>
            {
                await Prompts(ctx).DeleteLabelAsync(ctx.Caller(), ctx.Query("name"), ctx.Query("label"), ctx.RequestAborted);
                return Empty();
            })
            .Describe("DeletePromptLabel", "Remove a label from a prompt", Tag);
        app.MapGet("/api/v1/prompts/labels/history", async Task<IResult> (HttpContext ctx) =>
                Ok(new PromptLabelHistoryResponse(await Prompts(ctx).LabelHistoryAsync(ctx.Caller(), ctx.Query("name"), ctx.RequestAborted)), json.PromptLabelHistoryResponse))
            .Describe("PromptLabelHistory", "Every label move of a prompt, newest first: which label, from which version to which, by whom", Tag);
        app.MapJson(HttpMethods.Put, "/api/v1/prompts/split", json.SetPromptSplitRequest, async (ctx, caller, req) =>
                Ok(await Prompts(ctx).SetSplitAsync(caller, ctx.Query("name"), req.Arms, ctx.RequestAborted), json.IReadOnlyListPromptSplitArm))
            .Describe("SetPromptSplit", "A/B test: split the calls that name no label between labels by weight, sticky per user (an empty list removes it; needs an admin)", Tag);
        app.MapJsonPost("/api/v1/prompts/render", json.RenderPromptRequest, async (ctx, caller, req) =>
                Ok(await Prompts(ctx).RenderAsync(caller, ctx.Query("name"), req, ctx.RequestAborted), json.RenderedPrompt))
            .Describe("RenderPrompt", "Render a version with variables: text or messages, its config, and the variables it did not use", Tag);
        app.MapGet("/api/v1/prompts/diff", async Task<IResult> (HttpContext ctx) =>
                Ok(await Prompts(ctx).DiffAsync(ctx.Caller(), ctx.Query("name"), (int?)ctx.QueryLong("from"), (int?)ctx.QueryLong("to"), ctx.RequestAborted), json.PromptDiff))
            .Describe("DiffPromptVersions", "What changed from one version to another: template lines and config keys", Tag);
    }

    private static PromptService Prompts(HttpContext context) => context.RequestServices.GetRequiredService<PromptService>();
}
