using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Json.Pointer;
using Json.Schema;
using Sextant.Contracts;

namespace Sextant.Core.Evaluation;

/// <summary>
/// What an evaluator looks at: the output, what was expected, what the call took, and for judges the item's input,
/// its metadata and the retrieved context (RAG).
/// </summary>
public sealed record EvalInput(string Output, JsonElement? Expected = null, double? LatencyMs = null, double? Cost = null, JsonElement? Input = null,
    IReadOnlyDictionary<string, JsonElement>? Metadata = null, string? Context = null);


/// <summary>
/// The deterministic evaluators: equals, contains, icontains, regex, starts-with, is-json, json-schema,
/// json-path-equals, length, latency, cost; each may be negated with a not- prefix. A configuration of the wrong
/// shape is refused when it is read (a 400 naming the field), never while an experiment runs.
/// </summary>
public sealed class DeterministicEvaluator
{
    private static readonly string[] Types =
        ["equals", "contains", "icontains", "regex", "starts-with", "is-json", "json-schema", "json-path-equals", "length", "latency", "cost"];

    private readonly string _type;
    private readonly bool _negated;
    private readonly JsonElement? _value;
    private readonly Regex? _regex;
    private readonly JsonSchema? _schema;
    private readonly JsonPointer? _path;
    private readonly double? _min;
    private readonly double? _max;

    public string Name { get; }

    private DeterministicEvaluator(string name, string type, bool negated, JsonElement? value, Regex? regex, JsonSchema? schema, JsonPointer? path, double? min, double? max)
    {
        (Name, _type, _negated, _value, _regex, _schema, _path, _min, _max) = (name, type, negated, value, regex, schema, path, min, max);
    }

    public static bool Handles(string? type) => type is not null && Types.Contains(type.StartsWith("not-", StringComparison.Ordinal) ? type[4..] : type);

    /// <summary>Reads an evaluator's configuration: {"type": ..., "value": ..., "path": ..., "min": ..., "max": ..., "name": ...}.</summary>
    /// <param name="field">Where the configuration sits in the request, for error messages (evaluators[2]).</param>
    public static DeterministicEvaluator Parse(JsonElement config, string field)
    {
        if (config.ValueKind != JsonValueKind.Object)
        {
            throw SextantException.Invalid(field, $"'{field}' must be an object like {{\"type\": \"contains\", \"value\": \"refund\"}}.");
        }
        var type = config.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString()! : throw SextantException.Missing($"{field}.type");
        var negated = type.StartsWith("not-", StringComparison.Ordinal);
        var baseType = negated ? type[4..] : type;
        if (!Types.Contains(baseType))
        {
            throw SextantException.Invalid($"{field}.type", $"'{field}.type' must be one of {string.Join(", ", Types)} (each also as not-...); got '{type}'.");
        }
        JsonElement? value = config.TryGetProperty("value", out var v) && v.ValueKind != JsonValueKind.Null ? v.Clone() : null;
        string Text(string what)
        {
            return value is { ValueKind: JsonValueKind.String } s ? s.GetString()! : throw SextantException.Invalid($"{field}.value", $"'{field}.value' must be {what}.");
        }
        double? Number(string name) => config.TryGetProperty(name, out var n)
            ? n.ValueKind == JsonValueKind.Number && n.GetDouble() >= 0 ? n.GetDouble() : throw SextantException.Invalid($"{field}.{name}", $"'{field}.{name}' must be a number of 0 or more.")
            : null;
        Regex? regex = null;
        JsonSchema? schema = null;
        JsonPointer? path = null;
        double? min = null, max = null;
        switch (baseType)
        {
            case "contains" or "icontains":
                if (value is not { ValueKind: JsonValueKind.String or JsonValueKind.Array })
                {
                    throw SextantException.Invalid($"{field}.value", $"'{field}.value' must be a string or an array of strings (all must appear).");
                }
                break;
            case "starts-with":
                Text("a string");
                break;
            case "regex":
                try
                {
                    regex = new Regex(Text("a regular expression"), RegexOptions.CultureInvariant, TimeSpan.FromSeconds(1));
                }
                catch (ArgumentException e)
                {
                    throw SextantException.Invalid($"{field}.value", $"'{field}.value' is not a valid regular expression: {e.Message}");
                }
                break;
            case "json-schema":
                if (value is not { ValueKind: JsonValueKind.Object or JsonValueKind.True or JsonValueKind.False })
                {
                    throw SextantException.Invalid($"{field}.value", $"'{field}.value' must be a JSON Schema (an object).");
                }
                try
                {
                    schema = JsonSchema.FromText(value.Value.GetRawText());
                }
                catch (Exception e) when (e is JsonException or ArgumentException or InvalidOperationException)
                {
                    throw SextantException.Invalid($"{field}.value", $"'{field}.value' is not a valid JSON Schema: {e.Message}");
                }
                break;
            case "json-path-equals":
                var pointer = config.TryGetProperty("path", out var p) && p.ValueKind == JsonValueKind.String ? p.GetString()! : throw SextantException.Missing($"{field}.path");
                path = Pointer(pointer, $"{field}.path");
                break;
            case "length":
                (min, max) = (Number("min"), Number("max"));
                if (min is null && max is null)
                {
                    throw SextantException.Invalid(field, $"'{field}' (length) needs 'min', 'max' or both (characters).");
                }
                break;
            case "latency" or "cost":
                max = value is { ValueKind: JsonValueKind.Number } limit && limit.GetDouble() >= 0 ? limit.GetDouble()
                    : throw SextantException.Invalid($"{field}.value", $"'{field}.value' must be the most {(baseType == "latency" ? "milliseconds" : "USD")} allowed.");
                break;
        }
        var name = config.TryGetProperty("name", out var n) && n.ValueKind == JsonValueKind.String ? n.GetString()! : type;
        return new DeterministicEvaluator(name, baseType, negated, value, regex, schema, path, min, max);
    }

