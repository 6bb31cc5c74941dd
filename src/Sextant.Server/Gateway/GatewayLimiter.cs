using System.Collections.Concurrent;
using Dapper;
using Sextant.Contracts;
using Sextant.Core;
using Sextant.Core.Projects;
using Sextant.Core.Storage;

namespace Sextant.Server.Gateway;

/// <summary>
/// Requests and tokens per minute, and spending per UTC day and month, for a project and for each of its API keys.
/// Counted in this process: requests when they start, tokens and cost when their span is made. Spending starts from
/// what the project's (or key's) gateway spans already cost that day or month, read once per period.
/// </summary>
internal sealed class GatewayLimiter(SextantDatabase database)
{
    private readonly ConcurrentDictionary<long, IReadOnlyDictionary<string, GatewayLimit>> _limits = new();
    private readonly ConcurrentDictionary<(long Project, string Key, long Minute), Counter> _minutes = new();
    private readonly ConcurrentDictionary<(long Project, string Key, string Period), Spend> _spend = new();

    private sealed class Counter
    {
        public long Requests;
        public long Tokens;
    }

    private sealed class Spend
    {
        public readonly Lock Lock = new();
        public double Amount;
    }

    /// <summary>Why a request is refused and when to retry, or null when it may go ahead (it is then counted).</summary>
    public async Task<(string Message, string Code, int RetryAfterSeconds)?> CheckAsync(Caller caller, CancellationToken cancellationToken)
    {
        var limits = await LimitsAsync(caller.ProjectId, cancellationToken);
        if (limits.Count == 0)
        {
            return null;
        }
        var now = DateTimeOffset.UtcNow;
        var minute = now.ToUnixTimeSeconds() / 60;
        var toNextMinute = (int)(60 - now.ToUnixTimeSeconds() % 60);
        var scopes = new List<(string Key, string Label, GatewayLimit Limit)>();
        if (limits.TryGetValue("", out var project))
        {
            scopes.Add(("", $"Project '{caller.ProjectName}'", project));
        }
        if (caller.KeyId is { } keyId && limits.TryGetValue(keyId, out var key))
        {
            scopes.Add((keyId, $"API key {keyId}", key));
        }
        foreach (var (scope, label, limit) in scopes)
        {
            var counter = _minutes.GetOrAdd((caller.ProjectId, scope, minute), _ => new Counter());
            if (limit.RequestsPerMinute is { } rpm && Interlocked.Read(ref counter.Requests) >= rpm)
            {
                return ($"{label} is limited to {rpm} requests per minute; retry in {toNextMinute} s.", "rate_limit_exceeded", toNextMinute);
            }
            if (limit.TokensPerMinute is { } tpm && Interlocked.Read(ref counter.Tokens) >= tpm)
            {
                return ($"{label} is limited to {tpm} tokens per minute; retry in {toNextMinute} s.", "rate_limit_exceeded", toNextMinute);
            }
            if (limit.DailyBudget is { } daily && await SpentAsync(caller.ProjectId, scope, now, monthly: false, cancellationToken) >= daily)
            {
                var midnight = (int)Math.Ceiling((now.UtcDateTime.Date.AddDays(1) - now.UtcDateTime).TotalSeconds);
                return ($"{label} has spent its daily budget of ${daily:0.####}; it resets at 00:00 UTC.", "budget_exceeded", midnight);
            }
            if (limit.MonthlyBudget is { } monthlyBudget && await SpentAsync(caller.ProjectId, scope, now, monthly: true, cancellationToken) >= monthlyBudget)
            {
                var first = new DateTime(now.Year, now.Month, 1, 0, 0, 0, DateTimeKind.Utc).AddMonths(1);
                return ($"{label} has spent its monthly budget of ${monthlyBudget:0.####}; it resets on {first:yyyy-MM-dd}.", "budget_exceeded",
                    (int)Math.Ceiling((first - now.UtcDateTime).TotalSeconds));
            }
        }
        foreach (var (scope, _, _) in scopes)
        {
            Interlocked.Increment(ref _minutes.GetOrAdd((caller.ProjectId, scope, minute), _ => new Counter()).Requests);
        }
        if (_minutes.Count > 10_000)
        {
            foreach (var old in _minutes.Keys.Where(k => k.Minute < minute - 1))
            {
                _minutes.TryRemove(old, out _);
            }
        }
        return null;
    }

