using System.Net.Http.Headers;
using Sextant.Contracts;

namespace Sextant.Client;

// Run artifacts: /api/v1/runs/{id}/artifacts. Bodies are streamed both ways; nothing is buffered whole.
public sealed partial class SextantClient
{
    /// <summary>The files and folders directly under <paramref name="path"/> (the artifact root when null).</summary>
    public Task<ListArtifactsResponse> ListArtifactsAsync(string runId, string? path = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(runId);
        return GetJsonAsync($"api/v1/runs/{Segment(runId)}/artifacts{Query(("path", path))}", Wire.ListArtifactsResponse, cancellationToken);
    }

    /// <summary>Uploads <paramref name="content"/> from its current position to the end as the artifact at <paramref name="artifactPath"/>.</summary>
    /// <remarks><paramref name="content"/> is not disposed: it stays the caller's, read up to its end (or as far as the upload got).</remarks>
    public async Task UploadArtifactAsync(string runId, string artifactPath, Stream content, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(runId);
        ArgumentException.ThrowIfNullOrEmpty(artifactPath);
        ArgumentNullException.ThrowIfNull(content);
        var uri = ArtifactUri(runId, artifactPath);
        // StreamContent reads as it sends; it announces Content-Length when the stream can seek. It also disposes the
        // stream it sends, hence the non-owning view.
        using var body = new StreamContent(new NonOwningStream(content), 81920);
        body.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        using var response = await SendStreamingAsync(HttpMethod.Put, uri, body, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Starts downloading an artifact; read its <see cref="ArtifactDownload.Content"/> and dispose it.</summary>
    public async Task<ArtifactDownload> OpenArtifactAsync(string runId, string artifactPath, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(runId);
        ArgumentException.ThrowIfNullOrEmpty(artifactPath);
        var response = await SendStreamingAsync(HttpMethod.Get, ArtifactUri(runId, artifactPath), null, cancellationToken).ConfigureAwait(false);
        try
        {
            return new ArtifactDownload(response, await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false));
        }
        catch
        {
            response.Dispose();
            throw;
        }
    }

    /// <summary>Downloads an artifact into <paramref name="destination"/>; returns the number of bytes written.</summary>
    public async Task<long> DownloadArtifactAsync(string runId, string artifactPath, Stream destination, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(destination);
        var download = await OpenArtifactAsync(runId, artifactPath, cancellationToken).ConfigureAwait(false);
        await using (download.ConfigureAwait(false))
        {
            var buffer = new byte[81920];
            long total = 0;
            int read;
            while ((read = await download.Content.ReadAsync(buffer, cancellationToken).ConfigureAwait(false)) > 0)
            {
                await destination.WriteAsync(buffer.AsMemory(0, read), cancellationToken).ConfigureAwait(false);
                total += read;
            }
            return total;
        }
    }

    private static string ArtifactUri(string runId, string artifactPath) => $"api/v1/runs/{Segment(runId)}/artifacts/{ArtifactSegments(artifactPath)}";
}
