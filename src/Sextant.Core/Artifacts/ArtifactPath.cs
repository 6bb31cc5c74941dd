namespace Sextant.Core.Artifacts;

/// <summary>Validates artifact paths: relative, '/'-separated, no '.' or '..' segments, no control characters.</summary>
internal static class ArtifactPath
{
    public const int MaxLength = 1024;

    public static string Normalize(string? path, string field, bool allowEmpty)
    {
        path ??= "";
        if (path.Length > MaxLength)
        {
            throw SextantException.Invalid(field, $"Artifact path is {path.Length} characters long; the limit is {MaxLength}.");
        }
        if (path.StartsWith('/') || path.Contains('\\') || (path.Length >= 2 && path[1] == ':'))
        {
            throw SextantException.Invalid(field, $"Invalid artifact path '{path}': it must be relative and use '/' separators.");
        }
        var trimmed = path.TrimEnd('/');
        if (trimmed.Length == 0)
        {
            return allowEmpty ? "" : throw SextantException.Invalid(field, "Artifact path must not be empty.");
        }
        foreach (var segment in trimmed.Split('/'))
        {
            if (segment is "" or "." or "..")
            {
                throw SextantException.Invalid(field, $"Invalid artifact path '{path}': empty, '.' and '..' segments are not allowed.");
            }
            if (segment.Any(char.IsControl))
            {
                throw SextantException.Invalid(field, $"Invalid artifact path '{path}': control characters are not allowed.");
            }
        }
        return trimmed;
    }
}