    /// <summary>$.a.b[0] or /a/b/0 as a JSON Pointer.</summary>
    private static JsonPointer Pointer(string text, string field)
    {
        var pointer = text;
        if (text.StartsWith('$'))
        {
            var segments = Regex.Matches(text[1..], @"\.([^.\[]+)|\[(\d+)\]|\['([^']*)'\]");
            if (string.Concat(segments.Select(m => m.Value)) != text[1..])
            {
                throw SextantException.Invalid(field, $"'{field}' must be a path like $.answer.items[0] or a JSON Pointer like /answer/items/0; got '{text}'.");
            }
            pointer = string.Concat(segments.Select(m => "/" + (m.Groups[1].Success ? m.Groups[1].Value : m.Groups[2].Success ? m.Groups[2].Value : m.Groups[3].Value)
                .Replace("~", "~0", StringComparison.Ordinal).Replace("/", "~1", StringComparison.Ordinal)));
        }
        try
        {
            return JsonPointer.Parse(pointer);
        }
        catch (Exception e) when (e is PointerParseException or ArgumentException)
        {
            throw SextantException.Invalid(field, $"'{field}' must be a path like $.answer.items[0] or a JSON Pointer like /answer/items/0; got '{text}'.");
        }
    }

    public EvalScore Evaluate(EvalInput input)
    {
        var (passed, reason) = Judge(input);
        if (passed is null)
        {
            return new EvalScore(Name, "error", null, reason);
        }
        var pass = passed.Value != _negated;
        return new EvalScore(Name, pass ? "pass" : "fail", pass ? 1 : 0, _negated ? $"not: {reason}" : reason);
    }

