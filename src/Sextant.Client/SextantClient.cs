namespace Sextant.Client;

/// <summary>
/// A typed client for the Sextant native API (/api/v1). Thread-safe; create one per server and reuse it.
/// </summary>
public sealed partial class SextantClient : IDisposable
{
    /// <summary>The server used when SEXTANT_URL is not set.</summary>
    public const string DefaultUrl = "http://127.0.0.1:5000";

    private readonly HttpClient _http;
    private readonly bool _ownsHttpClient;
    private readonly string? _apiKey;

    /// <param name="baseAddress">The server's address, e.g. http://127.0.0.1:5000.</param>
    /// <param name="apiKey">Sent as <c>Authorization: Bearer</c>; null for anonymous access on loopback.</param>
    /// <param name="httpClient">A client to send requests with (not disposed by this client); by default one is created.</param>
    public SextantClient(Uri baseAddress, string? apiKey = null, HttpClient? httpClient = null)
    {
        ArgumentNullException.ThrowIfNull(baseAddress);
        if (!baseAddress.IsAbsoluteUri || (baseAddress.Scheme != Uri.UriSchemeHttp && baseAddress.Scheme != Uri.UriSchemeHttps))
        {
            throw new ArgumentException($"The Sextant address must be an absolute http or https URL; got '{baseAddress}'.", nameof(baseAddress));
        }
        // Relative paths resolve under the base only when it ends with a slash (a server behind a path prefix).
        BaseAddress = baseAddress.AbsoluteUri.EndsWith('/') ? baseAddress : new Uri(baseAddress.AbsoluteUri + "/");
        _apiKey = string.IsNullOrEmpty(apiKey) ? null : apiKey;
        _ownsHttpClient = httpClient is null;
        // Artifact transfers may take longer than HttpClient's 100 s default; JSON calls get their own timeout.
        _http = httpClient ?? new HttpClient { Timeout = Timeout.InfiniteTimeSpan };
    }

    /// <summary>The server's base address, ending with a slash.</summary>
    public Uri BaseAddress { get; }

    /// <summary>How long a JSON call may take before it fails with a <see cref="TimeoutException"/>.</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(100);

    /// <summary>A client for SEXTANT_URL (default http://127.0.0.1:5000) with the key in SEXTANT_API_KEY, if any.</summary>
    public static SextantClient FromEnvironment()
    {
        var url = Environment.GetEnvironmentVariable("SEXTANT_URL");
        var address = string.IsNullOrWhiteSpace(url) ? DefaultUrl : url.Trim();
        if (!Uri.TryCreate(address, UriKind.Absolute, out var uri))
        {
            throw new ArgumentException($"SEXTANT_URL must be an absolute http or https URL; got '{address}'.");
        }
        return new SextantClient(uri, Environment.GetEnvironmentVariable("SEXTANT_API_KEY"));
    }

    public void Dispose()
    {
        if (_ownsHttpClient)
        {
            _http.Dispose();
        }
    }
}
