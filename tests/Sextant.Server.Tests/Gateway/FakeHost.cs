using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Sextant.Server.Tests.Gateway;

/// <summary>A small Kestrel app on a free loopback port, quiet, for the fake providers the tests start.</summary>
internal static class FakeHost
{
    /// <param name="map">Maps the fake's routes.</param>
    /// <returns>The running app and its address (http://127.0.0.1:PORT, no trailing slash).</returns>
    public static async Task<(WebApplication App, string Address)> StartAsync(Action<WebApplication> map)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(k => k.Listen(System.Net.IPAddress.Loopback, 0));
        var app = builder.Build();
        map(app);
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        return (app, address.Replace("[::]", "127.0.0.1", StringComparison.Ordinal));
    }
}
