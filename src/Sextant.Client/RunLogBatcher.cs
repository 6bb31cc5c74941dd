using System.Diagnostics;
using System.Net;
using System.Runtime.ExceptionServices;
using Sextant.Contracts;

namespace Sextant.Client;

/// <summary>
/// Buffers a run's metrics, params and tags and sends them from one background loop, in order, in batches
/// within the server's limits (item counts, and <see cref="SextantRunOptions.MaxBatchBytes"/> for the body):
/// every <see cref="SextantRunOptions.FlushInterval"/>, as soon as a batch is full, or on <see cref="FlushAsync"/>. Temporary failures are retried for up to <see cref="SextantRunOptions.MaxRetryDuration"/>;
/// a batch the server rejects, or one still failing after that, is counted and thrown (with the first failure) by the
/// next FlushAsync or DisposeAsync, so a failure is never dropped silently. Each batch carries an Idempotency-Key,
/// the same on every retry, so a batch the server committed after the client stopped waiting is not applied twice.
/// </summary>
internal sealed class RunLogBatcher : IAsyncDisposable
{
    private static readonly TimeSpan FirstBackoff = TimeSpan.FromMilliseconds(250);
    private static readonly TimeSpan MaxBackoff = TimeSpan.FromSeconds(10);

    private readonly SextantClient _client;
    private readonly string _runId;
    private readonly SextantRunOptions _options;
    private readonly Action<List<KeyValueInput>> _paramsNotSent;
    // A Monitor rather than a Lock: producers wait on it while the buffer is full.
    private readonly object _gate = new();
    private readonly SemaphoreSlim _wake = new(0);
    private readonly Task _loop;
    private List<MetricInput> _metrics = [];
    private List<KeyValueInput> _params = [];
    private List<KeyValueInput> _tags = [];
    private List<TaskCompletionSource> _flushWaiters = [];
    private bool _stopping;

    // Items added and not yet accepted or given up: pending plus in flight. Guarded by _gate.
    private int _buffered;

    // Failures not yet reported. Guarded by _gate.
    private Exception? _firstFailure;
    private int _failedBatches;
    private long _failedItems;

    // When the current run of temporary failures began (Stopwatch timestamp); null after a success. Loop only.
    private long? _outageStart;

    /// <param name="paramsNotSent">Called with the params of a batch given up, before its failure is reported.</param>
    public RunLogBatcher(SextantClient client, string runId, SextantRunOptions options, Action<List<KeyValueInput>> paramsNotSent)
    {
        _client = client;
        _runId = runId;
        _options = options;
        _paramsNotSent = paramsNotSent;
        _loop = RunFailureScope.RunDetached(LoopAsync);
    }

    public void AddMetric(MetricInput metric) => Add(ref _metrics, metric, _options.MaxMetricsPerBatch);

    public void AddParam(KeyValueInput param) => Add(ref _params, param, _options.MaxParamsPerBatch);

    public void AddTag(KeyValueInput tag) => Add(ref _tags, tag, _options.MaxTagsPerBatch);

