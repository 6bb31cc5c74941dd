namespace Sextant.Contracts;

/// <summary>A project: the unit of isolation for everything Sextant stores.</summary>
public sealed record Project(string Name, long CreatedAt);

public sealed record CreateProjectRequest(string? Name);

public sealed record ProjectsResponse(IReadOnlyList<Project> Projects);

/// <summary>An API key as listed; the secret itself is only ever shown at creation.</summary>
public sealed record ApiKey(string KeyId, string Name, string Project, string Role, string Prefix, long CreatedAt, long? RevokedAt);

public sealed record CreateKeyRequest(string? Name, string? Role, string? Project = null);

public sealed record CreateKeyResponse(ApiKey Key, string Secret);

public sealed record KeysResponse(IReadOnlyList<ApiKey> Keys);

/// <summary>Who the caller is, as the server sees it.</summary>
public sealed record WhoAmIResponse(string Project, string Role, bool Anonymous);
