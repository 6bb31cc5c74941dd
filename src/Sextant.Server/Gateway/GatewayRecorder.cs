using System.Collections.Concurrent;

namespace Sextant.Server.Gateway;

/// <summary>
/// Where the gateway builds and stores a call's span after its answer is sent: one thread of its own, which takes the
/// calls waiting every 2 ms while calls keep coming and sleeps when none do. Handing each call to the thread pool
/// instead woke a pool thread per call and let span building run beside the next requests on both cores; with this
/// thread the gateway's added p99 at 1,000 calls a second fell from about 2.1 to 1.7 ms (bench/RESULTS.md 9j). When
/// more than <see cref="Capacity"/> calls wait (a burst the thread cannot keep up with), or once the server stops, a
/// call's recording goes to the thread pool as before, so nothing waits unbounded.
/// </summary>
internal sealed class GatewayRecorder : IDisposable
{
    public const int Capacity = 10_000;
    private const int PollMs = 2;
    private readonly ConcurrentQueue<Task> _queue = new();
    private readonly SemaphoreSlim _wake = new(0);
    private readonly Thread _thread;
    private int _waiting;
    private int _asleep;
    private volatile bool _stopping;

    public GatewayRecorder()
    {
        _thread = new Thread(Run) { IsBackground = true, Name = "sextant gateway recorder" };
        _thread.Start();
    }

    /// <summary>Runs <paramref name="record"/> on the recorder's thread (its first part; what it awaits resumes on the pool).</summary>
    public Task<T> Post<T>(Func<Task<T>> record)
    {
        var work = new Task<Task<T>>(record);
        if (Interlocked.Increment(ref _waiting) > Capacity || _stopping)
        {
            // Too many waiting, or stopping: the pool records this call.
            Interlocked.Decrement(ref _waiting);
            work.Start(TaskScheduler.Default);
            return work.Unwrap();
        }
        _queue.Enqueue(work);
        if (_stopping)
        {
            // The thread may have finished before this call was queued: record it here.
            Drain();
        }
        else if (Volatile.Read(ref _asleep) == 1 && Interlocked.Exchange(ref _asleep, 0) == 1)
        {
            _wake.Release();
        }
        return work.Unwrap();
    }

    private void Run()
    {
        while (true)
        {
            var ran = Drain();
            if (_stopping && _queue.IsEmpty)
            {
                return;
            }
            if (ran > 0)
            {
                // Calls are coming: take the next ones together in a moment rather than being woken for each.
                Thread.Sleep(PollMs);
                continue;
            }
            Volatile.Write(ref _asleep, 1);
            // A call queued between the drain and the line above may not have woken this thread: look once more.
            if (!_queue.IsEmpty && Interlocked.Exchange(ref _asleep, 0) == 1)
            {
                continue;
            }
            _wake.Wait();
        }
    }

    private int Drain()
    {
        var ran = 0;
        while (_queue.TryDequeue(out var work))
        {
            Interlocked.Decrement(ref _waiting);
            // The recording catches its own failures; a task that faulted anyway carries the exception to whoever awaits it.
            work.RunSynchronously(TaskScheduler.Default);
            ran++;
        }
        return ran;
    }

    /// <summary>Records the calls still waiting, then stops (before the span writer, which the recordings write to, is disposed).</summary>
    public void Dispose()
    {
        _stopping = true;
        _wake.Release();
        _thread.Join();
        // Any call queued while the thread was finishing.
        Drain();
    }
}
