using System.Security.Cryptography;

namespace Sextant.Core.Artifacts;

/// <summary>
/// A blob read from the store, hashed as it is read: when the end is reached and the content does not match its
/// SHA-256 address (the file was damaged on disk), reading fails with <see cref="BlobCorruptedException"/>
/// instead of ending normally, and before the last bytes are handed out, so a damaged blob is never served as if
/// it were whole. Seeking is not offered.
/// </summary>
internal sealed class VerifyingStream(Stream inner, string sha256) : Stream
{
    private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
    private bool _checked;
    private BlobCorruptedException? _corrupted;

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => inner.Length;

    public override long Position
    {
        get => inner.Position;
        set => throw new NotSupportedException();
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        if (buffer.IsEmpty)
        {
            // Asking for nothing is not the end of the stream.
            return 0;
        }
        var read = inner.Read(buffer);
        return Account(buffer[..read], read);
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (buffer.IsEmpty)
        {
            return 0;
        }
        var read = await inner.ReadAsync(buffer, cancellationToken);
        return Account(buffer.Span[..read], read);
    }

    private int Account(ReadOnlySpan<byte> data, int read)
    {
        if (_corrupted is not null)
        {
            // Once damaged, always damaged: a caller that reads on never sees a clean end.
            throw _corrupted;
        }
        if (read > 0)
        {
            _hash.AppendData(data);
            // A file knows its end: check before handing out its last bytes, so that a response with a
            // Content-Length never completes with damaged content.
            if (inner.CanSeek && inner.Position >= inner.Length)
            {
                Verify();
            }
            return read;
        }
        Verify();
        return 0;
    }

    private void Verify()
    {
        if (_checked)
        {
            return;
        }
        _checked = true;
        var actual = Convert.ToHexStringLower(_hash.GetHashAndReset());
        if (!string.Equals(actual, sha256, StringComparison.OrdinalIgnoreCase))
        {
            _corrupted = new BlobCorruptedException(sha256, actual);
            throw _corrupted;
        }
    }

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            inner.Dispose();
            _hash.Dispose();
        }
        base.Dispose(disposing);
    }

    public override async ValueTask DisposeAsync()
    {
        await inner.DisposeAsync();
        _hash.Dispose();
        await base.DisposeAsync();
    }
}

/// <summary>A blob's content no longer matches its address: the store's file was damaged.</summary>
public sealed class BlobCorruptedException(string expected, string actual)
    : IOException($"The stored content of blob {expected} is damaged: it now hashes to {actual}. It was not served; restore it from a backup.");
