using System.Globalization;
using System.Reflection;
using System.Text.Json;
using System.Text.Json.Nodes;
using Dapper;
using Sextant.Contracts;
using Sextant.Core.Projects;
using Sextant.Core.Storage;

namespace Sextant.Core.Tracing;

/// <summary>
/// Model prices: the catalog shipped with Sextant (prices.json), prices an admin sets for every project, and a
/// project's own; the most specific, most recent entry effective at a span's start applies. Patterns match model
/// names with '*' as a wildcard; an exact name beats a pattern, a longer pattern a shorter one, a project's entry a
/// shared one, a shared one the shipped one.
/// </summary>
public sealed class PriceCatalog(SextantDatabase database)
{
    public const int MaxModelLength = 256;
    private static readonly IReadOnlyList<Price> Shipped = LoadShipped();
    /// <summary>How long a copy of the stored prices is used before it is read again (other replicas may have set one).</summary>
    private static readonly TimeSpan StoredLifetime = TimeSpan.FromSeconds(30);
    private volatile Snapshot? _snapshot;
    private long _generation;

    /// <summary>The stored prices, and per (project, provider, model) the matching prices in the order they win.</summary>
    private sealed record Snapshot(IReadOnlyList<(long? Project, Price Price)> Stored, long ReadAt,
        System.Collections.Concurrent.ConcurrentDictionary<(long, string?, string), Price[]> Candidates);

    public static IReadOnlyList<Price> ShippedPrices => Shipped;

    private static List<Price> LoadShipped()
    {
        using var stream = Assembly.GetExecutingAssembly().GetManifestResourceStream("Sextant.Tracing.prices.json")
            ?? throw new InvalidOperationException("The shipped price catalog is missing from the assembly.");
        var root = JsonNode.Parse(stream)!["prices"]!.AsArray();
        return [.. root.Select(p => new Price(
            p!["model"]!.GetValue<string>(),
            p["provider"]?.GetValue<string>(),
            DateTimeOffset.Parse(p["effective_from"]!.GetValue<string>() + "T00:00:00Z", CultureInfo.InvariantCulture).ToUnixTimeMilliseconds(),
            p["input"]?.GetValue<double>(),
            p["output"]?.GetValue<double>(),
            p["cached_input"]?.GetValue<double>(),
            p["cache_write"]?.GetValue<double>(),
            p["reasoning"]?.GetValue<double>(),
            p["tiers"]?.AsArray().Select(t => new PriceTier(t!["above_input_tokens"]!.GetValue<long>(), t["input"]?.GetValue<double>(), t["output"]?.GetValue<double>(),
                t["cached_input"]?.GetValue<double>(), t["cache_write"]?.GetValue<double>())).ToList(),
            "shipped"))];
    }

    private async Task<Snapshot> SnapshotAsync(CancellationToken cancellationToken)
    {
        if (_snapshot is { } cached && Environment.TickCount64 - cached.ReadAt < StoredLifetime.TotalMilliseconds)
        {
            return cached;
        }
        var generation = Interlocked.Read(ref _generation);
        await using var connection = await database.OpenAsync(cancellationToken);
        var rows = await connection.QueryAsync<(long Id, long? Project, string Model, string? Provider, long From, double? Input, double? Output, double? Cached, double? Write, double? Reasoning, string? Tiers, string Source)>(
            "SELECT id, project_id, model, provider, effective_from, input, output, cached_input, cache_write, reasoning, tiers, source FROM prices ORDER BY id");
        var stored = rows.Select(r => (r.Project, new Price(r.Model, r.Provider, r.From, r.Input, r.Output, r.Cached, r.Write, r.Reasoning,
            r.Tiers is null ? null : JsonSerializer.Deserialize(r.Tiers, SextantJsonContext.Default.IReadOnlyListPriceTier), r.Source, r.Id))).ToList();
        var snapshot = new Snapshot(stored, Environment.TickCount64, new());
        // A price set while this read ran must not be hidden by it.
        if (Interlocked.Read(ref _generation) == generation)
        {
            _snapshot = snapshot;
        }
        return snapshot;
    }

