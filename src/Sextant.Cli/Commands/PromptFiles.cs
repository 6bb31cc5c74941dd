using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Sextant.Contracts;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;
using YamlDotNet.Serialization;

namespace Sextant.Cli.Commands;

/// <summary>
/// Prompt files in a repository, so that prompts can be reviewed in git: <c>NAME.yaml</c> (a chat prompt's
/// <c>messages</c>, or a text prompt's <c>template</c>) or <c>NAME.md</c> (a text prompt: the body is the template,
/// the front matter between --- lines holds the rest). The name is the path under the folder without its extension
/// (support/answer.yaml is support/answer) unless the file says <c>name:</c>.
/// </summary>
internal static class PromptFiles
{
    /// <summary>What one file asks for.</summary>
    public sealed record PromptFile(string Path, string Name, string Type, JsonElement Template, JsonElement? Config, IReadOnlyList<string>? Labels,
        IReadOnlyList<string>? Tags, string? Message);

    public static IEnumerable<string> Find(string folder) =>
        Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories)
            .Where(f => f.EndsWith(".yaml", StringComparison.Ordinal) || f.EndsWith(".yml", StringComparison.Ordinal) || f.EndsWith(".md", StringComparison.Ordinal))
            .Order(StringComparer.Ordinal);

    /// <summary>Reads and checks a file (YAML shape, template syntax); errors name the file, and the line where known.</summary>
    public static PromptFile Read(string folder, string path)
    {
        var relative = System.IO.Path.GetRelativePath(folder, path).Replace('\\', '/');
        var text = File.ReadAllText(path);
        var markdown = path.EndsWith(".md", StringComparison.Ordinal);
        string yaml;
        string? body = null;
        if (markdown)
        {
            var normalized = text.Replace("\r\n", "\n", StringComparison.Ordinal);
            if (normalized.StartsWith("---\n", StringComparison.Ordinal) && normalized.IndexOf("\n---", 3, StringComparison.Ordinal) is var end and > 0)
            {
                yaml = normalized[4..(end + 1)];
                body = normalized[(end + 4)..].TrimStart('\n');
            }
            else
            {
                (yaml, body) = ("", normalized);
            }
        }
        else
        {
            yaml = text;
        }
        JsonObject fields;
        try
        {
            var stream = new YamlStream();
            stream.Load(new StringReader(yaml));
            fields = stream.Documents.Count == 0 ? [] : ToJson(stream.Documents[0].RootNode) as JsonObject
                ?? throw new CliException($"{relative}: the file must hold a YAML mapping (name, template or messages, config, labels...).");
        }
        catch (YamlException e)
        {
            throw new CliException($"{relative}: not valid YAML at line {e.Start.Line}, column {e.Start.Column}: {e.InnerException?.Message ?? e.Message}");
        }
        var name = fields["name"]?.GetValue<string>() ?? relative[..relative.LastIndexOf('.')];
        string type;
        JsonNode template;
        if (body is not null)
        {
            (type, template) = ("text", JsonValue.Create(body.TrimEnd('\n'))!);
        }
        else if (fields["messages"] is JsonArray messages)
        {
            (type, template) = ("chat", messages.DeepClone());
        }
        else if (fields["template"] is JsonValue value && value.TryGetValue<string>(out var templateText))
        {
            (type, template) = ("text", JsonValue.Create(templateText)!);
        }
        else
        {
            throw new CliException($"{relative}: give 'messages' (a chat prompt) or 'template' (a text prompt).");
        }
        var element = JsonSerializer.SerializeToElement(template, CliJson.Default.JsonNode);
        // Templates are checked here too, so that a mistake in one file sends nothing at all.
        var texts = type == "text" ? [element.GetString()!] : element.EnumerateArray().Select(m => m.TryGetProperty("content", out var c) ? c.GetString() ?? "" : "").ToList();
        for (var i = 0; i < texts.Count; i++)
        {
            try
            {
                PromptTemplate.Parse(texts[i]);
            }
            catch (PromptTemplate.TemplateException e)
            {
                throw new CliException($"{relative}: {(type == "chat" ? $"messages[{i}].content: " : "")}{e.Message}");
            }
        }
        JsonElement? config = fields["config"] is JsonObject c ? JsonSerializer.SerializeToElement(c, CliJson.Default.JsonNode) : null;
        return new PromptFile(relative, name, type, element, config, Strings(fields["labels"]), Strings(fields["tags"]), fields["message"]?.GetValue<string>());
    }

    private static List<string>? Strings(JsonNode? node) => node is JsonArray array ? [.. array.Select(n => n?.ToString() ?? "")] : null;

    /// <summary>A YAML node as JSON: plain scalars that read as numbers or booleans become them, quoted ones stay strings.</summary>
    internal static JsonNode? ToJson(YamlNode node)
    {
        switch (node)
        {
            case YamlMappingNode mapping:
                var result = new JsonObject();
                foreach (var (key, value) in mapping.Children)
                {
                    result[((YamlScalarNode)key).Value!] = ToJson(value);
                }
                return result;
            case YamlSequenceNode sequence:
                return new JsonArray([.. sequence.Children.Select(ToJson)]);
            case YamlScalarNode scalar:
                var text = scalar.Value ?? "";
                if (scalar.Style is ScalarStyle.Plain)
                {
                    if (text is "true" or "false")
                    {
                        return JsonValue.Create(text == "true");
                    }
                    if (text is "null" or "~" || (text.Length == 0 && scalar.Tag.IsEmpty))
                    {
                        return null;
                    }
                    if (long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var whole))
                    {
                        return JsonValue.Create(whole);
                    }
                    if (double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var number))
                    {
                        return JsonValue.Create(number);
                    }
                }
                return JsonValue.Create(text);
            default:
                return null;
        }
    }

    /// <summary>Writes a version as a file: chat prompts as YAML, text prompts as Markdown with front matter.</summary>
    public static string Write(PromptVersion version, out string extension)
    {
        var front = new Dictionary<string, object?> { ["name"] = version.Name };
        if (version.Config is { } config)
        {
            front["config"] = Plain(config);
        }
        var labels = version.Labels.Where(l => l != "latest").ToList();
        if (labels.Count > 0)
        {
            front["labels"] = labels;
        }
        if (version.Tags.Count > 0)
        {
            front["tags"] = version.Tags.ToList();
        }
        var serializer = new SerializerBuilder().WithEventEmitter(next => new LiteralMultilineEmitter(next)).Build();
        if (version.Type == "chat")
        {
            front["messages"] = version.Template.EnumerateArray()
                .Select(m => new Dictionary<string, object?> { ["role"] = m.GetProperty("role").GetString(), ["content"] = m.GetProperty("content").GetString() })
                .ToList();
            extension = ".yaml";
            return serializer.Serialize(front);
        }
        extension = ".md";
        var builder = new StringBuilder();
        builder.Append("---\n").Append(serializer.Serialize(front)).Append("---\n").Append(version.Template.GetString()).Append('\n');
        return builder.ToString();
    }

    private static object? Plain(JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.Object => value.EnumerateObject().ToDictionary(p => p.Name, p => Plain(p.Value)),
        JsonValueKind.Array => value.EnumerateArray().Select(Plain).ToList(),
        JsonValueKind.String => value.GetString(),
        JsonValueKind.Number => value.TryGetInt64(out var whole) ? whole : value.GetDouble(),
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        _ => null,
    };

    /// <summary>Whether a file asks for what a version already is (then pushing it makes no version).</summary>
    public static bool Same(PromptFile file, PromptVersion version) =>
        file.Type == version.Type && JsonNode.DeepEquals(JsonNode.Parse(file.Template.GetRawText()), JsonNode.Parse(version.Template.GetRawText()))
        && JsonNode.DeepEquals(file.Config is { } a ? JsonNode.Parse(a.GetRawText()) : null, version.Config is { } b ? JsonNode.Parse(b.GetRawText()) : null);
}

/// <summary>Writes text of several lines as a literal block (|), which reads as the template does.</summary>
internal sealed class LiteralMultilineEmitter(IEventEmitter next) : YamlDotNet.Serialization.EventEmitters.ChainedEventEmitter(next)
{
    public override void Emit(ScalarEventInfo eventInfo, IEmitter emitter)
    {
        if (eventInfo.Source.Value is string text && text.Contains('\n', StringComparison.Ordinal))
        {
            eventInfo.Style = ScalarStyle.Literal;
        }
        base.Emit(eventInfo, emitter);
    }
}

[System.Text.Json.Serialization.JsonSerializable(typeof(JsonNode))]
internal sealed partial class CliJson : System.Text.Json.Serialization.JsonSerializerContext;
