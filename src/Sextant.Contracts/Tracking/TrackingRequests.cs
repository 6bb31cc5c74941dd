namespace Sextant.Contracts;

// Request bodies. Fields are nullable so a missing required field gets a specific error
// instead of a default value.

public sealed record CreateExperimentRequest(string? Name, string? ArtifactLocation = null, IReadOnlyList<KeyValue>? Tags = null);

public sealed record ExperimentIdRequest(string? ExperimentId);

public sealed record UpdateExperimentRequest(string? ExperimentId, string? NewName);

public sealed record SetExperimentTagRequest(string? ExperimentId, string? Key, string? Value);

public sealed record SearchExperimentsRequest(
    long? MaxResults = null,
    string? PageToken = null,
    string? Filter = null,
    IReadOnlyList<string>? OrderBy = null,
    string? ViewType = null);

public sealed record CreateRunRequest(
    string? ExperimentId,
    string? UserId = null,
    string? RunName = null,
    long? StartTime = null,
    IReadOnlyList<KeyValue>? Tags = null);

public sealed record UpdateRunRequest(string? RunId = null, string? RunUuid = null, string? Status = null, long? EndTime = null, string? RunName = null);

public sealed record RunIdRequest(string? RunId = null, string? RunUuid = null);

public sealed record LogMetricRequest(string? RunId = null, string? RunUuid = null, string? Key = null, double? Value = null, long? Timestamp = null, long? Step = null);

public sealed record LogParamRequest(string? RunId = null, string? RunUuid = null, string? Key = null, string? Value = null);

public sealed record SetTagRequest(string? RunId = null, string? RunUuid = null, string? Key = null, string? Value = null);

public sealed record DeleteTagRequest(string? RunId = null, string? Key = null);

/// <summary>A metric point in a batch; fields nullable for validation.</summary>
public sealed record MetricInput(string? Key, double? Value, long? Timestamp, long? Step);

/// <summary>A param or tag in a batch.</summary>
public sealed record KeyValueInput(string? Key, string? Value);

public sealed record LogBatchRequest(
    string? RunId = null,
    IReadOnlyList<MetricInput>? Metrics = null,
    IReadOnlyList<KeyValueInput>? Params = null,
    IReadOnlyList<KeyValueInput>? Tags = null);

public sealed record LogInputsRequest(string? RunId = null, IReadOnlyList<DatasetInput>? Datasets = null);

public sealed record SearchRunsRequest(
    IReadOnlyList<string>? ExperimentIds = null,
    string? Filter = null,
    string? RunViewType = null,
    long? MaxResults = null,
    IReadOnlyList<string>? OrderBy = null,
    string? PageToken = null);
