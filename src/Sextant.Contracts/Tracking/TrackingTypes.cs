namespace Sextant.Contracts;

/// <summary>A key/value pair: experiment and run tags, params and dataset input tags.</summary>
public sealed record KeyValue(string Key, string Value);

/// <summary>An experiment groups runs; ids are strings as in MLflow.</summary>
public sealed record Experiment(
    string ExperimentId,
    string Name,
    string ArtifactLocation,
    string LifecycleStage,
    long CreationTime,
    long LastUpdateTime,
    IReadOnlyList<KeyValue> Tags);

/// <summary>One metric point. Non-finite values travel as "NaN", "Infinity", "-Infinity".</summary>
public sealed record Metric(string Key, double Value, long Timestamp, long Step);

/// <summary>The identity and state of a run.</summary>
public sealed record RunInfo(
    string RunId,
    string RunUuid,
    string RunName,
    string ExperimentId,
    string UserId,
    string Status,
    long StartTime,
    long? EndTime,
    string ArtifactUri,
    string LifecycleStage);

/// <summary>What was logged to a run: the last value of each metric, params and tags.</summary>
public sealed record RunData(IReadOnlyList<Metric> Metrics, IReadOnlyList<KeyValue> Params, IReadOnlyList<KeyValue> Tags);

/// <summary>A dataset as referenced by a run input.</summary>
public sealed record Dataset(string Name, string Digest, string SourceType, string Source, string? Schema = null, string? Profile = null);

/// <summary>A dataset used by a run, with context tags (e.g. mlflow.data.context = training).</summary>
public sealed record DatasetInput(IReadOnlyList<KeyValue>? Tags, Dataset Dataset);

/// <summary>The inputs of a run.</summary>
public sealed record RunInputs(IReadOnlyList<DatasetInput> DatasetInputs);

/// <summary>A run with its data and inputs.</summary>
public sealed record Run(RunInfo Info, RunData Data, RunInputs Inputs);

/// <summary>One file or folder in an artifact listing.</summary>
public sealed record ArtifactFile(string Path, bool IsDir, long? FileSize);
