using System.Text.Json;

namespace Sextant.Contracts;

/// <summary>
/// One item of an eval dataset: its input (variables as an object, or chat messages as an array), the expected
/// output, free metadata (a RAG item's retrieved context may sit in metadata.context), and the trace it came from.
/// Id: a stable key chosen by the user (or given); positions are what results refer to.
/// </summary>
public sealed record EvalItem(
    string? Id = null,
    JsonElement? Input = null,
    JsonElement? Expected = null,
    IReadOnlyDictionary<string, JsonElement>? Metadata = null,
    string? TraceId = null);

/// <summary>A new version of a dataset from items: appended to the latest version's items (default) or replacing them.</summary>
public sealed record AddEvalItemsRequest(IReadOnlyList<EvalItem?>? Items, string? Mode = null, string? Message = null, string? Description = null);

/// <summary>A new version of a dataset from traces: each trace's first generation becomes an item (its input messages, its output as expected).</summary>
public sealed record EvalItemsFromTracesRequest(IReadOnlyList<string>? TraceIds, string? Mode = null, string? Message = null);

public sealed record EvalDataset(string Name, string? Description, int LatestVersion, int ItemCount, long CreatedTime, long UpdatedTime);

public sealed record EvalDatasetVersion(string Name, int Version, int ItemCount, int Added, string? Message, string? Author, long CreatedTime);

public sealed record EvalDatasetsResponse(IReadOnlyList<EvalDataset> Datasets, string? NextPageToken = null);

public sealed record EvalDatasetVersionsResponse(IReadOnlyList<EvalDatasetVersion> Versions);

/// <summary>Items of one dataset version in order; Index is the item's position, which experiment results name.</summary>
public sealed record EvalItemsResponse(string Name, int Version, IReadOnlyList<IndexedEvalItem> Items, string? NextPageToken = null);

public sealed record IndexedEvalItem(int Index, EvalItem Item);

/// <summary>
/// What an experiment calls for each item. Type prompt: a prompt version or label (Prompt = "name@label" or
/// "name@3") rendered with the item's input variables and sent through the gateway, to its configured model or to
/// Model when given. Type model: the item's input messages sent to Model through the gateway. Type http: the item
/// POSTed as JSON to Url; the answer's "output" (or the whole body) is the output. Type sdk: a function in the
/// caller's process, which posts its outputs (Sextant.Client's RunExperimentAsync). PromptVersion: the version the
/// prompt's label pointed at when the experiment was made (set by the server).
/// </summary>
public sealed record ExperimentTarget(string? Type, string? Prompt = null, string? Model = null, string? Url = null, IReadOnlyDictionary<string, string>? Headers = null,
    int? PromptVersion = null);

/// <summary>
/// An experiment: a dataset version against a target, scored by evaluators (each a JSON object with a type; see
/// docs). Each item runs Repeat times, at most Concurrency at once.
/// </summary>
public sealed record CreateEvalExperimentRequest(
    string? Name,
    string? Dataset,
    int? DatasetVersion = null,
    ExperimentTarget? Target = null,
    IReadOnlyList<JsonElement>? Evaluators = null,
    int? Concurrency = null,
    int? Repeat = null,
    IReadOnlyDictionary<string, string>? Metadata = null);

/// <summary>One evaluator's verdict: pass or fail against its threshold, or error when the grader itself could not judge; with its reason.</summary>
public sealed record EvalScore(string Name, string Status, double? Score, string Reason)
{
    public bool Passed => Status == EvalStatus.Pass;
}

public static class EvalStatus
{
    public const string Pass = "pass";
    public const string Fail = "fail";
    public const string Error = "error";
}

public sealed record EvalExperiment(
    string Id,
    string Name,
    string Dataset,
    int DatasetVersion,
    ExperimentTarget Target,
    IReadOnlyList<JsonElement> Evaluators,
    int Concurrency,
    int Repeat,
    string Status,
    string? Error,
    IReadOnlyDictionary<string, string>? Metadata,
    string? CreatedBy,
    long CreatedTime,
    long? FinishedTime,
    ExperimentSummary Summary);

/// <summary>
/// An experiment's aggregates. A result passes when every evaluator passes; fails when one fails; is an error when
/// none failed but one could not judge (or the target failed). Pass rate is over all results; flaky items passed in
/// some repetitions and not in others.
/// </summary>
public sealed record ExperimentSummary(
    int Items,
    int Expected,
    int Results,
    int Passed,
    int Failed,
    int Errors,
    double PassRate,
    double ErrorRate,
    int FlakyItems,
    double? HallucinationRate,
    double? LatencyP50Ms,
    double? LatencyP95Ms,
    double? Cost,
    long InputTokens,
    long OutputTokens,
    IReadOnlyList<EvaluatorSummary> Evaluators);

