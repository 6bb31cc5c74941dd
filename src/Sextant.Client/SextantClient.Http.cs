using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Sextant.Contracts;

namespace Sextant.Client;

// The HTTP plumbing every typed call goes through: URIs, auth, timeouts and error bodies.
public sealed partial class SextantClient
{
    internal const string IdempotencyKeyHeader = "Idempotency-Key";

    /// <param name="idempotencyKey">Sent as the Idempotency-Key header, so that the server applies a retried write once.</param>
    /// <param name="limit">How long this call may take; <see cref="RequestTimeout"/> when null.</param>
    internal async Task<TResponse> SendJsonAsync<TResponse>(
        HttpMethod method, string path, HttpContent? content, string? idempotencyKey, JsonTypeInfo<TResponse> responseType, CancellationToken cancellationToken,
        TimeSpan? limit = null)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(limit ?? RequestTimeout);
        using var request = CreateRequest(method, path, content, idempotencyKey);
        try
        {
            using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseContentRead, timeout.Token).ConfigureAwait(false);
            await EnsureSuccessAsync(response, timeout.Token).ConfigureAwait(false);
            return await response.Content.ReadFromJsonAsync(responseType, timeout.Token).ConfigureAwait(false)
                ?? throw new SextantApiException(response.StatusCode, "INVALID_RESPONSE", $"The server answered {method} {request.RequestUri} with an empty JSON body.");
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            throw new TimeoutException($"{method} {request.RequestUri} did not complete within {(limit ?? RequestTimeout).TotalSeconds:0} s.");
        }
        catch (OperationCanceledException e) when (IsHttpClientTimeout(e, cancellationToken))
        {
            throw HttpClientTimeout(method, request, e);
        }
    }

    internal Task<TResponse> PostJsonAsync<TRequest, TResponse>(string path, TRequest body, JsonTypeInfo<TRequest> requestType, JsonTypeInfo<TResponse> responseType, CancellationToken cancellationToken) =>
        SendJsonAsync(HttpMethod.Post, path, JsonContent.Create(body, requestType), null, responseType, cancellationToken);

    internal Task<TResponse> GetJsonAsync<TResponse>(string path, JsonTypeInfo<TResponse> responseType, CancellationToken cancellationToken) =>
        SendJsonAsync(HttpMethod.Get, path, null, null, responseType, cancellationToken);

    /// <summary>Sends a request whose body is streamed (artifacts); no timeout beyond the caller's token (and the HttpClient's own).</summary>
    internal async Task<HttpResponseMessage> SendStreamingAsync(HttpMethod method, string path, HttpContent? content, CancellationToken cancellationToken)
    {
        using var request = CreateRequest(method, path, content, idempotencyKey: null);
        HttpResponseMessage response;
        try
        {
            response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException e) when (IsHttpClientTimeout(e, cancellationToken))
        {
            throw HttpClientTimeout(method, request, e);
        }
        try
        {
            await EnsureSuccessAsync(response, cancellationToken).ConfigureAwait(false);
            return response;
        }
        catch
        {
            response.Dispose();
            throw;
        }
    }

    /// <summary>
    /// A caller-supplied HttpClient whose Timeout is shorter than <see cref="RequestTimeout"/> cancels the request
    /// itself and says so with an inner TimeoutException; a cancellation the caller asked for is not a timeout.
    /// </summary>
    private static bool IsHttpClientTimeout(OperationCanceledException e, CancellationToken cancellationToken) =>
        e.InnerException is TimeoutException && !cancellationToken.IsCancellationRequested;

    private TimeoutException HttpClientTimeout(HttpMethod method, HttpRequestMessage request, OperationCanceledException e) =>
        new($"{method} {request.RequestUri} did not complete within the HttpClient's Timeout of {_http.Timeout.TotalSeconds:0.###} s.", e);

    private HttpRequestMessage CreateRequest(HttpMethod method, string path, HttpContent? content, string? idempotencyKey)
    {
        var request = new HttpRequestMessage(method, new Uri(BaseAddress, path)) { Content = content };
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/json"));
        if (idempotencyKey is not null)
        {
            request.Headers.Add(IdempotencyKeyHeader, idempotencyKey);
        }
        if (_apiKey is not null)
        {
            // Per request rather than DefaultRequestHeaders: the HttpClient may be shared with other code.
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", _apiKey);
        }
        return request;
    }

    private static async Task EnsureSuccessAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        if (response.IsSuccessStatusCode)
        {
            return;
        }
        var body = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
        ErrorResponse? error = null;
        try
        {
            error = body.Length > 0 ? JsonSerializer.Deserialize(body, SextantJsonContext.Default.ErrorResponse) : null;
        }
        catch (JsonException)
        {
            // Not a Sextant error body (a proxy's HTML page, say): described below from the status line.
        }
        var retryAfter = RetryAfter(response);
        if (error is { ErrorCode.Length: > 0, Message: not null })
        {
            throw new SextantApiException(response.StatusCode, error.ErrorCode, error.Message, error.Field) { RetryAfter = retryAfter };
        }
        var snippet = body.Length > 200 ? body[..200] + "..." : body;
        throw new SextantApiException(response.StatusCode, $"HTTP_{(int)response.StatusCode}",
            $"{response.RequestMessage?.Method} {response.RequestMessage?.RequestUri} failed with HTTP {(int)response.StatusCode} {response.ReasonPhrase}{(snippet.Length > 0 ? ": " + snippet : "")}")
        {
            RetryAfter = retryAfter,
        };
    }

    /// <summary>The Retry-After header as a wait from now (either form: seconds or a date); null without one.</summary>
    private static TimeSpan? RetryAfter(HttpResponseMessage response) => response.Headers.RetryAfter switch
    {
        { Delta: { } delta } => delta,
        { Date: { } date } => date > DateTimeOffset.UtcNow ? date - DateTimeOffset.UtcNow : TimeSpan.Zero,
        _ => null,
    };

    /// <summary>Escapes one path segment (an id, name or key); '/' becomes %2F, which the server unescapes.</summary>
    /// <remarks>
    /// "." and ".." cannot be sent as a segment: Uri (and Kestrel, even percent-encoded) resolves them as dot segments,
    /// so the request would silently reach another route. No id or key can be one; names are looked up another way.
    /// </remarks>
    private static string Segment(string value, [CallerArgumentExpression(nameof(value))] string? argument = null) => value is "." or ".."
        ? throw new ArgumentException($"{argument} '{value}' cannot be sent as a URL path segment.", argument)
        : Uri.EscapeDataString(value);

    /// <summary>Escapes each segment of an artifact path, keeping its slashes.</summary>
    private static string ArtifactSegments(string path, [CallerArgumentExpression(nameof(path))] string? argument = null) =>
        string.Join('/', path.Trim('/').Split('/').Select(segment => segment is "." or ".."
            // Uri would resolve them, sending the request to another artifact or another route altogether.
            ? throw new ArgumentException($"Invalid {argument} '{path}': '.' and '..' segments are not allowed.", argument)
            : Uri.EscapeDataString(segment)));

    /// <summary>Builds "?a=1&amp;b=2" from the parameters that have a value; a name may repeat (order_by).</summary>
    private static string Query(params IEnumerable<(string Name, string? Value)> parameters)
    {
        var query = new StringBuilder();
        foreach (var (name, value) in parameters)
        {
            if (!string.IsNullOrEmpty(value))
            {
                query.Append(query.Length == 0 ? '?' : '&').Append(name).Append('=').Append(Uri.EscapeDataString(value));
            }
        }
        return query.ToString();
    }

    internal static bool IsNotFound(SextantApiException e) =>
        e.StatusCode == HttpStatusCode.NotFound && e.ErrorCode == ErrorCodes.ResourceDoesNotExist;
}
