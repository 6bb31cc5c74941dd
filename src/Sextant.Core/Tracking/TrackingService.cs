using Sextant.Core.Storage;

namespace Sextant.Core.Tracking;

/// <summary>
/// Experiments, runs and everything logged to them. Every method takes the caller's project and never
/// reads or writes outside it; an id of another project is "not found".
/// </summary>
public sealed partial class TrackingService(SextantDatabase database, TrackingWriter writer, TrackingOptions options)
{
    internal const string Active = "active";
    internal const string Deleted = "deleted";
    internal const string RunNameTag = "mlflow.runName";

    private readonly System.Collections.Concurrent.ConcurrentDictionary<long, long> _defaultExperiments = new();

    public TrackingOptions Options => options;

    internal static string ExperimentArtifactLocation(long experimentId) => $"mlflow-artifacts:/{experimentId}";

    /// <summary>A run's artifact folder in the artifact store: "experiment/run/artifacts" (MLflow's proxy layout).</summary>
    internal static string RunArtifactRoot(long experimentId, string runUuid) => $"{experimentId}/{runUuid}/artifacts";

    internal static string RunArtifactUri(long experimentId, string runUuid) => "mlflow-artifacts:/" + RunArtifactRoot(experimentId, runUuid);
}
