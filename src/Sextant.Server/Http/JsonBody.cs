using System.Buffers;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Sextant.Core;

namespace Sextant.Server.Http;

/// <summary>Reads JSON request bodies with a size limit, turning every malformed body into a specific 400.</summary>
internal static class JsonBody
{
    public static async Task<T> ReadAsync<T>(HttpContext context, JsonTypeInfo<T> typeInfo, int maxBytes)
        where T : class
    {
        var request = context.Request;
        if (request.ContentLength > maxBytes)
        {
            throw TooLarge(request.ContentLength.Value, maxBytes);
        }
        var buffer = ArrayPool<byte>.Shared.Rent(Math.Min(maxBytes + 1, (int)(request.ContentLength ?? 16 * 1024) + 1));
        var length = 0;
        try
        {
            while (true)
            {
                if (length == buffer.Length)
                {
                    if (length > maxBytes)
                    {
                        throw TooLarge(length, maxBytes);
                    }
                    var bigger = ArrayPool<byte>.Shared.Rent(Math.Min(buffer.Length * 2, maxBytes + 1));
                    buffer.AsSpan(0, length).CopyTo(bigger);
                    ArrayPool<byte>.Shared.Return(buffer);
                    buffer = bigger;
                }
                var read = await request.Body.ReadAsync(buffer.AsMemory(length), context.RequestAborted);
                if (read == 0)
                {
                    break;
                }
                length += read;
                if (length > maxBytes)
                {
                    throw TooLarge(length, maxBytes);
                }
            }
            ReadOnlySpan<byte> body = buffer.AsSpan(0, length);
            if (body.Trim(" \t\r\n"u8).IsEmpty)
            {
                body = "{}"u8;
            }
            if (body.Trim(" \t\r\n"u8)[0] != (byte)'{')
            {
                throw SextantException.Invalid("body", "The request body must be a JSON object.");
            }
            try
            {
                return JsonSerializer.Deserialize(body, typeInfo) ?? throw SextantException.Invalid("body", "The request body must be a JSON object.");
            }
            catch (JsonException e)
            {
                var field = e.Path is { Length: > 2 } path ? path.TrimStart('$', '.') : null;
                if (e.Message.StartsWith("The JSON value could not be converted", StringComparison.Ordinal) && field is not null)
                {
                    throw SextantException.Invalid(field, $"Invalid value for '{field}': the JSON value has the wrong type for this field.");
                }
                throw SextantException.Invalid("body",
                    $"Malformed JSON body at line {(e.LineNumber ?? 0) + 1}, byte {(e.BytePositionInLine ?? 0) + 1}: {e.Message.Split(" Path:", 2)[0].Split(" LineNumber:", 2)[0]}");
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    // MLflow's server answers an oversized batch with 400 INVALID_PARAMETER_VALUE, so its clients expect that.
    private static SextantException TooLarge(long size, int maxBytes) =>
        SextantException.Invalid("body", $"Request bodies must be at most {maxBytes} bytes; this one is {size} bytes or more.");
}
