using System.Collections.Concurrent;
using System.Globalization;
using StackExchange.Redis;
using Sextant.Contracts;

namespace Sextant.Server.Gateway;

/// <summary>One limited scope of a request: the project ("" key) or one of its API keys, with its limits.</summary>
internal sealed record LimitScope(long Project, string Key, GatewayLimit Limit);

/// <summary>What refused a request: the scope's index and rpm, tpm, daily or monthly.</summary>
internal sealed record LimitRefusal(int Scope, string What);

/// <summary>
/// Where the gateway counts requests and tokens per minute and spending per day and month. Admitting a request
/// checks every scope and counts it in all of them, or in none.
/// </summary>
internal interface ILimitCounters
{
    /// <param name="baseline">What a scope already spent in a period (from its spans), read when the counters do not know it yet.</param>
    Task<LimitRefusal?> AdmitAsync(IReadOnlyList<LimitScope> scopes, DateTimeOffset now, Func<LimitScope, bool, Task<double>> baseline);

    Task RecordAsync(IReadOnlyList<LimitScope> scopes, DateTimeOffset now, long tokens, double? cost);
}

internal static class LimitPeriods
{
    public static long Minute(DateTimeOffset now) => now.ToUnixTimeSeconds() / 60;

    public static string Day(DateTimeOffset now) => now.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);

    public static string Month(DateTimeOffset now) => now.ToString("yyyy-MM", CultureInfo.InvariantCulture);
}

/// <summary>Counters in this process: the default, right for one server.</summary>
internal sealed class InProcessLimitCounters : ILimitCounters
{
    private readonly ConcurrentDictionary<(long Project, string Key, long Minute), Counter> _minutes = new();
    private readonly ConcurrentDictionary<(long Project, string Key, string Period), Spend> _spend = new();
    private readonly Lock _admit = new();

    private sealed class Counter
    {
        public long Requests;
        public long Tokens;
    }

    private sealed class Spend
    {
        public double Amount;
    }

