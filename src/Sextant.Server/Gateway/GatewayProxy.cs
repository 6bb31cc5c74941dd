using System.Buffers;
using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Options;
using Sextant.Contracts;
using Sextant.Core;
using Sextant.Core.Projects;
using Sextant.Core.Prompts;
using Sextant.Core.Tracing;
using Sextant.Server.Http;

namespace Sextant.Server.Gateway;

/// <summary>
/// The OpenAI-compatible gateway: a request names a model (a route, or provider/model); the proxy picks a target by
/// weight among those whose circuit is closed, retries retryable failures with exponential back-off and jitter,
/// falls back to the next target on the route's statuses and time-outs, and passes the answer through unchanged
/// (unknown JSON fields included; streams chunk by chunk, never buffered whole). Every call becomes a generation
/// span, recorded after the answer is sent.
/// </summary>
internal sealed partial class GatewayProxy(GatewayRegistry registry, GatewayLimiter limiter, GatewayCache cache, TraceService traces, PromptService prompts,
    GatewayRecorder recorder, IOptions<SextantServerOptions> options, ILogger<GatewayProxy> logger)
{
    public const int MaxBodyBytes = 10 * 1024 * 1024;
    private static readonly JsonDocumentOptions NoDuplicates = new() { AllowDuplicateProperties = false };
    private static readonly int[] DefaultFallbackStatuses = [429, 500, 502, 503, 504];
    private static readonly HashSet<string> NotParameters = ["model", "messages", "input", "stream", "stream_options", "user"];
    private static readonly SocketsHttpHandler UpstreamConnections = new()
    {
        PooledConnectionLifetime = TimeSpan.FromMinutes(5),
        AutomaticDecompression = DecompressionMethods.None,
        // A provider is called where it is configured, never where its answer points.
        AllowAutoRedirect = false,
        ConnectTimeout = TimeSpan.FromSeconds(10),
        MaxConnectionsPerServer = 1024,
    };

    private static readonly HttpClient Upstream = new(UpstreamConnections, disposeHandler: false) { Timeout = Timeout.InfiniteTimeSpan };

    /// <summary>
    /// Anthropic's SDK makes its own requests; this client, on the same connections, adds the call's trace context to them.
    /// </summary>
    private static readonly HttpClient AnthropicUpstream = new(new AnthropicAdapter.TraceContextHandler { InnerHandler = UpstreamConnections }, disposeHandler: false)
        { Timeout = Timeout.InfiniteTimeSpan };

    private sealed record Attempt(string Provider, string Model, int Status, string Outcome, double Ms);

    public async Task HandleAsync(HttpContext ctx, string operation)
    {
        var started = Stopwatch.GetTimestamp();
        var startTime = Clock.NowMicros();
        var caller = ctx.Caller();
        caller.Require(Role.Editor);
        var body = await ReadBodyAsync(ctx);
        if (body is null)
        {
            return;
        }
        JsonObject request;
        try
        {
            // A repeated property anywhere fails here (400), not later while forwarding or tracing.
            request = JsonNode.Parse(body, documentOptions: NoDuplicates) as JsonObject ?? throw new JsonException("the body is not a JSON object");
        }
        catch (Exception e) when (e is JsonException or ArgumentException or InvalidOperationException)
        {
            await OpenAiErrorAsync(ctx, 400, $"The request body is not valid JSON: {e.Message}", "invalid_request_error", null);
            return;
        }
        if (request["prompt"] is null && (request["model"] is not JsonValue modelValue || !modelValue.TryGetValue<string>(out var named) || named.Length == 0))
        {
            await OpenAiErrorAsync(ctx, 400, "'model' is required: the name of a route or provider/model.", "invalid_request_error", "model");
            return;
        }
        PromptUse? promptUse = null;
        if (operation == "chat" && (request["prompt"] is not null || (request["model"] is JsonValue m && m.TryGetValue<string>(out var modelName) && modelName.StartsWith(PromptPrefix, StringComparison.Ordinal))))
        {
            // A prompt from the registry: rendered here, its config applied, its model called.
            try
            {
                promptUse = await ApplyPromptAsync(caller, request, User(ctx.Request.Headers["x-sextant-user"].ToString(), request), ctx.RequestAborted);
            }
            catch (SextantException e)
            {
                await OpenAiErrorAsync(ctx, e.StatusCode, e.Message, e.StatusCode == 404 ? "not_found_error" : "invalid_request_error", e.Field ?? "prompt");
                return;
            }
        }
        if (request["model"] is not JsonValue chosen || !chosen.TryGetValue<string>(out var model) || model.Length == 0)
        {
            await OpenAiErrorAsync(ctx, 400, "'model' is required: the name of a route or provider/model (a prompt object is for chat completions).", "invalid_request_error", "model");
            return;
        }
        if (operation == "chat" && request["messages"] is not JsonArray { Count: > 0 })
        {
            await OpenAiErrorAsync(ctx, 400, "'messages' is required and must be a non-empty array.", "invalid_request_error", "messages");
            return;
        }
        if (operation == "embeddings" && request["input"] is null)
        {
            await OpenAiErrorAsync(ctx, 400, "'input' is required.", "invalid_request_error", "input");
            return;
        }
        if (await limiter.CheckAsync(caller, ctx.RequestAborted) is { } refused)
        {
            ctx.Response.Headers.RetryAfter = refused.RetryAfterSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
            await OpenAiErrorAsync(ctx, 429, refused.Message, "rate_limit_error", null, refused.Code);
            return;
        }
        var snapshot = await registry.SnapshotAsync(caller.ProjectId, ctx.RequestAborted);
        var route = Route(snapshot, model);
        if (route is null)
        {
            var known = string.Join(", ", snapshot.Routes.Keys.Order(StringComparer.Ordinal).Take(50));
            await OpenAiErrorAsync(ctx, 404, $"The model '{model}' is not configured. Routes: {(known.Length == 0 ? "(none)" : known)}; or name a provider's model as provider/model (providers: {string.Join(", ", snapshot.Providers.Keys.Order(StringComparer.Ordinal))}).",
                "invalid_request_error", "model", "model_not_found");
            return;
        }
        var stream = operation == "chat" && request["stream"] is JsonValue s && s.TryGetValue<bool>(out var on) && on;
        if (stream && request["stream_options"] is null)
        {
            // Ask for the usage chunk at the end of the stream, so that the trace has tokens and cost.
            request["stream_options"] = new JsonObject { ["include_usage"] = true };
        }
        var trace = TraceContext(ctx) with { Prompt = promptUse };
        ctx.Response.Headers["x-sextant-trace-id"] = trace.TraceId;
        var attempts = new List<Attempt>();
        // The exact-match cache: on for the route (cache_ttl_seconds) or for the request (x-sextant-cache-ttl; 0 skips it).
        var ttl = int.TryParse(ctx.Request.Headers["x-sextant-cache-ttl"].ToString(), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var asked)
            ? asked : route.CacheTtlSeconds ?? 0;
        var cacheKey = ttl > 0 ? GatewayCache.Key(caller.ProjectId, route.Name!, operation, request) : null;
        if (cacheKey is not null && cache.TryGet(cacheKey) is { } hit)
        {
            ctx.Response.Headers["x-sextant-cache"] = "hit";
            ctx.Response.StatusCode = 200;
            ctx.Response.ContentType = hit.ContentType;
            ctx.Response.ContentLength = hit.Body.Length;
            await ctx.Response.Body.WriteAsync(hit.Body, ctx.RequestAborted);
            var replay = new Outcome { Status = 200, Provider = hit.Provider, Model = hit.Model, CacheHit = true, CostSaved = hit.Cost, TimeToFirstTokenMs = Elapsed(started) };
            if (stream)
            {
                replay.Events.AddRange(GatewayCache.Events(hit.Body));
            }
            else
            {
                replay.ResponseBytes = hit.Body;
            }
            RecordInBackground(caller, trace, route, model, request, operation, replay, attempts, startTime, started, ctx, null);
            return;
        }
        var outcome = await ForwardAsync(ctx, caller, snapshot, route, request, operation, stream, trace, attempts, started, cacheKey is not null);
        RecordInBackground(caller, trace, route, model, request, operation, outcome, attempts, startTime, started, ctx,
            cacheKey is not null && outcome.Status is >= 200 and < 300 && !outcome.Cancelled ? (cacheKey, ttl) : null);
    }

    private static GatewayRoute? Route(GatewayRegistry.Snapshot snapshot, string model)
    {
        if (snapshot.Routes.TryGetValue(model, out var route))
        {
            return route;
        }
        // provider/model names a provider's model directly.
        var slash = model.IndexOf('/', StringComparison.Ordinal);
        return slash > 0 && snapshot.Providers.ContainsKey(model[..slash])
            ? new GatewayRoute(model, [new RouteTarget(model[..slash], model[(slash + 1)..])], Source: "direct")
            : null;
    }

    private static async Task<byte[]?> ReadBodyAsync(HttpContext ctx)
    {
        if (ctx.Request.ContentLength > MaxBodyBytes)
        {
            await OpenAiErrorAsync(ctx, 413, $"The request body is {ctx.Request.ContentLength} bytes; the gateway accepts at most {MaxBodyBytes}.", "invalid_request_error", null);
            return null;
        }
        var body = await BoundedBody.ReadAsync(ctx.Request.Body, MaxBodyBytes, ctx.RequestAborted, ctx.Request.ContentLength);
        if (body is null)
        {
            await OpenAiErrorAsync(ctx, 413, $"The request body is larger than the {MaxBodyBytes} bytes the gateway accepts.", "invalid_request_error", null);
        }
        return body;
    }

    /// <summary>What became of a call, for its span.</summary>
    private sealed class Outcome
    {
        public int Status;
        public string? Error;
        public bool Cancelled;
        public string? Provider;
        /// <summary>The provider's system as the GenAI conventions name it (anthropic, azure.ai.openai, openai), which prices are matched on.</summary>
        public string? System;
        public string? Model;
        /// <summary>The upstream's JSON answer, parsed once for the span (not a copy: it reads <see cref="ResponseBytes"/>).</summary>
        public JsonElement? Response;
        public StringBuilder Content = new();
        public string? FinishReason;
        public JsonElement? Usage;
        public double? TimeToFirstTokenMs;
        /// <summary>The upstream's answer as it came (read for the span after the call, off the request's path).</summary>
        public byte[]? ResponseBytes;
        /// <summary>A stream's data lines and when each arrived (ms since the call started), read for the span after the call.</summary>
        public List<(string Data, double At)> Events = [];
        public int EventBytes;
        public int IdleTimeoutMs = 60_000;
        public bool CacheHit;
        public double? CostSaved;
        /// <summary>A stream's bytes as relayed, kept when the answer is to be cached (up to 4 MiB).</summary>
        public MemoryStream? Recorded;
    }

    private async Task<Outcome> ForwardAsync(HttpContext ctx, Caller caller, GatewayRegistry.Snapshot snapshot, GatewayRoute route, JsonObject request,
        string operation, bool stream, Trace trace, List<Attempt> attempts, long started, bool record)
    {
        var outcome = new Outcome { IdleTimeoutMs = route.TimeoutMs, Recorded = record && stream ? new MemoryStream() : null };
        var fallbackOn = route.FallbackOn ?? DefaultFallbackStatuses;
        var order = Order(caller.ProjectId, route);
        HttpResponseMessage? lastFailure = null;
        byte[]? lastFailureBody = null;
        var timedOut = false;
        string? connectionError = null;
        try
        {
            foreach (var target in order)
            {
                if (!snapshot.Providers.TryGetValue(target.Provider!, out var provider))
                {
                    attempts.Add(new Attempt(target.Provider!, target.Model!, 0, "unknown provider", 0));
                    continue;
                }
                var breaker = registry.Breaker(caller.ProjectId, provider.Name, target.Model!);
                for (var retry = 0; retry <= route.Retries; retry++)
                {
                    if (!breaker.TryEnter(Environment.TickCount64))
                    {
                        attempts.Add(new Attempt(provider.Name, target.Model!, 0, "circuit open", 0));
                        break;
                    }
                    if (retry > 0)
                    {
                        // Exponential back-off with full jitter.
                        var ceiling = route.RetryBaseMs * Math.Pow(2, retry - 1);
                        await Task.Delay(TimeSpan.FromMilliseconds(Random.Shared.NextDouble() * ceiling), ctx.RequestAborted);
                    }
                    request["model"] = target.Model;
                    var attemptStart = Stopwatch.GetTimestamp();
                    using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ctx.RequestAborted);
                    timeout.CancelAfter(route.TimeoutMs);
                    HttpResponseMessage response;
                    try
                    {
                        response = await SendAsync(provider, operation, request, stream, trace, timeout.Token);
                    }
                    catch (OperationCanceledException) when (!ctx.RequestAborted.IsCancellationRequested)
                    {
                        attempts.Add(new Attempt(provider.Name, target.Model!, 0, "timeout", Elapsed(attemptStart)));
                        breaker.Failure(Environment.TickCount64, route.BreakerFailures, route.BreakerCooldownMs);
                        timedOut = true;
                        if (!route.FallbackOnTimeout)
                        {
                            goto exhausted;
                        }
                        continue;
                    }
                    catch (HttpRequestException e)
                    {
                        attempts.Add(new Attempt(provider.Name, target.Model!, 0, "connection failed", Elapsed(attemptStart)));
                        breaker.Failure(Environment.TickCount64, route.BreakerFailures, route.BreakerCooldownMs);
                        connectionError = e.Message;
                        continue;
                    }
                    var status = (int)response.StatusCode;
                    // The target answered: it is up unless it says otherwise (5xx, 429). This also settles a half-open trial.
                    if (status >= 500 || status == 429)
                    {
                        breaker.Failure(Environment.TickCount64, route.BreakerFailures, route.BreakerCooldownMs);
                    }
                    else
                    {
                        breaker.Success();
                    }
                    if (response.IsSuccessStatusCode)
                    {
                        attempts.Add(new Attempt(provider.Name, target.Model!, status, "ok", Elapsed(attemptStart)));
                        (outcome.Provider, outcome.System, outcome.Model, outcome.Status) = (provider.Name, ProviderSystem(provider), target.Model, status);
                        lastFailure?.Dispose();
                        lastFailure = null;
                        using (response)
                        {
                            try
                            {
                                if (stream)
                                {
                                    await StreamAsync(ctx, response, outcome, started, timeout);
                                }
                                else
                                {
                                    await PassThroughAsync(ctx, response, outcome, started, timeout.Token);
                                }
                            }
                            catch (Exception e) when (!ctx.RequestAborted.IsCancellationRequested && e is HttpRequestException or IOException or OperationCanceledException or InvalidDataException)
                            {
                                // The upstream failed in the middle of its answer.
                                var timedOutMidway = e is OperationCanceledException;
                                (outcome.Status, outcome.Error) = (timedOutMidway ? 504 : 502, $"The upstream's answer broke off: {(timedOutMidway ? $"no data within {route.TimeoutMs} ms" : e.Message)}");
                                if (ctx.Response.HasStarted)
                                {
                                    ctx.Abort();
                                }
                                else
                                {
                                    await OpenAiErrorAsync(ctx, outcome.Status, outcome.Error, timedOutMidway ? "timeout" : "api_error", null, "upstream_broken");
                                }
                            }
                        }
                        return outcome;
                    }
                    byte[] failureBody;
                    try
                    {
                        failureBody = await ReadLimitedAsync(response, MaxErrorBodyBytes, timeout.Token);
                    }
                    catch (Exception e) when (!ctx.RequestAborted.IsCancellationRequested && e is HttpRequestException or IOException or OperationCanceledException or InvalidDataException)
                    {
                        failureBody = Encoding.UTF8.GetBytes($"{{\"error\":{{\"message\":\"the upstream's error body could not be read\"}}}}");
                    }
                    attempts.Add(new Attempt(provider.Name, target.Model!, status, "error", Elapsed(attemptStart)));
                    lastFailure?.Dispose();
                    (lastFailure, lastFailureBody, timedOut, connectionError) = (response, failureBody, false, null);
                    if (!fallbackOn.Contains(status))
                    {
                        // Not a failure the route retries or falls back on: the upstream's answer is the answer.
                        goto exhausted;
                    }
                }
            }
        exhausted:
            if (lastFailure is not null && !timedOut && connectionError is null)
            {
                // The upstream's own error passes through with its status and body.
                (outcome.Status, outcome.Error) = ((int)lastFailure.StatusCode, Encoding.UTF8.GetString(lastFailureBody ?? []));
                ctx.Response.StatusCode = outcome.Status;
                ctx.Response.ContentType = lastFailure.Content.Headers.ContentType?.ToString() ?? "application/json";
                await ctx.Response.Body.WriteAsync(lastFailureBody ?? [], ctx.RequestAborted);
                lastFailure.Dispose();
                return outcome;
            }
            lastFailure?.Dispose();
            var tried = string.Join("; ", attempts.Select(a => $"{a.Provider}/{a.Model}: {a.Outcome}{(a.Status > 0 ? $" {a.Status}" : "")}"));
            if (timedOut)
            {
                (outcome.Status, outcome.Error) = (504, $"The upstream did not answer within {route.TimeoutMs} ms ({tried}).");
                await OpenAiErrorAsync(ctx, 504, outcome.Error, "timeout", null, "upstream_timeout");
            }
            else
            {
                (outcome.Status, outcome.Error) = (502, $"No upstream could be reached for '{route.Name}' ({tried}){(connectionError is null ? "" : ": " + connectionError)}.");
                await OpenAiErrorAsync(ctx, 502, outcome.Error, "api_error", null, "upstream_unavailable");
            }
            return outcome;
        }
        catch (OperationCanceledException) when (ctx.RequestAborted.IsCancellationRequested)
        {
            // The client went away: the upstream call was cancelled with it; a half-open trial it held is given back.
            foreach (var target in route.Targets!)
            {
                registry.Breaker(caller.ProjectId, target.Provider!, target.Model!).Release();
            }
            (outcome.Cancelled, outcome.Error) = (true, "The client disconnected; the upstream call was cancelled.");
            lastFailure?.Dispose();
            return outcome;
        }
        catch (IOException) when (ctx.RequestAborted.IsCancellationRequested)
        {
            foreach (var target in route.Targets!)
            {
                registry.Breaker(caller.ProjectId, target.Provider!, target.Model!).Release();
            }
            (outcome.Cancelled, outcome.Error) = (true, "The client disconnected; the upstream call was cancelled.");
            lastFailure?.Dispose();
            return outcome;
        }
    }

    /// <summary>The first target by weight among those with a closed circuit, then the others in the route's order.</summary>
    private List<RouteTarget> Order(long project, GatewayRoute route)
    {
        var targets = route.Targets!;
        if (targets.Count == 1)
        {
            return [targets[0]];
        }
        var now = Environment.TickCount64;
        var healthy = targets.Where(t => !registry.Breaker(project, t.Provider!, t.Model!).IsOpen(now)).ToList();
        var pool = healthy.Count > 0 ? healthy : [.. targets];
        var pick = Random.Shared.NextDouble() * pool.Sum(t => t.Weight);
        var first = pool[^1];
        foreach (var t in pool)
        {
            if ((pick -= t.Weight) < 0)
            {
                first = t;
                break;
            }
        }
        return [first, .. targets.Where(t => !ReferenceEquals(t, first))];
    }

    /// <summary>anthropic and azure by kind; openai for OpenAI's own endpoint; null for other OpenAI-compatible servers (Ollama, vLLM...), named by their provider name.</summary>
    private static string? ProviderSystem(GatewayRegistry.ResolvedProvider provider) => provider.Kind switch
    {
        "anthropic" => "anthropic",
        "azure" => "azure.ai.openai",
        _ when provider.BaseUrl.Host.Equals("api.openai.com", StringComparison.OrdinalIgnoreCase) => "openai",
        _ => null,
    };

    /// <summary>Who a call is for: the x-sextant-user header, else the request's OpenAI "user" field.</summary>
    private static string? User(string header, JsonObject request) =>
        header.Length > 0 ? header : request["user"] is JsonValue value && value.TryGetValue<string>(out var user) ? user : null;

    private static double Elapsed(long since) => Stopwatch.GetElapsedTime(since).TotalMilliseconds;

    private static async Task<HttpResponseMessage> SendAsync(GatewayRegistry.ResolvedProvider provider, string operation, JsonObject request, bool stream, Trace trace,
        CancellationToken cancellationToken)
    {
        if (provider.Kind == "anthropic")
        {
            return operation == "chat"
                ? await AnthropicAdapter.SendAsync(provider, AnthropicUpstream, request, stream, (trace.UpstreamTraceParent, trace.TraceState), cancellationToken)
                : new HttpResponseMessage(HttpStatusCode.BadRequest)
                {
                    Content = new StringContent($"{{\"error\":{{\"message\":\"The provider '{provider.Name}' (anthropic) has no embeddings endpoint.\",\"type\":\"invalid_request_error\",\"param\":\"model\",\"code\":null}}}}",
                        Encoding.UTF8, "application/json"),
                };
        }
        var message = new HttpRequestMessage(HttpMethod.Post, operation == "chat" ? provider.ChatCompletions : provider.Embeddings)
        {
            Content = new ByteArrayContent(JsonSerializer.SerializeToUtf8Bytes(request, GatewayJson.Default.JsonObject)),
        };
        message.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        // W3C trace context: an upstream that records traces (vLLM, or a service behind the gateway with OpenTelemetry)
        // puts its spans in the caller's trace, under the gateway's span.
        message.Headers.TryAddWithoutValidation("traceparent", trace.UpstreamTraceParent);
        if (trace.TraceState is { } state)
        {
            message.Headers.TryAddWithoutValidation("tracestate", state);
        }
        if (provider.ApiKey is not null && provider.Kind == "azure")
        {
            // Azure OpenAI takes its resource keys in the api-key header.
            message.Headers.Add("api-key", provider.ApiKey);
        }
        else if (provider.ApiKey is not null)
        {
            message.Headers.Authorization = new AuthenticationHeaderValue("Bearer", provider.ApiKey);
        }
        return await Upstream.SendAsync(message, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
    }

    public const int MaxErrorBodyBytes = 1 << 20;
    public const int MaxAnswerBytes = 64 << 20;

    /// <summary>Reads a body up to a limit (InvalidDataException beyond it) within the attempt's time.</summary>
    private static async Task<byte[]> ReadLimitedAsync(HttpResponseMessage response, int limit, CancellationToken cancellationToken)
    {
        await using var body = await response.Content.ReadAsStreamAsync(cancellationToken);
        return await BoundedBody.ReadAsync(body, limit, cancellationToken, response.Content.Headers.ContentLength) ?? throw new InvalidDataException($"the upstream's answer is larger than {limit} bytes");
    }

    private static async Task PassThroughAsync(HttpContext ctx, HttpResponseMessage response, Outcome outcome, long started, CancellationToken attempt)
    {
        var bytes = await ReadLimitedAsync(response, MaxAnswerBytes, attempt);
        outcome.TimeToFirstTokenMs = Elapsed(started);
        ctx.Response.StatusCode = (int)response.StatusCode;
        ctx.Response.ContentType = response.Content.Headers.ContentType?.ToString() ?? "application/json";
        if (response.Headers.TryGetValues("x-request-id", out var ids))
        {
            ctx.Response.Headers["x-request-id"] = ids.First();
        }
        ctx.Response.ContentLength = bytes.Length;
        await ctx.Response.Body.WriteAsync(bytes, ctx.RequestAborted);
        outcome.ResponseBytes = bytes;
    }

    /// <summary>Reads usage, model and answer from what the upstream sent: after the call, for its span.</summary>
    private static void ReadAnswer(Outcome outcome)
    {
        if (outcome.ResponseBytes is { } bytes)
        {
            try
            {
                // One document over the answer's own bytes: the span takes its message from it without copies.
                var response = JsonDocument.Parse(bytes).RootElement;
                outcome.Response = response;
                if (response.ValueKind == JsonValueKind.Object)
                {
                    outcome.Usage = Child(response, "usage");
                    outcome.Model = StringOf(Child(response, "model")) ?? outcome.Model;
                }
            }
            catch (Exception e) when (e is JsonException or InvalidOperationException)
            {
                // Not the JSON expected (or a string that is not valid text): passed through as it came; the span has no usage.
            }
        }
        foreach (var (data, at) in outcome.Events)
        {
            ReadEvent(data, at, outcome);
        }
    }

    /// <summary>An object's property, or null when the value is not an object or has no such property (or it is JSON null).</summary>
    private static JsonElement? Child(JsonElement? value, string name) =>
        value is { ValueKind: JsonValueKind.Object } o && o.TryGetProperty(name, out var child) && child.ValueKind != JsonValueKind.Null ? child : null;

    /// <summary>An array's first item, or null.</summary>
    private static JsonElement? First(JsonElement? value) =>
        value is { ValueKind: JsonValueKind.Array } a && a.GetArrayLength() > 0 ? a[0] : null;

    private static string? StringOf(JsonElement? value) => value is { ValueKind: JsonValueKind.String } s ? s.GetString() : null;

    /// <summary>Copies the event stream as it arrives, flushing each read, and reads the chunks on the side for the span.</summary>
    private static async Task StreamAsync(HttpContext ctx, HttpResponseMessage response, Outcome outcome, long started, CancellationTokenSource timeout)
    {
        // The per-attempt time-out becomes an idle time-out: each read must bring data within it.
        var idle = TimeSpan.FromMilliseconds(Math.Max(outcome.IdleTimeoutMs, 1));
        timeout.CancelAfter(idle);
        ctx.Response.StatusCode = (int)response.StatusCode;
        ctx.Response.ContentType = response.Content.Headers.ContentType?.ToString() ?? "text/event-stream";
        ctx.Response.Headers.CacheControl = "no-cache";
        ctx.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpResponseBodyFeature>()?.DisableBuffering();
        await using var upstream = await response.Content.ReadAsStreamAsync(timeout.Token);
        var buffer = ArrayPool<byte>.Shared.Rent(16 * 1024);
        var line = new List<byte>(1024);
        try
        {
            int read;
            while ((read = await upstream.ReadAsync(buffer, timeout.Token)) > 0)
            {
                timeout.CancelAfter(idle);
                if (outcome.Recorded is { } recorded)
                {
                    if (recorded.Length + read <= GatewayCache.MaxEntryBytes)
                    {
                        recorded.Write(buffer, 0, read);
                    }
                    else
                    {
                        outcome.Recorded = null;
                    }
                }
                await ctx.Response.Body.WriteAsync(buffer.AsMemory(0, read), ctx.RequestAborted);
                await ctx.Response.Body.FlushAsync(ctx.RequestAborted);
                for (var i = 0; i < read; i++)
                {
                    if (buffer[i] == (byte)'\n')
                    {
                        Keep(line, outcome, started);
                        line.Clear();
                    }
                    else if (line.Count < 1 << 20)
                    {
                        line.Add(buffer[i]);
                    }
                }
            }
            Keep(line, outcome, started);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>Keeps a stream's data line (up to 4 MiB in all) with its arrival time; it is read after the call.</summary>
    private static void Keep(List<byte> line, Outcome outcome, long started)
    {
        if (line.Count < 6 || line[0] != (byte)'d' || outcome.EventBytes > 4 << 20)
        {
            return;
        }
        var text = Encoding.UTF8.GetString(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(line)).TrimEnd('\r');
        if (text.StartsWith("data:", StringComparison.Ordinal))
        {
            outcome.Events.Add((text[5..].Trim(), Elapsed(started)));
            outcome.EventBytes += text.Length;
        }
    }

    private static void ReadEvent(string data, double at, Outcome outcome)
    {
        if (data.Length == 0 || data == "[DONE]")
        {
            return;
        }
        try
        {
            using var document = JsonDocument.Parse(data);
            var chunk = document.RootElement;
            outcome.Model = StringOf(Child(chunk, "model")) ?? outcome.Model;
            if (Child(chunk, "usage") is { ValueKind: JsonValueKind.Object } usage)
            {
                // Kept past this chunk's document.
                outcome.Usage = usage.Clone();
            }
            if (First(Child(chunk, "choices")) is { } choice)
            {
                if (StringOf(Child(Child(choice, "delta"), "content")) is { } piece)
                {
                    outcome.TimeToFirstTokenMs ??= at;
                    outcome.Content.Append(piece);
                }
                if (StringOf(Child(choice, "finish_reason")) is { } reason)
                {
                    outcome.FinishReason = reason;
                }
            }
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException)
        {
            // A chunk that is not the JSON expected (or a string in it that is not valid text) is passed on all the same.
        }
    }

    /// <param name="SpanId">The call's own span, made before the call so that the upstream can be told it (traceparent).</param>
    /// <param name="TraceState">The caller's W3C tracestate, passed on with the trace it belongs to.</param>
    private sealed record Trace(string TraceId, string? ParentSpanId, string SpanId, string? TraceState, PromptUse? Prompt = null)
    {
        /// <summary>The W3C traceparent an upstream gets: this trace, with the gateway's span as the parent of whatever it records.</summary>
        public string UpstreamTraceParent => $"00-{TraceId}-{SpanId}-01";
    }

    /// <summary>The caller's W3C traceparent joins its trace; otherwise the call starts one.</summary>
    private static Trace TraceContext(HttpContext ctx)
    {
        var header = ctx.Request.Headers["traceparent"].ToString().Split('-');
        // The span is checked as any other (TraceService), so a parent it would refuse (all zero, as W3C calls invalid)
        // does not join: the call starts its own trace rather than losing its span.
        return header is [_, var traceId, var parent, _] && TraceService.IsTraceContextId(traceId, 32) && TraceService.IsTraceContextId(parent, 16)
            ? new Trace(traceId, parent, NewSpanId(), ctx.Request.Headers["tracestate"].ToString() is { Length: > 0 } state ? state : null)
            : new Trace(Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16)), null, NewSpanId(), null);
    }

    private static string NewSpanId()
    {
        Span<byte> id = stackalloc byte[8];
        RandomNumberGenerator.Fill(id);
        return Convert.ToHexStringLower(id);
    }

    private void RecordInBackground(Caller caller, Trace trace, GatewayRoute route, string requested, JsonObject request, string operation, Outcome outcome,
        List<Attempt> attempts, long startTime, long started, HttpContext ctx, (string Key, int Ttl)? store)
    {
        var contentType = ctx.Response.ContentType ?? "application/json";
        // Only what the span needs is taken from the request now; the rest of the work runs after the answer is sent.
        var end = startTime + (long)(Elapsed(started) * 1000);
        var headers = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var name in (string[])["x-sextant-capture", "x-sextant-user", "x-sextant-session", "x-sextant-tags", "x-sextant-metadata"])
        {
            if (ctx.Request.Headers[name].ToString() is { Length: > 0 } value)
            {
                headers[name] = value;
            }
        }
        var project = caller.ProjectId;
        var recording = recorder.Post(async () =>
        {
            try
            {
                // Queued for the span writer without waiting for its commit, so that nothing resumes on the thread pool for
                // each call once it is stored (that work item cost about 3% of a call's CPU, bench/RESULTS.md 9l). The
                // call's tokens and cost count against its limits as soon as it is done: the provider has been paid either way.
                var (stored, committed) = await traces.QueueAsync(project, [BuildSpan(trace, route, requested, request, operation, outcome, attempts, startTime, end, headers)],
                    caller.KeyId, e => logger.LogWarning(e, "The trace of gateway call {TraceId} could not be stored", trace.TraceId));
                await limiter.RecordAsync(caller, outcome.CacheHit ? 0 : (stored[0].InputTokens ?? 0) + (stored[0].OutputTokens ?? 0), stored[0].Cost);
                if (store is { } entry && (outcome.ResponseBytes ?? outcome.Recorded?.ToArray()) is { Length: > 0 and <= GatewayCache.MaxEntryBytes } body)
                {
                    // Cached with what the answer cost, which a hit then records as saved.
                    cache.Set(entry.Key, new GatewayCache.Entry(body, contentType, outcome.Provider, outcome.Model, stored[0].Cost), entry.Ttl);
                }
                return new Recording(stored[0], committed);
            }
            catch (Exception e)
            {
                logger.LogWarning(e, "The trace of gateway call {TraceId} could not be stored", trace.TraceId);
                return new Recording(null, null);
            }
        });
        // An in-process caller (an experiment, a judge) waits for the stored span: its tokens and cost.
        if (ctx.Features.Get<RecordedSpanFeature>() is { } feature)
        {
            feature.Recorded = StoredAsync(recording);
        }
    }

    private readonly record struct Recording(Span? Span, Task? Committed);

    /// <summary>The span once it is committed; null when it could not be stored.</summary>
    private static async Task<Span?> StoredAsync(Task<Recording> recording)
    {
        var (span, committed) = await recording;
        if (committed is null)
        {
            return null;
        }
        try
        {
            await committed;
            return span;
        }
        catch (Exception)
        {
            // The writer's callback has logged it.
            return null;
        }
    }

    /// <summary>Set by an in-process caller to get the span a call stored.</summary>
    internal sealed class RecordedSpanFeature
    {
        public Task<Span?>? Recorded { get; set; }
    }

    private Span BuildSpan(Trace trace, GatewayRoute route, string requested, JsonObject request, string operation, Outcome outcome, List<Attempt> attempts,
        long startTime, long end, Dictionary<string, string> headers)
    {
        ReadAnswer(outcome);
        string Header(string name) => headers.TryGetValue(name, out var value) ? value : "";
        var capture = (Header("x-sextant-capture") is { Length: > 0 } asked ? asked : options.Value.GatewayCapture) switch
        {
            "off" => "off",
            "metadata" => "metadata",
            _ => options.Value.GatewayCapture,
        };
        var user = User(Header("x-sextant-user"), request);
        var session = Header("x-sextant-session") is { Length: > 0 } sid ? sid : null;
        var tags = Header("x-sextant-tags") is { Length: > 0 } tagList ? tagList.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries) : [];
        Dictionary<string, string>? metadata = null;
        if (Header("x-sextant-metadata") is { Length: > 0 } metadataText)
        {
            try
            {
                metadata = JsonSerializer.Deserialize(metadataText, GatewayJson.Default.DictionaryStringString);
            }
            catch (JsonException)
            {
                metadata = new Dictionary<string, string> { ["x-sextant-metadata"] = metadataText };
            }
        }
        var usage = outcome.Usage;
        long? Tokens(string name, string? detail = null) =>
            (detail is null ? Child(usage, name) : Child(Child(usage, name), detail)) is { ValueKind: JsonValueKind.Number } n && n.TryGetInt64(out var count) ? count : null;
        JsonElement? input = capture == "full" ? JsonSerializer.SerializeToElement(operation == "chat" ? request["messages"] : request["input"], GatewayJson.Default.JsonNode) : null;
        JsonElement? output = null;
        if (capture == "full")
        {
            // The answer's message as the upstream sent it, read from the answer's own document; a stream's pieces joined.
            output = Child(First(Child(outcome.Response, "choices")), "message");
            if (output is null && outcome.Content.Length > 0)
            {
                output = JsonSerializer.SerializeToElement(new JsonObject { ["role"] = "assistant", ["content"] = outcome.Content.ToString() }, GatewayJson.Default.JsonNode);
            }
        }
        // The parameters and the attributes are written as one JSON document, so that the span costs two parses, not one per value.
        var (parameters, attributes) = SpanValues.Build(writer =>
        {
            writer.WriteStartObject();
            foreach (var (name, value) in request)
            {
                if (value is not null && !NotParameters.Contains(name))
                {
                    writer.WritePropertyName(name);
                    value.WriteTo(writer);
                }
            }
            writer.WriteEndObject();
            writer.WriteStartObject();
            writer.WriteString("sextant.route", route.Name);
            writer.WriteString("sextant.requested_model", requested);
            writer.WriteNumber("sextant.attempts", attempts.Count);
            writer.WriteStartArray("sextant.attempt_log");
            foreach (var a in attempts)
            {
                writer.WriteStringValue($"{a.Provider}/{a.Model} {a.Outcome} {a.Status} {a.Ms:0.0}ms");
            }
            writer.WriteEndArray();
            writer.WriteNumber("http.status_code", outcome.Status);
            if (trace.Prompt is { } prompt)
            {
                writer.WriteString("sextant.prompt.name", prompt.Name);
                writer.WriteNumber("sextant.prompt.version", prompt.Version);
                if (prompt.Label is not null)
                {
                    writer.WriteString("sextant.prompt.label", prompt.Label);
                }
                if (prompt.Arm is not null)
                {
                    // The A/B arm the call fell in, so that traces and evaluations can be compared by arm.
                    writer.WriteString("sextant.prompt.arm", prompt.Arm);
                }
            }
            if (outcome.System is not null)
            {
                writer.WriteString("gen_ai.provider.name", outcome.System);
            }
            if (outcome.FinishReason is not null)
            {
                writer.WriteString("gen_ai.response.finish_reasons", outcome.FinishReason);
            }
            writer.WriteEndObject();
        });
        var status = outcome.Cancelled || outcome.Status is 0 or >= 400 ? "error" : "ok";
        var (inputTokens, outputTokens) = (Tokens("prompt_tokens"), Tokens("completion_tokens"));
        var estimated = false;
        if (inputTokens is null && status == "ok")
        {
            // No usage from the provider (a stream without a usage chunk, a server that omits it): count the tokens.
            var model = outcome.Model ?? route.Targets![0].Model;
            var sent = operation == "chat" ? request["messages"] : request["input"];
            inputTokens = sent is null ? 0 : TokenEstimator.CountMessages(model, JsonSerializer.SerializeToElement(sent, GatewayJson.Default.JsonNode));
            var answer = Child(Child(First(Child(outcome.Response, "choices")), "message"), "content")?.ToString() ?? outcome.Content.ToString();
            outputTokens = operation == "chat" ? TokenEstimator.Count(model, answer) : 0;
            estimated = true;
        }
        return new Span(trace.TraceId, trace.SpanId, trace.ParentSpanId,
            $"{operation} {outcome.Model ?? requested}", "generation", startTime, Math.Max(end, startTime), status,
            outcome.Cancelled ? "cancelled: " + outcome.Error : outcome.Error is { } error ? (error.Length > 2000 ? error[..2000] : error) : null,
            outcome.Provider ?? route.Targets![0].Provider, outcome.Model ?? route.Targets![0].Model, operation,
            inputTokens, outputTokens, Tokens("prompt_tokens_details", "cached_tokens"), Tokens("prompt_tokens_details", "cache_write_tokens"), Tokens("completion_tokens_details", "reasoning_tokens"),
            estimated, outcome.CacheHit ? 0 : null, outcome.CostSaved, outcome.TimeToFirstTokenMs, user, session, input, output, capture == "off" ? null : parameters, attributes,
            tags.Length > 0 ? tags : null, metadata, outcome.CacheHit);
    }

    /// <summary>An error in OpenAI's shape, which OpenAI SDKs turn into their own exceptions.</summary>
    public static async Task OpenAiErrorAsync(HttpContext ctx, int status, string message, string type, string? param, string? code = null)
    {
        if (ctx.Response.HasStarted)
        {
            return;
        }
        ctx.Response.StatusCode = status;
        ctx.Response.ContentType = "application/json";
        var error = new JsonObject
        {
            ["error"] = new JsonObject { ["message"] = message, ["type"] = type, ["param"] = param, ["code"] = code },
        };
        await ctx.Response.WriteAsync(error.ToJsonString(), ctx.RequestAborted);
    }
}

[System.Text.Json.Serialization.JsonSerializable(typeof(JsonObject))]
[System.Text.Json.Serialization.JsonSerializable(typeof(JsonNode))]
[System.Text.Json.Serialization.JsonSerializable(typeof(Dictionary<string, string>))]
[System.Text.Json.Serialization.JsonSerializable(typeof(Dictionary<string, object>))]
[System.Text.Json.Serialization.JsonSerializable(typeof(List<string>))]
[System.Text.Json.Serialization.JsonSerializable(typeof(string))]
[System.Text.Json.Serialization.JsonSerializable(typeof(int))]
internal sealed partial class GatewayJson : System.Text.Json.Serialization.JsonSerializerContext;
