using Sextant.Core.Tracking;

namespace Sextant.Server;

/// <summary>How a Sextant server is started: address, storage, access and limits.</summary>
public sealed class SextantServerOptions
{
    public string Host { get; set; } = "127.0.0.1";

    /// <summary>The TCP port; 0 picks a free one (tests).</summary>
    public int Port { get; set; } = 5000;

    /// <summary>Holds the SQLite file (sextant.db) and the blob store (blobs/).</summary>
    public string DataDirectory { get; set; } = "./sextant-data";

    /// <summary>sqlite:///path or postgresql://...; null means the SQLite file in the data directory.</summary>
    public string? DatabaseUri { get; set; }

    /// <summary>Allow unauthenticated callers (as admin of the default project) on a non-loopback address.</summary>
    public bool AllowAnonymous { get; set; }

    /// <summary>Refuse unauthenticated callers even on loopback (a shared machine): every request needs an API key.</summary>
    public bool RequireKeys { get; set; }

    /// <summary>The largest JSON request body accepted (MLflow's limit is 1 MB).</summary>
    public int MaxJsonBodyBytes { get; set; } = 1024 * 1024;

    public TrackingOptions Tracking { get; set; } = new();

    /// <summary>The gateway's configuration file (providers and routes for every project); null: gateway.json in the data directory, when present.</summary>
    public string? GatewayConfigPath { get; set; }

    /// <summary>What gateway spans keep of a call: full (messages and answers), metadata (no messages) or off (no messages, no parameters).</summary>
    public string GatewayCapture { get; set; } = "full";

    /// <summary>
    /// SQLite: sync the span writer's every commit to disk (synchronous=FULL), so acknowledged spans survive an
    /// operating-system crash or power loss too. Off by default: acknowledged spans survive a killed server (the
    /// commit is in the WAL file before the answer), not a power cut in the last moments before a checkpoint.
    /// </summary>
    public bool SyncSpans { get; set; }

    /// <summary>
    /// A Redis server (StackExchange.Redis configuration, e.g. 127.0.0.1:6379) that the gateway's limits are counted
    /// in, shared by every replica; null: counted in this process.
    /// </summary>
    public string? Redis { get; set; }

    /// <summary>Log requests and server events to the console.</summary>
    /// <summary>How often online evaluation rules look for new generations.</summary>
    public TimeSpan OnlineEvalInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>How old a generation must be before online evaluation looks at it (spans still arriving are not skipped).</summary>
    public TimeSpan OnlineEvalSettle { get; set; } = TimeSpan.FromSeconds(2);

    public bool ConsoleLogging { get; set; }
}
