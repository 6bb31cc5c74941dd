using System.Globalization;
using System.Net.Http.Json;
using Sextant.Contracts;

namespace Sextant.Client;

// LLM traces, costs, prices and the gateway's configuration: /api/v1/traces, /api/v1/costs, /api/v1/prices, /api/v1/gateway.
public sealed partial class SextantClient
{
    /// <summary>Stores spans (at most 1,000 per call); the answer says what became of each.</summary>
    public async Task<IngestSpansResponse> IngestSpansAsync(IReadOnlyList<Span> spans, CancellationToken cancellationToken = default)
    {
        using var content = JsonContent.Create(new IngestSpansRequest([.. spans]), Wire.IngestSpansRequest);
        // 207 (some spans refused) is an answer, not a failure: read it as one.
        using var response = await SendStreamingAsync(HttpMethod.Post, "api/v1/traces/ingest", content, cancellationToken).ConfigureAwait(false);
        return await response.Content.ReadFromJsonAsync(Wire.IngestSpansResponse, cancellationToken).ConfigureAwait(false)
            ?? throw new SextantApiException(response.StatusCode, "INVALID_RESPONSE", "The server answered the span batch with an empty body.");
    }

    /// <param name="from">Unix milliseconds.</param>
    public Task<TracesResponse> ListTracesAsync(long? from = null, long? to = null, string? user = null, string? session = null, string? model = null, string? status = null,
        string? tag = null, int? maxResults = null, string? pageToken = null, CancellationToken cancellationToken = default) =>
        GetJsonAsync("api/v1/traces" + Query(("from", Text(from)), ("to", Text(to)), ("user", user), ("session", session), ("model", model), ("status", status), ("tag", tag),
            ("max_results", Text(maxResults)), ("page_token", pageToken)), Wire.TracesResponse, cancellationToken);

    public Task<TraceResponse> GetTraceAsync(string traceId, CancellationToken cancellationToken = default) =>
        GetJsonAsync($"api/v1/traces/{Segment(traceId)}", Wire.TraceResponse, cancellationToken);

    /// <param name="by">model, user, provider, day or project.</param>
    public Task<CostsResponse> GetCostsAsync(string by = "model", long? from = null, long? to = null, CancellationToken cancellationToken = default) =>
        GetJsonAsync("api/v1/costs" + Query(("by", by), ("from", Text(from)), ("to", Text(to))), Wire.CostsResponse, cancellationToken);

    public Task<PricesResponse> ListPricesAsync(string? model = null, CancellationToken cancellationToken = default) =>
        GetJsonAsync("api/v1/prices" + Query(("model", model)), Wire.PricesResponse, cancellationToken);

    public Task<Price> SetPriceAsync(Price price, bool shared = false, CancellationToken cancellationToken = default) =>
        PostJsonAsync("api/v1/prices" + (shared ? "?shared=true" : ""), price, Wire.Price, Wire.Price, cancellationToken);

    public Task<GatewayRoutesResponse> ListGatewayRoutesAsync(CancellationToken cancellationToken = default) =>
        GetJsonAsync("api/v1/gateway/routes", Wire.GatewayRoutesResponse, cancellationToken);

    public Task<GatewayRoute> SetGatewayRouteAsync(string name, GatewayRoute route, CancellationToken cancellationToken = default) =>
        SendJsonAsync(HttpMethod.Put, $"api/v1/gateway/routes/{Segment(name)}", JsonContent.Create(route, Wire.GatewayRoute), null, Wire.GatewayRoute, cancellationToken);

    public Task<GatewayProvidersResponse> ListGatewayProvidersAsync(CancellationToken cancellationToken = default) =>
        GetJsonAsync("api/v1/gateway/providers", Wire.GatewayProvidersResponse, cancellationToken);

    /// <param name="provider">Its api_key is sent once, stored encrypted, and never returned.</param>
    public Task<GatewayProvider> SetGatewayProviderAsync(string name, GatewayProvider provider, CancellationToken cancellationToken = default) =>
        SendJsonAsync(HttpMethod.Put, $"api/v1/gateway/providers/{Segment(name)}", JsonContent.Create(provider, Wire.GatewayProvider), null, Wire.GatewayProvider, cancellationToken);

    private static string? Text(long? value) => value?.ToString(CultureInfo.InvariantCulture);
}
