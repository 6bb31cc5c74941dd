using System.Security.Cryptography;

namespace Sextant.Core.Tracking;

/// <summary>Readable generated run names such as "brave-otter-417".</summary>
internal static class RunNames
{
    private static readonly string[] Adjectives =
    [
        "amber", "bold", "brave", "bright", "calm", "clever", "crisp", "daring", "eager", "fair", "fleet", "gentle",
        "glad", "golden", "grand", "happy", "keen", "kind", "lively", "lucid", "mellow", "merry", "nimble", "noble",
        "polite", "proud", "quick", "quiet", "rapid", "silent", "sleek", "smooth", "steady", "sunny", "swift", "vivid",
    ];

    private static readonly string[] Nouns =
    [
        "albatross", "badger", "bear", "beaver", "crane", "deer", "dolphin", "eagle", "falcon", "finch", "fox", "gecko",
        "hare", "heron", "ibis", "jay", "koala", "lark", "lynx", "marten", "newt", "orca", "otter", "owl", "panda",
        "puffin", "quail", "raven", "seal", "sparrow", "stork", "swan", "tern", "viper", "whale", "wren",
    ];

    public static string Next() =>
        $"{Adjectives[RandomNumberGenerator.GetInt32(Adjectives.Length)]}-{Nouns[RandomNumberGenerator.GetInt32(Nouns.Length)]}-{RandomNumberGenerator.GetInt32(1000)}";
}
