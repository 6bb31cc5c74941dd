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

    /// <summary>
    /// The most bytes of JSON per request, under the server's 1 MiB body limit. Sizes are estimated from above:
    /// plain ASCII counts 1 byte a character, anything else the 6 bytes of a \uXXXX escape. A single value larger
    /// than this is sent in a request of its own.
    /// </summary>
    public int MaxBatchBytes { get; set; } = 900_000;

    /// <summary>
    /// How long sending may keep failing with temporary errors (server unreachable, 429, 502, 503, 504) before batches
    /// are given up and reported as failed. Retries back off exponentially and wait as long as the server's Retry-After
    /// asks. The time counts from the first failure of an outage: once it has passed, each later batch gets one try
    /// until a send succeeds again, so a long outage does not hold every batch for the whole time.
    /// </summary>
    public TimeSpan MaxRetryDuration { get; set; } = TimeSpan.FromMinutes(2);

    /// <summary>
    /// The most metrics, params and tags a run holds that the server has not yet accepted. Past it, LogMetric,
    /// LogParam and SetTag block the caller until batches have been sent (or given up after
    /// <see cref="MaxRetryDuration"/>): backpressure rather than dropping, so an outage slows the training loop
    /// instead of losing its points silently, and memory stays bounded.
    /// </summary>
    public int MaxBufferedItems { get; set; } = 1_000_000;

    internal void Validate()
    {
        if (FlushInterval <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(FlushInterval), FlushInterval, "FlushInterval must be positive.");
        }
        if (MaxRetryDuration < TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(MaxRetryDuration), MaxRetryDuration, "MaxRetryDuration must not be negative (zero means no retries).");
        }
        foreach (var (name, value) in new[]
                 {
                     (nameof(MaxMetricsPerBatch), MaxMetricsPerBatch), (nameof(MaxParamsPerBatch), MaxParamsPerBatch),
                     (nameof(MaxTagsPerBatch), MaxTagsPerBatch), (nameof(MaxItemsPerBatch), MaxItemsPerBatch), (nameof(MaxBatchBytes), MaxBatchBytes), (nameof(MaxBufferedItems), MaxBufferedItems),
                 })
        {
            if (value < 1)
            {
                throw new ArgumentOutOfRangeException(name, value, $"{name} must be at least 1.");
            }
        }
    }
}
