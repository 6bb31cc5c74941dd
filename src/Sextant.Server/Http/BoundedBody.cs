using System.Buffers;

namespace Sextant.Server.Http;

/// <summary>Reads a body whole, up to a limit, for the callers that must hold it (gateway requests and answers, OTLP exports).</summary>
internal static class BoundedBody
{
    private const int MaxPresized = 1024 * 1024;

    /// <param name="declaredLength">The body's Content-Length where it has one: read straight into an array of that size.</param>
    /// <returns>The bytes, or null when the body is longer than <paramref name="limit"/>.</returns>
    public static async Task<byte[]?> ReadAsync(Stream body, long limit, CancellationToken cancellationToken, long? declaredLength = null)
    {
        byte[]? exact = null;
        var filled = 0;
        // Only a modest declared length is taken at its word before the bytes arrive: a client that declares megabytes and
        // sends slowly gets a buffer that grows with what it sends.
        if (declaredLength is { } length and > 0 && length <= limit && length <= MaxPresized)
        {
            exact = new byte[length];
            int read;
            while (filled < exact.Length && (read = await body.ReadAsync(exact.AsMemory(filled), cancellationToken)) > 0)
            {
                filled += read;
            }
            if (filled < exact.Length)
            {
                // Shorter than declared: what came.
                return exact[..filled];
            }
        }
        using var buffer = new MemoryStream();
        var chunk = ArrayPool<byte>.Shared.Rent(exact is null ? 81920 : 4096);
        try
        {
            int read;
            while ((read = await body.ReadAsync(chunk, cancellationToken)) > 0)
            {
                if (exact is not null)
                {
                    // More than declared (a stream that does not frame by its length): gathered as any other body.
                    buffer.Write(exact, 0, filled);
                    exact = null;
                }
                if (buffer.Length + read > limit)
                {
                    return null;
                }
                buffer.Write(chunk, 0, read);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(chunk);
        }
        return exact ?? buffer.ToArray();
    }
}
