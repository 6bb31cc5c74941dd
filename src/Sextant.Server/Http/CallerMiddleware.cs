using System.Text;
using Sextant.Core;
using Sextant.Core.Projects;
using Sextant.Contracts;
using Sextant.Web;
using Sextant.Web.Auth;

namespace Sextant.Server.Http;

/// <summary>
/// Resolves the caller of each API request from <c>Authorization: Bearer &lt;key&gt;</c> or HTTP Basic
/// (the key as password, as MLflow clients send it), or the anonymous local admin when allowed.
/// A server admin may act in another project with the <c>X-Sextant-Project</c> header.
/// </summary>
internal sealed class CallerMiddleware(RequestDelegate next, ProjectService projects, AccessPolicy policy)
{
    private const string ProjectHeader = "X-Sextant-Project";

    public async Task InvokeAsync(HttpContext context)
    {
        var path = context.Request.Path;
        if (SextantWebExtensions.IsUiPath(path))
        {
            await ResolveUiAsync(context);
            await next(context);
            return;
        }
        // The API, MLflow's routes and the OpenAI-compatible gateway (/v1) need a caller; other paths (health, assets) do not.
        if (!path.StartsWithSegments("/api") && !path.StartsWithSegments("/ajax-api") && !path.StartsWithSegments("/v1"))
        {
            await next(context);
            return;
        }
        var caller = await ResolveAsync(context);
        var project = context.Request.Headers[ProjectHeader].ToString();
        if (project.Length > 0 && project != caller.ProjectName)
        {
            if (!caller.IsServerAdmin)
            {
                throw new SextantException(ErrorCodes.PermissionDenied, $"This key belongs to project '{caller.ProjectName}' and cannot act in project '{project}'.", 403, ProjectHeader);
            }
            var (id, name) = await projects.GetAsync(project, context.RequestAborted);
            caller = caller.InProject(id, name);
        }
        context.Items[typeof(Caller)] = caller;
        await next(context);
    }

    /// <summary>
    /// The web UI signs in with a key kept in an http-only cookie, or uses the anonymous local admin under the same
    /// rules as the API. Nobody signed in is not an error here: the UI sends such a person to its sign-in page.
    /// Page views may come from links on other sites; the circuit (/_blazor), through which every change is made,
    /// and any non-GET request may not.
    /// </summary>
    private async Task ResolveUiAsync(HttpContext context)
    {
        if ((context.Request.Path.StartsWithSegments("/_blazor") || !HttpMethods.IsGet(context.Request.Method)) && !IsSameOrigin(context.Request))
        {
            // The circuit and form posts are only for this site's own pages, whoever is signed in.
            return;
        }
        var project = context.Request.Cookies[UiPrincipal.ProjectCookie];
        if (context.Request.Cookies[UiPrincipal.KeyCookie] is { Length: > 0 } key)
        {
            if (await projects.AuthenticateAsync(key, context.RequestAborted) is not null)
            {
                context.User = UiPrincipal.ForKey(key, project);
            }
            return;
        }
        if (!policy.AnonymousAllowed)
        {
            return;
        }
        try
        {
            if (!HttpMethods.IsGet(context.Request.Method) || context.Request.Path.StartsWithSegments("/_blazor"))
            {
                EnsureNotCrossSite(context, requireJsonPost: false);
            }
            if (!policy.AnonymousFromAnywhere)
            {
                EnsureLocalCaller(context);
            }
            context.User = UiPrincipal.Anonymous(project);
        }
        catch (SextantException)
        {
            // Not the local user: the UI asks for a key.
        }
    }

    /// <summary>No Origin (not a browser, or a same-origin GET), or exactly this server's scheme, host and port.</summary>
    private static bool IsSameOrigin(HttpRequest request)
    {
        var origin = request.Headers.Origin.ToString();
        return origin.Length == 0
            || (Uri.TryCreate(origin, UriKind.Absolute, out var uri)
                && string.Equals(uri.Scheme, request.Scheme, StringComparison.OrdinalIgnoreCase)
                && string.Equals(uri.Authority, request.Host.Value, StringComparison.OrdinalIgnoreCase));
    }

