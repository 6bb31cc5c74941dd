using Sextant.Contracts;

namespace Sextant.Client;

// Identity, projects and API keys: /api/v1/whoami, /api/v1/projects, /api/v1/keys.
public sealed partial class SextantClient
{
    /// <summary>The project and role the server gives this client's key.</summary>
    public Task<WhoAmIResponse> WhoAmIAsync(CancellationToken cancellationToken = default) =>
        GetJsonAsync("api/v1/whoami", Wire.WhoAmIResponse, cancellationToken);

    /// <summary>The projects this key can see (all of them for a server admin).</summary>
    public async Task<IReadOnlyList<Project>> ListProjectsAsync(CancellationToken cancellationToken = default) =>
        (await GetJsonAsync("api/v1/projects", Wire.ProjectsResponse, cancellationToken).ConfigureAwait(false)).Projects;

    /// <summary>Creates a project (server admins only).</summary>
    public Task<Project> CreateProjectAsync(string name, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        return PostJsonAsync("api/v1/projects", new CreateProjectRequest(name), Wire.CreateProjectRequest, Wire.Project, cancellationToken);
    }

    /// <summary>Creates an API key. The secret is in this response only: the server keeps just a hash.</summary>
    /// <param name="role">viewer, editor or admin.</param>
    /// <param name="project">Another project than the caller's (server admins only).</param>
    public Task<CreateKeyResponse> CreateKeyAsync(string name, string role, string? project = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentException.ThrowIfNullOrEmpty(role);
        return PostJsonAsync("api/v1/keys", new CreateKeyRequest(name, role, project), Wire.CreateKeyRequest, Wire.CreateKeyResponse, cancellationToken);
    }

    /// <summary>The keys of the caller's project, revoked ones included.</summary>
    public async Task<IReadOnlyList<ApiKey>> ListKeysAsync(CancellationToken cancellationToken = default) =>
        (await GetJsonAsync("api/v1/keys", Wire.KeysResponse, cancellationToken).ConfigureAwait(false)).Keys;

    /// <summary>Revokes a key: requests with its secret fail with 401 from now on.</summary>
    public Task RevokeKeyAsync(string keyId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(keyId);
        return SendJsonAsync(HttpMethod.Delete, $"api/v1/keys/{Segment(keyId)}", null, null, Wire.EmptyResponse, cancellationToken);
    }
}
