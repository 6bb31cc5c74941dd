using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Sextant.Bench;

/// <summary>A fake provider in the benchmark's own process: a quiet Kestrel app on a free loopback port; BaseUrl ends in /v1.</summary>
internal sealed class LocalUpstream(WebApplication app, string baseUrl) : IAsyncDisposable
{
    public string BaseUrl { get; } = baseUrl;

    /// <param name="map">Maps the fake's routes (/v1/chat/completions, ...).</param>
    public static async Task<LocalUpstream> StartAsync(Action<WebApplication> map)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(k => k.Listen(IPAddress.Loopback, 0));
        var app = builder.Build();
        map(app);
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        return new LocalUpstream(app, address + "/v1");
    }

    public ValueTask DisposeAsync() => app.DisposeAsync();
}
