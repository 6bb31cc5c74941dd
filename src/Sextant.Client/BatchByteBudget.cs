using Sextant.Contracts;

namespace Sextant.Client;

/// <summary>
/// Fills one log-batch request up to <see cref="SextantRunOptions.MaxBatchBytes"/> of JSON, estimating each item's
/// size from above without serializing it: System.Text.Json writes non-ASCII and HTML-sensitive characters as
/// \uXXXX escapes, so a 6000-character param can take 36,000 bytes, and counting items alone lets a request
/// outgrow the server's 1 MiB body limit.
/// </summary>
internal sealed class BatchByteBudget(long maxBytes)
{
    // {"metrics":[],"params":[],"tags":[]} is 36 bytes.
    internal const int EnvelopeBytes = 64;

    // {"key":"","value":""}, is 22 bytes.
    private const int KeyValueOverheadBytes = 32;

    // {"key":"","value":-1.7976931348623157E+308,"timestamp":-9223372036854775808,"step":-9223372036854775808}, is 105 bytes.
    private const int MetricOverheadBytes = 128;

    // An escape is \uXXXX, and no character, surrogates included, takes more in UTF-8 either.
    private const int MaxBytesPerChar = 6;

    private long _left = maxBytes - EnvelopeBytes;
    private bool _empty = true;

    /// <summary>
    /// How many of <paramref name="items"/> from <paramref name="start"/> fit in what is left of the request, at most
    /// <paramref name="maxCount"/>; the first item of a request always goes, so one larger than the budget is sent alone.
    /// </summary>
    public int Take<T>(List<T> items, int start, int maxCount, Func<T, long> estimate)
    {
        var count = 0;
        while (count < maxCount && start + count < items.Count)
        {
            var bytes = estimate(items[start + count]);
            if (bytes > _left && !_empty)
            {
                break;
            }
            _left -= bytes;
            _empty = false;
            count++;
        }
        return count;
    }

    public static long Estimate(MetricInput metric) => MetricOverheadBytes + Estimate(metric.Key);

    public static long Estimate(KeyValueInput item) => KeyValueOverheadBytes + Estimate(item.Key) + Estimate(item.Value);

    /// <summary>A string's JSON size at most: 1 byte for ASCII written as is, 6 for anything that may be escaped or is not ASCII.</summary>
    public static long Estimate(string? value)
    {
        long bytes = 0;
        foreach (var c in value.AsSpan())
        {
            bytes += c is >= ' ' and < (char)0x7F and not ('"' or '\\' or '<' or '>' or '&' or '\'' or '+' or '`') ? 1 : MaxBytesPerChar;
        }
        return bytes;
    }
}
