using Microsoft.AspNetCore.Components.Authorization;
using Sextant.Core.Projects;

namespace Sextant.Web.Auth;

/// <summary>The person using one page or circuit; resolved again at each use so that revoking a key takes effect at once.</summary>
public sealed class UiSession(AuthenticationStateProvider authentication, ProjectService projects)
{
    /// <summary>The caller, or null when nobody is signed in or the key no longer works.</summary>
    public async Task<Caller?> TryCallerAsync(CancellationToken cancellationToken = default)
    {
        var state = await authentication.GetAuthenticationStateAsync();
        return await UiPrincipal.ResolveAsync(state.User, projects, cancellationToken);
    }

    /// <summary>Whether the signed-in key is a server admin, who may switch between projects.</summary>
    public async Task<bool> IsServerAdminAsync(CancellationToken cancellationToken = default)
    {
        var state = await authentication.GetAuthenticationStateAsync();
        return (await UiPrincipal.ResolveOwnAsync(state.User, projects, cancellationToken))?.IsServerAdmin == true;
    }

    /// <summary>The caller; throws <see cref="UiSignInRequiredException"/> when there is none.</summary>
    public async Task<Caller> CallerAsync(CancellationToken cancellationToken = default) =>
        await TryCallerAsync(cancellationToken) ?? throw new UiSignInRequiredException();
}

/// <summary>The page needs a signed-in user and there is none (no cookie, or a revoked or unknown key).</summary>
public sealed class UiSignInRequiredException() : Exception("Sign in with an API key to continue.");
