using System.Collections.Concurrent;
using System.Text.Json;
using System.Text.RegularExpressions;
using Dapper;
using Microsoft.AspNetCore.DataProtection;
using Sextant.Contracts;
using Sextant.Core;
using Sextant.Core.Projects;
using Sextant.Core.Storage;

namespace Sextant.Server.Gateway;

/// <summary>
/// The gateway's providers and routes: those of the configuration file (every project) and each project's own
/// (API, CLI), which win by name. Provider keys are encrypted with ASP.NET Core Data Protection before they are
/// stored and are never returned. What a request needs is cached per project and dropped on every change.
/// </summary>
internal sealed partial class GatewayRegistry
{
    private readonly SextantDatabase _database;
    private readonly IDataProtector _protector;
    private readonly GatewayConfigFile _file;
    private readonly ConcurrentDictionary<long, Snapshot> _cache = new();
    private long _generation;

    /// <summary>How long a project's configuration is used before it is read again (another replica may have changed it).</summary>
    private const long SnapshotLifetimeMs = 30_000;
    private readonly ConcurrentDictionary<(long, string, string), CircuitBreaker> _breakers = new();

    public sealed record ResolvedProvider(string Name, string Kind, Uri BaseUrl, string? ApiKey)
    {
        /// <summary>The OpenAI-compatible endpoints under the base URL, made once per snapshot rather than for every call.</summary>
        public Uri ChatCompletions { get; } = Under(BaseUrl, "chat/completions");

        public Uri Embeddings { get; } = Under(BaseUrl, "embeddings");

        private static Uri Under(Uri baseUrl, string path)
        {
            var text = baseUrl.ToString();
            return new Uri(text.EndsWith('/') ? text + path : text + "/" + path);
        }
    }

    public sealed record Snapshot(IReadOnlyDictionary<string, GatewayRoute> Routes, IReadOnlyDictionary<string, ResolvedProvider> Providers, long ReadAt = 0);

    [GeneratedRegex(@"^[A-Za-z0-9][A-Za-z0-9._:\-/]{0,127}\z")]
    private static partial Regex NamePattern();

    public GatewayRegistry(SextantDatabase database, IDataProtectionProvider protection, GatewayConfigFile file)
    {
        _database = database;
        _protector = protection.CreateProtector("Sextant.Gateway.ProviderKeys");
        _file = file;
        foreach (var provider in file.Providers ?? [])
        {
            ValidateProvider(provider);
        }
        foreach (var route in file.Routes ?? [])
        {
            ValidateRoute(route);
        }
    }

    /// <summary>Reads the configuration file; the default path may be absent (no configuration), one given explicitly may not.</summary>
    public static GatewayConfigFile LoadFile(string? path, bool explicitPath = false)
    {
        if (path is null || !File.Exists(path))
        {
            return explicitPath
                ? throw new SextantException(ErrorCodes.InvalidParameterValue, $"The gateway configuration '{path}' does not exist.", 400, "gateway_config")
                : new GatewayConfigFile([], []);
        }
        try
        {
            return JsonSerializer.Deserialize(File.ReadAllText(path), SextantJsonContext.Default.GatewayConfigFile) ?? new GatewayConfigFile([], []);
        }
        catch (JsonException e)
        {
            throw new SextantException(ErrorCodes.InvalidParameterValue, $"The gateway configuration '{path}' is not valid JSON: {e.Message}", 400, "gateway_config");
        }
    }

    public CircuitBreaker Breaker(long project, string provider, string model)
    {
        if (_breakers.Count > 10_000)
        {
            // provider/model names let callers make up targets: keep the table bounded.
            _breakers.Clear();
        }
        return _breakers.GetOrAdd((project, provider, model), _ => new CircuitBreaker());
    }

    public async Task<Snapshot> SnapshotAsync(long project, CancellationToken cancellationToken)
    {
        if (_cache.TryGetValue(project, out var cached) && Environment.TickCount64 - cached.ReadAt < SnapshotLifetimeMs)
        {
            return cached;
        }
        var generation = Interlocked.Read(ref _generation);
        await using var connection = await _database.OpenAsync(cancellationToken);
        var providers = (_file.Providers ?? []).ToDictionary(p => p.Name!, p => new ResolvedProvider(p.Name!, p.Kind!, new Uri(p.BaseUrl!),
            p.ApiKey ?? (p.ApiKeyEnv is { } env ? Environment.GetEnvironmentVariable(env) : null)), StringComparer.Ordinal);
        foreach (var row in await connection.QueryAsync<(string Name, string Kind, string BaseUrl, string? Secret)>(
            "SELECT name, kind, base_url, secret FROM gateway_providers WHERE project_id = @project", new { project }))
        {
            providers[row.Name] = new ResolvedProvider(row.Name, row.Kind, new Uri(row.BaseUrl), row.Secret is null ? null : _protector.Unprotect(row.Secret));
        }
        var routes = (_file.Routes ?? []).ToDictionary(r => r.Name!, r => r with { Source = "file" }, StringComparer.Ordinal);
        foreach (var row in await connection.QueryAsync<string>("SELECT config FROM gateway_routes WHERE project_id = @project", new { project }))
        {
            var route = JsonSerializer.Deserialize(row, SextantJsonContext.Default.GatewayRoute)!;
            routes[route.Name!] = route;
        }
        var snapshot = new Snapshot(routes, providers, Environment.TickCount64);
        // A change made while this read ran must not be hidden by it.
        if (Interlocked.Read(ref _generation) == generation)
        {
            _cache[project] = snapshot;
        }
        return snapshot;
    }

