using System.Net;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.Extensions.Options;
using Microsoft.OpenApi;
using Sextant.Contracts;
using Sextant.Core;
using Sextant.Core.Artifacts;
using Sextant.Core.Datasets;
using Sextant.Core.Lineage;
using Sextant.Core.Prompts;
using Sextant.Core.Registry;
using Sextant.Core.Projects;
using Sextant.Core.Storage;
using Sextant.Core.Tracking;
using Sextant.Core.Tracing;
using Sextant.Server.Artifacts;
using Sextant.Core.Evaluation;
using Sextant.Server.Datasets;
using Sextant.Server.Evaluation;
using Sextant.Server.Gateway;
using Sextant.Server.Http;
using Sextant.Server.Projects;
using Sextant.Server.Prompts;
using Sextant.Server.Registry;
using Sextant.Server.Tracking;
using Sextant.Server.Tracing;
using Sextant.Web;

namespace Sextant.Server;

/// <summary>
/// The Sextant server as a library: the CLI and the tests start it in-process with
/// <see cref="StartAsync"/> and stop it by disposing it.
/// </summary>
public sealed class SextantServer : IAsyncDisposable
{
    private readonly WebApplication _app;

    private SextantServer(WebApplication app, Uri address, DatabaseUri database)
    {
        _app = app;
        Address = address;
        Database = database;
    }

    /// <summary>The base address the server listens on, e.g. http://127.0.0.1:5000/.</summary>
    public Uri Address { get; }

    public DatabaseUri Database { get; }

    public IServiceProvider Services => _app.Services;

    public static async Task<SextantServer> StartAsync(SextantServerOptions options, CancellationToken cancellationToken = default)
    {
        // Before the server's threads start allocating: two C-heap arenas, as MALLOC_ARENA_MAX=2 would (NativeHeap).
        NativeHeap.LimitArenas(2);
        var dataDirectory = Path.GetFullPath(options.DataDirectory);
        Directory.CreateDirectory(dataDirectory);
        var databaseUri = options.DatabaseUri is { Length: > 0 } uri
            ? DatabaseUri.Parse(uri)
            : DatabaseUri.Sqlite(Path.Combine(dataDirectory, "sextant.db"));
        var loopback = EndpointHelpers.IsLoopbackHost(options.Host);

        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { ContentRootPath = AppContext.BaseDirectory });
        builder.Logging.ClearProviders();
        if (options.ConsoleLogging)
        {
            builder.Logging.AddSimpleConsole(o => o.SingleLine = true);
            builder.Logging.SetMinimumLevel(LogLevel.Warning);
            // Its request lines are below Warning anyway; while it is enabled at all, ASP.NET Core starts an Activity for
            // every request (and HttpClient a child one for every gateway call upstream), which costs each call
            // allocations for log correlation that nothing here reads.
            builder.Logging.AddFilter("Microsoft.AspNetCore.Hosting.Diagnostics", LogLevel.None);
        }
        builder.WebHost.UseKestrel(kestrel =>
        {
            // Artifact uploads stream without a size limit; JSON bodies have their own limit (JsonBody).
            kestrel.Limits.MaxRequestBodySize = null;
            kestrel.AddServerHeader = false;
            if (options.Host is "localhost")
            {
                kestrel.ListenLocalhost(options.Port);
            }
            else
            {
                kestrel.Listen(IPAddress.Parse(options.Host), options.Port);
            }
        });
        builder.Services.AddSingleton(Options.Create(options));
        builder.Services.AddSingleton(options.Tracking);
        builder.Services.AddSingleton(new SextantDatabase(databaseUri));
        builder.Services.AddSingleton<ProjectService>();
        builder.Services.AddSingleton<TrackingWriter>();
        builder.Services.AddSingleton<TrackingService>();
        builder.Services.AddSingleton<IBlobStore>(new LocalBlobStore(Path.Combine(dataDirectory, "blobs")));
        builder.Services.AddSingleton<ArtifactService>();
        builder.Services.AddSingleton<RegistryService>();
        builder.Services.AddSingleton<LineageService>();
        builder.Services.AddSingleton<DatasetService>();
        builder.Services.AddSingleton(s => new SpanWriter(s.GetRequiredService<SextantDatabase>(), options.SyncSpans));
        builder.Services.AddSingleton<PriceCatalog>();
        builder.Services.AddSingleton<TraceService>();
        builder.Services.AddSingleton<PromptService>();
        // Provider keys are encrypted with keys kept in the data directory (share it, or the keys folder, between replicas).
        builder.Services.AddDataProtection().SetApplicationName("sextant").PersistKeysToFileSystem(new DirectoryInfo(Path.Combine(dataDirectory, "keys")));
        builder.Services.AddSingleton(GatewayRegistry.LoadFile(options.GatewayConfigPath ?? Path.Combine(dataDirectory, "gateway.json"), options.GatewayConfigPath is not null));
        builder.Services.AddSingleton<GatewayRegistry>();
        if (options.Redis is { Length: > 0 } redis)
        {
            var configuration = StackExchange.Redis.ConfigurationOptions.Parse(redis);
            // The server starts while Redis is down; the limits are counted in this process until it is back.
            configuration.AbortOnConnectFail = false;
            builder.Services.AddSingleton<StackExchange.Redis.IConnectionMultiplexer>(await StackExchange.Redis.ConnectionMultiplexer.ConnectAsync(configuration));
            builder.Services.AddSingleton<ILimitCounters, RedisLimitCounters>();
        }
        else
        {
            builder.Services.AddSingleton<ILimitCounters, InProcessLimitCounters>();
        }
        builder.Services.AddSingleton(s => new GatewayLimiter(s.GetRequiredService<SextantDatabase>(), s.GetRequiredService<ILimitCounters>(),
            s.GetService<StackExchange.Redis.IConnectionMultiplexer>()));
        builder.Services.AddSingleton<GatewayCache>();
        builder.Services.AddSingleton<GatewayRecorder>();
        builder.Services.AddSingleton<GatewayProxy>();
        builder.Services.AddSingleton<IGatewayCaller, GatewayCaller>();
        builder.Services.AddSingleton<EvalDatasetService>();
        builder.Services.AddSingleton<ExperimentService>();
        builder.Services.AddSingleton<ScoreService>();
        builder.Services.AddHostedService<ExperimentWorker>();
        builder.Services.AddHostedService<OnlineEvalWorker>();
        builder.Services.AddSingleton(new AccessPolicy((loopback || options.AllowAnonymous) && !options.RequireKeys, AnonymousFromAnywhere: options.AllowAnonymous && !options.RequireKeys));
        builder.Services.AddSextantWeb();
        builder.Services.ConfigureHttpJsonOptions(json =>
        {
            // The same contract as SextantJsonContext, so the OpenAPI schemas show the names on the wire.
            json.SerializerOptions.TypeInfoResolverChain.Insert(0, SextantJsonContext.Default);
            json.SerializerOptions.PropertyNamingPolicy = System.Text.Json.JsonNamingPolicy.SnakeCaseLower;
            json.SerializerOptions.DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull;
        });
        builder.Services.AddOpenApi(openApi =>
        {
            openApi.AddDocumentTransformer((document, _, _) =>
            {
                document.Info.Title = "Sextant API";
                document.Info.Description = "Native /api/v1 routes and MLflow-compatible /api/2.0/mlflow routes.";
                return Task.CompletedTask;
            });
            openApi.AddOperationTransformer(async (operation, context, cancellationToken) =>
            {
                if (context.Description.ActionDescriptor.EndpointMetadata.OfType<JsonRequestBodyMetadata>().FirstOrDefault() is { } body)
                {
                    var schema = await context.GetOrCreateSchemaAsync(body.Type, null, cancellationToken);
                    operation.RequestBody = new OpenApiRequestBody
                    {
                        Required = true,
                        Content = new Dictionary<string, OpenApiMediaType> { ["application/json"] = new() { Schema = schema } },
                    };
                }
            });
        });

