using Sextant.Contracts;

namespace Sextant.Core.Tracking;

/// <summary>One validated write request for a run, committed atomically by <see cref="TrackingWriter"/>.</summary>
internal sealed class TrackingWrite(long runId, string runUuid, MetricPoint[] metrics, KeyValue[] parameters, KeyValue[] tags)
{
    public long RunId { get; } = runId;
    public string RunUuid { get; } = runUuid;
    public MetricPoint[] Metrics { get; } = metrics;
    public KeyValue[] Params { get; } = parameters;
    public KeyValue[] Tags { get; } = tags;
    public TaskCompletionSource Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
}
