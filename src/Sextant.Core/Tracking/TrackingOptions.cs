using Sextant.Contracts;

namespace Sextant.Core.Tracking;

/// <summary>Limits of the tracking capability. MLflow's documented limits are the defaults.</summary>
public sealed class TrackingOptions
{
    public int MaxMetricsPerBatch { get; set; } = 1000;
    public int MaxParamsPerBatch { get; set; } = 100;
    public int MaxTagsPerBatch { get; set; } = 100;
    public int MaxItemsPerBatch { get; set; } = 1000;
    public int MaxKeyLength { get; set; } = KeyRules.MaxKeyLength;
    public int MaxParamValueLength { get; set; } = KeyRules.MaxParamValueLength;
    public int MaxTagValueLength { get; set; } = KeyRules.MaxTagValueLength;
    public int MaxExperimentNameLength { get; set; } = 500;
    public int MaxSearchResults { get; set; } = 50_000;
    public int DefaultSearchResults { get; set; } = 1000;
    public int MaxHistoryPageSize { get; set; } = 25_000;

    /// <summary>Comparisons in one search filter (each metric, param or tag comparison is a join).</summary>
    public int MaxFilterClauses { get; set; } = 30;

    /// <summary>Values in one IN / NOT IN list.</summary>
    public int MaxInListValues { get; set; } = 1000;

    /// <summary>Characters in one filter value (a param value is at most 6000).</summary>
    public int MaxFilterValueLength { get; set; } = 6000;

    /// <summary>Terms in one order_by.</summary>
    public int MaxOrderByTerms { get; set; } = 10;

    /// <summary>How many write requests may wait for the batch writer; past it the server answers 503.</summary>
    public int WriteQueueCapacity { get; set; } = 512;

    /// <summary>
    /// On SQLite, answer run searches that filter on metrics, params and tags in the default order from an
    /// in-memory copy of the experiment (read in the background, dropped at every write); off means always SQL.
    /// </summary>
    public bool InMemorySearch { get; set; } = true;

    /// <summary>Experiments with more runs than this are searched in SQL only (the copy takes about 0.3 KB a run).</summary>
    public int InMemorySearchMaxRuns { get; set; } = 500_000;

    /// <summary>The most metric points one group commit takes.</summary>
    public int MaxPointsPerCommit { get; set; } = 50_000;
}
