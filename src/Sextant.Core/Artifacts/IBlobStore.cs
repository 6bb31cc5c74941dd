namespace Sextant.Core.Artifacts;

/// <summary>A stored blob: its SHA-256 (lower-case hex) and size in bytes.</summary>
public sealed record BlobInfo(string Sha256, long Size);

/// <summary>Content-addressed blob storage. The local folder is the default; an S3-compatible store can follow.</summary>
public interface IBlobStore
{
    /// <summary>Streams <paramref name="content"/> into the store (never whole in memory) and returns its address.</summary>
    Task<BlobInfo> PutAsync(Stream content, CancellationToken cancellationToken = default);

    /// <summary>
    /// Streams a blob into the store. With <paramref name="expectedSha256"/>, content that hashes otherwise is refused
    /// (<see cref="BlobMismatchException"/>) and nothing is stored. Without <paramref name="durable"/> the blob is not
    /// flushed to disk on its own: the caller must call <see cref="Sync"/> before it relies on the blob.
    /// </summary>
    Task<BlobInfo> PutAsync(Stream content, string? expectedSha256, bool durable, CancellationToken cancellationToken = default);

    /// <summary>Makes every blob put without durability so far reach the disk.</summary>
    void Sync();

    /// <summary>
    /// Opens a blob for random access (Parquet reads its footer first), or null. Its bytes are not checked against the
    /// address: use it only to derive descriptions (profiles, signatures), never to serve content.
    /// </summary>
    Stream? OpenSeekable(string sha256);

    /// <summary>Opens a blob for reading, or null when the store does not have it.</summary>
    Stream? OpenRead(string sha256);
}

/// <summary>Content whose SHA-256 is not the one it was declared to have.</summary>
public sealed class BlobMismatchException(string expected, string actual, long size)
    : IOException($"the content hashes to {actual} ({size} bytes), not the declared {expected}")
{
    public string Expected { get; } = expected;
    public string Actual { get; } = actual;
}
