namespace Sextant.Client;

/// <summary>
/// A read-only view of a caller's stream that leaves it open when disposed: StreamContent disposes the stream it
/// sends, and a stream the caller passed in is the caller's to dispose (and may still be read or rewound after).
/// </summary>
internal sealed class NonOwningStream(Stream inner) : Stream
{
    public override bool CanRead => inner.CanRead;

    // StreamContent seeks to announce Content-Length and to rewind when a request is sent again.
    public override bool CanSeek => inner.CanSeek;

    public override bool CanWrite => false;

    public override long Length => inner.Length;

    public override long Position
    {
        get => inner.Position;
        set => inner.Position = value;
    }

    public override int Read(byte[] buffer, int offset, int count) => inner.Read(buffer, offset, count);

    public override int Read(Span<byte> buffer) => inner.Read(buffer);

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        inner.ReadAsync(buffer, offset, count, cancellationToken);

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
        inner.ReadAsync(buffer, cancellationToken);

    public override long Seek(long offset, SeekOrigin origin) => inner.Seek(offset, origin);

    public override void Flush()
    {
        // Nothing written, nothing to flush.
    }

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    // Dispose is inherited: Stream.Dispose(bool) does nothing here, so the caller's stream stays open.
}
