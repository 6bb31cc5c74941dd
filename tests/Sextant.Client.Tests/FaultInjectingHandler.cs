namespace Sextant.Client.Tests;

/// <summary>
/// Stands between a client and the real server like a proxy or load balancer would: <see cref="OnLogBatch"/> sees
/// every log-batch request, with the token that cancels it (the HttpClient's Timeout), and may answer it instead of
/// the server (return a response) or let it through (return null).
/// </summary>
public sealed class FaultInjectingHandler() : DelegatingHandler(new SocketsHttpHandler())
{
    public Func<HttpRequestMessage, CancellationToken, Task<HttpResponseMessage?>>? OnLogBatch { get; set; }

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        if (OnLogBatch is { } onLogBatch && request.RequestUri!.AbsolutePath.EndsWith("/log-batch", StringComparison.Ordinal)
            && await onLogBatch(request, cancellationToken) is { } answer)
        {
            answer.RequestMessage = request;
            return answer;
        }
        return await base.SendAsync(request, cancellationToken);
    }
}
