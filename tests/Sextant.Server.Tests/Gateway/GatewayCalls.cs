using System.Text;
using System.Text.Json.Nodes;

namespace Sextant.Server.Tests.Gateway;

/// <summary>Calls to the gateway as an application makes them, and the wait for their traces.</summary>
internal static class GatewayCalls
{
    public static async Task<ApiAnswer> SendAsync(HttpClient http, string path, string body, Action<HttpRequestMessage>? configure = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        configure?.Invoke(request);
        var response = await http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        JsonNode? json = null;
        try
        {
            json = text.StartsWith('{') ? JsonNode.Parse(text) : null;
        }
        catch (System.Text.Json.JsonException)
        {
        }
        return new ApiAnswer((int)response.StatusCode, json, text, response);
    }

    /// <summary>Gateway spans are stored just after the answer is sent: wait for them.</summary>
    public static async Task<JsonNode> TraceAsync(HttpClient http, ApiAnswer answer) =>
        await TraceAsync(http, answer.Response.Headers.GetValues("x-sextant-trace-id").Single());

    public static async Task<JsonNode> TraceAsync(HttpClient http, string traceId)
    {
        for (var i = 0; i < 100; i++)
        {
            var trace = await http.GetJsonAsync($"/api/v1/traces/{traceId}");
            if (trace.Status == 200)
            {
                return trace.Json!;
            }
            await Task.Delay(50);
        }
        throw new TimeoutException($"trace {traceId} never appeared");
    }
}
