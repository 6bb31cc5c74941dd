using System.Buffers;

namespace Sextant.Server.Http;

/// <summary>Reads a body whole, up to a limit, for the callers that must hold it (gateway requests and answers, OTLP exports).</summary>
internal static class BoundedBody
{
    /// <returns>The bytes, or null when the body is longer than <paramref name="limit"/>.</returns>
    public static async Task<byte[]?> ReadAsync(Stream body, long limit, CancellationToken cancellationToken)
    {
        using var buffer = new MemoryStream();
        var chunk = ArrayPool<byte>.Shared.Rent(81920);
        try
        {
            int read;
            while ((read = await body.ReadAsync(chunk, cancellationToken)) > 0)
            {
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
        return buffer.ToArray();
    }
}
