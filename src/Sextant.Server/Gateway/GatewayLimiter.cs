using System.Collections.Concurrent;
using Dapper;
using Sextant.Contracts;
using Sextant.Core;
using Sextant.Core.Projects;
using Sextant.Core.Storage;
using StackExchange.Redis;

namespace Sextant.Server.Gateway;

/// <summary>
/// Requests and tokens per minute, and spending per UTC day and month, for a project and for each of its API keys.
/// Requests are counted when they start, tokens and cost when their span is made. Spending starts from what the
/// project's (or key's) gateway spans already cost that day or month. The counters are this process's, or Redis's
/// when it is configured (shared by every replica). The limits themselves are read from the database and kept for
/// a few seconds; with Redis, a change made on one replica is announced to the others at once.
/// </summary>
internal sealed class GatewayLimiter
{
    private const string ChangedChannel = "sextant:gw:limits-changed";
    private static readonly TimeSpan LimitsLifetime = TimeSpan.FromSeconds(10);
    private readonly SextantDatabase _database;
    private readonly ILimitCounters _counters;
    private readonly ISubscriber? _subscriber;
    private readonly ConcurrentDictionary<long, (IReadOnlyDictionary<string, GatewayLimit> Limits, long ReadAt)> _limits = new();

    public GatewayLimiter(SextantDatabase database, ILimitCounters counters, IConnectionMultiplexer? redis = null)
    {
        _database = database;
        _counters = counters;
        if (redis is not null)
        {
            _subscriber = redis.GetSubscriber();
            // Not awaited: a Redis that is down must not hold up the server; the multiplexer subscribes again when it connects.
            _ = SubscribeAsync(_subscriber);
        }
    }

    private async Task SubscribeAsync(ISubscriber subscriber)
    {
        try
        {
            await subscriber.SubscribeAsync(RedisChannel.Literal(ChangedChannel), (_, project) =>
            {
                if (long.TryParse(project.ToString(), System.Globalization.CultureInfo.InvariantCulture, out var id))
                {
                    _limits.TryRemove(id, out (IReadOnlyDictionary<string, GatewayLimit>, long) _);
                }
            });
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            // Until then, other replicas' changes are seen within LimitsLifetime.
        }
    }

    /// <summary>Why a request is refused and when to retry, or null when it may go ahead (it is then counted).</summary>
    public async Task<(string Message, string Code, int RetryAfterSeconds)?> CheckAsync(Caller caller, CancellationToken cancellationToken)
    {
        var scopes = await ScopesAsync(caller, cancellationToken);
        if (scopes.Count == 0)
        {
            return null;
        }
        var now = DateTimeOffset.UtcNow;
        if (await _counters.AdmitAsync(scopes, now, (scope, monthly) => SpentAsync(scope, now, monthly, cancellationToken)) is not { } refusal)
        {
            return null;
        }
        var (_, key, limit) = scopes[refusal.Scope];
        var label = key.Length == 0 ? $"Project '{caller.ProjectName}'" : $"API key {key}";
        var toNextMinute = (int)(60 - now.ToUnixTimeSeconds() % 60);
        switch (refusal.What)
        {
            case "rpm":
                return ($"{label} is limited to {limit.RequestsPerMinute} requests per minute; retry in {toNextMinute} s.", "rate_limit_exceeded", toNextMinute);
            case "tpm":
                return ($"{label} is limited to {limit.TokensPerMinute} tokens per minute; retry in {toNextMinute} s.", "rate_limit_exceeded", toNextMinute);
            case "daily":
                var midnight = (int)Math.Ceiling((now.UtcDateTime.Date.AddDays(1) - now.UtcDateTime).TotalSeconds);
                return ($"{label} has spent its daily budget of ${limit.DailyBudget:0.####}; it resets at 00:00 UTC.", "budget_exceeded", midnight);
            default:
                var first = new DateTime(now.Year, now.Month, 1, 0, 0, 0, DateTimeKind.Utc).AddMonths(1);
                return ($"{label} has spent its monthly budget of ${limit.MonthlyBudget:0.####}; it resets on {first:yyyy-MM-dd}.", "budget_exceeded",
                    (int)Math.Ceiling((first - now.UtcDateTime).TotalSeconds));
        }
    }

    /// <summary>The project's limit and the caller's key's, those that are set.</summary>
    private async Task<List<LimitScope>> ScopesAsync(Caller caller, CancellationToken cancellationToken)
    {
        var limits = await LimitsAsync(caller.ProjectId, cancellationToken);
        var scopes = new List<LimitScope>(2);
        if (limits.TryGetValue("", out var project))
        {
            scopes.Add(new LimitScope(caller.ProjectId, "", project));
        }
        if (caller.KeyId is { } keyId && limits.TryGetValue(keyId, out var key))
        {
            scopes.Add(new LimitScope(caller.ProjectId, keyId, key));
        }
        return scopes;
    }

    /// <summary>Adds a finished call's tokens and cost to what the project and its key have used.</summary>
    public async Task RecordAsync(Caller caller, long tokens, double? cost)
    {
        var scopes = await ScopesAsync(caller, CancellationToken.None);
        if (scopes.Count > 0)
        {
            await _counters.RecordAsync(scopes, DateTimeOffset.UtcNow, tokens, cost);
        }
    }

