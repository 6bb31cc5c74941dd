using Sextant.Contracts;
namespace Sextant.Core.Projects;

/// <summary>What a caller may do inside its project. Higher includes lower.</summary>
public enum Role
{
    Viewer = 1,
    Editor = 2,
    Admin = 3,
}

/// <summary>
/// The authenticated principal of a request: one project and a role in it. A server admin (an admin of
/// the <c>default</c> project, or the anonymous local user) may also manage other projects.
/// </summary>
public sealed record Caller(long ProjectId, string ProjectName, Role Role, bool Anonymous, string? KeyId = null)
{
    public bool IsServerAdmin => Role == Role.Admin && ProjectName == ProjectService.DefaultProject;

    public void Require(Role role)
    {
        if (Role < role)
        {
            throw new SextantException(
                ErrorCodes.PermissionDenied,
                $"This key has role '{Role.ToString().ToLowerInvariant()}' in project '{ProjectName}'; the operation needs '{role.ToString().ToLowerInvariant()}'.",
                403);
        }
    }

    public Caller InProject(long projectId, string projectName) => this with { ProjectId = projectId, ProjectName = projectName };
}
