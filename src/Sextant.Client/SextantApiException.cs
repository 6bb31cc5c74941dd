using System.Net;

namespace Sextant.Client;

/// <summary>An error answered by the Sextant server, with its machine-readable code and the field at fault.</summary>
public sealed class SextantApiException : Exception
{
    public SextantApiException(HttpStatusCode statusCode, string errorCode, string message, string? field = null)
        : base(message)
    {
        StatusCode = statusCode;
        ErrorCode = errorCode;
        Field = field;
    }

    /// <summary>The HTTP status of the response (4xx or 5xx).</summary>
    public HttpStatusCode StatusCode { get; }

    /// <summary>The server's error code, e.g. RESOURCE_DOES_NOT_EXIST; HTTP_&lt;status&gt; when the body was not a Sextant error.</summary>
    public string ErrorCode { get; }

    /// <summary>The request field the server blamed, when it named one.</summary>
    public string? Field { get; }

    /// <summary>How long the server asked the client to wait before trying again (Retry-After), when it said.</summary>
    public TimeSpan? RetryAfter { get; init; }
}