    private async Task<double> SpentAsync(LimitScope scope, DateTimeOffset now, bool monthly, CancellationToken cancellationToken)
    {
        var start = monthly ? new DateTimeOffset(now.Year, now.Month, 1, 0, 0, 0, TimeSpan.Zero) : new DateTimeOffset(now.UtcDateTime.Date, TimeSpan.Zero);
        await using var connection = await _database.OpenAsync(cancellationToken);
        return await connection.ExecuteScalarAsync<double?>(
            $"SELECT SUM(cost) FROM spans WHERE project_id = @project AND start_time >= @from AND kind = 'generation' {(scope.Key.Length == 0 ? "" : "AND api_key_id = @scope")}",
            new { project = scope.Project, from = start.ToUnixTimeMilliseconds() * 1000, scope = scope.Key }) ?? 0;
    }

    private async Task<IReadOnlyDictionary<string, GatewayLimit>> LimitsAsync(long project, CancellationToken cancellationToken)
    {
        if (_limits.TryGetValue(project, out var cached) && Environment.TickCount64 - cached.ReadAt < LimitsLifetime.TotalMilliseconds)
        {
            return cached.Limits;
        }
        await using var connection = await _database.OpenAsync(cancellationToken);
        var rows = await connection.QueryAsync<(string Key, long? Rpm, long? Tpm, double? Daily, double? Monthly)>(
            "SELECT key_id, requests_per_minute, tokens_per_minute, daily_budget, monthly_budget FROM gateway_limits WHERE project_id = @project", new { project });
        var limits = rows.ToDictionary(r => r.Key, r => new GatewayLimit(r.Key.Length == 0 ? null : r.Key, r.Rpm, r.Tpm, r.Daily, r.Monthly), StringComparer.Ordinal);
        _limits[project] = (limits, Environment.TickCount64);
        return limits;
    }

    public async Task<List<GatewayLimit>> ListAsync(Caller caller, CancellationToken cancellationToken) =>
        [.. (await LimitsAsync(caller.ProjectId, cancellationToken)).Values.OrderBy(l => l.KeyId ?? "", StringComparer.Ordinal)];

    /// <summary>Sets the project's limit (<paramref name="keyId"/> null) or one of its keys'.</summary>
    public async Task<GatewayLimit> SetAsync(Caller caller, string? keyId, GatewayLimit limit, CancellationToken cancellationToken)
    {
        caller.Require(Sextant.Core.Projects.Role.Admin);
        foreach (var (value, field) in new[] { (limit.RequestsPerMinute, "requests_per_minute"), (limit.TokensPerMinute, "tokens_per_minute") })
        {
            if (value is <= 0)
            {
                throw SextantException.Invalid(field, $"'{field}' must be positive, or left out for no limit; got {value}.");
            }
        }
        foreach (var (value, field) in new[] { (limit.DailyBudget, "daily_budget"), (limit.MonthlyBudget, "monthly_budget") })
        {
            if (value is { } v && (!double.IsFinite(v) || v < 0))
            {
                throw SextantException.Invalid(field, $"'{field}' must be 0 or more USD, or left out for no limit.");
            }
        }
        await using var connection = await _database.OpenAsync(cancellationToken);
        if (keyId is not null && await connection.ExecuteScalarAsync<long?>("SELECT id FROM api_keys WHERE key_id = @keyId AND project_id = @project",
                new { keyId, project = caller.ProjectId }, null) is null)
        {
            throw SextantException.NotFound($"No API key {keyId} in project '{caller.ProjectName}'.");
        }
        await connection.ExecuteAsync(
            """
            INSERT INTO gateway_limits (project_id, key_id, requests_per_minute, tokens_per_minute, daily_budget, monthly_budget, updated_time)
            VALUES (@project, @key, @RequestsPerMinute, @TokensPerMinute, @DailyBudget, @MonthlyBudget, @now)
            ON CONFLICT (project_id, key_id) DO UPDATE SET requests_per_minute = excluded.requests_per_minute, tokens_per_minute = excluded.tokens_per_minute,
                daily_budget = excluded.daily_budget, monthly_budget = excluded.monthly_budget, updated_time = excluded.updated_time
            """,
            new { project = caller.ProjectId, key = keyId ?? "", limit.RequestsPerMinute, limit.TokensPerMinute, limit.DailyBudget, limit.MonthlyBudget, now = Clock.NowMs() });
        _limits.TryRemove(caller.ProjectId, out _);
        if (_subscriber is { } subscriber && subscriber.Multiplexer.IsConnected)
        {
            try
            {
                await subscriber.PublishAsync(RedisChannel.Literal(ChangedChannel), caller.ProjectId.ToString(System.Globalization.CultureInfo.InvariantCulture));
            }
            catch (Exception e) when (e is RedisException or TimeoutException)
            {
                // The other replicas read the limits again within LimitsLifetime.
            }
        }
        return limit with { KeyId = keyId };
    }
}
