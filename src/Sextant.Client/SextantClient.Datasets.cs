using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using Sextant.Contracts;

namespace Sextant.Client;

/// <summary>What <see cref="SextantClient.AddDatasetAsync"/> did.</summary>
/// <param name="Created">False when the content equals the latest version's: no version was made.</param>
public sealed record DatasetAddResult(DatasetVersion Version, bool Created, int Files, int BlobsUploaded, long BytesUploaded);

// Dataset versions: /api/v1/datasets and /api/v1/blobs. Files are hashed and sent in parallel; only content the
// project does not hold yet is uploaded; downloads are verified by hash before a file takes its final name.
public sealed partial class SextantClient
{
    private const int FrameHeader = 72;
    private const int MaxBatchBlobs = 2000;
    private const long MaxBatchBytes = 32L << 20;
    private const int HashChunk = 10_000;

    /// <summary>Called between hashing and uploading (tests change a file there).</summary>
    internal Func<Task>? AfterHashingForTests { get; set; }

    /// <summary>How long making a version may take (the server profiles its tables meanwhile).</summary>
    public TimeSpan DatasetVersionTimeout { get; init; } = TimeSpan.FromMinutes(30);

    /// <summary>How many files are hashed and batches sent at once.</summary>
    public int DataParallelism { get; init; } = Math.Max(2, Environment.ProcessorCount);

    /// <summary>
    /// Adds a file or a folder (recursively) as a new version of dataset <paramref name="name"/>, unless its content
    /// equals the latest version's. A file that changes while it is being added fails the add, naming the file.
    /// </summary>
    public async Task<DatasetAddResult> AddDatasetAsync(string path, string name, string? message = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentException.ThrowIfNullOrEmpty(name);
        var files = LocalFiles(path);
        var entries = new ManifestEntry[files.Count];
        await Parallel.ForEachAsync(Enumerable.Range(0, files.Count), new ParallelOptions { MaxDegreeOfParallelism = DataParallelism, CancellationToken = cancellationToken },
            async (i, ct) => entries[i] = await HashFileAsync(files[i].FullPath, files[i].Relative, ct).ConfigureAwait(false)).ConfigureAwait(false);
        var manifest = entries.ToList();
        if (DatasetManifest.Validate(manifest) is { } problem)
        {
            throw new ArgumentException($"Cannot add '{path}': {problem}.", nameof(path));
        }
        if (AfterHashingForTests is { } hook)
        {
            await hook().ConfigureAwait(false);
        }
        var canonical = DatasetManifest.Serialize(manifest);
        var digest = DatasetManifest.Digest(canonical);
        var latest = await TryGetLatestDatasetVersionAsync(name, cancellationToken).ConfigureAwait(false);
        if (latest?.Digest == digest)
        {
            return new DatasetAddResult(latest, false, manifest.Count, 0, 0);
        }

        var bySha = new Dictionary<string, (string FullPath, string Relative, long Size)>(StringComparer.Ordinal);
        var localByRelative = files.ToDictionary(f => f.Relative, f => f.FullPath, StringComparer.Ordinal);
        foreach (var entry in manifest)
        {
            bySha.TryAdd(entry.Sha256, (localByRelative[entry.Path], entry.Path, entry.Size));
        }
        var missing = new List<string>();
        foreach (var chunk in bySha.Keys.Chunk(HashChunk))
        {
            var answer = await PostJsonAsync("api/v1/blobs/missing", new BlobListRequest(chunk), Wire.BlobListRequest, Wire.MissingBlobsResponse, cancellationToken).ConfigureAwait(false);
            missing.AddRange(answer.Missing);
        }
        var batches = Batches(missing.Select(sha => (sha, bySha[sha].Size)));
        long uploaded = 0;
        await Parallel.ForEachAsync(batches, new ParallelOptions { MaxDegreeOfParallelism = Math.Min(4, DataParallelism), CancellationToken = cancellationToken },
            async (batch, ct) =>
            {
                var items = batch.Select(b => new UploadItem(b.Sha, b.Size, bySha[b.Sha].Relative, () => OpenLocal(bySha[b.Sha].FullPath))).ToList();
                await UploadBatchAsync(items, ct).ConfigureAwait(false);
                Interlocked.Add(ref uploaded, batch.Sum(b => b.Size));
            }).ConfigureAwait(false);
        await UploadBatchAsync([new UploadItem(digest, canonical.Length, "(manifest)", () => new MemoryStream(canonical, writable: false))], cancellationToken).ConfigureAwait(false);
        // Making the version profiles its tables on the server (up to 200 files of up to 1 GiB): it may take long.
        var created = await SendJsonAsync(HttpMethod.Post, $"api/v1/datasets/{Segment(name)}/versions",
            System.Net.Http.Json.JsonContent.Create(new CreateDatasetVersionRequest(digest, message), Wire.CreateDatasetVersionRequest), null,
            Wire.CreateDatasetVersionResponse, cancellationToken, DatasetVersionTimeout).ConfigureAwait(false);
        return new DatasetAddResult(created.Version, created.Created, manifest.Count, missing.Count, uploaded);
    }

