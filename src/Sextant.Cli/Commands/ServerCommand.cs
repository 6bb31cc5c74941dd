using System.CommandLine;
using Sextant.Core;
using Sextant.Server;

namespace Sextant.Cli.Commands;

/// <summary>`sextant server`: runs the server in this process until Ctrl+C.</summary>
internal static class ServerCommand
{
    public static Command Build()
    {
        var host = new Option<string>("--host") { Description = "Address to listen on", DefaultValueFactory = _ => "127.0.0.1" };
        var port = new Option<int>("--port") { Description = "TCP port", DefaultValueFactory = _ => 5000 };
        var data = new Option<string>("--data") { Description = "Data directory (SQLite file and blob store)", DefaultValueFactory = _ => "./sextant-data" };
        var db = new Option<string?>("--db") { Description = "Database URI: sqlite:///path.db or postgresql://user@host:port/db" };
        var allowAnonymous = new Option<bool>("--allow-anonymous") { Description = "Allow unauthenticated access on a non-loopback address" };
        var requireKeys = new Option<bool>("--require-keys") { Description = "Require an API key from every caller, also on loopback (a shared machine)" };
        var gatewayConfig = new Option<string?>("--gateway-config") { Description = "The gateway's providers and routes for every project (JSON); default gateway.json in the data directory" };
        var capture = new Option<string>("--gateway-capture") { Description = "What gateway traces keep: full (messages), metadata or off", DefaultValueFactory = _ => "full" };
        capture.AcceptOnlyFromAmong("full", "metadata", "off");
        var syncSpans = new Option<bool>("--sync-spans") { Description = "SQLite: sync every span commit to disk, so acknowledged spans also survive a power cut (slower ingestion; a killed server loses none either way)" };
        var redis = new Option<string?>("--redis") { Description = "A Redis server (host:port) where the gateway counts its limits, shared by every replica; also SEXTANT_REDIS" };
        var command = new Command("server", "Run the Sextant server; the web UI is at /ui") { host, port, data, db, allowAnonymous, requireKeys, gatewayConfig, capture, syncSpans, redis };
        command.SetAction(async (parse, cancellationToken) =>
        {
            var options = new SextantServerOptions
            {
                Host = parse.GetValue(host)!,
                Port = parse.GetValue(port),
                DataDirectory = parse.GetValue(data)!,
                DatabaseUri = parse.GetValue(db) ?? Environment.GetEnvironmentVariable("SEXTANT_DB"),
                AllowAnonymous = parse.GetValue(allowAnonymous),
                RequireKeys = parse.GetValue(requireKeys),
                GatewayConfigPath = parse.GetValue(gatewayConfig),
                GatewayCapture = parse.GetValue(capture)!,
                SyncSpans = parse.GetValue(syncSpans),
                Redis = parse.GetValue(redis) ?? Environment.GetEnvironmentVariable("SEXTANT_REDIS"),
                ConsoleLogging = true,
            };
            try
            {
                await using var server = await SextantServer.StartAsync(options, cancellationToken);
                Console.WriteLine($"Sextant listening on {server.Address}, web UI at {server.Address}ui (database {server.Database.Display}, data {Path.GetFullPath(options.DataDirectory)})");
                await server.WaitForShutdownAsync(cancellationToken);
                return 0;
            }
            catch (Exception e) when (e is SextantException or FormatException or IOException or System.Net.Sockets.SocketException)
            {
                Console.Error.WriteLine($"sextant server: {e.Message}");
                return 1;
            }
        });
        return command;
    }
}
