using System.Text.RegularExpressions;

namespace Sextant.Contracts;

/// <summary>
/// MLflow's rules for metric, param and tag keys and its value limits, shared by the server (which enforces them)
/// and the SDK (which checks them when a value is logged), so the two cannot drift apart.
/// </summary>
public static partial class KeyRules
{
    public const int MaxKeyLength = 250;
    public const int MaxParamValueLength = 6000;
    public const int MaxTagValueLength = 5000;

    // \z, not $: "$" would also match before a final newline.
    [GeneratedRegex(@"^[/\w.\- ]*\z")]
    private static partial Regex AllowedCharacters();

    /// <summary>Letters, digits, '_', '-', '.', ' ' and '/' only.</summary>
    public static bool HasAllowedCharacters(string key) => AllowedCharacters().IsMatch(key);

    /// <summary>Not absolute and without '.' or '..' segments: a key may become a file path.</summary>
    public static bool IsPathSafe(string key) => !key.StartsWith('/') && !key.Split('/').Any(segment => segment is "." or "..");
}
