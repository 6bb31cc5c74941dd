using System.Security.Cryptography;
using System.Text.Json;

namespace Sextant.Contracts;

/// <summary>One file of a dataset version: its path relative to the dataset's folder ('/'-separated), size and SHA-256.</summary>
public sealed record ManifestEntry(string Path, long Size, string Sha256);

/// <summary>
/// A dataset version's list of files. Its canonical form (files in ordinal path order, written by
/// <see cref="Serialize"/>) is stored as a blob, and the SHA-256 of those bytes is the version's digest: the client
/// and the server write the same bytes for the same files, so either can tell whether content changed.
/// </summary>
public static class DatasetManifest
{
    public const int MaxPathLength = 1024;

    /// <summary>The canonical bytes; <paramref name="files"/> must already be validated and sorted (<see cref="Validate"/>).</summary>
    public static byte[] Serialize(IReadOnlyList<ManifestEntry> files)
    {
        using var buffer = new MemoryStream(files.Count * 120 + 16);
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteStartArray("files");
            foreach (var file in files)
            {
                writer.WriteStartObject();
                writer.WriteString("path", file.Path);
                writer.WriteNumber("size", file.Size);
                writer.WriteString("sha256", file.Sha256);
                writer.WriteEndObject();
            }
            writer.WriteEndArray();
            writer.WriteEndObject();
        }
        return buffer.ToArray();
    }

    public static string Digest(byte[] canonical) => Convert.ToHexStringLower(SHA256.HashData(canonical));

    /// <summary>Reads a manifest; a FormatException says why when the bytes are not one.</summary>
    public static List<ManifestEntry> Parse(ReadOnlySpan<byte> json)
    {
        var files = new List<ManifestEntry>();
        var reader = new Utf8JsonReader(json, new JsonReaderOptions { CommentHandling = JsonCommentHandling.Disallow });
        Expect(ref reader, JsonTokenType.StartObject);
        Expect(ref reader, JsonTokenType.PropertyName);
        if (!reader.ValueTextEquals("files"))
        {
            throw new FormatException("a manifest is an object with one property, \"files\"");
        }
        Expect(ref reader, JsonTokenType.StartArray);
        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
        {
            if (reader.TokenType != JsonTokenType.StartObject)
            {
                throw new FormatException($"files[{files.Count}] is not an object");
            }
            string? path = null, sha = null;
            long? size = null;
            while (reader.Read() && reader.TokenType != JsonTokenType.EndObject)
            {
                var name = reader.GetString();
                reader.Read();
                switch (name)
                {
                    case "path" when reader.TokenType == JsonTokenType.String: path = reader.GetString(); break;
                    case "sha256" when reader.TokenType == JsonTokenType.String: sha = reader.GetString(); break;
                    case "size" when reader.TokenType == JsonTokenType.Number && reader.TryGetInt64(out var s): size = s; break;
                    default: throw new FormatException($"files[{files.Count}].{name} is unknown or has the wrong type");
                }
            }
            files.Add(new ManifestEntry(
                path ?? throw new FormatException($"files[{files.Count}] has no path"),
                size ?? throw new FormatException($"files[{files.Count}] has no size"),
                sha ?? throw new FormatException($"files[{files.Count}] has no sha256")));
        }
        Expect(ref reader, JsonTokenType.EndObject);
        if (reader.Read())
        {
            throw new FormatException("there is more after the manifest's object");
        }
        return files;
    }

    private static void Expect(ref Utf8JsonReader reader, JsonTokenType type)
    {
        if (!reader.Read() || reader.TokenType != type)
        {
            throw new FormatException($"expected {type} at byte {reader.BytesConsumed}");
        }
    }

    /// <summary>
    /// Sorts the files into canonical order and checks them: paths stay inside the dataset's folder (no '..', '.',
    /// empty or absolute segments, no backslashes or control characters), are unique, and no path is both a file and
    /// a folder; sizes are not negative; hashes are 64 lower-case hex digits.
    /// </summary>
    /// <returns>Null when valid, else the first problem, naming the file.</returns>
    public static string? Validate(List<ManifestEntry> files)
    {
        for (var i = 0; i < files.Count; i++)
        {
            var file = files[i];
            if (PathProblem(file.Path) is { } problem)
            {
                return $"files[{i}].path '{Printable(file.Path)}' {problem}";
            }
            if (file.Size < 0)
            {
                return $"files[{i}].size of '{file.Path}' is negative";
            }
            if (!IsSha256(file.Sha256))
            {
                return $"files[{i}].sha256 of '{file.Path}' is not 64 lower-case hex digits";
            }
        }
        files.Sort((a, b) => string.CompareOrdinal(a.Path, b.Path));
        for (var i = 1; i < files.Count; i++)
        {
            if (files[i].Path == files[i - 1].Path)
            {
                return $"'{files[i].Path}' is listed twice";
            }
        }
        // "a" and "a/b" cannot both be files. Sorted, a file's descendants follow it, but "a-x" (with '-' < '/')
        // may sit in between, so look ahead with a set of the paths instead.
        var paths = new HashSet<string>(files.Select(f => f.Path), StringComparer.Ordinal);
        foreach (var file in files)
        {
            for (var slash = file.Path.IndexOf('/', StringComparison.Ordinal); slash > 0; slash = file.Path.IndexOf('/', slash + 1))
            {
                if (paths.Contains(file.Path[..slash]))
                {
                    return $"'{file.Path[..slash]}' is a file and also the folder of '{file.Path}'";
                }
            }
        }
        return null;
    }

    /// <summary>Why a manifest path would escape or be ambiguous; null when it is fine.</summary>
    public static string? PathProblem(string path)
    {
        if (path.Length == 0)
        {
            return "is empty";
        }
        if (path.Length > MaxPathLength)
        {
            return $"is longer than {MaxPathLength} characters";
        }
        if (path[0] == '/')
        {
            return "is absolute; paths are relative to the dataset's folder";
        }
        foreach (var c in path)
        {
            if (c == '\\')
            {
                return "contains a backslash; use '/' between folders";
            }
            if (char.IsControl(c))
            {
                return "contains a control character";
            }
        }
        foreach (var segment in path.Split('/'))
        {
            if (segment is "" or "." or "..")
            {
                return segment == ".." ? "escapes the dataset's folder with '..'" : $"has an empty or '.' segment";
            }
        }
        return null;
    }

    public static bool IsSha256(string? value) =>
        value is { Length: 64 } && value.All(c => c is (>= '0' and <= '9') or (>= 'a' and <= 'f'));

    private static string Printable(string path) => new([.. path.Take(200).Select(c => char.IsControl(c) ? '?' : c)]);
}