    /// <summary>Sends everything added before this call, then throws the send failures not yet reported.</summary>
    public async Task FlushAsync(CancellationToken cancellationToken)
    {
        var flushed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_stopping, this);
            _flushWaiters.Add(flushed);
        }
        _wake.Release();
        await flushed.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
        ThrowPendingFailures();
    }

    /// <summary>Sends everything, stops the loop and throws the send failures not yet reported.</summary>
    public async ValueTask DisposeAsync()
    {
        lock (_gate)
        {
            if (_stopping)
            {
                return;
            }
            _stopping = true;
            // Producers blocked on a full buffer give up with ObjectDisposedException.
            Monitor.PulseAll(_gate);
        }
        _wake.Release();
        await _loop.ConfigureAwait(false);
        // _wake is not disposed: a LogMetric racing with dispose may still Release it, harmlessly.
        ThrowPendingFailures();
    }

    /// <summary>Ends the run once the loop has stopped, retrying temporary failures as a batch would be.</summary>
    public async Task EndRunAsync(string status, long endTime)
    {
        if (await SendWithRetriesAsync(() => _client.UpdateRunAsync(_runId, status, endTime)).ConfigureAwait(false) is { } failure)
        {
            ExceptionDispatchInfo.Throw(failure);
        }
    }

    private void Add<T>(ref List<T> pending, T item, int batchLimit)
    {
        int count;
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_stopping, this);
            if (_buffered >= _options.MaxBufferedItems)
            {
                // Backpressure: send what is pending now rather than at the next tick, and wait for room.
                _wake.Release();
                do
                {
                    Monitor.Wait(_gate);
                    ObjectDisposedException.ThrowIf(_stopping, this);
                }
                while (_buffered >= _options.MaxBufferedItems);
            }
            // pending is a ref to the field, so this is the current list even if the loop swapped it while we waited.
            pending.Add(item);
            _buffered++;
            count = pending.Count;
        }
        // Wake the loop once per full batch rather than on every item.
        if (count % batchLimit == 0 || count % _options.MaxItemsPerBatch == 0)
        {
            _wake.Release();
        }
    }

    private async Task LoopAsync()
    {
        while (true)
        {
            await _wake.WaitAsync(_options.FlushInterval).ConfigureAwait(false);
            List<MetricInput> metrics;
            List<KeyValueInput> parameters, tags;
            List<TaskCompletionSource> waiters;
            bool stopping;
            lock (_gate)
            {
                // Take everything pending now, so a flush waits for what was logged before it and no more.
                (metrics, _metrics) = (_metrics, []);
                (parameters, _params) = (_params, []);
                (tags, _tags) = (_tags, []);
                (waiters, _flushWaiters) = (_flushWaiters, []);
                stopping = _stopping;
            }
            await SendAllAsync(metrics, parameters, tags).ConfigureAwait(false);
            foreach (var waiter in waiters)
            {
                waiter.TrySetResult();
            }
            if (stopping)
            {
                return;
            }
        }
    }

    private async Task SendAllAsync(List<MetricInput> metrics, List<KeyValueInput> parameters, List<KeyValueInput> tags)
    {
        // Params first and in requests of their own: they are write-once, so the server refuses a whole request when
        // another process logged another value for one of them, and that must not take metrics or tags down with it.
        var paramsPerBatch = Math.Min(_options.MaxParamsPerBatch, _options.MaxItemsPerBatch);
        for (var p = 0; p < parameters.Count;)
        {
            var paramCount = new BatchByteBudget(_options.MaxBatchBytes).Take(parameters, p, paramsPerBatch, BatchByteBudget.Estimate);
            await SendAsync([], parameters.GetRange(p, paramCount), []).ConfigureAwait(false);
            p += paramCount;
        }
        int m = 0, t = 0;
        while (m < metrics.Count || t < tags.Count)
        {
            // Tags before metrics: they are few and give the metrics their context.
            var budget = new BatchByteBudget(_options.MaxBatchBytes);
            var tagCount = budget.Take(tags, t, Math.Min(_options.MaxTagsPerBatch, _options.MaxItemsPerBatch), BatchByteBudget.Estimate);
            var metricCount = budget.Take(metrics, m, Math.Min(_options.MaxMetricsPerBatch, _options.MaxItemsPerBatch - tagCount), BatchByteBudget.Estimate);
            await SendAsync(metrics.GetRange(m, metricCount), [], tags.GetRange(t, tagCount)).ConfigureAwait(false);
            m += metricCount;
            t += tagCount;
        }
    }

    private async Task SendAsync(List<MetricInput> metrics, List<KeyValueInput> parameters, List<KeyValueInput> tags)
    {
        // One key for every attempt: a retry after a timeout must not apply a batch the server has already committed.
        var idempotencyKey = SextantClient.NewIdempotencyKey();
        var failure = await SendWithRetriesAsync(() => _client.LogBatchAsync(_runId, metrics, parameters, tags, idempotencyKey)).ConfigureAwait(false);
        if (failure is not null && parameters.Count > 0)
        {
            // Before the failure can be reported, so that the caller who sees it can log these params again.
            _paramsNotSent(parameters);
        }
        Complete(metrics.Count + parameters.Count + tags.Count, failure);
    }

    /// <summary>Sends until the request succeeds (null) or fails for good (its last failure).</summary>
    private async Task<Exception?> SendWithRetriesAsync(Func<Task> send)
    {
        for (var attempt = 0; ; attempt++)
        {
            Exception failure;
            try
            {
                await send().ConfigureAwait(false);
                _outageStart = null;
                return null;
            }
            catch (Exception e)
            {
                failure = e;
            }
            if (RetryDelay(failure, attempt) is not { } delay)
            {
                return failure;
            }
            await Task.Delay(delay).ConfigureAwait(false);
        }
    }

    /// <summary>How long to wait before sending a failed batch again; null to give it up.</summary>
    private TimeSpan? RetryDelay(Exception failure, int attempt)
    {
        if (!IsTransient(failure))
        {
            if (failure is SextantApiException)
            {
                // The server answered, so it is reachable again: a later temporary failure starts a new outage.
                _outageStart = null;
            }
            return null;
        }
        var now = Stopwatch.GetTimestamp();
        _outageStart ??= now;
        var remaining = _options.MaxRetryDuration - Stopwatch.GetElapsedTime(_outageStart.Value, now);
        if (remaining <= TimeSpan.Zero)
        {
            return null;
        }
        if (failure is SextantApiException { RetryAfter: { } asked } && asked > TimeSpan.Zero)
        {
            // Honour the server's wait: sooner would only be refused again. Past our deadline, give up now.
            return asked <= remaining ? asked : null;
        }
        // 250 ms doubling up to 10 s, with jitter so that many clients cut off together do not come back in step.
        var backoff = Math.Min(MaxBackoff.TotalMilliseconds, FirstBackoff.TotalMilliseconds * Math.Pow(2, Math.Min(attempt, 16)));
        var jittered = TimeSpan.FromMilliseconds(backoff * (0.5 + Random.Shared.NextDouble() / 2));
        return jittered < remaining ? jittered : remaining;
    }

    private static bool IsTransient(Exception e) => e switch
    {
        SextantApiException api => api.StatusCode is HttpStatusCode.ServiceUnavailable or HttpStatusCode.TooManyRequests
            or HttpStatusCode.BadGateway or HttpStatusCode.GatewayTimeout,
        HttpRequestException or TimeoutException or IOException => true,
        _ => false,
    };

    /// <summary>Frees a sent or given-up batch's room in the buffer and records its failure, if any.</summary>
    private void Complete(int items, Exception? failure)
    {
        lock (_gate)
        {
            _buffered -= items;
            if (failure is not null)
            {
                _firstFailure ??= failure;
                _failedBatches++;
                _failedItems += items;
            }
            Monitor.PulseAll(_gate);
        }
    }

    private void ThrowPendingFailures()
    {
        Exception? first;
        int batches;
        long items;
        lock (_gate)
        {
            (first, batches, items) = (_firstFailure, _failedBatches, _failedItems);
            (_firstFailure, _failedBatches, _failedItems) = (null, 0, 0);
        }
        if (first is not null)
        {
            throw new SextantSendException(_runId, batches, items, first);
        }
    }
}
