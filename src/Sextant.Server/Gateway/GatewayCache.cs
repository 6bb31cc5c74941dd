using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Caching.Memory;

namespace Sextant.Server.Gateway;

/// <summary>
/// The gateway's exact-match response cache, in memory with a size limit: the same request (project, route,
/// operation, and the body minus the user and stream options) within the time-to-live gets the answer stored
/// from the first call, a stream as a stream. A hit costs nothing and records what it saved.
/// </summary>
internal sealed class GatewayCache : IDisposable
{
    public const int MaxEntryBytes = 4 << 20;
    public const long MaxTotalBytes = 256L << 20;
    private readonly MemoryCache _cache = new(new MemoryCacheOptions { SizeLimit = MaxTotalBytes });

    public sealed record Entry(byte[] Body, string ContentType, string? Provider, string? Model, double? Cost);

    public static string Key(long project, string route, string operation, JsonObject request)
    {
        var copy = (JsonObject)request.DeepClone();
        copy.Remove("user");
        copy.Remove("stream_options");
        copy.Remove("model");
        var text = $"{project}\n{route}\n{operation}\n{copy.ToJsonString()}";
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text)));
    }

    public Entry? TryGet(string key) => _cache.TryGetValue(key, out Entry? entry) ? entry : null;

    public void Set(string key, Entry entry, int ttlSeconds) =>
        _cache.Set(key, entry, new MemoryCacheEntryOptions { Size = entry.Body.Length + 256, AbsoluteExpirationRelativeToNow = TimeSpan.FromSeconds(ttlSeconds) });

    /// <summary>A recorded stream's data lines, for the span of a replay.</summary>
    public static IEnumerable<(string Data, double At)> Events(byte[] body) =>
        Encoding.UTF8.GetString(body).Split('\n').Select(l => l.TrimEnd('\r')).Where(l => l.StartsWith("data:", StringComparison.Ordinal)).Select(l => (l[5..].Trim(), 0.0));

    public void Dispose() => _cache.Dispose();
}
