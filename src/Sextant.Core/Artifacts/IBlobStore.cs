namespace Sextant.Core.Artifacts;

/// <summary>A stored blob: its SHA-256 (lower-case hex) and size in bytes.</summary>
public sealed record BlobInfo(string Sha256, long Size);

/// <summary>Content-addressed blob storage. The local folder is the default; an S3-compatible store can follow.</summary>
public interface IBlobStore
{
    /// <summary>Streams <paramref name="content"/> into the store (never whole in memory) and returns its address.</summary>
    Task<BlobInfo> PutAsync(Stream content, CancellationToken cancellationToken = default);

    /// <summary>Opens a blob for reading, or null when the store does not have it.</summary>
    Stream? OpenRead(string sha256);
}
