namespace Sextant.Core;

/// <summary>
/// A background thread of its own for a loop whose calls block (SQLite's, a sleep between polls), so that it never
/// holds one of the thread pool's few threads while requests wait for it.
/// </summary>
internal static class DedicatedThread
{
    /// <summary>Starts <paramref name="body"/> on a new background thread.</summary>
    /// <returns>Completes when <paramref name="body"/> returns, faulted with what it threw.</returns>
    public static Task Start(string name, Action body)
    {
        var stopped = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        new Thread(() =>
        {
            try
            {
                body();
                stopped.SetResult();
            }
            catch (Exception e)
            {
                stopped.SetException(e);
            }
        }) { IsBackground = true, Name = name }.Start();
        return stopped.Task;
    }
}
