namespace Sextant.Client;

/// <summary>
/// Values logged on a <see cref="SextantRun"/> that never reached the server, thrown by the run's next FlushAsync or
/// DisposeAsync: how many batches and items failed since the last report, with the first failure as the inner exception.
/// </summary>
public sealed class SextantSendException : Exception
{
    public SextantSendException(string runId, int failedBatches, long failedItems, Exception firstFailure)
        : base($"{failedBatches} {(failedBatches == 1 ? "batch" : "batches")} ({failedItems} metrics, params and tags) logged on run {runId} could not be sent; "
            + $"the first failure: {firstFailure?.Message}", firstFailure)
    {
        ArgumentNullException.ThrowIfNull(firstFailure);
        RunId = runId;
        FailedBatches = failedBatches;
        FailedItems = failedItems;
    }

    public string RunId { get; }

    /// <summary>Requests given up since the last report: rejected by the server, or still failing after <see cref="SextantRunOptions.MaxRetryDuration"/>.</summary>
    public int FailedBatches { get; }

    /// <summary>The metrics, params and tags in those requests.</summary>
    public long FailedItems { get; }
}
