using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Sextant.Contracts;
using Sextant.Core.Projects;

namespace Sextant.Core.Evaluation;

/// <summary>One evaluator, ready to score outputs. Never throws for a bad output or a failing judge: that is an error score.</summary>
public interface IGrader
{
    string Name { get; }

    /// <summary>Whether it calls a model through the gateway (judges, provider embeddings).</summary>
    bool UsesGateway => false;

    Task<EvalScore> ScoreAsync(EvalInput input, CancellationToken cancellationToken);
}

/// <summary>What graders that call models need: the gateway and the caller whose routes and limits they use.</summary>
public sealed record GraderServices(IGatewayCaller? Gateway, Caller? Caller);

/// <summary>
/// Reads evaluator configurations: the deterministic ones, similarity, llm-judge and the RAG triad
/// (context-relevance, groundedness, answer-relevance). A configuration of the wrong shape is a 400 naming the field.
/// </summary>
public static partial class Graders
{
    public static readonly string[] ModelTypes = ["similarity", "llm-judge", "context-relevance", "groundedness", "answer-relevance"];

    public static IReadOnlyList<IGrader> Parse(IReadOnlyList<JsonElement>? configs, string field, GraderServices services)
    {
        var graders = new List<IGrader>();
        for (var i = 0; i < (configs?.Count ?? 0); i++)
        {
            graders.Add(Parse(configs![i], $"{field}[{i}]", services));
        }
        var repeated = graders.GroupBy(g => g.Name, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1);
        if (repeated is not null)
        {
            throw SextantException.Invalid(field, $"Two evaluators are named '{repeated.Key}'; give one a different 'name'.");
        }
        return graders;
    }

    /// <summary>
    /// The configurations as they are stored with an experiment or rule: a local similarity evaluator without a
    /// precision gets today's default (int8) written in, so that its scores never change under it when a later version
    /// changes the default; configurations stored before the setting existed keep float32, as they ran.
    /// </summary>
    public static List<JsonElement> WithStoredDefaults(IReadOnlyList<JsonElement>? evaluators)
    {
        var result = new List<JsonElement>();
        foreach (var config in evaluators ?? [])
        {
            if (config.ValueKind == JsonValueKind.Object && config.TryGetProperty("type", out var type) && type.ValueEquals("similarity")
                && !config.TryGetProperty("precision", out _)
                && (!config.TryGetProperty("embedder", out var embedder) || embedder.ValueKind == JsonValueKind.Null || embedder.ValueEquals("local")))
            {
                var node = System.Text.Json.Nodes.JsonNode.Parse(config.GetRawText())!.AsObject();
                node["precision"] = "int8";
                using var document = JsonDocument.Parse(node.ToJsonString());
                result.Add(document.RootElement.Clone());
            }
            else
            {
                result.Add(config);
            }
        }
        return result;
    }