    /// <summary>The price for a model at a time (Unix ms), or null when none is known.</summary>
    public async Task<Price?> FindAsync(long project, string? provider, string? model, long at, CancellationToken cancellationToken = default)
    {
        if (string.IsNullOrEmpty(model))
        {
            return null;
        }
        var snapshot = await SnapshotAsync(cancellationToken);
        var candidates = snapshot.Candidates.Count < 100_000
            ? snapshot.Candidates.GetOrAdd((project, provider, model), key => Candidates(snapshot.Stored, key.Item1, key.Item2, key.Item3))
            : Candidates(snapshot.Stored, project, provider, model);
        return candidates.FirstOrDefault(c => c.EffectiveFrom <= at);
    }

    private static Price[] Candidates(IReadOnlyList<(long? Project, Price Price)> stored, long project, string? provider, string model)
    {
        // Rank: whose (project 3, shared 2, shipped 1), then how specific, then how recent.
        var candidates = stored.Where(s => s.Project == project).Select(s => (Rank: 3, s.Price))
            .Concat(stored.Where(s => s.Project is null).Select(s => (Rank: 2, s.Price)))
            .Concat(Shipped.Select(p => (Rank: 1, Price: p)));
        return [.. candidates
            .Where(c => Matches(c.Price.Model, model) && (c.Price.Provider is null || provider is null || ProviderMatches(c.Price.Provider, provider)))
            .OrderByDescending(c => c.Rank)
            .ThenByDescending(c => Specificity(c.Price.Model))
            .ThenByDescending(c => c.Price.EffectiveFrom)
            .Select(c => c.Price)];
    }

    /// <summary>Providers are named loosely (azure serves OpenAI's models, bedrock and vertex Anthropic's).</summary>
    private static bool ProviderMatches(string priceProvider, string provider) =>
        string.Equals(priceProvider, provider, StringComparison.OrdinalIgnoreCase)
        || provider.Contains(priceProvider, StringComparison.OrdinalIgnoreCase)
        || (priceProvider == "openai" && provider.Contains("azure", StringComparison.OrdinalIgnoreCase))
        || (priceProvider == "anthropic" && (provider.Contains("bedrock", StringComparison.OrdinalIgnoreCase) || provider.Contains("vertex", StringComparison.OrdinalIgnoreCase)))
        || (priceProvider == "google" && (provider.Contains("gemini", StringComparison.OrdinalIgnoreCase) || provider.Contains("vertex", StringComparison.OrdinalIgnoreCase)));

    private static int Specificity(string pattern) => pattern.Contains('*', StringComparison.Ordinal) ? pattern.Replace("*", "", StringComparison.Ordinal).Length : int.MaxValue;

    public static bool Matches(string pattern, string model)
    {
        if (!pattern.Contains('*', StringComparison.Ordinal))
        {
            return string.Equals(pattern, model, StringComparison.OrdinalIgnoreCase);
        }
        var parts = pattern.Split('*');
        if (!model.StartsWith(parts[0], StringComparison.OrdinalIgnoreCase) || !model.EndsWith(parts[^1], StringComparison.OrdinalIgnoreCase)
            || model.Length < parts[0].Length + parts[^1].Length)
        {
            return false;
        }
        var position = parts[0].Length;
        for (var i = 1; i < parts.Length - 1; i++)
        {
            var found = model.IndexOf(parts[i], position, StringComparison.OrdinalIgnoreCase);
            if (found < 0)
            {
                return false;
            }
            position = found + parts[i].Length;
        }
        return position <= model.Length - parts[^1].Length;
    }

    /// <summary>
    /// The cost in USD of one generation's usage. Input tokens include cached reads and cache writes, which are
    /// billed at their own rates (so never twice); reasoning tokens are part of the output unless priced apart.
    /// </summary>
    public static double? Cost(Price price, long input, long output, long cachedInput, long cacheWrite, long reasoning)
    {
        var tier = price.Tiers?.Where(t => input > t.AboveInputTokens).OrderByDescending(t => t.AboveInputTokens).FirstOrDefault();
        var inputRate = tier?.Input ?? price.Input;
        var outputRate = tier?.Output ?? price.Output;
        if (inputRate is null || outputRate is null)
        {
            return null;
        }
        var cachedRate = tier?.CachedInput ?? price.CachedInput ?? inputRate;
        var writeRate = tier?.CacheWrite ?? price.CacheWrite ?? inputRate;
        var plainInput = Math.Max(0, input - cachedInput - cacheWrite);
        var plainOutput = price.Reasoning is null ? output : Math.Max(0, output - reasoning);
        var total = plainInput * inputRate.Value + cachedInput * cachedRate + cacheWrite * writeRate + plainOutput * outputRate.Value
            + (price.Reasoning is { } reasoningRate ? reasoning * reasoningRate : 0);
        return total / 1_000_000;
    }