    private static FileStream OpenLocal(string path) =>
        new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.Asynchronous | FileOptions.SequentialScan);

    private async Task<DatasetVersion?> TryGetLatestDatasetVersionAsync(string name, CancellationToken cancellationToken)
    {
        try
        {
            return await GetDatasetVersionAsync(name, "latest", cancellationToken).ConfigureAwait(false);
        }
        catch (SextantApiException e) when (IsNotFound(e))
        {
            return null;
        }
    }

    private sealed record LocalFile(string FullPath, string Relative);

    /// <summary>The files to add: one file, or every file under a folder. Links must point inside the folder.</summary>
    private static List<LocalFile> LocalFiles(string path)
    {
        var full = Path.GetFullPath(path);
        if (File.Exists(full))
        {
            return [new LocalFile(full, Path.GetFileName(full))];
        }
        if (!Directory.Exists(full))
        {
            throw new FileNotFoundException($"No file or folder at '{path}'.", path);
        }
        var root = Path.TrimEndingDirectorySeparator(full) + Path.DirectorySeparatorChar;
        var result = new List<LocalFile>();
        var options = new EnumerationOptions { RecurseSubdirectories = true, IgnoreInaccessible = false, AttributesToSkip = 0, ReturnSpecialDirectories = false };
        foreach (var info in new DirectoryInfo(full).EnumerateFileSystemInfos("*", options))
        {
            var relative = Path.GetRelativePath(full, info.FullName).Replace(Path.DirectorySeparatorChar, '/');
            if (info.LinkTarget is not null)
            {
                var target = info.ResolveLinkTarget(returnFinalTarget: true);
                if (target is null || !target.Exists || !target.FullName.StartsWith(root, StringComparison.Ordinal))
                {
                    throw new IOException($"'{relative}' is a link to '{info.LinkTarget}', outside the folder being added (or to nothing); a dataset holds only what is inside its folder.");
                }
                if (target is DirectoryInfo)
                {
                    throw new IOException($"'{relative}' is a link to a folder inside the dataset; its files are added through the folder itself, so remove the link.");
                }
            }
            if (info is FileInfo && !IsRegularFile(info.FullName))
            {
                // A FIFO would block the add forever; sockets and devices are not data either.
                throw new IOException($"'{relative}' is not a regular file (a pipe, socket or device); a dataset holds regular files only.");
            }
            if (info is FileInfo)
            {
                if (Path.DirectorySeparatorChar != '\\' && relative.Contains('\\', StringComparison.Ordinal))
                {
                    throw new IOException($"'{relative}' has a backslash in its name, which is not portable; rename it.");
                }
                result.Add(new LocalFile(info.FullName, relative));
            }
        }
        return result;
    }

    /// <summary>Whether a path (links followed) is a regular file. Linux asks statx; elsewhere every file counts as one.</summary>
    private static bool IsRegularFile(string path)
    {
        if (!OperatingSystem.IsLinux())
        {
            return true;
        }
        var buffer = new byte[256];
        // statx(AT_FDCWD, path, follow links, STATX_TYPE): stx_mode is the 16 bits at offset 28 on every architecture.
        if (NativeMethods.Statx(-100, path, 0, 1, buffer) != 0)
        {
            return true;
        }
        var mode = BitConverter.ToUInt16(buffer, 28);
        return (mode & 0xF000) == 0x8000;
    }

    private static async Task<ManifestEntry> HashFileAsync(string fullPath, string relative, CancellationToken cancellationToken)
    {
        var before = File.GetLastWriteTimeUtc(fullPath);
        long size;
        string sha;
        await using (var stream = OpenLocal(fullPath))
        {
            size = stream.Length;
            sha = Convert.ToHexStringLower(await SHA256.HashDataAsync(stream, cancellationToken).ConfigureAwait(false));
            if (stream.Position != size || stream.Length != size)
            {
                throw new IOException($"'{relative}' changed while being added (its size went from {size} to {stream.Length} bytes); add it again once it is stable.");
            }
        }
        if (File.GetLastWriteTimeUtc(fullPath) != before)
        {
            throw new IOException($"'{relative}' changed while being added (it was written to while being hashed); add it again once it is stable.");
        }
        return new ManifestEntry(relative, size, sha);
    }

    private static List<List<(string Sha, long Size)>> Batches(IEnumerable<(string Sha, long Size)> blobs)
    {
        var batches = new List<List<(string, long)>>();
        var current = new List<(string, long)>();
        long bytes = 0;
        foreach (var blob in blobs)
        {
            if (current.Count > 0 && (current.Count >= MaxBatchBlobs || bytes + blob.Size > MaxBatchBytes))
            {
                batches.Add(current);
                current = [];
                bytes = 0;
            }
            current.Add(blob);
            bytes += blob.Size;
        }
        if (current.Count > 0)
        {
            batches.Add(current);
        }
        return batches;
    }

    private sealed record UploadItem(string Sha256, long Size, string Label, Func<Stream> Open);

    private async Task UploadBatchAsync(IReadOnlyList<UploadItem> items, CancellationToken cancellationToken)
    {
        using var body = new FramedUploadContent(items);
        try
        {
            using var response = await SendStreamingAsync(HttpMethod.Post, "api/v1/blobs", body, cancellationToken).ConfigureAwait(false);
        }
        catch (SextantApiException e) when (e.StatusCode == HttpStatusCode.BadRequest && e.Field == "body")
        {
            // The server found a blob that does not hash as declared: say which file changed.
            foreach (var item in items)
            {
                await using var stream = item.Open();
                var now = Convert.ToHexStringLower(await SHA256.HashDataAsync(stream, cancellationToken).ConfigureAwait(false));
                if (now != item.Sha256)
                {
                    throw new IOException($"'{item.Label}' changed while being added (its content no longer matches the hash taken at the start); add it again once it is stable.", e);
                }
            }
            throw;
        }
        catch (HttpRequestException e) when (e.InnerException is IOException { Data: var data } inner && data.Contains("sextant.label"))
        {
            throw new IOException(inner.Message, e);
        }
    }

    /// <summary>The blob framing, streamed: each file is read as it is sent, exactly its declared length.</summary>
    private sealed class FramedUploadContent : HttpContent
    {
        private readonly IReadOnlyList<UploadItem> _items;

        public FramedUploadContent(IReadOnlyList<UploadItem> items)
        {
            _items = items;
            Headers.ContentType = new MediaTypeHeaderValue("application/vnd.sextant.blobs");
        }

        protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context, CancellationToken cancellationToken)
        {
            var header = new byte[FrameHeader];
            var buffer = new byte[1 << 16];
            foreach (var item in _items)
            {
                Encoding.ASCII.GetBytes(item.Sha256, header);
                BinaryPrimitives.WriteInt64LittleEndian(header.AsSpan(64), item.Size);
                await stream.WriteAsync(header, cancellationToken).ConfigureAwait(false);
                await using var source = item.Open();
                var left = item.Size;
                while (left > 0)
                {
                    var read = await source.ReadAsync(buffer.AsMemory(0, (int)Math.Min(buffer.Length, left)), cancellationToken).ConfigureAwait(false);
                    if (read == 0)
                    {
                        var error = new IOException($"'{item.Label}' changed while being added (it is now shorter than the {item.Size} bytes hashed at the start); add it again once it is stable.");
                        error.Data["sextant.label"] = item.Label;
                        throw error;
                    }
                    await stream.WriteAsync(buffer.AsMemory(0, read), cancellationToken).ConfigureAwait(false);
                    left -= read;
                }
            }
        }

        protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) => SerializeToStreamAsync(stream, context, CancellationToken.None);

        protected override bool TryComputeLength(out long length)
        {
            length = _items.Sum(i => FrameHeader + i.Size);
            return true;
        }
    }

    /// <summary>
    /// Records that run <paramref name="runId"/> read a dataset version (NAME, NAME@3 or datasets:/NAME@3; the latest
    /// when no version is given). Lineage then leads from the version to the run and whatever the run produced.
    /// </summary>
    public async Task LogDatasetInputAsync(string runId, string dataset, string? context = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(runId);
        ArgumentException.ThrowIfNullOrEmpty(dataset);
        var uri = dataset.StartsWith("datasets:/", StringComparison.Ordinal) ? dataset : "datasets:/" + dataset;
        var name = uri["datasets:/".Length..].Split('@')[0];
        var tags = context is null ? null : new List<KeyValue> { new("mlflow.data.context", context) };
        // The server fills in the version's digest and canonical URI.
        await PostJsonAsync("api/2.0/mlflow/runs/log-inputs",
            new LogInputsRequest(runId, [new DatasetInput(tags, new Dataset(name, "-", "sextant", uri))]), Wire.LogInputsRequest, Wire.EmptyResponse, cancellationToken).ConfigureAwait(false);
    }

    public Task<DatasetInfo> GetDatasetAsync(string name, CancellationToken cancellationToken = default) =>
        GetJsonAsync($"api/v1/datasets/{Segment(name)}", Wire.DatasetInfo, cancellationToken);

    public Task<DatasetsResponse> ListDatasetsAsync(string? filter = null, int? maxResults = null, string? pageToken = null, CancellationToken cancellationToken = default) =>
        GetJsonAsync($"api/v1/datasets{Query(("filter", filter), ("max_results", maxResults?.ToString(System.Globalization.CultureInfo.InvariantCulture)), ("page_token", pageToken))}",
            Wire.DatasetsResponse, cancellationToken);

    /// <param name="version">A number, v&lt;N&gt; or latest.</param>
    public Task<DatasetVersion> GetDatasetVersionAsync(string name, string version = "latest", CancellationToken cancellationToken = default) =>
        GetJsonAsync($"api/v1/datasets/{Segment(name)}/versions/{Segment(version)}", Wire.DatasetVersion, cancellationToken);

    public Task<DatasetVersionsResponse> ListDatasetVersionsAsync(string name, int? maxResults = null, string? pageToken = null, CancellationToken cancellationToken = default) =>
        GetJsonAsync($"api/v1/datasets/{Segment(name)}/versions{Query(("max_results", maxResults?.ToString(System.Globalization.CultureInfo.InvariantCulture)), ("page_token", pageToken))}",
            Wire.DatasetVersionsResponse, cancellationToken);

    public Task<DatasetProfile> GetDatasetProfileAsync(string name, string version = "latest", CancellationToken cancellationToken = default) =>
        GetJsonAsync($"api/v1/datasets/{Segment(name)}/versions/{Segment(version)}/profile", Wire.DatasetProfile, cancellationToken);

    public Task<DatasetDiff> DiffDatasetAsync(string name, string from, string to = "latest", CancellationToken cancellationToken = default) =>
        GetJsonAsync($"api/v1/datasets/{Segment(name)}/diff{Query(("from", from), ("to", to))}", Wire.DatasetDiff, cancellationToken);

    public async Task<IReadOnlyList<ManifestEntry>> GetDatasetManifestAsync(string name, string version = "latest", CancellationToken cancellationToken = default)
    {
        using var response = await SendStreamingAsync(HttpMethod.Get, $"api/v1/datasets/{Segment(name)}/versions/{Segment(version)}/manifest", null, cancellationToken).ConfigureAwait(false);
        var bytes = await response.Content.ReadAsByteArrayAsync(cancellationToken).ConfigureAwait(false);
        var files = DatasetManifest.Parse(bytes);
        // Never trust a path to stay inside the output folder: check as the server did.
        if (DatasetManifest.Validate(files) is { } problem)
        {
            throw new InvalidDataException($"The manifest of {name}@{version} is not valid: {problem}.");
        }
        return files;
    }

    /// <summary>
    /// Restores a version into <paramref name="outputDirectory"/> (which must be empty or absent): every file is
    /// checked against its SHA-256 before it takes its name. Returns the version restored.
    /// </summary>
    public async Task<DatasetVersion> DownloadDatasetAsync(string name, string version, string outputDirectory, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(outputDirectory);
        var resolved = await GetDatasetVersionAsync(name, version, cancellationToken).ConfigureAwait(false);
        var number = resolved.Version.ToString(System.Globalization.CultureInfo.InvariantCulture);
        var files = await GetDatasetManifestAsync(name, number, cancellationToken).ConfigureAwait(false);
        var root = Path.GetFullPath(outputDirectory);
        if (Directory.Exists(root) && Directory.EnumerateFileSystemEntries(root).Any())
        {
            throw new IOException($"'{outputDirectory}' is not empty; restore into an empty or new folder.");
        }
        Directory.CreateDirectory(root);
        var rootPrefix = Path.TrimEndingDirectorySeparator(root) + Path.DirectorySeparatorChar;
        string Target(ManifestEntry f)
        {
            var target = Path.GetFullPath(Path.Combine(root, f.Path.Replace('/', Path.DirectorySeparatorChar)));
            return target.StartsWith(rootPrefix, StringComparison.Ordinal) ? target : throw new InvalidDataException($"'{f.Path}' would escape '{outputDirectory}'.");
        }
        var groups = files.GroupBy(f => f.Sha256, StringComparer.Ordinal).ToList();
        var firstTargets = new ConcurrentDictionary<string, string>(StringComparer.Ordinal);
        var small = groups.Where(g => g.First().Size <= 4L << 20).Select(g => (g.Key, g.First().Size)).ToList();
        var large = groups.Where(g => g.First().Size > 4L << 20).ToList();
        var paths = groups.ToDictionary(g => g.Key, g => Target(g.First()), StringComparer.Ordinal);
        var options = new ParallelOptions { MaxDegreeOfParallelism = Math.Min(4, DataParallelism), CancellationToken = cancellationToken };
        await Parallel.ForEachAsync(Batches(small), options, async (batch, ct) =>
        {
            using var response = await SendStreamingAsync(HttpMethod.Post, "api/v1/blobs/read",
                System.Net.Http.Json.JsonContent.Create(new BlobListRequest([.. batch.Select(b => b.Sha)]), Wire.BlobListRequest), ct).ConfigureAwait(false);
            await using var stream = await response.Content.ReadAsStreamAsync(ct).ConfigureAwait(false);
            var header = new byte[FrameHeader];
            foreach (var (sha, size) in batch)
            {
                await stream.ReadExactlyAsync(header, ct).ConfigureAwait(false);
                var got = Encoding.ASCII.GetString(header, 0, 64);
                var length = BinaryPrimitives.ReadInt64LittleEndian(header.AsSpan(64));
                if (got != sha || length != size)
                {
                    throw new InvalidDataException($"The server sent blob {got} ({length} bytes) where {sha} ({size} bytes) was expected.");
                }
                await WriteVerifiedAsync(stream, size, sha, paths[sha], ct).ConfigureAwait(false);
            }
        }).ConfigureAwait(false);
        await Parallel.ForEachAsync(large, options, async (group, ct) =>
        {
            using var response = await SendStreamingAsync(HttpMethod.Get, $"api/v1/blobs/{group.Key}", null, ct).ConfigureAwait(false);
            await using var stream = await response.Content.ReadAsStreamAsync(ct).ConfigureAwait(false);
            await WriteVerifiedAsync(stream, group.First().Size, group.Key, paths[group.Key], ct).ConfigureAwait(false);
        }).ConfigureAwait(false);
        // Files with the same content as another are copies of the one downloaded.
        foreach (var group in groups)
        {
            foreach (var file in group.Skip(1))
            {
                var target = Target(file);
                Directory.CreateDirectory(Path.GetDirectoryName(target)!);
                File.Copy(paths[group.Key], target);
            }
        }
        return resolved;
    }

    /// <summary>Copies exactly <paramref name="size"/> bytes into a temporary file, checks the hash, then renames it into place.</summary>
    private static async Task WriteVerifiedAsync(Stream source, long size, string sha, string target, CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(target)!);
        // A name no file of the dataset can have: only this call's own file is ever deleted.
        var temp = Path.Combine(Path.GetDirectoryName(target)!, $".sextant-{Guid.NewGuid():N}.partial");
        try
        {
            using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            await using (var file = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, FileOptions.Asynchronous))
            {
                var buffer = new byte[1 << 16];
                var left = size;
                while (left > 0)
                {
                    var read = await source.ReadAsync(buffer.AsMemory(0, (int)Math.Min(buffer.Length, left)), cancellationToken).ConfigureAwait(false);
                    if (read == 0)
                    {
                        throw new IOException($"The download of '{Path.GetFileName(target)}' ended after {size - left} of {size} bytes (the server may have found its blob damaged).");
                    }
                    hash.AppendData(buffer, 0, read);
                    await file.WriteAsync(buffer.AsMemory(0, read), cancellationToken).ConfigureAwait(false);
                    left -= read;
                }
            }
            var actual = Convert.ToHexStringLower(hash.GetHashAndReset());
            if (actual != sha)
            {
                throw new InvalidDataException($"'{Path.GetFileName(target)}' arrived with SHA-256 {actual}, not {sha}; it was not written.");
            }
            File.Move(temp, target);
        }
        finally
        {
            File.Delete(temp);
        }
    }
}
