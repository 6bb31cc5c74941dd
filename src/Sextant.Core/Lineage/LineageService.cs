using System.Data.Common;
using System.Globalization;
using Dapper;
using Sextant.Contracts;
using Sextant.Core.Datasets;
using Sextant.Core.Projects;
using Sextant.Core.Registry;
using Sextant.Core.Storage;
using Sextant.Core.Tracking;

namespace Sextant.Core.Lineage;

/// <summary>
/// One lineage graph across the capabilities: dataset version -(input)-> run -(produced)-> model version. The edges
/// are read from the relations that record them (a run's dataset inputs, a model version's source run), so the
/// graph can never disagree with them. Evaluation adds: eval dataset version -(input)-> experiment, prompt version
/// -(evaluated)-> experiment. Later capabilities add their edges here (deployments, traces).
/// </summary>
public sealed class LineageService(SextantDatabase database, RegistryService registry, DatasetService datasets)
{
    public const int DefaultDepth = 3;
    public const int MaxDepth = 10;
    public const int MaxNodes = 2000;

    private const string Run = "run";
    private const string Model = "model_version";
    private const string Dataset = "dataset";
    private const string DatasetVersion = "dataset_version";
    private const string PromptVersion = "prompt_version";
    private const string EvalDatasetVersion = "eval_dataset_version";
    private const string EvalExperiment = "eval_experiment";

    /// <summary>The graph around <paramref name="uri"/>: upstream (where it came from), downstream (what came from it) or both.</summary>
    public async Task<LineageResponse> GetAsync(Caller caller, string? uri, string? direction, long? depth, CancellationToken cancellationToken = default)
    {
        var (up, down) = (direction ?? "both").ToLowerInvariant() switch
        {
            "up" => (true, false),
            "down" => (false, true),
            "both" => (true, true),
            _ => throw SextantException.Invalid("direction", $"'direction' must be up, down or both; got '{direction}'."),
        };
        var levels = depth ?? DefaultDepth;
        if (levels is < 1 or > MaxDepth)
        {
            throw SextantException.Invalid("depth", $"'depth' must be between 1 and {MaxDepth}; got {levels}.");
        }
        var root = await RootAsync(caller, uri, cancellationToken);
        await using var connection = await database.OpenAsync(cancellationToken);
        var nodes = new Dictionary<string, LineageNode> { [root.Uri] = root };
        var edges = new HashSet<LineageEdge>();
        // "both" is what came before the root plus what came after it, each walked in its own direction: not
        // everything reachable, which through a shared dataset would be every run that ever read it.
        var truncated = (up && await WalkAsync(connection, caller, root, up: true, levels, nodes, edges))
            | (down && await WalkAsync(connection, caller, root, up: false, levels, nodes, edges));
        return new LineageResponse(root.Uri, [.. nodes.Values], [.. edges], truncated);
    }

    /// <returns>Whether the walk stopped at <see cref="MaxNodes"/>.</returns>
    private static async Task<bool> WalkAsync(DbConnection connection, Caller caller, LineageNode root, bool up, long levels,
        Dictionary<string, LineageNode> nodes, HashSet<LineageEdge> edges)
    {
        var frontier = new List<LineageNode> { root };
        for (var level = 0; level < levels && frontier.Count > 0; level++)
        {
            var next = new List<LineageNode>();
            foreach (var node in frontier)
            {
                foreach (var (neighbour, edge) in await NeighboursAsync(connection, caller, node, up, !up))
                {
                    if (!nodes.ContainsKey(neighbour.Uri) && nodes.Count >= MaxNodes)
                    {
                        return true;
                    }
                    edges.Add(edge);
                    if (nodes.TryAdd(neighbour.Uri, neighbour))
                    {
                        next.Add(neighbour);
                    }
                }
            }
            frontier = next;
        }
        return false;
    }