    public async Task<List<GatewayProvider>> ListProvidersAsync(Caller caller, CancellationToken cancellationToken)
    {
        var snapshot = await SnapshotAsync(caller.ProjectId, cancellationToken);
        var fromApi = await ProviderNamesAsync(caller.ProjectId, cancellationToken);
        return [.. snapshot.Providers.Values.OrderBy(p => p.Name, StringComparer.Ordinal)
            .Select(p => new GatewayProvider(p.Name, p.Kind, p.BaseUrl.ToString(), HasApiKey: p.ApiKey is not null, Source: fromApi.Contains(p.Name) ? "api" : "file"))];
    }

    private async Task<HashSet<string>> ProviderNamesAsync(long project, CancellationToken cancellationToken)
    {
        await using var connection = await _database.OpenAsync(cancellationToken);
        return [.. await connection.QueryAsync<string>("SELECT name FROM gateway_providers WHERE project_id = @project", new { project })];
    }

    public async Task<List<GatewayRoute>> ListRoutesAsync(Caller caller, CancellationToken cancellationToken) =>
        [.. (await SnapshotAsync(caller.ProjectId, cancellationToken)).Routes.Values.OrderBy(r => r.Name, StringComparer.Ordinal)];

    public async Task<GatewayProvider> SetProviderAsync(Caller caller, string? name, GatewayProvider provider, CancellationToken cancellationToken)
    {
        caller.Require(Role.Admin);
        provider = provider with { Name = name ?? provider.Name };
        ValidateProvider(provider);
        await using var connection = await _database.OpenAsync(cancellationToken);
        // A provider set again without a key keeps the key it had.
        await connection.ExecuteAsync(
            """
            INSERT INTO gateway_providers (project_id, name, kind, base_url, secret, updated_time) VALUES (@project, @Name, @Kind, @BaseUrl, @secret, @now)
            ON CONFLICT (project_id, name) DO UPDATE SET kind = excluded.kind, base_url = excluded.base_url,
                secret = COALESCE(excluded.secret, gateway_providers.secret), updated_time = excluded.updated_time
            """,
            new { project = caller.ProjectId, provider.Name, provider.Kind, provider.BaseUrl, secret = provider.ApiKey is null ? null : _protector.Protect(provider.ApiKey), now = Clock.NowMs() });
        Interlocked.Increment(ref _generation);
        _cache.TryRemove(caller.ProjectId, out _);
        var stored = (await SnapshotAsync(caller.ProjectId, cancellationToken)).Providers[provider.Name!];
        return new GatewayProvider(stored.Name, stored.Kind, stored.BaseUrl.ToString(), HasApiKey: stored.ApiKey is not null);
    }

    public async Task<GatewayRoute> SetRouteAsync(Caller caller, string? name, GatewayRoute route, CancellationToken cancellationToken)
    {
        caller.Require(Role.Admin);
        route = route with { Name = name ?? route.Name, Source = "api" };
        ValidateRoute(route);
        await using var connection = await _database.OpenAsync(cancellationToken);
        await connection.ExecuteAsync(
            """
            INSERT INTO gateway_routes (project_id, name, config, updated_time) VALUES (@project, @Name, @config, @now)
            ON CONFLICT (project_id, name) DO UPDATE SET config = excluded.config, updated_time = excluded.updated_time
            """,
            new { project = caller.ProjectId, route.Name, config = JsonSerializer.Serialize(route, SextantJsonContext.Default.GatewayRoute), now = Clock.NowMs() });
        Interlocked.Increment(ref _generation);
        _cache.TryRemove(caller.ProjectId, out _);
        return route;
    }

    public async Task DeleteAsync(Caller caller, string table, string? name, CancellationToken cancellationToken)
    {
        caller.Require(Role.Admin);
        await using var connection = await _database.OpenAsync(cancellationToken);
        var deleted = await connection.ExecuteAsync($"DELETE FROM {table} WHERE project_id = @project AND name = @name", new { project = caller.ProjectId, name });
        Interlocked.Increment(ref _generation);
        _cache.TryRemove(caller.ProjectId, out _);
        if (deleted == 0)
        {
            throw SextantException.NotFound($"No {(table == "gateway_routes" ? "route" : "provider")} named '{name}' set through the API in this project.");
        }
    }

