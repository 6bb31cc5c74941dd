using System.Security.Claims;
using Sextant.Core;
using Sextant.Core.Projects;

namespace Sextant.Web.Auth;

/// <summary>
/// Who uses the web UI, as the server resolved it from the sign-in cookie or the anonymous local policy. It rides on
/// HttpContext.User, so the page requests and the interactive circuit (which starts from the /_blazor request)
/// see the same person. The key secret stays on the server: the UI re-checks it at each use, so a revoked key
/// stops working in open pages too.
/// </summary>
public static class UiPrincipal
{
    public const string KeyCookie = "sextant_key";
    public const string ProjectCookie = "sextant_project";
    public const string AuthenticationType = "sextant";

    private const string SecretClaim = "sextant:secret";
    private const string AnonymousClaim = "sextant:anonymous";
    private const string ProjectClaim = "sextant:project";

    public static ClaimsPrincipal Anonymous(string? project) => Create([new Claim(AnonymousClaim, "true")], project);

    public static ClaimsPrincipal ForKey(string secret, string? project) => Create([new Claim(SecretClaim, secret)], project);

    private static ClaimsPrincipal Create(List<Claim> claims, string? project)
    {
        if (project is { Length: > 0 })
        {
            claims.Add(new Claim(ProjectClaim, project));
        }
        return new ClaimsPrincipal(new ClaimsIdentity(claims, AuthenticationType));
    }

    /// <summary>The key secret, null for the anonymous local user; false when nobody is signed in.</summary>
    public static bool TryRead(ClaimsPrincipal? principal, out string? secret, out string? project)
    {
        secret = principal?.FindFirst(SecretClaim)?.Value;
        project = principal?.FindFirst(ProjectClaim)?.Value;
        return secret is not null || principal?.FindFirst(AnonymousClaim) is not null;
    }

    /// <summary>Resolves the principal to a caller, in the chosen project when the caller may act there.</summary>
    public static async Task<Caller?> ResolveAsync(ClaimsPrincipal? principal, ProjectService projects, CancellationToken cancellationToken)
    {
        var caller = await ResolveOwnAsync(principal, projects, cancellationToken);
        var project = principal?.FindFirst(ProjectClaim)?.Value;
        if (caller is null)
        {
            return null;
        }
        if (project is { Length: > 0 } && project != caller.ProjectName && caller.IsServerAdmin)
        {
            try
            {
                var (id, name) = await projects.GetAsync(project, cancellationToken);
                caller = caller.InProject(id, name);
            }
            catch (SextantException)
            {
                // The chosen project is gone: stay in the caller's own.
            }
        }
        return caller;
    }

    /// <summary>The caller in the key's own project (before any project switch).</summary>
    public static async Task<Caller?> ResolveOwnAsync(ClaimsPrincipal? principal, ProjectService projects, CancellationToken cancellationToken)
    {
        if (!TryRead(principal, out var secret, out _))
        {
            return null;
        }
        return secret is null
            ? new Caller(1, ProjectService.DefaultProject, Role.Admin, Anonymous: true)
            : await projects.AuthenticateAsync(secret, cancellationToken);
    }
}
