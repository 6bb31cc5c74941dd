using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.AspNetCore.StaticFiles;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.FileProviders;
using MudBlazor.Services;
using Sextant.Core;
using Sextant.Core.Artifacts;
using Sextant.Core.Projects;
using Sextant.Core.Tracking;
using Sextant.Web.Auth;
using Sextant.Web.Components;

namespace Sextant.Web;

/// <summary>Registers and maps the web UI (Blazor, interactive on the server) under /ui.</summary>
public static class SextantWebExtensions
{
    /// <summary>Paths the UI owns: its pages, the Blazor circuit and the UI's own endpoints.</summary>
    public static bool IsUiPath(PathString path) => path.StartsWithSegments("/ui") || path.StartsWithSegments("/_blazor");

    public static IServiceCollection AddSextantWeb(this IServiceCollection services)
    {
        services.AddRazorComponents().AddInteractiveServerComponents();
        services.AddCascadingAuthenticationState();
        services.AddMudServices();
        services.AddScoped<UiSession>();
        services.AddSingleton<Prefetch>();
        return services;
    }

    /// <summary>Serves the UI's static files (copied beside the assemblies under wwwroot/ at build time).</summary>
    public static IApplicationBuilder UseSextantWebAssets(this IApplicationBuilder app)
    {
        var root = Path.Combine(AppContext.BaseDirectory, "wwwroot");
        if (!Directory.Exists(root))
        {
            throw new InvalidOperationException($"The web UI's files are missing from {root}; rebuild Sextant.");
        }
        return app.UseStaticFiles(new StaticFileOptions
        {
            FileProvider = new PhysicalFileProvider(root),
            OnPrepareResponse = file => file.Context.Response.Headers.CacheControl = "public, max-age=3600",
        });
    }

    /// <summary>The UI's pages may not be framed by another site (clickjacking of the local admin).</summary>
    public static IApplicationBuilder UseSextantWebHeaders(this IApplicationBuilder app) => app.Use(async (context, next) =>
    {
        if (IsUiPath(context.Request.Path))
        {
            context.Response.OnStarting(() =>
            {
                var headers = context.Response.Headers;
                if (!headers.ContainsKey("Content-Security-Policy"))
                {
                    headers.ContentSecurityPolicy = "frame-ancestors 'none'";
                }
                headers.XFrameOptions = "DENY";
                headers["Referrer-Policy"] = "same-origin";
                return Task.CompletedTask;
            });
        }
        await next(context);
    });

    public static void MapSextantWeb(this WebApplication app)
    {
        app.MapGet("/", () => Results.Redirect("/ui")).ExcludeFromDescription();
        app.MapRazorComponents<App>().AddInteractiveServerRenderMode(server => server.ContentSecurityFrameAncestorsPolicy = "'none'");

        // Downloads go through the UI's session (cookie or anonymous local user), not the API's bearer keys.
        app.MapGet("/ui/download/{runId}/{**path}", async (HttpContext context, string runId, string path, ProjectService projects,
                TrackingService tracking, ArtifactService artifacts) =>
            {
                var caller = await UiPrincipal.ResolveAsync(context.User, projects, context.RequestAborted);
                if (caller is null)
                {
                    return Results.Text("Sign in to download artifacts.", "text/plain", statusCode: 401);
                }
                try
                {
                    var root = await tracking.RunArtifactRootAsync(caller, runId, cancellationToken: context.RequestAborted);
                    var (content, _) = await artifacts.OpenAsync(caller, root + "/" + path, context.RequestAborted);
                    var inline = context.Request.Query.ContainsKey("inline");
                    // Artifacts are user content: never run as a page of this site.
                    context.Response.Headers.ContentSecurityPolicy = "sandbox; default-src 'none'; frame-ancestors 'none'";
                    context.Response.Headers.XContentTypeOptions = "nosniff";
                    return Results.Stream(content, ContentType(path), inline ? null : Path.GetFileName(path), enableRangeProcessing: true);
                }
                catch (SextantException e)
                {
                    return Results.Text(e.Message, "text/plain", statusCode: e.StatusCode);
                }
            })
            .ExcludeFromDescription();

        app.MapPost("/ui/signout", (HttpContext context) =>
            {
                context.Response.Cookies.Delete(UiPrincipal.KeyCookie);
                context.Response.Cookies.Delete(UiPrincipal.ProjectCookie);
                return Results.Redirect("/ui/signin?signedout=1");
            })
            .DisableAntiforgery()
            .ExcludeFromDescription();

        // Switching project is a view preference; whether the caller may act there is checked at every use.
        app.MapGet("/ui/switch-project", (HttpContext context, string? name, string? returnUrl) =>
            {
                if (context.Request.Headers["Sec-Fetch-Site"].ToString() is "cross-site" or "same-site")
                {
                    // Only the UI's own button switches projects, not a link on another site.
                    return Results.Redirect("/ui");
                }
                if (string.IsNullOrEmpty(name))
                {
                    context.Response.Cookies.Delete(UiPrincipal.ProjectCookie);
                }
                else
                {
                    context.Response.Cookies.Append(UiPrincipal.ProjectCookie, name, CookieOptions(context));
                }
                return Results.Redirect(LocalUrl(returnUrl));
            })
            .ExcludeFromDescription();
    }

    /// <summary>Http-only, same-site strict, secure whenever the request came over HTTPS.</summary>
    public static CookieOptions CookieOptions(HttpContext context) => new()
    {
        HttpOnly = true,
        SameSite = SameSiteMode.Strict,
        Secure = context.Request.IsHttps,
        Path = "/",
        MaxAge = TimeSpan.FromDays(30),
        IsEssential = true,
    };

    /// <summary>Only local UI paths are followed after sign-in or a project switch (no open redirects).</summary>
    public static string LocalUrl(string? url) =>
        url is { Length: > 0 } && url.StartsWith("/ui", StringComparison.Ordinal) && !url.StartsWith("//", StringComparison.Ordinal) ? url : "/ui";

    private static readonly FileExtensionContentTypeProvider ContentTypes = new();

    private static string ContentType(string path) =>
        ContentTypes.TryGetContentType(path, out var type) ? type : "application/octet-stream";
}
