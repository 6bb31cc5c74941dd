using System.Text;
using System.Text.Json;
using Microsoft.VisualBasic.FileIO;

namespace Sextant.Web.Components.Shared;

/// <summary>What the run page shows of an artifact file: text, pretty JSON, a CSV table, an image, or nothing.</summary>
public sealed record ArtifactPreview(string Kind, string? Text = null, IReadOnlyList<string[]>? Rows = null, bool Truncated = false, string? Note = null)
{
    public const int MaxTextBytes = 256 * 1024;
    public const int MaxCsvRows = 200;

    private static readonly HashSet<string> ImageExtensions = [".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp", ".bmp"];
    private static readonly HashSet<string> TextExtensions =
        [".txt", ".log", ".md", ".yaml", ".yml", ".toml", ".ini", ".cfg", ".conf", ".py", ".cs", ".sql", ".sh", ".xml", ".html", ".htm", ".ipynb", ".jsonl", ".env", ".requirements", ".mlmodel", ""];

    public static bool IsImage(string path) => ImageExtensions.Contains(Path.GetExtension(path).ToLowerInvariant());

    /// <summary>Reads at most <see cref="MaxTextBytes"/> of the file and decides how to show it.</summary>
    public static async Task<ArtifactPreview> ReadAsync(string path, Stream content, long size, CancellationToken cancellationToken)
    {
        var extension = Path.GetExtension(path).ToLowerInvariant();
        if (IsImage(path))
        {
            return new ArtifactPreview("image");
        }
        var isJson = extension == ".json";
        var isCsv = extension is ".csv" or ".tsv";
        if (!isJson && !isCsv && !TextExtensions.Contains(extension) && !Path.GetFileName(path).Equals("MLmodel", StringComparison.Ordinal))
        {
            return new ArtifactPreview("none", Note: $"No preview for {extension} files; download it instead.");
        }
        var buffer = new byte[(int)Math.Min(size, MaxTextBytes)];
        var read = 0;
        while (read < buffer.Length)
        {
            var n = await content.ReadAsync(buffer.AsMemory(read), cancellationToken);
            if (n == 0)
            {
                break;
            }
            read += n;
        }
        var truncated = size > read;
        if (!truncated)
        {
            // One more read reaches the end, where the store checks the content against its hash.
            var probe = new byte[1];
            if (await content.ReadAsync(probe, cancellationToken) != 0)
            {
                truncated = true;
            }
        }
        string text;
        try
        {
            text = new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(buffer, 0, read);
        }
        catch (DecoderFallbackException) when (!truncated)
        {
            return new ArtifactPreview("none", Note: "This file is not UTF-8 text; download it instead.");
        }
        catch (DecoderFallbackException)
        {
            // The cut may have split a character: show what decodes.
            text = Encoding.UTF8.GetString(buffer, 0, read);
        }
        if (isJson && !truncated)
        {
            try
            {
                using var document = JsonDocument.Parse(text);
                using var output = new MemoryStream();
                using (var writer = new Utf8JsonWriter(output, new JsonWriterOptions { Indented = true }))
                {
                    document.RootElement.WriteTo(writer);
                }
                return new ArtifactPreview("json", Encoding.UTF8.GetString(output.ToArray()));
            }
            catch (JsonException e)
            {
                return new ArtifactPreview("text", text, Note: $"Not valid JSON ({e.Message}); shown as text.");
            }
        }
        if (isCsv)
        {
            return Csv(text, extension == ".tsv" ? "\t" : ",", truncated);
        }
        return new ArtifactPreview("text", text, Truncated: truncated);
    }

    private static ArtifactPreview Csv(string text, string delimiter, bool truncated)
    {
        var rows = new List<string[]>();
        using var parser = new TextFieldParser(new StringReader(text)) { HasFieldsEnclosedInQuotes = true, TrimWhiteSpace = false };
        parser.SetDelimiters(delimiter);
        try
        {
            while (!parser.EndOfData && rows.Count <= MaxCsvRows)
            {
                rows.Add(parser.ReadFields() ?? []);
            }
        }
        catch (MalformedLineException e)
        {
            return new ArtifactPreview("text", text, Truncated: truncated, Note: $"Malformed CSV at line {e.LineNumber}; shown as text.");
        }
        var more = rows.Count > MaxCsvRows || truncated;
        if (rows.Count > MaxCsvRows)
        {
            rows.RemoveAt(rows.Count - 1);
        }
        return new ArtifactPreview("csv", Rows: rows, Truncated: more);
    }
}
