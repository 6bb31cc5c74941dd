using System.Threading.Channels;
using Sextant.Contracts;

namespace Sextant.Client;

// Spans from SextantChatClient go out in the background, in batches of up to 500 (whatever is queued when the last batch is done).
public sealed partial class SextantClient
{
    private const int SpanQueueCapacity = 10_000;
    private readonly Lock _spanLock = new();
    private Channel<Span>? _spans;
    private Task? _spanLoop;
    private long _droppedSpans;

    /// <summary>Spans that could not be queued (the queue of 10,000 was full), sent (after the batch's retries) or stored (refused by the server).</summary>
    public long DroppedSpans => Interlocked.Read(ref _droppedSpans);

    internal void EnqueueSpan(Span span)
    {
        lock (_spanLock)
        {
            if (_spans is null)
            {
                _spans = Channel.CreateBounded<Span>(new BoundedChannelOptions(SpanQueueCapacity) { SingleReader = true, FullMode = BoundedChannelFullMode.DropWrite });
                _spanLoop = Task.Run(SendSpansAsync);
            }
        }
        if (!_spans.Writer.TryWrite(span))
        {
            Interlocked.Increment(ref _droppedSpans);
        }
    }

    /// <summary>Sends every span queued so far and waits for the server's answer.</summary>
    public async Task FlushTracesAsync(CancellationToken cancellationToken = default)
    {
        Channel<Span>? spans;
        lock (_spanLock)
        {
            spans = _spans;
        }
        while (spans is not null && (spans.Reader.Count > 0 || Volatile.Read(ref _sending)))
        {
            await Task.Delay(20, cancellationToken).ConfigureAwait(false);
        }
    }

    private bool _sending;

    private async Task SendSpansAsync()
    {
        var reader = _spans!.Reader;
        var batch = new List<Span>();
        while (await reader.WaitToReadAsync().ConfigureAwait(false))
        {
            Volatile.Write(ref _sending, true);
            try
            {
                batch.Clear();
                // Within the server's 1 MiB JSON body limit: at most 500 spans or about 900 KB of them.
                long bytes = 0;
                while (batch.Count < 500 && bytes < 900_000 && reader.TryPeek(out var next))
                {
                    var size = System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(next, Wire.Span).Length;
                    if (batch.Count > 0 && bytes + size > 900_000)
                    {
                        break;
                    }
                    reader.TryRead(out _);
                    batch.Add(next);
                    bytes += size;
                }
                for (var attempt = 0; ; attempt++)
                {
                    try
                    {
                        var result = await IngestSpansAsync(batch).ConfigureAwait(false);
                        Interlocked.Add(ref _droppedSpans, result.Rejected);
                        break;
                    }
                    catch (Exception) when (attempt < 2)
                    {
                        await Task.Delay(TimeSpan.FromMilliseconds(200 * (attempt + 1))).ConfigureAwait(false);
                    }
                    catch (Exception)
                    {
                        Interlocked.Add(ref _droppedSpans, batch.Count);
                        break;
                    }
                }
            }
            finally
            {
                Volatile.Write(ref _sending, false);
            }
        }
    }
}
