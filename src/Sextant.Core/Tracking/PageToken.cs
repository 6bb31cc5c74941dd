using System.Text;
using System.Text.Json;

namespace Sextant.Core.Tracking;

/// <summary>Opaque keyset page tokens: the sort values of the last row of a page, base64url-encoded.</summary>
internal static class PageToken
{
    public static string Encode(IReadOnlyList<string?> values)
    {
        var json = JsonSerializer.SerializeToUtf8Bytes(values.ToArray(), CoreJsonContext.Default.StringArray);
        return Convert.ToBase64String(json).TrimEnd('=').Replace('+', '-').Replace('/', '_');
    }

    public static string?[] Decode(string token, int expectedCount)
    {
        try
        {
            var base64 = token.Replace('-', '+').Replace('_', '/');
            base64 = base64.PadRight(base64.Length + ((4 - (base64.Length % 4)) % 4), '=');
            var values = JsonSerializer.Deserialize(Encoding.UTF8.GetString(Convert.FromBase64String(base64)), CoreJsonContext.Default.StringArray);
            if (values is not null && values.Length == expectedCount && !values.Any(v => v is not null && v.Contains('\0', StringComparison.Ordinal)))
            {
                return values;
            }
        }
        catch (Exception e) when (e is FormatException or JsonException)
        {
        }
        throw SextantException.Invalid("page_token", "Invalid page_token: pass back the next_page_token of the previous page of the same query unchanged.");
    }
}
