namespace Sextant.Client;

/// <summary>An artifact being downloaded: read <see cref="Content"/> as it streams from the server, then dispose.</summary>
public sealed class ArtifactDownload : IDisposable, IAsyncDisposable
{
    private readonly HttpResponseMessage _response;

    internal ArtifactDownload(HttpResponseMessage response, Stream content)
    {
        _response = response;
        Content = content;
    }

    /// <summary>The artifact's bytes, read from the network as they arrive.</summary>
    public Stream Content { get; }

    /// <summary>The size announced by the server (Content-Length), when it sent one.</summary>
    public long? Length => _response.Content.Headers.ContentLength;

    public void Dispose()
    {
        Content.Dispose();
        _response.Dispose();
    }

    public async ValueTask DisposeAsync()
    {
        await Content.DisposeAsync().ConfigureAwait(false);
        _response.Dispose();
    }
}
