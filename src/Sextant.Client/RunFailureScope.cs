namespace Sextant.Client;

/// <summary>
/// Tells whether an exception is escaping the code that owns a run. <c>await using</c> gives DisposeAsync no such
/// signal: in an async method the compiler catches the exception before calling DisposeAsync and rethrows it after,
/// so nothing is "in flight" (Marshal.GetExceptionPointers reads 0 for a plain throw there). Instead the scope is
/// stored in an AsyncLocal of the caller's flow, and a first-chance exception handler remembers the last exception
/// thrown in that flow; every call the owner makes on the run clears it, since reaching that call means the
/// exception was handled. What remains at dispose is an exception thrown after the owner's last call on the run.
/// </summary>
internal sealed class RunFailureScope
{
    private static readonly AsyncLocal<RunFailureScope?> Current = new();
    private static int s_subscribed;

    private readonly RunFailureScope? _previous;
    private volatile Exception? _lastException;

    private RunFailureScope(RunFailureScope? previous) => _previous = previous;

    /// <summary>The last exception thrown in the owner's flow since its last call on the run, if any.</summary>
    public Exception? PendingException => _lastException;

    /// <summary>Starts a scope in the caller's flow; must be called from a non-async method so the AsyncLocal stays set for the caller.</summary>
    public static RunFailureScope Enter()
    {
        if (Interlocked.Exchange(ref s_subscribed, 1) == 0)
        {
            AppDomain.CurrentDomain.FirstChanceException += static (_, e) =>
            {
                if (Current.Value is { } scope)
                {
                    scope._lastException = e.Exception;
                }
            };
        }
        var scope = new RunFailureScope(Current.Value);
        Current.Value = scope;
        return scope;
    }

    /// <summary>Forgets exceptions seen so far: the owner has reached a call on the run, so they were handled.</summary>
    public void Reset() => _lastException = null;

    /// <summary>Ends the scope in the caller's flow (called synchronously from DisposeAsync).</summary>
    public void Exit()
    {
        if (ReferenceEquals(Current.Value, this))
        {
            Current.Value = _previous;
        }
    }

    /// <summary>Runs code in a flow that does not report to any scope: the run's own background work.</summary>
    public static Task RunDetached(Func<Task> work)
    {
        using (ExecutionContext.SuppressFlow())
        {
            return Task.Run(work);
        }
    }
}