    /// <summary>Whether the check holds (before negation) and why; null when it cannot be judged.</summary>
    private (bool? Holds, string Reason) Judge(EvalInput input)
    {
        var output = input.Output;
        switch (_type)
        {
            case "equals":
                var expected = _value ?? input.Expected;
                if (expected is not { } e)
                {
                    return (null, "equals needs a 'value' or the item's expected output");
                }
                var target = e.ValueKind == JsonValueKind.String ? e.GetString()! : e.GetRawText();
                return output.Trim() == target.Trim() ? (true, "the output equals the expected text") : (false, $"the output is not '{Short(target)}'");
            case "contains" or "icontains":
                var comparison = _type == "icontains" ? StringComparison.OrdinalIgnoreCase : StringComparison.Ordinal;
                var needles = _value!.Value.ValueKind == JsonValueKind.String ? [_value.Value.GetString()!] : _value.Value.EnumerateArray().Select(x => x.ToString()).ToList();
                var missing = needles.Where(x => !output.Contains(x, comparison)).ToList();
                return missing.Count == 0 ? (true, $"the output contains {string.Join(", ", needles.Select(x => $"'{Short(x)}'"))}")
                    : (false, $"the output lacks {string.Join(", ", missing.Select(x => $"'{Short(x)}'"))}");
            case "starts-with":
                var prefix = _value!.Value.GetString()!;
                return output.TrimStart().StartsWith(prefix, StringComparison.Ordinal) ? (true, $"the output starts with '{Short(prefix)}'") : (false, $"the output does not start with '{Short(prefix)}'");
            case "regex":
                try
                {
                    return _regex!.IsMatch(output) ? (true, $"the output matches /{_regex}/") : (false, $"the output does not match /{_regex}/");
                }
                catch (RegexMatchTimeoutException)
                {
                    return (null, $"the pattern /{_regex}/ took over a second on this output");
                }
            case "is-json":
                return TryJson(output, out _, out var error) ? (true, "the output is JSON") : (false, $"the output is not JSON: {error}");
            case "json-schema":
                if (!TryJson(output, out var document, out var parseError))
                {
                    return (false, $"the output is not JSON: {parseError}");
                }
                using (document)
                {
                    var result = _schema!.Evaluate(document!.RootElement, new EvaluationOptions { OutputFormat = OutputFormat.List });
                    if (result.IsValid)
                    {
                        return (true, "the output matches the schema");
                    }
                    var errors = (result.Details ?? []).Where(d => d.Errors is { Count: > 0 })
                        .SelectMany(d => d.Errors!.Select(x => $"{(d.InstanceLocation.ToString() is { Length: > 0 } at ? at : "/")}: {x.Value}")).Take(5);
                    return (false, $"the output does not match the schema ({string.Join("; ", errors)})");
                }
            case "json-path-equals":
                JsonNode? node;
                try
                {
                    node = JsonNode.Parse(output);
                }
                catch (JsonException ex)
                {
                    return (false, $"the output is not JSON: {ex.Message}");
                }
                var want = _value ?? input.Expected;
                if (want is not { } w)
                {
                    return (null, "json-path-equals needs a 'value' or the item's expected output");
                }
                if (!_path!.Value.TryEvaluate(node, out var found))
                {
                    return (false, $"the output has nothing at {_path}");
                }
                var wanted = JsonNode.Parse(w.GetRawText());
                return JsonNode.DeepEquals(found, wanted) ? (true, $"{_path} is {Short(w.GetRawText())}")
                    : (false, $"{_path} is {Short(found?.ToJsonString() ?? "null")}, not {Short(w.GetRawText())}");
            case "length":
                var length = output.Length;
                return (_min is null || length >= _min) && (_max is null || length <= _max)
                    ? (true, $"{length} characters, within {_min?.ToString() ?? "0"}-{_max?.ToString() ?? "any"}")
                    : (false, $"{length} characters, outside {_min?.ToString() ?? "0"}-{_max?.ToString() ?? "any"}");
            case "latency":
                return input.LatencyMs is not { } ms ? (null, "the call's latency is not known")
                    : ms <= _max ? (true, $"{ms:0.#} ms, at most {_max} ms") : (false, $"{ms:0.#} ms, over {_max} ms");
            default:
                return input.Cost is not { } cost ? (null, "the call's cost is not known (price unknown)")
                    : cost <= _max ? (true, $"${cost:0.######}, at most ${_max}") : (false, $"${cost:0.######}, over ${_max}");
        }
    }

    private static bool TryJson(string text, out JsonDocument? document, out string? error)
    {
        try
        {
            document = JsonDocument.Parse(text);
            error = null;
            return true;
        }
        catch (JsonException e)
        {
            (document, error) = (null, e.Message);
            return false;
        }
    }

    private static string Short(string text) => text.Length > 60 ? text[..60] + "..." : text;
}
