namespace Sextant.Contracts;

/// <summary>An immutable, numbered version of a registered model (MLflow's ModelVersion; version is a string on the wire).</summary>
public sealed record ModelVersion(
    string Name,
    string Version,
    long CreationTimestamp,
    long LastUpdatedTimestamp,
    string CurrentStage,
    string Description,
    string Source,
    string? RunId,
    string Status,
    IReadOnlyList<KeyValue> Tags,
    string? RunLink,
    IReadOnlyList<string> Aliases,
    string UserId,
    string? Flavor = null,
    ModelSignature? Signature = null);

/// <summary>A model's inputs and outputs as its own files declare them (ONNX graph, ML.NET schema).</summary>
public sealed record ModelSignature(IReadOnlyList<TensorSpec> Inputs, IReadOnlyList<TensorSpec> Outputs);

/// <summary>One input or output: its name, element type, and shape (-1 where a dimension is dynamic; empty for scalars and columns).</summary>
public sealed record TensorSpec(string Name, string Type, IReadOnlyList<long> Shape);

/// <summary>An alias of a registered model and the version it points at.</summary>
public sealed record RegisteredModelAlias(string Alias, string Version);

/// <summary>A registered model with its tags, aliases and latest version.</summary>
public sealed record RegisteredModel(
    string Name,
    long CreationTimestamp,
    long LastUpdatedTimestamp,
    string Description,
    IReadOnlyList<ModelVersion> LatestVersions,
    IReadOnlyList<KeyValue> Tags,
    IReadOnlyList<RegisteredModelAlias> Aliases);

public sealed record CreateRegisteredModelRequest(string? Name, IReadOnlyList<KeyValue>? Tags = null, string? Description = null);

public sealed record RegisteredModelNameRequest(string? Name);

public sealed record RenameRegisteredModelRequest(string? Name, string? NewName);

public sealed record UpdateRegisteredModelRequest(string? Name, string? Description);

public sealed record GetLatestVersionsRequest(string? Name, IReadOnlyList<string>? Stages = null);

public sealed record SetRegisteredModelTagRequest(string? Name, string? Key, string? Value);

public sealed record DeleteRegisteredModelTagRequest(string? Name, string? Key);

public sealed record SetModelAliasRequest(string? Name, string? Alias, string? Version);

public sealed record DeleteModelAliasRequest(string? Name, string? Alias);

/// <param name="Flavor">Sextant's extension: onnx, mlnet or opaque. Declared, the files must be of that flavor; omitted, it is detected.</param>
public sealed record CreateModelVersionRequest(
    string? Name, string? Source, string? RunId = null, IReadOnlyList<KeyValue>? Tags = null, string? RunLink = null, string? Description = null, string? Flavor = null);

public sealed record ModelVersionRequest(string? Name, string? Version);

public sealed record UpdateModelVersionRequest(string? Name, string? Version, string? Description);

public sealed record SetModelVersionTagRequest(string? Name, string? Version, string? Key, string? Value);

public sealed record DeleteModelVersionTagRequest(string? Name, string? Version, string? Key);

/// <summary>A registry search: MLflow's filter language over name and tags (and run_id, source_path for versions).</summary>
public sealed record SearchRegistryRequest(string? Filter = null, long? MaxResults = null, IReadOnlyList<string>? OrderBy = null, string? PageToken = null);

public sealed record RegisteredModelResponse(RegisteredModel RegisteredModel);

public sealed record ModelVersionResponse(ModelVersion ModelVersion);

public sealed record ModelVersionsResponse(IReadOnlyList<ModelVersion> ModelVersions);

public sealed record SearchRegisteredModelsResponse(IReadOnlyList<RegisteredModel> RegisteredModels, string? NextPageToken);

public sealed record SearchModelVersionsResponse(IReadOnlyList<ModelVersion> ModelVersions, string? NextPageToken);

public sealed record ModelDownloadUriResponse(string ArtifactUri);
