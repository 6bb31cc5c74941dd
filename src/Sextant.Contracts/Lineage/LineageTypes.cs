namespace Sextant.Contracts;

/// <summary>A versioned thing in the lineage graph: a dataset version, a run, a model version.</summary>
/// <param name="Uri">Its URI: datasets:/name@version (a versioned dataset), datasets:/name/digest (a dataset MLflow logged), runs:/run_id or models:/name/version.</param>
/// <param name="Kind">dataset_version, dataset, run or model_version.</param>
public sealed record LineageNode(string Uri, string Kind, string Label);

/// <summary>A typed edge: input (dataset to run), produced (run to model version).</summary>
public sealed record LineageEdge(string From, string To, string Kind);

/// <param name="Truncated">True when the graph was cut at the server's node limit.</param>
public sealed record LineageResponse(string Root, IReadOnlyList<LineageNode> Nodes, IReadOnlyList<LineageEdge> Edges, bool Truncated = false);
