using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.ExceptionServices;
using Sextant.Contracts;

namespace Sextant.Client;

/// <summary>
/// A running run. Params, metrics and tags are buffered and sent in background batches; dispose the run to
/// flush them and end it FINISHED, or FAILED when <see cref="Fail"/> was called or an exception is escaping.
/// </summary>
/// <remarks>
/// Failure detection: DisposeAsync ends the run FAILED when an exception was thrown in the code that started the
/// run after that code's last call on the run (an exception escaping <c>await using</c>). It works when the run is
/// started and disposed in the same method. An exception that code catches and swallows after its last call on
/// the run also counts; call <see cref="FlushAsync"/> after handling it, or mark failures explicitly with
/// <see cref="Fail"/>, which is always honoured. A send failure is thrown from the next <see cref="FlushAsync"/>
/// or from DisposeAsync as a <see cref="SextantSendException"/>, except while another exception is escaping, which it
/// must not hide: then it is traced. Keys and values the server would refuse throw <see cref="ArgumentException"/> at
/// the call that logs them, so they cannot make a background batch fail.
/// </remarks>
public sealed class SextantRun : IAsyncDisposable
{
    private readonly SextantClient _client;
    private readonly RunFailureScope _failureScope;
    private readonly RunLogBatcher _batcher;
    // Params logged by this run, waiting to be sent or accepted: a param is write-once, so another value must fail at
    // the call, not in a batch. A param whose batch was given up is removed, so that it can be logged again.
    private readonly ConcurrentDictionary<string, string> _params = new(StringComparer.Ordinal);
    private volatile bool _failRequested;
    private int _disposed;

    internal SextantRun(SextantClient client, RunInfo info, SextantRunOptions options, RunFailureScope failureScope)
    {
        _client = client;
        _failureScope = failureScope;
        Info = info;
        _batcher = new RunLogBatcher(client, info.RunId, options, ForgetParams);
    }

    public string RunId => Info.RunId;

    public string ExperimentId => Info.ExperimentId;

    /// <summary>The run as it was created (the status does not follow later changes).</summary>
    public RunInfo Info { get; }

    /// <summary>
    /// Logs a param (key: 1-250 letters, digits, _ - . space /; value: at most 6000 characters). A param cannot change
    /// once logged: logging the same value again does nothing, another value throws <see cref="ArgumentException"/>.
    /// A param that could not be sent (see <see cref="SextantSendException"/>) is forgotten and may be logged again.
    /// </summary>
    /// <remarks>Blocks while <see cref="SextantRunOptions.MaxBufferedItems"/> values wait to be sent.</remarks>
    public void LogParam(string key, string value)
    {
        LogValidation.Key(key, "param", nameof(key));
        LogValidation.Value(value, "param", LogValidation.MaxParamValueLength, nameof(value));
        Touch();
        if (!_params.TryAdd(key, value))
        {
            var logged = _params[key];
            if (logged != value)
            {
                throw new ArgumentException(
                    $"Param '{key}' was already logged in this run with the value {LogValidation.Quote(logged)}; a param cannot change, so {LogValidation.Quote(value)} is refused. "
                    + "Log it under another key, or as a metric or tag.", nameof(value));
            }
            return;
        }
        _batcher.AddParam(new KeyValueInput(key, value));
    }

    /// <summary>Logs a metric point (key: 1-250 letters, digits, _ - . space /); safe to call from several threads.</summary>
    /// <param name="timestamp">When the value was measured; now by default.</param>
    /// <remarks>Blocks while <see cref="SextantRunOptions.MaxBufferedItems"/> values wait to be sent.</remarks>
    public void LogMetric(string key, double value, long step = 0, DateTimeOffset? timestamp = null)
    {
        LogValidation.Key(key, "metric", nameof(key));
        Touch();
        _batcher.AddMetric(new MetricInput(key, value, (timestamp ?? DateTimeOffset.UtcNow).ToUnixTimeMilliseconds(), step));
    }

    /// <summary>Sets a tag (key: 1-250 letters, digits, _ - . space /; value: at most 5000 characters); the last value set wins.</summary>
    /// <remarks>Blocks while <see cref="SextantRunOptions.MaxBufferedItems"/> values wait to be sent.</remarks>
    public void SetTag(string key, string value)
    {
        LogValidation.Key(key, "tag", nameof(key));
        LogValidation.Value(value, "tag", LogValidation.MaxTagValueLength, nameof(value));
        Touch();
        _batcher.AddTag(new KeyValueInput(key, value));
    }