    private async Task<Caller> ResolveAsync(HttpContext context)
    {
        var header = context.Request.Headers.Authorization.ToString();
        if (header.Length == 0)
        {
            if (!policy.AnonymousAllowed)
            {
                throw new SextantException(ErrorCodes.Unauthenticated, "Authentication required: send 'Authorization: Bearer <API key>'.", 401);
            }
            EnsureNotCrossSite(context);
            if (!policy.AnonymousFromAnywhere)
            {
                EnsureLocalCaller(context);
            }
            return new Caller(1, ProjectService.DefaultProject, Role.Admin, Anonymous: true);
        }
        var secret = header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase) ? header["Bearer ".Length..].Trim()
            : header.StartsWith("Basic ", StringComparison.OrdinalIgnoreCase) ? BasicPassword(header["Basic ".Length..].Trim())
            : throw new SextantException(ErrorCodes.Unauthenticated, "Unsupported Authorization scheme: use Bearer <API key> or Basic with the key as password.", 401);
        return await projects.AuthenticateAsync(secret, context.RequestAborted)
            ?? throw new SextantException(ErrorCodes.Unauthenticated, "The API key is unknown or has been revoked.", 401);
    }

    /// <summary>
    /// Anonymous admin is for a person on this machine: not a request relayed by a proxy, nor one whose Host
    /// names some other site (DNS rebinding). Skipped only when anonymous access beyond loopback was asked for.
    /// </summary>
    private static void EnsureLocalCaller(HttpContext context)
    {
        var request = context.Request;
        var remote = context.Connection.RemoteIpAddress;
        if (remote is not null && !System.Net.IPAddress.IsLoopback(remote))
        {
            throw new SextantException(ErrorCodes.Unauthenticated, "Anonymous access is only for callers on this machine; send an API key.", 401);
        }
        if (request.Headers.ContainsKey("Forwarded") || request.Headers.ContainsKey("X-Forwarded-For"))
        {
            throw new SextantException(ErrorCodes.Unauthenticated, "Anonymous access is not allowed through a proxy; send an API key.", 401);
        }
        if (!EndpointHelpers.IsLoopbackHost(request.Host.Host))
        {
            throw new SextantException(ErrorCodes.Unauthenticated, $"Anonymous access needs a loopback Host header (localhost, 127.0.0.1, [::1]), not '{request.Host.Host}'; send an API key.", 401);
        }
    }

    /// <summary>
    /// A web page the user visits must not act as the anonymous admin (CSRF): browsers say where a request comes
    /// from (Sec-Fetch-Site, Origin), and a POST must be JSON, which a page cannot send cross-site without a CORS
    /// preflight that this server never grants. Always applied to anonymous callers.
    /// </summary>
    private static void EnsureNotCrossSite(HttpContext context, bool requireJsonPost = true)
    {
        var request = context.Request;
        var site = request.Headers["Sec-Fetch-Site"].ToString();
        if (site is "cross-site" or "same-site")
        {
            throw new SextantException(ErrorCodes.PermissionDenied, "Anonymous requests from another web site are refused; send an API key.", 403);
        }
        var origin = request.Headers.Origin.ToString();
        if (origin.Length > 0 && !(Uri.TryCreate(origin, UriKind.Absolute, out var originUri) && EndpointHelpers.IsLoopbackHost(originUri.Host)))
        {
            throw new SextantException(ErrorCodes.PermissionDenied, $"Anonymous requests from origin '{origin}' are refused; send an API key.", 403);
        }
        if (requireJsonPost && HttpMethods.IsPost(request.Method) && !(request.ContentType is { } type && IsJson(type)))
        {
            throw new SextantException(ErrorCodes.InvalidParameterValue,
                $"Anonymous POST requests must be sent as application/json (or application/vnd.sextant.blobs to /api/v1/blobs, application/x-protobuf to /v1/traces, text/csv or application/x-ndjson to dataset imports), not '{request.ContentType ?? "(none)"}' (this blocks cross-site form posts).", 415, "Content-Type");
        }
    }

    /// <summary>The Content-Type of a framed blob batch (POST /api/v1/blobs).</summary>
    public const string BlobFramesMediaType = "application/vnd.sextant.blobs";

    private static bool IsJson(string contentType)
    {
        var mediaType = contentType.Split(';', 2)[0].Trim();
        // The blob framing's own type is no more sendable cross-site than JSON: neither is CORS-safelisted.
        return mediaType.Equals("application/json", StringComparison.OrdinalIgnoreCase) || mediaType.EndsWith("+json", StringComparison.OrdinalIgnoreCase)
            || mediaType.Equals(BlobFramesMediaType, StringComparison.OrdinalIgnoreCase)
            || mediaType.Equals("application/x-protobuf", StringComparison.OrdinalIgnoreCase)
            || mediaType.Equals("text/csv", StringComparison.OrdinalIgnoreCase)
            || mediaType.Equals("application/x-ndjson", StringComparison.OrdinalIgnoreCase)
            || mediaType.Equals("application/jsonl", StringComparison.OrdinalIgnoreCase);
    }

    private static string BasicPassword(string encoded)
    {
        try
        {
            var decoded = Encoding.UTF8.GetString(Convert.FromBase64String(encoded));
            var colon = decoded.IndexOf(':', StringComparison.Ordinal);
            return colon < 0 ? decoded : decoded[(colon + 1)..];
        }
        catch (FormatException)
        {
            throw new SextantException(ErrorCodes.Unauthenticated, "Malformed Basic credentials: expected base64 of user:password.", 401);
        }
    }
}

/// <summary>
/// Whether unauthenticated callers are let in (loopback binding, or --allow-anonymous), and whether they may come
/// from other machines (only when anonymous access was explicitly allowed beyond loopback).
/// </summary>
internal sealed record AccessPolicy(bool AnonymousAllowed, bool AnonymousFromAnywhere);

internal static class HttpContextCallerExtensions
{
    public static Caller Caller(this HttpContext context) =>
        context.Items[typeof(Caller)] as Caller ?? throw new InvalidOperationException("CallerMiddleware did not run for this route.");
}
