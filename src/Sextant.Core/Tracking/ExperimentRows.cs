using System.Data.Common;
using Dapper;

namespace Sextant.Core.Tracking;

/// <summary>Inserting an experiment row: shared by experiment creation and by each new project's Default experiment.</summary>
internal static class ExperimentRows
{
    /// <summary>
    /// Inserts an active experiment and returns its id, or null when the project already has one of that name.
    /// Its artifact location is <c>mlflow-artifacts:/&lt;id&gt;</c> unless one is given; the id is only known after the insert.
    /// </summary>
    public static async Task<long?> InsertAsync(DbConnection connection, DbTransaction transaction, long projectId, string name, string? artifactLocation, long now)
    {
        var id = await connection.QuerySingleOrDefaultAsync<long?>(
            """
            INSERT INTO experiments (project_id, name, artifact_location, lifecycle_stage, creation_time, last_update_time)
            VALUES (@projectId, @name, '', 'active', @now, @now) ON CONFLICT (project_id, name) DO NOTHING RETURNING id
            """,
            new { projectId, name, now }, transaction);
        if (id is not null)
        {
            await connection.ExecuteAsync("UPDATE experiments SET artifact_location = @location WHERE id = @id",
                new { location = string.IsNullOrEmpty(artifactLocation) ? TrackingService.ExperimentArtifactLocation(id.Value) : artifactLocation, id }, transaction);
        }
        return id;
    }
}