    /// <summary>Sends everything logged so far; throws a <see cref="SextantSendException"/> for background send failures not yet reported.</summary>
    public async Task FlushAsync(CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        try
        {
            await _batcher.FlushAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _failureScope.Reset();
        }
    }

    /// <summary>Records that this run read a dataset version: NAME, NAME@3 or datasets:/NAME@3 (the latest without a version).</summary>
    /// <param name="context">What the run used it for, e.g. training or evaluation.</param>
    public Task LogDatasetInputAsync(string dataset, string? context = null, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        return _client.LogDatasetInputAsync(RunId, dataset, context, cancellationToken);
    }

    /// <summary>Uploads a file, streamed from disk, or every file under a folder.</summary>
    /// <param name="localPath">A file or a folder.</param>
    /// <param name="artifactPath">Where it goes in the run's artifacts: for a file its full path (default: the file's name), for a folder the folder to put its files in (default: the root).</param>
    public async Task LogArtifactAsync(string localPath, string? artifactPath = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(localPath);
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        try
        {
            if (Directory.Exists(localPath))
            {
                foreach (var file in Directory.EnumerateFiles(localPath, "*", SearchOption.AllDirectories))
                {
                    var relative = Path.GetRelativePath(localPath, file).Replace(Path.DirectorySeparatorChar, '/');
                    await UploadFileAsync(file, string.IsNullOrEmpty(artifactPath) ? relative : artifactPath.TrimEnd('/') + "/" + relative, cancellationToken).ConfigureAwait(false);
                }
                return;
            }
            await UploadFileAsync(localPath, string.IsNullOrEmpty(artifactPath) ? Path.GetFileName(localPath) : artifactPath, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _failureScope.Reset();
        }
    }

    /// <summary>Uploads a stream, read from its current position to its end, as the artifact at <paramref name="artifactPath"/>.</summary>
    /// <remarks><paramref name="content"/> is not disposed: it stays the caller's, read up to its end (or as far as the upload got).</remarks>
    public async Task LogArtifactAsync(Stream content, string artifactPath, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        try
        {
            await _client.UploadArtifactAsync(RunId, artifactPath, content, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _failureScope.Reset();
        }
    }

    /// <summary>Ends the run FAILED when it is disposed, whatever else happens.</summary>
    public void Fail() => _failRequested = true;

    /// <summary>Flushes everything, ends the run FINISHED or FAILED, and throws a send failure not yet reported.</summary>
    public ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return ValueTask.CompletedTask;
        }
        // Read and leave the scope now, synchronously in the owner's flow: after an await it would be too late.
        var escaping = _failureScope.PendingException;
        _failureScope.Exit();
        return new ValueTask(EndAsync(escaping));
    }

    private async Task EndAsync(Exception? escaping)
    {
        Exception? sendFailure = null;
        try
        {
            await _batcher.DisposeAsync().ConfigureAwait(false);
        }
        catch (Exception e)
        {
            sendFailure = e;
        }
        var status = _failRequested || escaping is not null ? "FAILED" : "FINISHED";
        try
        {
            await _batcher.EndRunAsync(status, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds()).ConfigureAwait(false);
        }
        catch (Exception endFailure)
        {
            sendFailure = sendFailure is null ? endFailure : new AggregateException(sendFailure, endFailure);
        }
        if (sendFailure is null)
        {
            return;
        }
        if (escaping is not null)
        {
            Trace.TraceError($"Sextant run {RunId}: {sendFailure.Message} (not thrown, so as not to hide the exception escaping the run: {escaping.Message})");
            return;
        }
        ExceptionDispatchInfo.Throw(sendFailure);
    }

    private async Task UploadFileAsync(string file, string artifactPath, CancellationToken cancellationToken)
    {
        // Streamed from disk: a model file of many gigabytes never sits in memory.
        var content = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.Read, 81920, FileOptions.Asynchronous | FileOptions.SequentialScan);
        await using (content.ConfigureAwait(false))
        {
            await _client.UploadArtifactAsync(RunId, artifactPath, content, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Forgets params the server never took, so that the caller can log them again.</summary>
    private void ForgetParams(List<KeyValueInput> notSent)
    {
        foreach (var param in notSent)
        {
            // By key and value; while the key is here LogParam refuses any other value, so this is the entry it added.
            _params.TryRemove(new KeyValuePair<string, string>(param.Key!, param.Value!));
        }
    }

    private void Touch()
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        _failureScope.Reset();
    }
}