    public static IGrader Parse(JsonElement config, string field, GraderServices services)
    {
        if (config.ValueKind != JsonValueKind.Object)
        {
            throw SextantException.Invalid(field, $"'{field}' must be an object like {{\"type\": \"contains\", \"value\": \"refund\"}}.");
        }
        var type = config.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString()! : throw SextantException.Missing($"{field}.type");
        if (DeterministicEvaluator.Handles(type))
        {
            return new DeterministicGrader(DeterministicEvaluator.Parse(config, field));
        }
        var name = config.TryGetProperty("name", out var n) ? n.ValueKind == JsonValueKind.String && n.GetString()!.Length is > 0 and <= 100 ? n.GetString()!
            : throw SextantException.Invalid($"{field}.name", $"'{field}.name' must be a string of 1-100 characters.") : type;
        string? Text(string property, bool required)
        {
            if (!config.TryGetProperty(property, out var value) || value.ValueKind == JsonValueKind.Null)
            {
                return required ? throw SextantException.Missing($"{field}.{property}") : null;
            }
            return value.ValueKind == JsonValueKind.String && value.GetString()!.Length > 0 ? value.GetString()
                : throw SextantException.Invalid($"{field}.{property}", $"'{field}.{property}' must be a non-empty string.");
        }
        double Threshold(double fallback)
        {
            if (!config.TryGetProperty("threshold", out var value))
            {
                return fallback;
            }
            return value.ValueKind == JsonValueKind.Number && value.GetDouble() is >= 0 and <= 1 ? value.GetDouble()
                : throw SextantException.Invalid($"{field}.threshold", $"'{field}.threshold' must be a number from 0 to 1.");
        }
        switch (type)
        {
            case "similarity":
                var embedder = Text("embedder", false) ?? "local";
                if (embedder != "local" && services.Gateway is null)
                {
                    throw SextantException.Invalid($"{field}.embedder", $"'{field}.embedder' {embedder} needs the gateway, which this context lacks.");
                }
                var precision = Text("precision", false) switch
                {
                    // Stored configurations name it (WithStoredDefaults); one stored before the setting existed ran on float32.
                    null => EmbedderPrecision.Float32,
                    "int8" => EmbedderPrecision.Int8,
                    "float32" when embedder == "local" => EmbedderPrecision.Float32,
                    "float32" => throw SextantException.Invalid($"{field}.precision", $"'{field}.precision' applies to the local embedder only; '{embedder}' embeds at the provider."),
                    var other => throw SextantException.Invalid($"{field}.precision", $"'{field}.precision' must be int8 (the default) or float32; got '{other}'."),
                };
                return new SimilarityGrader(name, Text("value", false), Threshold(0.8), embedder, precision, services);
            case "llm-judge":
                return new JudgeGrader(name, Text("rubric", true)!, Text("model", true)!, Threshold(0.5), services);
            case "context-relevance" or "groundedness" or "answer-relevance":
                return new RagGrader(name, type, Text("model", true)!, Threshold(type == "groundedness" ? 1.0 : 0.5), Text("question", false), Text("context", false), services);
            default:
                throw SextantException.Invalid($"{field}.type",
                    $"'{field}.type' must be a deterministic evaluator (equals, contains, icontains, regex, starts-with, is-json, json-schema, json-path-equals, length, latency, cost; each also as not-...) or one of {string.Join(", ", ModelTypes)}; got '{type}'.");
        }
    }

    /// <summary>A grader's score; a grader that throws (anything but this call's cancellation) gives an error score with the reason.</summary>
    public static async Task<EvalScore> ScoreSafelyAsync(this IGrader grader, EvalInput input, CancellationToken cancellationToken)
    {
        try
        {
            return await grader.ScoreAsync(input, cancellationToken);
        }
        catch (Exception e) when (!cancellationToken.IsCancellationRequested)
        {
            return new EvalScore(grader.Name, EvalStatus.Error, null, $"the evaluator failed: {e.Message}");
        }
    }

    /// <summary>The item's input as text for a judge: a string as it is, messages as "role: content" lines, variables as "name: value" lines.</summary>
    public static string InputText(JsonElement? input) => input switch
    {
        null => "",
        { ValueKind: JsonValueKind.String } s => s.GetString()!,
        { ValueKind: JsonValueKind.Array } messages => string.Join("\n", messages.EnumerateArray().Select(m =>
            $"{(m.TryGetProperty("role", out var r) ? r.ToString() : "user")}: {(m.TryGetProperty("content", out var c) ? Content(c) : "")}")),
        { ValueKind: JsonValueKind.Object } variables => string.Join("\n", variables.EnumerateObject().Select(p => $"{p.Name}: {Content(p.Value)}")),
        var other => other.Value.GetRawText(),
    };

    /// <summary>The question a RAG answer answers: the named variable, else question, query or input, else the last user message.</summary>
    public static string? Question(JsonElement? input, string? variable)
    {
        switch (input)
        {
            case { ValueKind: JsonValueKind.String } s:
                return s.GetString();
            case { ValueKind: JsonValueKind.Object } variables:
                foreach (var key in variable is null ? ["question", "query", "input"] : new[] { variable })
                {
                    if (variables.TryGetProperty(key, out var v))
                    {
                        return Content(v);
                    }
                }
                return null;
            case { ValueKind: JsonValueKind.Array } messages:
                return messages.EnumerateArray().LastOrDefault(m => m.TryGetProperty("role", out var r) && r.ValueEquals("user")) is { ValueKind: JsonValueKind.Object } last
                    && last.TryGetProperty("content", out var content) ? Content(content) : null;
            default:
                return null;
        }
    }

    private static string Content(JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.String => value.GetString()!,
        JsonValueKind.Array => string.Join("\n", value.EnumerateArray().Select(p => p.ValueKind == JsonValueKind.Object && p.TryGetProperty("text", out var t) ? t.ToString() : Content(p))),
        _ => value.GetRawText(),
    };

