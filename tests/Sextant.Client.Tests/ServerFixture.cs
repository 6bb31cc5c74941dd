using Sextant.Client;
using Sextant.Server;

namespace Sextant.Client.Tests;

/// <summary>A real Sextant server on 127.0.0.1 (free port) over a temporary data directory, one per test class.</summary>
public sealed class ServerFixture : IAsyncLifetime
{
    private readonly string _dataDirectory = Path.Combine(Path.GetTempPath(), "sextant-client-tests-" + Guid.NewGuid().ToString("N"));

    public SextantServer Server { get; private set; } = null!;

    public Uri Address => Server.Address;

    public string DataDirectory => _dataDirectory;

    /// <summary>A client of this server; anonymous (admin of the default project on loopback) without a key.</summary>
    public SextantClient CreateClient(string? apiKey = null) => new(Server.Address, apiKey);

    public async Task InitializeAsync() =>
        Server = await SextantServer.StartAsync(new SextantServerOptions { Port = 0, DataDirectory = _dataDirectory });

    public async Task DisposeAsync()
    {
        await Server.DisposeAsync();
        try
        {
            Directory.Delete(_dataDirectory, recursive: true);
        }
        catch (IOException)
        {
            // A file still held open by the OS; the temp folder is cleaned up eventually.
        }
    }
}
