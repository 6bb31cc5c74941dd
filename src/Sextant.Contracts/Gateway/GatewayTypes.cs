namespace Sextant.Contracts;

/// <summary>An upstream LLM provider. Its API key is write-only: stored encrypted, never returned.</summary>
/// <param name="Kind">openai: any OpenAI-compatible endpoint (OpenAI, Ollama, vLLM, llama.cpp server...); azure: Azure OpenAI's
/// v1 API (https://RESOURCE.openai.azure.com/openai/v1, the key sent as api-key); anthropic: Anthropic's Messages API
/// (https://api.anthropic.com), requests and answers translated from and to OpenAI's format.</param>
/// <param name="ApiKeyEnv">For providers from the configuration file: the environment variable holding the key.</param>
public sealed record GatewayProvider(string? Name, string? Kind, string? BaseUrl, string? ApiKey = null, string? ApiKeyEnv = null, bool HasApiKey = false, string Source = "api");

/// <summary>One place a route sends requests: a provider and the model name it knows.</summary>
public sealed record RouteTarget(string? Provider, string? Model, double Weight = 1);

/// <summary>
/// What a model name (as applications send it) maps to: targets chosen by weight, with retries (exponential
/// back-off with jitter) on retryable failures, fallback to the next target on the chosen statuses and time-outs,
/// a per-attempt time-out and a circuit breaker per target. <c>CacheTtlSeconds</c> turns on the exact-match response cache.
/// </summary>
public sealed record GatewayRoute(
    string? Name,
    IReadOnlyList<RouteTarget>? Targets,
    IReadOnlyList<int>? FallbackOn = null,
    bool FallbackOnTimeout = true,
    int Retries = 1,
    int RetryBaseMs = 100,
    int TimeoutMs = 60_000,
    int BreakerFailures = 5,
    int BreakerCooldownMs = 30_000,
    string Source = "api",
    int? CacheTtlSeconds = null);

public sealed record GatewayProvidersResponse(IReadOnlyList<GatewayProvider> Providers);

public sealed record GatewayRoutesResponse(IReadOnlyList<GatewayRoute> Routes);

/// <summary>The gateway's configuration file (--gateway-config): providers and routes every project can use.</summary>
public sealed record GatewayConfigFile(IReadOnlyList<GatewayProvider>? Providers, IReadOnlyList<GatewayRoute>? Routes);

/// <summary>Limits of a project (KeyId null) or of one API key: per minute, and spending per UTC day and month (USD). Null: no limit.</summary>
public sealed record GatewayLimit(string? KeyId = null, long? RequestsPerMinute = null, long? TokensPerMinute = null, double? DailyBudget = null, double? MonthlyBudget = null);

public sealed record GatewayLimitsResponse(IReadOnlyList<GatewayLimit> Limits);
