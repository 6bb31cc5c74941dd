using Sextant.Contracts;

namespace Sextant.Core.Tracking;

/// <summary>One validated write request for a run, committed atomically by <see cref="TrackingWriter"/>.</summary>
internal sealed class TrackingWrite(long runId, string runUuid, MetricPoint[] metrics, KeyValue[] parameters, KeyValue[] tags, string? idempotencyKey = null)
{
    /// <summary>The client's key for this request: a retry with the same key is acknowledged, not applied again.</summary>
    public string? IdempotencyKey { get; } = idempotencyKey;

    public long RunId { get; } = runId;
    public string RunUuid { get; } = runUuid;
    public MetricPoint[] Metrics { get; } = metrics;
    public KeyValue[] Params { get; } = parameters;
    public KeyValue[] Tags { get; } = tags;
    public TaskCompletionSource Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
}
