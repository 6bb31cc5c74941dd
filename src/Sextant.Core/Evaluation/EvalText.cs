namespace Sextant.Core.Evaluation;

/// <summary>Text checks shared by evaluation's services: PostgreSQL refuses NUL characters in text, so they are a 400 (or replaced, in what a target returned).</summary>
internal static class EvalText
{
    /// <summary>Refuses a value with a NUL character or longer than <paramref name="max"/>, naming the field.</summary>
    public static string? Check(string? value, string field, int max)
    {
        if (value is null)
        {
            return null;
        }
        if (value.Contains('\0', StringComparison.Ordinal))
        {
            throw SextantException.Invalid(field, $"'{field}' may not contain NUL characters.");
        }
        return value.Length <= max ? value : throw SextantException.Invalid(field, $"'{field}' may be at most {max} characters.");
    }

    /// <summary>What a target or judge returned, storable on both engines: NUL characters become U+FFFD.</summary>
    public static string? Clean(string? value) => value?.Replace('\0', '\uFFFD');
}
