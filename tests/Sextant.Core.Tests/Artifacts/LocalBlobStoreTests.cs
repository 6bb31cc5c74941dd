using System.Security.Cryptography;
using Sextant.Core.Artifacts;

namespace Sextant.Core.Tests.Artifacts;

public sealed class LocalBlobStoreTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "sextant-blobs-" + Guid.NewGuid().ToString("N")[..8]);

    [Fact]
    public async Task Put_addresses_content_by_sha256_and_stores_it_once()
    {
        var store = new LocalBlobStore(_root);
        var content = RandomNumberGenerator.GetBytes(3 * 1024 * 1024 + 17);
        var first = await store.PutAsync(new MemoryStream(content));
        var second = await store.PutAsync(new MemoryStream(content));

        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(content)), first.Sha256);
        Assert.Equal((long)content.Length, first.Size);
        Assert.Equal(first, second);
        Assert.Single(Directory.GetFiles(Path.Combine(_root, "sha256"), "*", SearchOption.AllDirectories));
        Assert.Empty(Directory.GetFiles(Path.Combine(_root, "tmp")));
        await using var read = store.OpenRead(first.Sha256)!;
        using var copy = new MemoryStream();
        await read.CopyToAsync(copy);
        Assert.Equal(content, copy.ToArray());
    }

    [Fact]
    public async Task A_blob_damaged_on_disk_fails_when_read_instead_of_being_served()
    {
        var store = new LocalBlobStore(_root);
        var content = RandomNumberGenerator.GetBytes(200_000);
        var blob = await store.PutAsync(new MemoryStream(content));
        var file = Directory.GetFiles(Path.Combine(_root, "sha256"), blob.Sha256, SearchOption.AllDirectories).Single();
        var damaged = (byte[])content.Clone();
        damaged[123_456] ^= 0x40;
        await File.WriteAllBytesAsync(file, damaged);

        await using var read = store.OpenRead(blob.Sha256)!;
        var received = new MemoryStream();
        var e = await Assert.ThrowsAsync<BlobCorruptedException>(() => read.CopyToAsync(received));
        Assert.Contains(blob.Sha256, e.Message, StringComparison.Ordinal);
        // The last bytes are held back: whoever copies it never gets the whole length.
        Assert.True(received.Length < content.Length);
        await Assert.ThrowsAsync<BlobCorruptedException>(async () => _ = await read.ReadAsync(new byte[10]));
    }

    [Fact]
    public async Task A_failed_upload_leaves_no_blob_and_no_temporary_file()
    {
        var store = new LocalBlobStore(_root);
        await Assert.ThrowsAsync<IOException>(() => store.PutAsync(new FailingStream()));
        Assert.Empty(Directory.GetFiles(_root, "*", SearchOption.AllDirectories));
        Assert.Null(store.OpenRead(new string('0', 64)));
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(_root, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    /// <summary>A client that disconnects after sending some bytes.</summary>
    private sealed class FailingStream : Stream
    {
        private int _reads;

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count) =>
            _reads++ < 3 ? Math.Min(count, 4096) : throw new IOException("connection reset");

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
