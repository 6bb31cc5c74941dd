namespace Sextant.Contracts;

public sealed record ExperimentResponse(Experiment Experiment);

public sealed record CreateExperimentResponse(string ExperimentId);

public sealed record SearchExperimentsResponse(IReadOnlyList<Experiment> Experiments, string? NextPageToken);

public sealed record RunResponse(Run Run);

public sealed record UpdateRunResponse(RunInfo RunInfo);

public sealed record SearchRunsResponse(IReadOnlyList<Run> Runs, string? NextPageToken);

public sealed record MetricHistoryResponse(IReadOnlyList<Metric> Metrics, string? NextPageToken);

public sealed record ListArtifactsResponse(string? RootUri, IReadOnlyList<ArtifactFile> Files, string? NextPageToken = null);

/// <summary>The error body of every 4xx/5xx: MLflow's shape plus the field at fault when known.</summary>
public sealed record ErrorResponse(string ErrorCode, string Message, string? Field = null);

/// <summary>The empty success body <c>{}</c>.</summary>
public sealed record EmptyResponse;