    public async Task<LimitRefusal?> AdmitAsync(IReadOnlyList<LimitScope> scopes, DateTimeOffset now, Func<LimitScope, bool, Task<double>> baseline)
    {
        var (minute, day, month) = (LimitPeriods.Minute(now), LimitPeriods.Day(now), LimitPeriods.Month(now));
        foreach (var scope in scopes)
        {
            foreach (var (budget, period, monthly) in new[] { (scope.Limit.DailyBudget, day, false), (scope.Limit.MonthlyBudget, month, true) })
            {
                if (budget is not null && !_spend.ContainsKey((scope.Project, scope.Key, period)))
                {
                    var amount = await baseline(scope, monthly);
                    _spend.TryAdd((scope.Project, scope.Key, period), new Spend { Amount = amount });
                }
            }
        }
        lock (_admit)
        {
            for (var i = 0; i < scopes.Count; i++)
            {
                var (project, key, limit) = scopes[i];
                var counter = _minutes.GetOrAdd((project, key, minute), _ => new Counter());
                if (limit.RequestsPerMinute is { } rpm && counter.Requests >= rpm)
                {
                    return new LimitRefusal(i, "rpm");
                }
                if (limit.TokensPerMinute is { } tpm && Interlocked.Read(ref counter.Tokens) >= tpm)
                {
                    return new LimitRefusal(i, "tpm");
                }
                if (limit.DailyBudget is { } daily && Volatile.Read(ref _spend[(project, key, day)].Amount) >= daily)
                {
                    return new LimitRefusal(i, "daily");
                }
                if (limit.MonthlyBudget is { } monthlyBudget && Volatile.Read(ref _spend[(project, key, month)].Amount) >= monthlyBudget)
                {
                    return new LimitRefusal(i, "monthly");
                }
            }
            foreach (var (project, key, _) in scopes)
            {
                _minutes.GetOrAdd((project, key, minute), _ => new Counter()).Requests++;
            }
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

    public Task RecordAsync(IReadOnlyList<LimitScope> scopes, DateTimeOffset now, long tokens, double? cost)
    {
        var minute = LimitPeriods.Minute(now);
        foreach (var (project, key, _) in scopes)
        {
            Interlocked.Add(ref _minutes.GetOrAdd((project, key, minute), _ => new Counter()).Tokens, tokens);
            if (cost is not { } c)
            {
                continue;
            }
            foreach (var period in new[] { LimitPeriods.Day(now), LimitPeriods.Month(now) })
            {
                if (_spend.TryGetValue((project, key, period), out var spend))
                {
                    double seen, next;
                    do
                    {
                        seen = Volatile.Read(ref spend.Amount);
                        next = seen + c;
                    }
                    while (Interlocked.CompareExchange(ref spend.Amount, next, seen) != seen);
                }
            }
        }
        return Task.CompletedTask;
    }
}

/// <summary>
/// Counters in Redis, shared by every replica: a minute's requests and tokens in a hash that expires, spending in a
/// key per day and month seeded from the spans. Admission is one Lua script, so replicas never both take the last
/// request. When Redis cannot be reached the gateway counts in its own process (and logs it) rather than refuse.
/// </summary>
internal sealed class RedisLimitCounters(IConnectionMultiplexer redis, ILogger<RedisLimitCounters> logger) : ILimitCounters
{
    private const string AdmitScript =
        """
        local n = #KEYS / 3
        for i = 0, n - 1 do
          local rpm, tpm, daily, monthly = tonumber(ARGV[i*4+1]), tonumber(ARGV[i*4+2]), tonumber(ARGV[i*4+3]), tonumber(ARGV[i*4+4])
          if rpm >= 0 and tonumber(redis.call('HGET', KEYS[i*3+1], 'r') or '0') >= rpm then return {i, 'rpm'} end
          if tpm >= 0 and tonumber(redis.call('HGET', KEYS[i*3+1], 't') or '0') >= tpm then return {i, 'tpm'} end
          if daily >= 0 and tonumber(redis.call('GET', KEYS[i*3+2]) or '0') >= daily then return {i, 'daily'} end
          if monthly >= 0 and tonumber(redis.call('GET', KEYS[i*3+3]) or '0') >= monthly then return {i, 'monthly'} end
        end
        for i = 0, n - 1 do
          redis.call('HINCRBY', KEYS[i*3+1], 'r', 1)
          redis.call('EXPIRE', KEYS[i*3+1], 120)
        end
        return {-1, 'ok'}
        """;

    private const string RecordScript =
        """
        local n = #KEYS / 3
        for i = 0, n - 1 do
          redis.call('HINCRBY', KEYS[i*3+1], 't', ARGV[1])
          redis.call('EXPIRE', KEYS[i*3+1], 120)
          if ARGV[2] ~= '' then
            if redis.call('EXISTS', KEYS[i*3+2]) == 1 then redis.call('INCRBYFLOAT', KEYS[i*3+2], ARGV[2]) end
            if redis.call('EXISTS', KEYS[i*3+3]) == 1 then redis.call('INCRBYFLOAT', KEYS[i*3+3], ARGV[2]) end
          end
        end
        return 1
        """;

    private readonly InProcessLimitCounters _fallback = new();
    private long _warnedAt = long.MinValue;

    /// <summary>
    /// Runs <paramref name="shared"/> against Redis, or <paramref name="local"/> in this process when Redis is not
    /// connected (commands would wait out their time-out on every call) or fails; says so in the log at most once a minute.
    /// </summary>
    private async Task<T> SharedOrLocalAsync<T>(Func<IDatabase, Task<T>> shared, Func<Task<T>> local)
    {
        Exception? failure = null;
        if (redis.IsConnected)
        {
            try
            {
                return await shared(redis.GetDatabase());
            }
            catch (Exception e) when (e is RedisException or TimeoutException)
            {
                failure = e;
            }
        }
        var now = Environment.TickCount64;
        var last = Interlocked.Read(ref _warnedAt);
        if (now - last > 60_000 && Interlocked.CompareExchange(ref _warnedAt, now, last) == last)
        {
            logger.LogWarning(failure, "Redis could not be reached; the gateway's limits are counted in this process until it is back");
        }
        return await local();
    }

    /// <summary>A project's keys share one hash slot (the braces), so that one script may touch them all on a cluster.</summary>
    private static (RedisKey Minute, RedisKey Day, RedisKey Month) Keys(LimitScope scope, DateTimeOffset now)
    {
        var prefix = $"sextant:gw:{{{scope.Project}}}:{scope.Key}:";
        return (prefix + "m:" + LimitPeriods.Minute(now).ToString(CultureInfo.InvariantCulture), prefix + "d:" + LimitPeriods.Day(now), prefix + "M:" + LimitPeriods.Month(now));
    }

    private static string Number(double? value) => value is { } v ? v.ToString("R", CultureInfo.InvariantCulture) : "-1";

    public Task<LimitRefusal?> AdmitAsync(IReadOnlyList<LimitScope> scopes, DateTimeOffset now, Func<LimitScope, bool, Task<double>> baseline) =>
        SharedOrLocalAsync(async db =>
        {
            var keys = new List<RedisKey>();
            var values = new List<RedisValue>();
            foreach (var scope in scopes)
            {
                var (minute, day, month) = Keys(scope, now);
                keys.AddRange([minute, day, month]);
                values.AddRange([Number(scope.Limit.RequestsPerMinute), Number(scope.Limit.TokensPerMinute), Number(scope.Limit.DailyBudget), Number(scope.Limit.MonthlyBudget)]);
                // Spending starts from what the spans of the period cost; the first replica to ask seeds it.
                foreach (var (budget, key, monthly, lifetime) in new[] { (scope.Limit.DailyBudget, day, false, TimeSpan.FromDays(2)), (scope.Limit.MonthlyBudget, month, true, TimeSpan.FromDays(32)) })
                {
                    if (budget is not null && !await db.KeyExistsAsync(key))
                    {
                        await db.StringSetAsync(key, Number(await baseline(scope, monthly)), lifetime, When.NotExists);
                    }
                }
            }
            var result = (RedisResult[])(await db.ScriptEvaluateAsync(AdmitScript, [.. keys], [.. values]))!;
            var index = (int)result[0];
            return index < 0 ? null : new LimitRefusal(index, (string)result[1]!);
        }, () => _fallback.AdmitAsync(scopes, now, baseline));

    public Task RecordAsync(IReadOnlyList<LimitScope> scopes, DateTimeOffset now, long tokens, double? cost) =>
        SharedOrLocalAsync(async db =>
        {
            var keys = scopes.SelectMany(s => Keys(s, now) is var (m, d, mo) ? new[] { m, d, mo } : []).ToArray();
            await db.ScriptEvaluateAsync(RecordScript, keys, [tokens, cost is { } c ? c.ToString("R", CultureInfo.InvariantCulture) : ""]);
            return true;
        }, async () =>
        {
            await _fallback.RecordAsync(scopes, now, tokens, cost);
            return true;
        });
}