    private async Task<LineageNode> RootAsync(Caller caller, string? uri, CancellationToken cancellationToken)
    {
        if (string.IsNullOrEmpty(uri))
        {
            throw SextantException.Missing("uri");
        }
        if (uri.StartsWith("models:/", StringComparison.Ordinal))
        {
            var version = await registry.ResolveAsync(caller, uri, cancellationToken);
            return ModelNode(version.Name, version.Version);
        }
        await using var connection = await database.OpenAsync(cancellationToken);
        if (uri.StartsWith("runs:/", StringComparison.Ordinal))
        {
            // runs:/<id> or runs:/<id>/<artifact path>: the run is the node.
            var runId = TrackingValidation.RunId(uri["runs:/".Length..].Split('/')[0]);
            var name = await connection.QuerySingleOrDefaultAsync<string?>("SELECT name FROM runs WHERE run_uuid = @runId AND project_id = @project",
                new { runId, project = caller.ProjectId });
            return name is null ? throw SextantException.NotFound($"Run with id={runId} not found.") : RunNode(runId, name);
        }
        if (uri.StartsWith("datasets:/", StringComparison.Ordinal) && !uri["datasets:/".Length..].Contains('/', StringComparison.Ordinal))
        {
            // datasets:/name@3 (or datasets:/name, the latest): a version of a versioned dataset.
            var version = await datasets.ResolveAsync(caller, uri, cancellationToken: cancellationToken);
            return DatasetVersionNode(version.Name, version.Version);
        }
        if (uri.StartsWith("datasets:/", StringComparison.Ordinal))
        {
            var rest = uri["datasets:/".Length..];
            var slash = rest.LastIndexOf('/');
            if (slash <= 0 || slash == rest.Length - 1)
            {
                throw SextantException.Invalid("uri", $"A dataset URI looks like datasets:/<name>@<version> or datasets:/<name>/<digest>; got '{uri}'.");
            }
            var (name, digest) = (rest[..slash], rest[(slash + 1)..]);
            var found = await connection.ExecuteScalarAsync<long?>(
                "SELECT d.id FROM datasets d JOIN experiments e ON e.id = d.experiment_id WHERE e.project_id = @project AND d.name = @name AND d.digest = @digest LIMIT 1",
                new { project = caller.ProjectId, name, digest });
            return found is null ? throw SextantException.NotFound($"No dataset '{name}' with digest {digest}.") : DatasetNode(name, digest);
        }
        if (uri.StartsWith("prompts:/", StringComparison.Ordinal) && SplitVersioned(uri, "prompts:/") is { } prompt)
        {
            var found = await connection.ExecuteScalarAsync<long?>(
                "SELECT p.id FROM prompts p JOIN prompt_versions v ON v.prompt_id = p.id WHERE p.project_id = @project AND p.name = @Name AND v.version = @Version",
                new { project = caller.ProjectId, prompt.Name, prompt.Version });
            return found is null ? throw SextantException.NotFound($"No prompt '{prompt.Name}' version {prompt.Version}.") : PromptVersionNode(prompt.Name, prompt.Version);
        }
        if (uri.StartsWith("eval-datasets:/", StringComparison.Ordinal) && SplitVersioned(uri, "eval-datasets:/") is { } evalDataset)
        {
            var found = await connection.ExecuteScalarAsync<long?>(
                "SELECT d.id FROM eval_datasets d JOIN eval_dataset_versions v ON v.dataset_id = d.id WHERE d.project_id = @project AND d.name = @Name AND v.version = @Version",
                new { project = caller.ProjectId, evalDataset.Name, evalDataset.Version });
            return found is null ? throw SextantException.NotFound($"No eval dataset '{evalDataset.Name}' version {evalDataset.Version}.") : EvalDatasetNode(evalDataset.Name, evalDataset.Version);
        }
        if (uri.StartsWith("experiments:/", StringComparison.Ordinal))
        {
            var id = uri["experiments:/".Length..];
            var name = await connection.QuerySingleOrDefaultAsync<string?>("SELECT name FROM eval_experiments WHERE project_id = @project AND experiment_id = @id",
                new { project = caller.ProjectId, id });
            return name is null ? throw SextantException.NotFound($"No experiment '{id}'.") : ExperimentNode(id, name);
        }
        throw SextantException.Invalid("uri", $"Lineage starts from a datasets:/, runs:/, models:/, prompts:/NAME@VERSION, eval-datasets:/NAME@VERSION or experiments:/ID URI; got '{uri}'.");
    }

