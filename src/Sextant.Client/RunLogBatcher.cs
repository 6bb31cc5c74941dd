using System.Net;
using System.Runtime.ExceptionServices;
using Sextant.Contracts;

namespace Sextant.Client;

/// <summary>
/// Buffers a run's metrics, params and tags and sends them from one background loop, in order, in batches
/// within the server's limits: every <see cref="SextantRunOptions.FlushInterval"/>, as soon as a batch is full,
/// or on <see cref="FlushAsync"/>. A batch the server rejects is not retried; its error is kept and thrown by the
/// next FlushAsync or DisposeAsync, so a failure is never dropped silently.
/// </summary>
internal sealed class RunLogBatcher : IAsyncDisposable
{
    private readonly SextantClient _client;
    private readonly string _runId;
    private readonly SextantRunOptions _options;
    private readonly Lock _gate = new();
    private readonly SemaphoreSlim _wake = new(0);
    private readonly Task _loop;
    private List<MetricInput> _metrics = [];
    private List<KeyValueInput> _params = [];
    private List<KeyValueInput> _tags = [];
    private List<TaskCompletionSource> _flushWaiters = [];
    private Exception? _failure;
    private bool _stopping;

    public RunLogBatcher(SextantClient client, string runId, SextantRunOptions options)
    {
        _client = client;
        _runId = runId;
        _options = options;
        _loop = RunFailureScope.RunDetached(LoopAsync);
    }

    public void AddMetric(MetricInput metric) => Add(ref _metrics, metric, _options.MaxMetricsPerBatch);

    public void AddParam(KeyValueInput param) => Add(ref _params, param, _options.MaxParamsPerBatch);

    public void AddTag(KeyValueInput tag) => Add(ref _tags, tag, _options.MaxTagsPerBatch);

    /// <summary>Sends everything added before this call, then throws the first send failure not yet reported.</summary>
    public async Task FlushAsync(CancellationToken cancellationToken)
    {
        var flushed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_stopping, this);
            _flushWaiters.Add(flushed);
        }
        _wake.Release();
        await flushed.Task.WaitAsync(cancellationToken);
        ThrowPendingFailure();
    }

    /// <summary>Sends everything, stops the loop and throws the first send failure not yet reported.</summary>
    public async ValueTask DisposeAsync()
    {
        lock (_gate)
        {
            if (_stopping)
            {
                return;
            }
            _stopping = true;
        }
        _wake.Release();
        await _loop;
        // _wake is not disposed: a LogMetric racing with dispose may still Release it, harmlessly.
        ThrowPendingFailure();
    }

    private void Add<T>(ref List<T> pending, T item, int batchLimit)
    {
        int count;
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_stopping, this);
            pending.Add(item);
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
            await _wake.WaitAsync(_options.FlushInterval);
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
            await SendAllAsync(metrics, parameters, tags);
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
        int m = 0, p = 0, t = 0;
        while (m < metrics.Count || p < parameters.Count || t < tags.Count)
        {
            // Params and tags first: they are few and give the metrics their context.
            var room = _options.MaxItemsPerBatch;
            var paramCount = Math.Min(Math.Min(parameters.Count - p, _options.MaxParamsPerBatch), room);
            room -= paramCount;
            var tagCount = Math.Min(Math.Min(tags.Count - t, _options.MaxTagsPerBatch), room);
            room -= tagCount;
            var metricCount = Math.Min(Math.Min(metrics.Count - m, _options.MaxMetricsPerBatch), room);
            await SendAsync(metrics.GetRange(m, metricCount), parameters.GetRange(p, paramCount), tags.GetRange(t, tagCount));
            m += metricCount;
            p += paramCount;
            t += tagCount;
        }
    }

    private async Task SendAsync(List<MetricInput> metrics, List<KeyValueInput> parameters, List<KeyValueInput> tags)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await _client.LogBatchAsync(_runId, metrics, parameters, tags);
                return;
            }
            catch (Exception e) when (attempt < _options.MaxSendAttempts && IsTransient(e))
            {
                await Task.Delay(TimeSpan.FromMilliseconds(100 * (1 << attempt)));
            }
            catch (Exception e)
            {
                Interlocked.CompareExchange(ref _failure, e, null);
                return;
            }
        }
    }

    private static bool IsTransient(Exception e) => e switch
    {
        SextantApiException api => api.StatusCode is HttpStatusCode.ServiceUnavailable or HttpStatusCode.TooManyRequests
            or HttpStatusCode.BadGateway or HttpStatusCode.GatewayTimeout,
        HttpRequestException or TimeoutException => true,
        _ => false,
    };

    private void ThrowPendingFailure()
    {
        if (Interlocked.Exchange(ref _failure, null) is { } failure)
        {
            ExceptionDispatchInfo.Throw(failure);
        }
    }
}