    [GeneratedRegex(@"(?<=[.!?])\s+(?=\S)")]
    private static partial Regex SentenceBreak();

    /// <summary>An answer's sentences, for groundedness.</summary>
    public static List<string> Sentences(string text) =>
        [.. SentenceBreak().Split(text.Trim()).Select(s => s.Trim()).Where(s => s.Length > 0)];

    internal static string Short(string text, int length = 200) => text.Length > length ? text[..length] + "..." : text;
}

internal sealed class DeterministicGrader(DeterministicEvaluator evaluator) : IGrader
{
    public string Name => evaluator.Name;

    public Task<EvalScore> ScoreAsync(EvalInput input, CancellationToken cancellationToken) => Task.FromResult(evaluator.Evaluate(input));
}

/// <summary>
/// Semantic similarity: the cosine of the output's and the expected answer's embeddings (all-MiniLM-L6-v2 locally,
/// or a provider's model through the gateway), passing at the threshold.
/// </summary>
internal sealed class SimilarityGrader(string name, string? value, double threshold, string embedder, EmbedderPrecision precision, GraderServices services) : IGrader
{
    public string Name => name;

    public bool UsesGateway => embedder != "local";

    public async Task<EvalScore> ScoreAsync(EvalInput input, CancellationToken cancellationToken)
    {
        var expected = value ?? (input.Expected is { ValueKind: JsonValueKind.String } e ? e.GetString() : input.Expected?.GetRawText());
        if (expected is null)
        {
            return new EvalScore(name, EvalStatus.Error, null, "similarity needs a 'value' or the item's expected output");
        }
        float[][] vectors;
        try
        {
            vectors = embedder == "local"
                ? await LocalEmbedder.Get(precision).EmbedAsync([input.Output, expected], cancellationToken)
                : await services.Gateway!.EmbedAsync(services.Caller!, embedder, [input.Output, expected], cancellationToken);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            return new EvalScore(name, EvalStatus.Error, null, $"the embeddings failed: {ex.Message}");
        }
        var cosine = Math.Round(LocalEmbedder.Cosine(vectors[0], vectors[1]), 4);
        return cosine >= threshold
            ? new EvalScore(name, EvalStatus.Pass, cosine, $"similarity {cosine.ToString("0.###", CultureInfo.InvariantCulture)} >= {threshold.ToString(CultureInfo.InvariantCulture)}")
            : new EvalScore(name, EvalStatus.Fail, cosine, $"similarity {cosine.ToString("0.###", CultureInfo.InvariantCulture)} < {threshold.ToString(CultureInfo.InvariantCulture)}");
    }
}

/// <summary>
/// A judge model asked through the gateway for structured output. An answer that is not the JSON asked for is an
/// error score keeping the raw answer, never a fail.
/// </summary>
internal abstract class ModelGrader(string name, string model, GraderServices services) : IGrader
{
    public string Name => name;

    public bool UsesGateway => true;

    public abstract Task<EvalScore> ScoreAsync(EvalInput input, CancellationToken cancellationToken);

    protected async Task<(JsonObject? Verdict, string? Error)> AskAsync(string system, string user, JsonObject schema, CancellationToken cancellationToken)
    {
        if (services.Gateway is null || services.Caller is null)
        {
            return (null, "no gateway to ask the judge through");
        }
        var request = new JsonObject
        {
            ["model"] = model,
            ["temperature"] = 0,
            ["messages"] = new JsonArray(
                new JsonObject { ["role"] = "system", ["content"] = system },
                new JsonObject { ["role"] = "user", ["content"] = user }),
            ["response_format"] = new JsonObject
            {
                ["type"] = "json_schema",
                ["json_schema"] = new JsonObject { ["name"] = "verdict", ["strict"] = true, ["schema"] = schema },
            },
        };
        GatewayAnswer answer;
        try
        {
            answer = await services.Gateway.ChatAsync(services.Caller, request, ["sextant:judge"], cancellationToken);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            return (null, $"the judge '{model}' could not be called: {e.Message}");
        }
        if (!answer.Ok)
        {
            return (null, $"the judge '{model}' failed: {answer.Error}");
        }
        try
        {
            if (JsonNode.Parse(StripFence(answer.Text ?? "")) is JsonObject verdict)
            {
                return (verdict, null);
            }
        }
        catch (JsonException)
        {
        }
        return (null, $"the judge's answer is not valid structured output: {Graders.Short(answer.Text ?? "", 2000)}");
    }

    /// <summary>A number from 0 to 1 in the verdict, or null.</summary>
    protected static double? Score(JsonObject verdict) =>
        verdict["score"] is JsonValue v && v.TryGetValue<double>(out var score) && score is >= 0 and <= 1 ? score : null;

    protected static string? Reason(JsonObject verdict) => verdict["reason"] is JsonValue v && v.TryGetValue<string>(out var reason) ? reason : null;

    protected static JsonObject ScoreSchema() => new()
    {
        ["type"] = "object",
        ["properties"] = new JsonObject
        {
            ["score"] = new JsonObject { ["type"] = "number", ["minimum"] = 0, ["maximum"] = 1 },
            ["reason"] = new JsonObject { ["type"] = "string" },
        },
        ["required"] = new JsonArray("score", "reason"),
        ["additionalProperties"] = false,
    };

    protected EvalScore Verdict(double score, double threshold, string reason) =>
        new(Name, score >= threshold ? EvalStatus.Pass : EvalStatus.Fail, score, reason);

    protected EvalScore Error(string reason) => new(Name, EvalStatus.Error, null, reason);

    protected EvalScore Malformed(JsonObject verdict) => Error($"the judge's answer is not valid structured output: {Graders.Short(verdict.ToJsonString(), 2000)}");

    private static string StripFence(string text)
    {
        var trimmed = text.Trim();
        if (trimmed.StartsWith("```", StringComparison.Ordinal))
        {
            var start = trimmed.IndexOf('\n', StringComparison.Ordinal);
            var end = trimmed.LastIndexOf("```", StringComparison.Ordinal);
            if (start > 0 && end > start)
            {
                return trimmed[(start + 1)..end];
            }
        }
        return trimmed;
    }
}

/// <summary>LLM-as-judge: a rubric, the input, the expected and the actual output; the judge answers a score from 0 to 1 and a reason.</summary>
internal sealed class JudgeGrader(string name, string rubric, string model, double threshold, GraderServices services) : ModelGrader(name, model, services)
{
    public override async Task<EvalScore> ScoreAsync(EvalInput input, CancellationToken cancellationToken)
    {
        var user = new StringBuilder()
            .Append("Rubric:\n").Append(rubric).Append("\n\nInput:\n").Append(Graders.InputText(input.Input));
        if (input.Expected is { } expected)
        {
            user.Append("\n\nExpected output:\n").Append(expected.ValueKind == JsonValueKind.String ? expected.GetString() : expected.GetRawText());
        }
        user.Append("\n\nOutput to grade:\n").Append(input.Output);
        var (verdict, error) = await AskAsync(
            "You are a strict, impartial grader. Grade the output against the rubric. Answer only JSON: {\"score\": a number from 0 (fails the rubric) to 1 (fully meets it), \"reason\": one or two sentences}.",
            user.ToString(), ScoreSchema(), cancellationToken);
        if (verdict is null)
        {
            return Error(error!);
        }
        return Score(verdict) is { } score ? Verdict(score, threshold, Reason(verdict) ?? "") : Malformed(verdict);
    }
}

/// <summary>
/// The RAG triad. Context relevance: is the retrieved context relevant to the question. Groundedness: each sentence
/// of the answer judged supported by the context or not; the score is the supported share (below the threshold,
/// 1 by default, the answer is ungrounded: a hallucination). Answer relevance: does the answer address the question.
/// The context is the item's metadata.context (or the named variable), or the target's retrieved context.
/// </summary>
internal sealed class RagGrader(string name, string kind, string model, double threshold, string? questionVariable, string? contextVariable, GraderServices services)
    : ModelGrader(name, model, services)
{
    public string Kind => kind;

    public override async Task<EvalScore> ScoreAsync(EvalInput input, CancellationToken cancellationToken)
    {
        var question = Graders.Question(input.Input, questionVariable);
        var context = Context(input);
        if (kind != "answer-relevance" && string.IsNullOrWhiteSpace(context))
        {
            return Error($"{kind} needs the retrieved context: put it in the item's metadata.context{(contextVariable is null ? "" : $" or the '{contextVariable}' variable")}, or return it from the target");
        }
        if (kind != "groundedness" && string.IsNullOrWhiteSpace(question))
        {
            return Error($"{kind} needs the question: a question, query or input variable, or a user message");
        }
        switch (kind)
        {
            case "context-relevance":
            {
                var (verdict, error) = await AskAsync(
                    "You grade retrieval. Say how relevant the retrieved context is to answering the question. Answer only JSON: {\"score\": 0 (irrelevant) to 1 (all relevant), \"reason\": one sentence}.",
                    $"Question:\n{question}\n\nRetrieved context:\n{context}", ScoreSchema(), cancellationToken);
                return verdict is null ? Error(error!) : Score(verdict) is { } score ? Verdict(score, threshold, Reason(verdict) ?? "") : Malformed(verdict);
            }
            case "answer-relevance":
            {
                var (verdict, error) = await AskAsync(
                    "You grade answers. Say how well the answer addresses the question (not whether it is true). Answer only JSON: {\"score\": 0 (off topic) to 1 (fully addresses it), \"reason\": one sentence}.",
                    $"Question:\n{question}\n\nAnswer:\n{input.Output}", ScoreSchema(), cancellationToken);
                return verdict is null ? Error(error!) : Score(verdict) is { } score ? Verdict(score, threshold, Reason(verdict) ?? "") : Malformed(verdict);
            }
            default:
            {
                var sentences = Graders.Sentences(input.Output);
                if (sentences.Count == 0)
                {
                    return Verdict(1, threshold, "the answer is empty: nothing is ungrounded");
                }
                var list = string.Join("\n", sentences.Select((s, i) => $"{i + 1}. {s}"));
                var schema = new JsonObject
                {
                    ["type"] = "object",
                    ["properties"] = new JsonObject
                    {
                        ["sentences"] = new JsonObject
                        {
                            ["type"] = "array",
                            ["items"] = new JsonObject
                            {
                                ["type"] = "object",
                                ["properties"] = new JsonObject
                                {
                                    ["index"] = new JsonObject { ["type"] = "integer" },
                                    ["supported"] = new JsonObject { ["type"] = "boolean" },
                                    ["reason"] = new JsonObject { ["type"] = "string" },
                                },
                                ["required"] = new JsonArray("index", "supported", "reason"),
                                ["additionalProperties"] = false,
                            },
                        },
                    },
                    ["required"] = new JsonArray("sentences"),
                    ["additionalProperties"] = false,
                };
                var (verdict, error) = await AskAsync(
                    "You check answers against their sources. For each numbered sentence of the answer, say whether the context supports it (supported: true) or not. Answer only JSON: {\"sentences\": [{\"index\": n, \"supported\": true or false, \"reason\": short}]}, one entry per sentence.",
                    $"Context:\n{context}\n\nAnswer sentences:\n{list}", schema, cancellationToken);
                if (verdict is null)
                {
                    return Error(error!);
                }
                if (verdict["sentences"] is not JsonArray judged || judged.Count != sentences.Count
                    || judged.Any(j => j?["supported"] is not JsonValue s || !s.TryGetValue<bool>(out _)))
                {
                    return Error($"the judge's answer is not valid structured output (one verdict per sentence, {sentences.Count} expected): {Graders.Short(verdict.ToJsonString(), 2000)}");
                }
                var unsupported = judged.Select((j, i) => (Supported: j!["supported"]!.GetValue<bool>(), Sentence: sentences[i], Reason: j["reason"]?.ToString()))
                    .Where(x => !x.Supported).ToList();
                var score = Math.Round((double)(sentences.Count - unsupported.Count) / sentences.Count, 4);
                var reason = unsupported.Count == 0 ? $"all {sentences.Count} sentences are supported by the context"
                    : $"{unsupported.Count} of {sentences.Count} sentences are not supported: " + string.Join("; ", unsupported.Take(3).Select(u => $"\"{Graders.Short(u.Sentence, 80)}\" ({u.Reason})"));
                return Verdict(score, threshold, reason);
            }
        }
    }

    private string? Context(EvalInput input)
    {
        if (input.Context is { Length: > 0 } given)
        {
            return given;
        }
        if (input.Metadata?.TryGetValue("context", out var fromMetadata) == true)
        {
            return Text(fromMetadata);
        }
        if (input.Input is { ValueKind: JsonValueKind.Object } variables && variables.TryGetProperty(contextVariable ?? "context", out var fromInput))
        {
            return Text(fromInput);
        }
        return null;
    }

    private static string Text(JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.String => value.GetString()!,
        JsonValueKind.Array => string.Join("\n\n", value.EnumerateArray().Select(Text)),
        _ => value.GetRawText(),
    };
}
