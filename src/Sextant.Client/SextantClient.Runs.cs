using System.Globalization;
using System.Net.Http.Json;
using System.Runtime.CompilerServices;
using Sextant.Contracts;

namespace Sextant.Client;

// Runs: /api/v1/runs.
public sealed partial class SextantClient
{
    /// <summary>
    /// Starts a run in the named experiment, creating the experiment when it does not exist.
    /// Log through the returned <see cref="SextantRun"/> and dispose it to end the run.
    /// </summary>
    /// <remarks>
    /// Not an async method on purpose: it marks the caller's execution context synchronously so the run can tell,
    /// when disposed, whether an exception is escaping the caller's <c>await using</c> block (see <see cref="SextantRun"/>).
    /// </remarks>
    public Task<SextantRun> StartRunAsync(
        string experimentName,
        string? runName = null,
        IReadOnlyDictionary<string, string>? tags = null,
        SextantRunOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(experimentName);
        options ??= new SextantRunOptions();
        options.Validate();
        var scope = RunFailureScope.Enter();
        return StartRunCoreAsync(experimentName, runName, tags, options, scope, cancellationToken);
    }

    private async Task<SextantRun> StartRunCoreAsync(
        string experimentName, string? runName, IReadOnlyDictionary<string, string>? tags, SextantRunOptions options, RunFailureScope scope, CancellationToken cancellationToken)
    {
        var experiment = await GetExperimentByNameAsync(experimentName, cancellationToken).ConfigureAwait(false);
        if (experiment is null)
        {
            try
            {
                experiment = await CreateExperimentAsync(experimentName, cancellationToken: cancellationToken).ConfigureAwait(false);
            }
            catch (SextantApiException e) when (e.ErrorCode == ErrorCodes.ResourceAlreadyExists)
            {
                // Another process created it between our lookup and our create.
                experiment = await GetExperimentByNameAsync(experimentName, cancellationToken).ConfigureAwait(false)
                    ?? throw new InvalidOperationException($"Experiment '{experimentName}' was reported as existing but cannot be found.", e);
            }
        }
        var run = await CreateRunAsync(experiment.ExperimentId, runName, tags, cancellationToken).ConfigureAwait(false);
        // Exceptions thrown while starting (the not-found lookup above) were handled; they are not the caller's failure.
        scope.Reset();
        return new SextantRun(this, run.Info, options, scope);
    }

    public async Task<Run> CreateRunAsync(string experimentId, string? runName = null, IReadOnlyDictionary<string, string>? tags = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(experimentId);
        var request = new CreateRunRequest(experimentId, RunName: runName, StartTime: DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(),
            Tags: tags?.Select(t => new KeyValue(t.Key, t.Value)).ToList());
        var response = await PostJsonAsync("api/v1/runs", request, Wire.CreateRunRequest, Wire.RunResponse, cancellationToken).ConfigureAwait(false);
        return response.Run;
    }

    /// <summary>A run with the last value of each metric, its params, tags and inputs.</summary>
    public async Task<Run> GetRunAsync(string runId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(runId);
        var response = await GetJsonAsync($"api/v1/runs/{Segment(runId)}", Wire.RunResponse, cancellationToken).ConfigureAwait(false);
        return response.Run;
    }

    /// <summary>Sets a run's status (RUNNING, SCHEDULED, FINISHED, FAILED, KILLED), end time (ms since epoch) or name.</summary>
    public async Task<RunInfo> UpdateRunAsync(string runId, string? status = null, long? endTime = null, string? runName = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(runId);
        var response = await PostJsonAsync($"api/v1/runs/{Segment(runId)}/update", new UpdateRunRequest(Status: status, EndTime: endTime, RunName: runName),
            Wire.UpdateRunRequest, Wire.UpdateRunResponse, cancellationToken).ConfigureAwait(false);
        return response.RunInfo;
    }

    /// <summary>One page of runs matching MLflow's filter language; pass next_page_token to get the next.</summary>
    /// <param name="filter">e.g. <c>metrics.acc &gt; 0.5 and params.model = 'cnn'</c>.</param>
    /// <param name="orderBy">e.g. <c>["metrics.acc DESC"]</c>.</param>
    public Task<SearchRunsResponse> SearchRunsAsync(
        IReadOnlyList<string> experimentIds,
        string? filter = null,
        IReadOnlyList<string>? orderBy = null,
        int? maxResults = null,
        string? pageToken = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(experimentIds);
        var request = new SearchRunsRequest(experimentIds, filter, MaxResults: maxResults, OrderBy: orderBy, PageToken: pageToken);
        return PostJsonAsync("api/v1/runs/search", request, Wire.SearchRunsRequest, Wire.SearchRunsResponse, cancellationToken);
    }

    /// <summary>
    /// Logs metrics, params and tags in one atomic request. The server takes at most 1000 metrics, 100 params,
    /// 100 tags and 1000 items in all per request, and a JSON body of at most 1 MiB; <see cref="SextantRun"/> splits for you.
    /// </summary>
    /// <param name="idempotencyKey">
    /// Sent as the Idempotency-Key header: the server applies a batch with a key it has already committed (in the last
    /// 24 hours) only once, so pass the same key when sending the same batch again after a timeout or a dropped
    /// connection. Null sends a new key, which makes this call safe to retry only as a whole.
    /// </param>
    public Task LogBatchAsync(
        string runId,
        IReadOnlyList<MetricInput>? metrics = null,
        IReadOnlyList<KeyValueInput>? parameters = null,
        IReadOnlyList<KeyValueInput>? tags = null,
        string? idempotencyKey = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(runId);
        if (idempotencyKey is { Length: 0 })
        {
            throw new ArgumentException("The idempotency key must not be empty; pass null to send a new one.", nameof(idempotencyKey));
        }
        var request = new LogBatchRequest(Metrics: metrics, Params: parameters, Tags: tags);
        return SendJsonAsync(HttpMethod.Post, $"api/v1/runs/{Segment(runId)}/log-batch", JsonContent.Create(request, Wire.LogBatchRequest),
            idempotencyKey ?? NewIdempotencyKey(), Wire.EmptyResponse, cancellationToken);
    }

    /// <summary>A key for one batch, sent again with each retry of that batch and with no other.</summary>
    internal static string NewIdempotencyKey() => Guid.NewGuid().ToString("N");

    /// <summary>One page of a metric's points, ordered by step.</summary>
    public Task<MetricHistoryResponse> GetMetricHistoryAsync(string runId, string key, int? maxResults = null, string? pageToken = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(runId);
        ArgumentException.ThrowIfNullOrEmpty(key);
        var query = Query(("max_results", maxResults?.ToString(CultureInfo.InvariantCulture)), ("page_token", pageToken));
        return GetJsonAsync($"api/v1/runs/{Segment(runId)}/metrics/{Segment(key)}/history{query}", Wire.MetricHistoryResponse, cancellationToken);
    }

    /// <summary>Every point of a metric, ordered by step, fetched page by page as it is enumerated.</summary>
    /// <param name="pageSize">Points per request; null lets the server choose (25,000 by default).</param>
    public async IAsyncEnumerable<Metric> GetFullMetricHistoryAsync(string runId, string key, int? pageSize = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        string? pageToken = null;
        do
        {
            var page = await GetMetricHistoryAsync(runId, key, pageSize, pageToken, cancellationToken).ConfigureAwait(false);
            foreach (var metric in page.Metrics)
            {
                yield return metric;
            }
            pageToken = page.NextPageToken;
        }
        while (!string.IsNullOrEmpty(pageToken));
    }
}
