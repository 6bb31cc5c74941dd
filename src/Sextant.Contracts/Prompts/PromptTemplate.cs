using System.Globalization;
using System.Text.Json;
using Stubble.Core;
using Stubble.Core.Builders;
using Stubble.Core.Exceptions;
using Stubble.Core.Parser;
using Stubble.Core.Tokens;

namespace Sextant.Contracts;

/// <summary>
/// The prompt template language, shared by the server and the SDK so that both render alike: Mustache (Stubble)
/// without HTML escaping. A template's required variables are the names it uses outside sections and the
/// sections themselves; names inside a section may come from the section's item, so they are not required.
/// </summary>
public static class PromptTemplate
{
    private static readonly StubbleVisitorRenderer Renderer = new StubbleBuilder()
        .Configure(settings => settings.SetEncodingFunction(value => value).SetIgnoreCaseOnKeyLookup(false))
        .Build();

    /// <summary>A template that cannot be parsed: the message gives the line and column.</summary>
    public sealed class TemplateException(string message, int line, int column) : Exception(message)
    {
        public int Line { get; } = line;

        public int Column { get; } = column;
    }

    /// <summary>Parses a template; a malformed one throws <see cref="TemplateException"/> with its position.</summary>
    public static MustacheTemplate Parse(string text)
    {
        // An opening {{ without its closing }} is read by Mustache as text: it is an error here.
        var open = 0;
        while ((open = text.IndexOf("{{", open, StringComparison.Ordinal)) >= 0)
        {
            var close = text.IndexOf("}}", open + 2, StringComparison.Ordinal);
            var next = text.IndexOf("{{", open + 2, StringComparison.Ordinal);
            if (close < 0 || (next >= 0 && next < close))
            {
                throw At(text, open, "a tag opened with {{ is not closed with }}");
            }
            if (text.AsSpan(open + 2, close - open - 2).Trim().Length == 0)
            {
                throw At(text, open, "a tag is empty ({{}})");
            }
            open = close + 2;
        }
        try
        {
            return MustacheParser.Parse(text);
        }
        catch (StubbleException e)
        {
            // Stubble reports "... at <offset>".
            var at = e.Message.LastIndexOf(" at ", StringComparison.Ordinal);
            var offset = at >= 0 && int.TryParse(e.Message.AsSpan(at + 4), NumberStyles.None, CultureInfo.InvariantCulture, out var o) ? Math.Min(o, text.Length) : 0;
            var what = at >= 0 ? e.Message[..at] : e.Message;
            // An unclosed section is reported at the end of the text: point at where it opens instead.
            if (what.StartsWith("Unclosed Block '", StringComparison.Ordinal) && what.EndsWith('\''))
            {
                var name = what["Unclosed Block '".Length..^1];
                var opening = System.Text.RegularExpressions.Regex.Matches(text, @"\{\{\s*[#^]\s*" + System.Text.RegularExpressions.Regex.Escape(name) + @"\s*\}\}");
                offset = opening.Count > 0 ? opening[^1].Index : offset;
                what = $"the section '{name}' is opened here but never closed with {{{{/{name}}}}}";
            }
            throw At(text, offset, what);
        }
    }

    private static TemplateException At(string text, int offset, string what)
    {
        var line = 1 + text.AsSpan(0, offset).Count('\n');
        var column = offset - (text.LastIndexOf('\n', Math.Max(0, offset - 1)) + 1) + 1;
        return new TemplateException($"{char.ToUpperInvariant(what[0])}{what[1..]} (line {line}, column {column}).", line, column);
    }

    /// <summary>The variables a template needs (see the class summary), in order of first use.</summary>
    public static List<string> Variables(MustacheTemplate template)
    {
        var names = new List<string>();
        foreach (var token in template.Children)
        {
            var name = token switch
            {
                InterpolationToken interpolation => interpolation.Content.ToString().Trim(),
                SectionToken section => section.SectionName.Trim(),
                _ => null,
            };
            if (name is { Length: > 0 } && name != ".")
            {
                var root = name.Split('.')[0];
                if (!names.Contains(root))
                {
                    names.Add(root);
                }
            }
        }
        return names;
    }

    /// <summary>A render without every variable the template needs.</summary>
    public sealed class MissingVariablesException(IReadOnlyList<string> missing, string message) : Exception(message)
    {
        public IReadOnlyList<string> Missing { get; } = missing;
    }

    /// <summary>
    /// Renders a prompt version: its text, or its messages, with the variables; throws
    /// <see cref="MissingVariablesException"/> naming every missing one, and reports those given but not used.
    /// </summary>
    public static RenderedPrompt Render(PromptVersion version, IReadOnlyDictionary<string, JsonElement> variables)
    {
        var missing = version.Variables.Where(v => !variables.ContainsKey(v)).ToList();
        if (missing.Count > 0)
        {
            throw new MissingVariablesException(missing,
                $"Prompt '{version.Name}' version {version.Version} needs {(missing.Count == 1 ? "the variable" : "the variables")} {string.Join(", ", missing.Select(m => $"'{m}'"))}; given: {(variables.Count == 0 ? "none" : string.Join(", ", variables.Keys.Select(k => $"'{k}'")))}.");
        }
        var unused = variables.Keys.Where(k => !version.Variables.Contains(k)).Order(StringComparer.Ordinal).ToList();
        if (version.Type == "text")
        {
            return new RenderedPrompt(version.Name, version.Version, "text", Render(version.Template.GetString()!, variables), null, version.Config, unused);
        }
        var messages = version.Template.EnumerateArray()
            .Select(m => new PromptMessage(m.GetProperty("role").GetString()!, Render(m.GetProperty("content").GetString()!, variables)))
            .ToList();
        return new RenderedPrompt(version.Name, version.Version, "chat", null, messages, version.Config, unused);
    }

    /// <summary>The variables of every text of a template (a string, or an array of messages), in order of first use.</summary>
    public static List<string> Variables(string type, JsonElement template)
    {
        var texts = type == "text" ? [template.GetString()!] : template.EnumerateArray().Select(m => m.GetProperty("content").GetString()!).ToList();
        return [.. texts.SelectMany(t => Variables(Parse(t))).Distinct(StringComparer.Ordinal)];
    }

    /// <summary>Renders a parsed template's text with variables given as JSON values.</summary>
    public static string Render(string text, IReadOnlyDictionary<string, JsonElement> variables) =>
        Renderer.Render(text, variables.ToDictionary(v => v.Key, v => Plain(v.Value)));

    /// <summary>A JSON value as the objects Mustache walks: strings, numbers, booleans, lists and dictionaries.</summary>
    private static object? Plain(JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.String => value.GetString(),
        // Numbers as written in the JSON, whatever the culture.
        JsonValueKind.Number => value.GetRawText(),
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        JsonValueKind.Array => value.EnumerateArray().Select(Plain).ToList(),
        JsonValueKind.Object => value.EnumerateObject().ToDictionary(p => p.Name, p => Plain(p.Value)),
        _ => null,
    };
}
