using System.Security.Cryptography;

namespace Sextant.Core.Artifacts;

/// <summary>
/// Blobs as files under <c>root/sha256/ab/cd/abcd...</c>. A blob is written to a temporary file while
/// hashing, flushed to disk, then renamed into place, so a crash never leaves a partial blob at an address.
/// </summary>
public sealed class LocalBlobStore : IBlobStore
{
    private const int BufferSize = 128 * 1024;
    private readonly string _root;
    private readonly string _temp;

    public LocalBlobStore(string root)
    {
        _root = Path.Combine(Path.GetFullPath(root), "sha256");
        _temp = Path.Combine(Path.GetFullPath(root), "tmp");
        Directory.CreateDirectory(_root);
        Directory.CreateDirectory(_temp);
    }

    public Task<BlobInfo> PutAsync(Stream content, CancellationToken cancellationToken = default) =>
        PutAsync(content, expectedSha256: null, durable: true, cancellationToken);

    public async Task<BlobInfo> PutAsync(Stream content, string? expectedSha256, bool durable, CancellationToken cancellationToken = default)
    {
        // Sync() only batches where syncfs exists.
        durable |= !OperatingSystem.IsLinux();
        var tempPath = Path.Combine(_temp, Guid.NewGuid().ToString("N"));
        try
        {
            string sha;
            long size = 0;
            await using (var file = new FileStream(tempPath, FileMode.CreateNew, FileAccess.Write, FileShare.None, BufferSize, FileOptions.Asynchronous))
            {
                using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
                var buffer = new byte[BufferSize];
                int read;
                while ((read = await content.ReadAsync(buffer, cancellationToken)) > 0)
                {
                    hash.AppendData(buffer, 0, read);
                    await file.WriteAsync(buffer.AsMemory(0, read), cancellationToken);
                    size += read;
                }
                await file.FlushAsync(cancellationToken);
                sha = Convert.ToHexStringLower(hash.GetHashAndReset());
                if (expectedSha256 is not null && sha != expectedSha256)
                {
                    throw new BlobMismatchException(expectedSha256, sha, size);
                }
                if (durable)
                {
                    file.Flush(flushToDisk: true);
                }
            }
            var target = PathOf(sha);
            var folder = Path.GetDirectoryName(target)!;
            if (File.Exists(target) && new FileInfo(target).Length == size)
            {
                File.Delete(tempPath);
            }
            else
            {
                // Absent, or present with the wrong length (a batch cut short by a power loss before its sync):
                // the content just received, verified, takes its place.
                Directory.CreateDirectory(folder);
                File.Move(tempPath, target, overwrite: true);
            }
            if (durable)
            {
                // The rename and the folders it needed must reach the disk before the database row that points at
                // the blob; also when another upload of the same content made them a moment ago.
                SyncDirectory(folder);
                SyncDirectory(Path.GetDirectoryName(folder)!);
                SyncDirectory(_root);
            }
            return new BlobInfo(sha, size);
        }
        catch
        {
            File.Delete(tempPath);
            throw;
        }
    }

    public Stream? OpenRead(string sha256)
    {
        var path = PathOf(sha256);
        // Every read is checked against the address: a blob damaged on disk fails instead of being served.
        return File.Exists(path)
            ? new VerifyingStream(new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, BufferSize, FileOptions.Asynchronous | FileOptions.SequentialScan), sha256)
            : null;
    }

    /// <summary>
    /// On Linux one syncfs commits a whole batch of blobs (data, renames and folders) at the cost of about one fsync;
    /// thousands of small files then cost what one does. Elsewhere each blob of a batch is already durable.
    /// </summary>
    public void Sync()
    {
        if (!OperatingSystem.IsLinux())
        {
            return;
        }
        var fd = NativeMethods.Open(_root, 0);
        if (fd < 0)
        {
            throw new IOException($"Cannot open the blob folder '{_root}' to make it durable.");
        }
        var synced = NativeMethods.Syncfs(fd);
        _ = NativeMethods.Close(fd);
        if (synced != 0)
        {
            throw new IOException($"syncfs of the blob store '{_root}' failed.");
        }
    }

    public Stream? OpenSeekable(string sha256)
    {
        var path = PathOf(sha256);
        return File.Exists(path) ? new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, BufferSize, FileOptions.Asynchronous) : null;
    }

    private string PathOf(string sha256) => Path.Combine(_root, sha256[..2], sha256[2..4], sha256);

    private static void SyncDirectory(string directory)
    {
        if (!OperatingSystem.IsLinux() && !OperatingSystem.IsMacOS())
        {
            return;
        }
        var fd = NativeMethods.Open(directory, 0);
        if (fd < 0)
        {
            throw new IOException($"Cannot open the blob folder '{directory}' to make it durable.");
        }
        var synced = NativeMethods.Fsync(fd);
        _ = NativeMethods.Close(fd);
        if (synced != 0)
        {
            throw new IOException($"fsync of the blob folder '{directory}' failed.");
        }
    }
}