    /// <summary>Adds a finished call's tokens and cost to what the project and its key have used.</summary>
    public void Record(Caller caller, long tokens, double? cost)
    {
        if (!_limits.TryGetValue(caller.ProjectId, out var limits) || limits.Count == 0)
        {
            return;
        }
        var now = DateTimeOffset.UtcNow;
        var minute = now.ToUnixTimeSeconds() / 60;
        foreach (var scope in new[] { "", caller.KeyId }.OfType<string>().Where(limits.ContainsKey))
        {
            Interlocked.Add(ref _minutes.GetOrAdd((caller.ProjectId, scope, minute), _ => new Counter()).Tokens, tokens);
            if (cost is { } c)
            {
                foreach (var period in new[] { now.ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture), now.ToString("yyyy-MM", System.Globalization.CultureInfo.InvariantCulture) })
                {
                    if (_spend.TryGetValue((caller.ProjectId, scope, period), out var spend))
                    {
                        lock (spend.Lock)
                        {
                            spend.Amount += c;
                        }
                    }
                }
            }
        }
    }

    private async Task<double> SpentAsync(long project, string scope, DateTimeOffset now, bool monthly, CancellationToken cancellationToken)
    {
        var period = now.ToString(monthly ? "yyyy-MM" : "yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture);
        if (_spend.TryGetValue((project, scope, period), out var known))
        {
            lock (known.Lock)
            {
                return known.Amount;
            }
        }
        var start = monthly ? new DateTimeOffset(now.Year, now.Month, 1, 0, 0, 0, TimeSpan.Zero) : new DateTimeOffset(now.UtcDateTime.Date, TimeSpan.Zero);
        await using var connection = await database.OpenAsync(cancellationToken);
        var amount = await connection.ExecuteScalarAsync<double?>(
            $"SELECT SUM(cost) FROM spans WHERE project_id = @project AND start_time >= @from AND kind = 'generation' {(scope.Length == 0 ? "" : "AND api_key_id = @scope")}",
            new { project, from = start.ToUnixTimeMilliseconds() * 1000, scope }) ?? 0;
        var spend = _spend.GetOrAdd((project, scope, period), _ => new Spend { Amount = amount });
        lock (spend.Lock)
        {
            return spend.Amount;
        }
    }

    private async Task<IReadOnlyDictionary<string, GatewayLimit>> LimitsAsync(long project, CancellationToken cancellationToken)
    {
        if (_limits.TryGetValue(project, out var cached))
        {
            return cached;
        }
        await using var connection = await database.OpenAsync(cancellationToken);
        var rows = await connection.QueryAsync<(string Key, long? Rpm, long? Tpm, double? Daily, double? Monthly)>(
            "SELECT key_id, requests_per_minute, tokens_per_minute, daily_budget, monthly_budget FROM gateway_limits WHERE project_id = @project", new { project });
        var limits = rows.ToDictionary(r => r.Key, r => new GatewayLimit(r.Key.Length == 0 ? null : r.Key, r.Rpm, r.Tpm, r.Daily, r.Monthly), StringComparer.Ordinal);
        _limits[project] = limits;
        return limits;
    }

    public async Task<List<GatewayLimit>> ListAsync(Caller caller, CancellationToken cancellationToken) =>
        [.. (await LimitsAsync(caller.ProjectId, cancellationToken)).Values.OrderBy(l => l.KeyId ?? "", StringComparer.Ordinal)];

    /// <summary>Sets the project's limit (<paramref name="keyId"/> null) or one of its keys'.</summary>
    public async Task<GatewayLimit> SetAsync(Caller caller, string? keyId, GatewayLimit limit, CancellationToken cancellationToken)
    {
        caller.Require(Role.Admin);
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
        await using var connection = await database.OpenAsync(cancellationToken);
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
        return limit with { KeyId = keyId };
    }
}
