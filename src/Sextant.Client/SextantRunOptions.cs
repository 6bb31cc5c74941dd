namespace Sextant.Client;

/// <summary>How a <see cref="SextantRun"/> batches what it logs. The batch limits default to the server's.</summary>
public sealed class SextantRunOptions
{
    /// <summary>How long logged values may wait before they are sent.</summary>
    public TimeSpan FlushInterval { get; set; } = TimeSpan.FromMilliseconds(200);

    public int MaxMetricsPerBatch { get; set; } = 1000;

    public int MaxParamsPerBatch { get; set; } = 100;

    public int MaxTagsPerBatch { get; set; } = 100;

    /// <summary>Metrics, params and tags in all per request.</summary>
    public int MaxItemsPerBatch { get; set; } = 1000;

    /// <summary>How many times a batch is sent when the server is unreachable or busy (503, 429, 502, 504) before the failure is reported.</summary>
    public int MaxSendAttempts { get; set; } = 4;

    internal void Validate()
    {
        if (FlushInterval <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(FlushInterval), FlushInterval, "FlushInterval must be positive.");
        }
        foreach (var (name, value) in new[]
                 {
                     (nameof(MaxMetricsPerBatch), MaxMetricsPerBatch), (nameof(MaxParamsPerBatch), MaxParamsPerBatch),
                     (nameof(MaxTagsPerBatch), MaxTagsPerBatch), (nameof(MaxItemsPerBatch), MaxItemsPerBatch), (nameof(MaxSendAttempts), MaxSendAttempts),
                 })
        {
            if (value < 1)
            {
                throw new ArgumentOutOfRangeException(name, value, $"{name} must be at least 1.");
            }
        }
    }
}