    private static async Task<List<(LineageNode Node, LineageEdge Edge)>> NeighboursAsync(DbConnection connection, Caller caller, LineageNode node, bool up, bool down)
    {
        var result = new List<(LineageNode, LineageEdge)>();
        switch (node.Kind)
        {
            case Dataset when down:
            {
                var (name, digest) = SplitDataset(node.Uri);
                var runs = await connection.QueryAsync<(string Uuid, string Name)>(
                    """
                    SELECT DISTINCT r.run_uuid, r.name FROM datasets d JOIN run_inputs ri ON ri.dataset_id = d.id JOIN runs r ON r.id = ri.run_id
                    WHERE r.project_id = @project AND d.name = @name AND d.digest = @digest ORDER BY r.run_uuid
                    """,
                    new { project = caller.ProjectId, name, digest });
                result.AddRange(runs.Select(r => (RunNode(r.Uuid, r.Name), new LineageEdge(node.Uri, $"runs:/{r.Uuid}", "input"))));
                break;
            }
            case DatasetVersion when down:
            {
                var runs = await connection.QueryAsync<(string Uuid, string Name)>(
                    """
                    SELECT DISTINCT r.run_uuid, r.name FROM datasets d JOIN run_inputs ri ON ri.dataset_id = d.id JOIN runs r ON r.id = ri.run_id
                    WHERE r.project_id = @project AND d.source_type = 'sextant' AND d.source = @uri ORDER BY r.run_uuid
                    """,
                    new { project = caller.ProjectId, uri = node.Uri });
                result.AddRange(runs.Select(r => (RunNode(r.Uuid, r.Name), new LineageEdge(node.Uri, $"runs:/{r.Uuid}", "input"))));
                break;
            }
            case Run:
            {
                var runId = node.Uri["runs:/".Length..];
                if (up)
                {
                    var inputs = await connection.QueryAsync<(string Name, string Digest, string SourceType, string Source)>(
                        """
                        SELECT DISTINCT d.name, d.digest, d.source_type, d.source FROM runs r JOIN run_inputs ri ON ri.run_id = r.id JOIN datasets d ON d.id = ri.dataset_id
                        WHERE r.run_uuid = @runId AND r.project_id = @project ORDER BY d.name, d.digest
                        """,
                        new { runId, project = caller.ProjectId });
                    result.AddRange(inputs.Select(d =>
                    {
                        // Inputs recorded against a dataset version (source type sextant) are that version's node.
                        var at = d.Source.LastIndexOf('@');
                        var input = d.SourceType == "sextant" && d.Source.StartsWith("datasets:/", StringComparison.Ordinal) && at > 0
                            && long.TryParse(d.Source[(at + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out var number)
                            ? DatasetVersionNode(d.Source["datasets:/".Length..at], number)
                            : DatasetNode(d.Name, d.Digest);
                        return (input, new LineageEdge(input.Uri, node.Uri, "input"));
                    }));
                }
                if (down)
                {
                    var versions = await connection.QueryAsync<(string Name, long Version)>(
                        """
                        SELECT m.name, v.version FROM model_versions v JOIN registered_models m ON m.id = v.model_id
                        WHERE v.run_id = @runId AND m.project_id = @project ORDER BY m.name, v.version
                        """,
                        new { runId, project = caller.ProjectId });
                    result.AddRange(versions.Select(v =>
                    {
                        var model = ModelNode(v.Name, v.Version.ToString(CultureInfo.InvariantCulture));
                        return (model, new LineageEdge(node.Uri, model.Uri, "produced"));
                    }));
                }
                break;
            }
            case PromptVersion when down:
            {
                var experiments = await connection.QueryAsync<(string Id, string Name)>(
                    "SELECT experiment_id, name FROM eval_experiments WHERE project_id = @project AND prompt = @prompt ORDER BY id",
                    new { project = caller.ProjectId, prompt = node.Uri["prompts:/".Length..] });
                result.AddRange(experiments.Select(e => (ExperimentNode(e.Id, e.Name), new LineageEdge(node.Uri, $"experiments:/{e.Id}", "evaluated"))));
                break;
            }
            case EvalDatasetVersion when down:
            {
                var (name, version) = SplitVersioned(node.Uri, "eval-datasets:/")!.Value;
                var experiments = await connection.QueryAsync<(string Id, string Name)>(
                    """
                    SELECT e.experiment_id, e.name FROM eval_experiments e JOIN eval_datasets d ON d.id = e.dataset_id
                    WHERE d.project_id = @project AND d.name = @name AND e.dataset_version = @version ORDER BY e.id
                    """,
                    new { project = caller.ProjectId, name, version });
                result.AddRange(experiments.Select(e => (ExperimentNode(e.Id, e.Name), new LineageEdge(node.Uri, $"experiments:/{e.Id}", "input"))));
                break;
            }
            case EvalExperiment when up:
            {
                var experiment = await connection.QuerySingleOrDefaultAsync<(string Dataset, long Version, string? Prompt)?>(
                    "SELECT d.name, e.dataset_version, e.prompt FROM eval_experiments e JOIN eval_datasets d ON d.id = e.dataset_id WHERE e.project_id = @project AND e.experiment_id = @id",
                    new { project = caller.ProjectId, id = node.Uri["experiments:/".Length..] });
                if (experiment is { } e)
                {
                    var input = EvalDatasetNode(e.Dataset, e.Version);
                    result.Add((input, new LineageEdge(input.Uri, node.Uri, "input")));
                    if (e.Prompt is { } prompt && SplitVersioned("prompts:/" + prompt, "prompts:/") is { } p)
                    {
                        var promptNode = PromptVersionNode(p.Name, p.Version);
                        result.Add((promptNode, new LineageEdge(promptNode.Uri, node.Uri, "evaluated")));
                    }
                }
                break;
            }
            case Model when up:
            {
                var (name, version) = SplitModel(node.Uri);
                var run = await connection.QuerySingleOrDefaultAsync<(string Uuid, string Name)?>(
                    """
                    SELECT r.run_uuid, r.name FROM model_versions v JOIN registered_models m ON m.id = v.model_id JOIN runs r ON r.run_uuid = v.run_id
                    WHERE m.project_id = @project AND r.project_id = @project AND m.name = @name AND v.version = @version
                    """,
                    new { project = caller.ProjectId, name, version });
                if (run is { } r)
                {
                    result.Add((RunNode(r.Uuid, r.Name), new LineageEdge($"runs:/{r.Uuid}", node.Uri, "produced")));
                }
                break;
            }
        }
        return result;
    }

    private static LineageNode RunNode(string runId, string name) => new($"runs:/{runId}", Run, $"run {name}");

    private static LineageNode ModelNode(string name, string version) => new($"models:/{name}/{version}", Model, $"model {name} version {version}");

    private static LineageNode DatasetVersionNode(string name, long version) =>
        new($"datasets:/{name}@{version.ToString(CultureInfo.InvariantCulture)}", DatasetVersion, $"dataset {name} version {version.ToString(CultureInfo.InvariantCulture)}");

    private static LineageNode PromptVersionNode(string name, long version) =>
        new($"prompts:/{name}@{version.ToString(CultureInfo.InvariantCulture)}", PromptVersion, $"prompt {name} version {version.ToString(CultureInfo.InvariantCulture)}");

    private static LineageNode EvalDatasetNode(string name, long version) =>
        new($"eval-datasets:/{name}@{version.ToString(CultureInfo.InvariantCulture)}", EvalDatasetVersion, $"eval dataset {name} version {version.ToString(CultureInfo.InvariantCulture)}");

    private static LineageNode ExperimentNode(string id, string name) => new($"experiments:/{id}", EvalExperiment, $"experiment {name}");

    /// <summary>NAME@VERSION after a scheme, or null when it is not that shape.</summary>
    private static (string Name, long Version)? SplitVersioned(string uri, string scheme)
    {
        var rest = uri[scheme.Length..];
        var at = rest.LastIndexOf('@');
        return at > 0 && long.TryParse(rest[(at + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out var version) ? (rest[..at], version) : null;
    }

    private static LineageNode DatasetNode(string name, string digest) => new($"datasets:/{name}/{digest}", Dataset, $"dataset {name} ({digest})");

    private static (string Name, string Digest) SplitDataset(string uri)
    {
        var rest = uri["datasets:/".Length..];
        var slash = rest.LastIndexOf('/');
        return (rest[..slash], rest[(slash + 1)..]);
    }

    private static (string Name, long Version) SplitModel(string uri)
    {
        var rest = uri["models:/".Length..];
        var slash = rest.LastIndexOf('/');
        return (rest[..slash], long.Parse(rest[(slash + 1)..], CultureInfo.InvariantCulture));
    }
}