    private static void ValidateProvider(GatewayProvider provider)
    {
        if (string.IsNullOrEmpty(provider.Name) || !NamePattern().IsMatch(provider.Name))
        {
            throw SextantException.Invalid("name", $"A provider's 'name' must be 1-128 letters, digits or . _ - : /, starting with a letter or digit; got '{provider.Name}'.");
        }
        if (provider.Kind is not ("openai" or "azure" or "anthropic"))
        {
            throw SextantException.Invalid("kind", $"'kind' must be openai (any OpenAI-compatible endpoint), azure (Azure OpenAI, key in the api-key header) or anthropic (the Messages API); got '{provider.Kind}'.");
        }
        if (!Uri.TryCreate(provider.BaseUrl, UriKind.Absolute, out var url) || (url.Scheme != Uri.UriSchemeHttp && url.Scheme != Uri.UriSchemeHttps))
        {
            throw SextantException.Invalid("base_url", $"'base_url' must be an absolute http or https URL, e.g. https://api.openai.com/v1; got '{provider.BaseUrl}'.");
        }
        if (url.UserInfo.Length > 0)
        {
            // It would be shown to every reader of the provider list: keys go in api_key, which is never shown.
            throw SextantException.Invalid("base_url", "'base_url' may not hold a user name or password; give the key as api_key.");
        }
        if (provider.ApiKey is { } key && (key.Length is 0 or > 4096 || key.Any(c => c < 0x21 || c > 0x7E)))
        {
            throw SextantException.Invalid("api_key", "'api_key' must be 1-4096 printable ASCII characters without spaces.");
        }
    }

    private static void ValidateRoute(GatewayRoute route)
    {
        if (string.IsNullOrEmpty(route.Name) || !NamePattern().IsMatch(route.Name))
        {
            throw SextantException.Invalid("name", $"A route's 'name' (the model name applications send) must be 1-128 letters, digits or . _ - : /; got '{route.Name}'.");
        }
        if (route.Targets is not { Count: > 0 and <= 20 })
        {
            throw SextantException.Invalid("targets", "A route needs 1-20 targets, each a provider and a model.");
        }
        for (var i = 0; i < route.Targets.Count; i++)
        {
            var t = route.Targets[i];
            if (string.IsNullOrEmpty(t.Provider) || string.IsNullOrEmpty(t.Model) || !(t.Weight > 0) || !double.IsFinite(t.Weight))
            {
                throw SextantException.Invalid($"targets[{i}]", $"targets[{i}] needs a provider, a model and a weight above 0.");
            }
        }
        if (route.FallbackOn?.Any(s => s is < 400 or > 599) == true)
        {
            throw SextantException.Invalid("fallback_on", "'fallback_on' lists HTTP statuses from 400 to 599.");
        }
        if (route.Retries is < 0 or > 5 || route.RetryBaseMs is < 0 or > 10_000)
        {
            throw SextantException.Invalid("retries", "'retries' must be 0-5 and 'retry_base_ms' 0-10000.");
        }
        if (route.TimeoutMs is < 1 or > 600_000)
        {
            throw SextantException.Invalid("timeout_ms", "'timeout_ms' must be 1-600000.");
        }
        if (route.CacheTtlSeconds is < 0 or > 30 * 86_400)
        {
            throw SextantException.Invalid("cache_ttl_seconds", "'cache_ttl_seconds' must be 0-2592000 (30 days), or left out for no cache.");
        }
        if (route.BreakerFailures is < 1 or > 1000 || route.BreakerCooldownMs is < 1 or > 3_600_000)
        {
            throw SextantException.Invalid("breaker_failures", "'breaker_failures' must be 1-1000 and 'breaker_cooldown_ms' 1-3600000.");
        }
    }
}

/// <summary>
/// Opens after a number of consecutive failures; while open, the target is skipped until the cool-down ends, then
/// one trial request is let through (half-open): success closes it, failure opens it again.
/// </summary>
internal sealed class CircuitBreaker
{
    private readonly Lock _lock = new();
    private int _failures;
    private long _openUntil;
    private bool _trial;

    public bool TryEnter(long now)
    {
        lock (_lock)
        {
            if (_openUntil == 0)
            {
                return true;
            }
            if (now < _openUntil || _trial)
            {
                return false;
            }
            _trial = true;
            return true;
        }
    }

    /// <summary>Gives back a half-open trial that ended without a verdict (the caller went away).</summary>
    public void Release()
    {
        lock (_lock)
        {
            _trial = false;
        }
    }

    public void Success()
    {
        lock (_lock)
        {
            (_failures, _openUntil, _trial) = (0, 0, false);
        }
    }

    public void Failure(long now, int threshold, int cooldownMs)
    {
        lock (_lock)
        {
            _failures++;
            if (_trial || _failures >= threshold)
            {
                (_openUntil, _trial) = (now + cooldownMs, false);
            }
        }
    }

    public bool IsOpen(long now)
    {
        lock (_lock)
        {
            return _openUntil != 0 && now < _openUntil;
        }
    }
}