        var app = builder.Build();
        try
        {
            var database = app.Services.GetRequiredService<SextantDatabase>();
            await database.MigrateAsync(cancellationToken);
            database.StartBackgroundCheckpoints();
            // A gateway configuration file with a mistake fails here, at start-up, not on the first call.
            _ = app.Services.GetRequiredService<GatewayRegistry>();
            var projects = app.Services.GetRequiredService<ProjectService>();
            await projects.EnsureDefaultProjectAsync(cancellationToken);
            if ((options.RequireKeys || (!loopback && !options.AllowAnonymous)) && !await projects.AnyKeyAsync(cancellationToken))
            {
                throw new SextantException(ErrorCodes.PermissionDenied,
                    $"Refusing to listen on {options.Host} without authentication: no API key exists. Create one with 'sextant keys create --data {options.DataDirectory} --name admin --role admin', or pass --allow-anonymous.",
                    403);
            }

            app.UseMiddleware<ErrorHandlingMiddleware>();
            app.UseSextantWebHeaders();
            app.UseSextantWebAssets();
            app.UseMiddleware<CallerMiddleware>();
            app.UseAntiforgery();
            app.MapGet("/healthz", () => ApiResults.Empty()).Describe("Health", "The process is up", "Health").ExcludeFromDescription();
            app.MapGet("/readyz", async (SextantDatabase db, CancellationToken ct) =>
                {
                    await using var connection = await db.OpenAsync(ct);
                    await using var command = connection.CreateCommand();
                    command.CommandText = "SELECT 1";
                    await command.ExecuteScalarAsync(ct);
                    return ApiResults.Empty();
                })
                .Describe("Ready", "The server can reach its database", "Health");
            app.MapOpenApi("/openapi/v1.json");
            app.MapProjectEndpoints();
            app.MapTrackingEndpoints();
            app.MapMlflowTrackingEndpoints();
            app.MapArtifactEndpoints();
            app.MapRegistryEndpoints();
            app.MapDatasetEndpoints();
            app.MapTraceEndpoints();
            app.MapOtlpEndpoints();
            app.MapGatewayEndpoints();
            app.MapPromptEndpoints();
            app.MapEvalEndpoints();
            app.MapSextantWeb();
            app.MapFallback((HttpContext ctx) => ApiResults.Error(404, ErrorCodes.EndpointNotFound,
                    $"No route {ctx.Request.Method} {ctx.Request.Path}; see /openapi/v1.json for the API."))
                .ExcludeFromDescription();

            await app.StartAsync(cancellationToken);
            var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
            return new SextantServer(app, new Uri(address.Replace("[::]", "127.0.0.1", StringComparison.Ordinal).TrimEnd('/') + "/"), databaseUri);
        }
        catch
        {
            // A server that failed to start (a migration, a refused bind) releases what it opened.
            await app.DisposeAsync();
            throw;
        }
    }

    public Task WaitForShutdownAsync(CancellationToken cancellationToken = default) => _app.WaitForShutdownAsync(cancellationToken);

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        // Drain the write queue before the database goes away.
        await _app.Services.GetRequiredService<TrackingWriter>().DisposeAsync();
        await _app.DisposeAsync();
    }
}
