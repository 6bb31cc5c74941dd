using System.Net;
using System.Net.Http.Headers;
using System.Text.RegularExpressions;
using Sextant.Server;
using Sextant.Core.Tests.Storage;

namespace Sextant.Client.Tests.Cli;

/// <summary>
/// The first key of a server that listens beyond loopback is written straight into its data directory,
/// then that server starts, refuses anonymous callers and accepts the key.
/// </summary>
[Collection(ConsoleCollection.Name)]
public sealed partial class KeysBootstrapTests : IDisposable
{
    private readonly string _data = Path.Combine(Path.GetTempPath(), "sextant-bootstrap-" + Guid.NewGuid().ToString("N")[..8]);

    [GeneratedRegex(@"Secret: (\S+)")]
    private static partial Regex SecretLine();

    [Fact]
    public async Task Keys_create_with_data_bootstraps_a_server_bound_beyond_loopback()
    {
        var unused = new Uri("http://127.0.0.1:9/");
        var created = await CliRunner.RunAsync(unused, "keys", "create", "--data", _data, "--name", "bootstrap", "--role", "admin");
        Assert.Equal(0, created.ExitCode);
        var secret = SecretLine().Match(created.Out).Groups[1].Value;
        Assert.StartsWith("sx_", secret, StringComparison.Ordinal);

        // Listens on every interface, but the test only ever talks to 127.0.0.1.
        await using var server = await SextantServer.StartAsync(new SextantServerOptions { Host = "0.0.0.0", Port = FreePort.Next(), DataDirectory = _data });
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{server.Address.Port}/") };
        Assert.Equal(HttpStatusCode.Unauthorized, (await http.GetAsync("/api/v1/whoami")).StatusCode);
        using var request = new HttpRequestMessage(HttpMethod.Get, "/api/v1/whoami");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", secret);
        var answer = await http.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, answer.StatusCode);
        Assert.Contains("\"role\":\"admin\"", await answer.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(_data, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
