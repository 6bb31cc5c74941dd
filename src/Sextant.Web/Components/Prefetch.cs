using System.Collections.Concurrent;

namespace Sextant.Web.Components;

/// <summary>
/// Reads started while a page is prerendered and taken by the same page once its circuit is live, so that slow
/// reads (long metric histories) overlap the browser's loading of the page instead of following it. Entries are
/// taken once, expire after <see cref="Lifetime"/>, and there are at most <see cref="Capacity"/> of them.
/// </summary>
public sealed class Prefetch
{
    public static readonly TimeSpan Lifetime = TimeSpan.FromSeconds(30);
    public const int Capacity = 64;

    private readonly ConcurrentDictionary<string, (DateTime Started, Task Task)> _pending = new(StringComparer.Ordinal);

    /// <summary>Starts <paramref name="read"/> on the thread pool for a later <see cref="TakeOrRead{T}"/> with the same key.</summary>
    public void Start<T>(string key, Func<Task<T>> read)
    {
        var now = DateTime.UtcNow;
        foreach (var (k, entry) in _pending)
        {
            if (now - entry.Started > Lifetime)
            {
                _pending.TryRemove(k, out _);
            }
        }
        if (_pending.Count >= Capacity || _pending.ContainsKey(key))
        {
            return;
        }
        var task = Task.Run(read);
        // An abandoned read must not surface as an unobserved exception.
        task.ContinueWith(t => _ = t.Exception, TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously);
        _pending.TryAdd(key, (now, task));
    }

    /// <summary>The prefetched read for <paramref name="key"/> when there is a fresh one, otherwise a new read.</summary>
    public Task<T> TakeOrRead<T>(string key, Func<Task<T>> read) =>
        _pending.TryRemove(key, out var entry) && entry.Task is Task<T> task && DateTime.UtcNow - entry.Started <= Lifetime
            ? task
            : Task.Run(read);
}