    public async Task<List<Price>> ListAsync(Caller caller, string? model, CancellationToken cancellationToken = default)
    {
        var stored = (await SnapshotAsync(cancellationToken)).Stored;
        return [.. stored.Where(s => s.Project == caller.ProjectId).Select(s => s.Price with { Source = "project" })
            .Concat(stored.Where(s => s.Project is null).Select(s => s.Price with { Source = "shared" }))
            .Concat(Shipped)
            .Where(p => string.IsNullOrEmpty(model) || Matches(p.Model, model) || p.Model.Contains(model, StringComparison.OrdinalIgnoreCase))];
    }

    /// <summary>Adds a price for the caller's project (or, for the server's admin with <paramref name="shared"/>, for every project).</summary>
    public async Task<Price> SetAsync(Caller caller, Price? price, bool shared, CancellationToken cancellationToken = default)
    {
        caller.Require(Role.Admin);
        if (shared && !caller.IsServerAdmin)
        {
            throw new SextantException(ErrorCodes.PermissionDenied, "Only an admin of the default project sets prices shared by every project.", 403, "shared");
        }
        if (price is null)
        {
            throw SextantException.Missing("price");
        }
        if (string.IsNullOrWhiteSpace(price.Model) || price.Model.Length > MaxModelLength)
        {
            throw SextantException.Invalid("model", $"'model' must be 1-{MaxModelLength} characters (a name, or a pattern with '*').");
        }
        if (price.Input is null || price.Output is null)
        {
            throw SextantException.Invalid(price.Input is null ? "input" : "output", "A price needs both 'input' and 'output' (USD per million tokens; 0 when free).");
        }
        foreach (var (value, field) in new[] { (price.Input, "input"), (price.Output, "output"), (price.CachedInput, "cached_input"), (price.CacheWrite, "cache_write"), (price.Reasoning, "reasoning") })
        {
            if (value is { } v && (!double.IsFinite(v) || v < 0))
            {
                throw SextantException.Invalid(field, $"'{field}' must be a price of 0 or more USD per million tokens; got {v.ToString(CultureInfo.InvariantCulture)}.");
            }
        }
        foreach (var tier in price.Tiers ?? [])
        {
            if (tier.AboveInputTokens <= 0 || tier.Input is < 0 || tier.Output is < 0)
            {
                throw SextantException.Invalid("tiers", "Each tier needs 'above_input_tokens' > 0 and prices of 0 or more.");
            }
        }
        var from = price.EffectiveFrom > 0 ? price.EffectiveFrom : Clock.NowMs();
        await using var connection = await database.OpenAsync(cancellationToken);
        var id = await connection.ExecuteScalarAsync<long>(
            """
            INSERT INTO prices (project_id, model, provider, effective_from, input, output, cached_input, cache_write, reasoning, tiers, source, created_time)
            VALUES (@project, @Model, @Provider, @from, @Input, @Output, @CachedInput, @CacheWrite, @Reasoning, @tiers, @source, @now) RETURNING id
            """,
            new
            {
                project = shared ? (long?)null : caller.ProjectId, price.Model, price.Provider, from, price.Input, price.Output, price.CachedInput, price.CacheWrite, price.Reasoning,
                tiers = price.Tiers is null ? null : JsonSerializer.Serialize(price.Tiers, SextantJsonContext.Default.IReadOnlyListPriceTier),
                source = shared ? "shared" : "project", now = Clock.NowMs(),
            });
        Interlocked.Increment(ref _generation);
        _snapshot = null;
        return price with { EffectiveFrom = from, Source = shared ? "shared" : "project", Id = id };
    }
}