public sealed record EvaluatorSummary(string Name, int Passed, int Failed, int Errors, double PassRate, double? MeanScore);

public sealed record EvalExperimentsResponse(IReadOnlyList<EvalExperiment> Experiments, string? NextPageToken = null);

/// <summary>One run of one item: the target's output (or its error), what the call took, and every evaluator's score.</summary>
public sealed record ExperimentResult(
    int Item,
    string? ItemId,
    int Repetition,
    string Status,
    string? Output,
    string? Error,
    double? LatencyMs,
    long? InputTokens,
    long? OutputTokens,
    double? Cost,
    string? TraceId,
    IReadOnlyList<EvalScore> Scores,
    JsonElement? Input = null,
    JsonElement? Expected = null);

public sealed record ExperimentResultsResponse(IReadOnlyList<ExperimentResult> Results, string? NextPageToken = null);

/// <summary>Per item, over its repetitions: how often it passed, and whether it is flaky.</summary>
public sealed record ExperimentItemSummary(int Item, string? ItemId, int Runs, int Passed, int Errors, double PassRate, bool Flaky);

/// <summary>Outputs of an sdk experiment's items, posted by the process that ran them; the server scores them. Scores: extra ones the caller computed (custom evaluators).</summary>
public sealed record PostExperimentResultsRequest(IReadOnlyList<ExperimentOutput?>? Results, bool Complete = false);

public sealed record ExperimentOutput(int? Item, int Repetition = 0, string? Output = null, string? Error = null, double? LatencyMs = null,
    long? InputTokens = null, long? OutputTokens = null, double? Cost = null, string? TraceId = null, IReadOnlyList<EvalScore>? Scores = null);

public sealed record PostExperimentResultsResponse(IReadOnlyList<ExperimentResult> Results, ExperimentSummary Summary);

/// <summary>
/// Two experiments over the same dataset. Metrics: candidate minus baseline with a 95% confidence interval from a
/// paired bootstrap over the items both ran. Items: regressions first, then improvements, then the rest.
/// </summary>
public sealed record ExperimentComparison(string Baseline, string Candidate, int PairedItems, IReadOnlyList<MetricDelta> Metrics, IReadOnlyList<ItemComparison> Items);

public sealed record MetricDelta(string Name, double Baseline, double Candidate, double Delta, double Low, double High, bool Significant);

public sealed record ItemComparison(int Item, string? ItemId, string Change, double BaselinePassRate, double CandidatePassRate, string? BaselineOutput, string? CandidateOutput,
    IReadOnlyDictionary<string, double?> ScoreDeltas);

/// <summary>
/// A score on a trace (or one span of it): human feedback or an automatic judgement. Value: a number, true/false
/// (thumbs), or a string (a category). Source: human (default for the API), online (a rule), or api.
/// </summary>
public sealed record CreateScoreRequest(string? TraceId, string? Name, JsonElement? Value, string? SpanId = null, string? Comment = null, string? Source = null);

/// <summary>A score; Prompt (name@version) and Arm are those of the scored generation, so A/B arms compare.</summary>
public sealed record TraceScore(long Id, string TraceId, string? SpanId, string Name, string Source, string DataType, double? Value, string? StringValue,
    string? Comment, string? Author, long CreatedTime, string? Status = null, string? Prompt = null, string? Arm = null);

public sealed record TraceScoresResponse(IReadOnlyList<TraceScore> Scores, string? NextPageToken = null);

/// <summary>A score's mean and pass rate per day, or (by=arm) per prompt version and A/B arm over the period.</summary>
public sealed record ScoreTrendPoint(string Name, string Day, int Count, double? Mean, double? PassRate, string? Prompt = null, string? Arm = null);

public sealed record ScoreTrendsResponse(IReadOnlyList<ScoreTrendPoint> Points);

/// <summary>
/// Online evaluation: sample the generations that match the filter (model, span name, prompt name, tag) at a rate
/// (0-1), score each with the evaluators in the background, and attach the scores to its trace.
/// </summary>
public sealed record OnlineEvalRule(string? Name, OnlineEvalFilter? Filter, double? SampleRate, IReadOnlyList<JsonElement>? Evaluators, bool? Enabled = null);

public sealed record OnlineEvalFilter(string? Model = null, string? SpanName = null, string? Prompt = null, string? Tag = null);

public sealed record OnlineEvalRulesResponse(IReadOnlyList<OnlineEvalRule> Rules);
