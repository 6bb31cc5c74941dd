using System.Buffers;
using System.Text.Json;

namespace Sextant.Server.Gateway;

/// <summary>
/// A gateway span's parameters and attributes, written as two JSON objects and parsed as one document: one parse per
/// call instead of one small document per value.
/// </summary>
internal static class SpanValues
{
    /// <summary>The default depth of a JSON parse (64, as the gateway parsed the request) plus the two levels added here.</summary>
    private const int MaxDepth = 66;

    [ThreadStatic]
    private static ArrayBufferWriter<byte>? t_buffer;

    [ThreadStatic]
    private static Utf8JsonWriter? t_writer;

    /// <param name="write">Writes exactly two JSON objects.</param>
    public static (Dictionary<string, JsonElement> First, Dictionary<string, JsonElement> Second) Build(Action<Utf8JsonWriter> write)
    {
        var buffer = t_buffer ??= new ArrayBufferWriter<byte>(1024);
        buffer.ResetWrittenCount();
        var writer = t_writer ??= new Utf8JsonWriter(buffer);
        writer.Reset(buffer);
        try
        {
            writer.WriteStartArray();
            write(writer);
            writer.WriteEndArray();
            writer.Flush();
            // The array and the objects add two levels to what the values nest: a request parameter may nest as deep as
            // the request's own parse allowed.
            var reader = new Utf8JsonReader(buffer.WrittenSpan, new JsonReaderOptions { MaxDepth = MaxDepth });
            var both = JsonElement.ParseValue(ref reader);
            return (Properties(both[0]), Properties(both[1]));
        }
        finally
        {
            if (buffer.Capacity > 64 * 1024)
            {
                // A call with a large request does not keep its buffer on the thread.
                t_buffer = null;
                t_writer = null;
            }
        }
    }

    private static Dictionary<string, JsonElement> Properties(JsonElement value)
    {
        var properties = new Dictionary<string, JsonElement>();
        foreach (var property in value.EnumerateObject())
        {
            properties[property.Name] = property.Value;
        }
        return properties;
    }
}
