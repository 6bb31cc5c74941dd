using System.Collections.Concurrent;
using Sextant.Core;

namespace Sextant.Server.Gateway;

/// <summary>
/// Where the gateway builds and stores a call's span after its answer is sent: one thread of its own, which takes the
/// calls waiting every 2 ms while calls keep coming and blocks when none do (a call queued while it sleeps wakes
/// nothing). Handing each call to the thread pool instead woke a pool thread per call and let span building run
/// beside the next requests on both cores; with this thread the gateway's added p99 at 1,000 calls a second fell from
/// about 2.1 to 1.7 ms (bench/RESULTS.md 9j). When <see cref="Capacity"/> calls wait (a burst the thread cannot keep
/// up with), or once the server stops, a call's recording goes to the thread pool as before, so nothing waits unbounded.
/// </summary>
internal sealed class GatewayRecorder : IDisposable
{
    public const int Capacity = 10_000;
    private const int PollMs = 2;
    private readonly BlockingCollection<Task> _queue = new(new ConcurrentQueue<Task>(), Capacity);
    private readonly Task _stopped;

    public GatewayRecorder() => _stopped = DedicatedThread.Start("sextant gateway recorder", Run);

    /// <summary>Runs <paramref name="record"/> on the recorder's thread (its first part; what it awaits resumes on the pool).</summary>
    public Task<T> Post<T>(Func<Task<T>> record)
    {
        var work = new Task<Task<T>>(record);
        if (!TryQueue(work))
        {
            // Too many waiting, or stopped: the pool records this call.
            work.Start(TaskScheduler.Default);
        }
        return work.Unwrap();
    }

    private bool TryQueue(Task work)
    {
        try
        {
            return _queue.TryAdd(work);
        }
        catch (InvalidOperationException)
        {
            return false;
        }
    }

    private void Run()
    {
        while (_queue.TryTake(out var work, Timeout.Infinite))
        {
            do
            {
                // The recording catches its own failures; a task that faulted anyway carries the exception to whoever awaits it.
                work.RunSynchronously(TaskScheduler.Default);
            }
            while (_queue.TryTake(out work));
            if (!_queue.IsAddingCompleted)
            {
                // Calls are coming: take the next ones together in a moment rather than being woken for each.
                Thread.Sleep(PollMs);
            }
        }
    }

    /// <summary>Records the calls still waiting, then stops (before the span writer, which the recordings write to, is disposed).</summary>
    public void Dispose()
    {
        _queue.CompleteAdding();
        _stopped.GetAwaiter().GetResult();
    }
}
