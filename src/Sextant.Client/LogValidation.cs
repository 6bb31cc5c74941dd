using Sextant.Contracts;

namespace Sextant.Client;

/// <summary>
/// The server's rules for logged keys and values, checked when a value is logged: a value the server would refuse
/// must fail at the call that logged it, not later in a background batch that it would take down with it.
/// </summary>
internal static class LogValidation
{
    public const int MaxKeyLength = KeyRules.MaxKeyLength;
    public const int MaxParamValueLength = KeyRules.MaxParamValueLength;
    public const int MaxTagValueLength = KeyRules.MaxTagValueLength;

    /// <param name="kind">metric, param or tag: names the key in the message.</param>
    public static void Key(string key, string kind, string paramName)
    {
        ArgumentException.ThrowIfNullOrEmpty(key, paramName);
        if (key.Length > MaxKeyLength)
        {
            throw new ArgumentException($"The {kind} key is {key.Length} characters long; the limit is {MaxKeyLength}.", paramName);
        }
        if (!KeyRules.HasAllowedCharacters(key))
        {
            throw new ArgumentException(
                $"Invalid {kind} key '{key}': keys may only contain letters, digits, underscores (_), dashes (-), periods (.), spaces ( ) and slashes (/).", paramName);
        }
        if (!KeyRules.IsPathSafe(key))
        {
            throw new ArgumentException($"Invalid {kind} key '{key}': keys may not start with '/' or contain '.' or '..' path segments.", paramName);
        }
    }

    public static void Value(string value, string kind, int maxLength, string paramName)
    {
        ArgumentNullException.ThrowIfNull(value, paramName);
        if (value.Length > maxLength)
        {
            throw new ArgumentException($"The {kind} value is {value.Length} characters long; the limit is {maxLength}.", paramName);
        }
        if (value.Contains('\0', StringComparison.Ordinal))
        {
            throw new ArgumentException($"The {kind} value contains a NUL character (U+0000), which the server cannot store.", paramName);
        }
    }

    /// <summary>A value short enough to quote in a message.</summary>
    public static string Quote(string value) => value.Length <= 100 ? $"'{value}'" : $"'{value[..100]}...' ({value.Length} characters)";
}
