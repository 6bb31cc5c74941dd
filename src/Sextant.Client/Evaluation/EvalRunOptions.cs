using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.AI.Evaluation;
using Sextant.Contracts;

namespace Sextant.Client.Evaluation;

/// <summary>How <see cref="SextantClient.RunEvalExperimentAsync"/> runs: evaluators scored by the server (JSON), custom ones run here, concurrency and repeats.</summary>
public sealed record EvalRunOptions
{
    public string? Name { get; init; }
    public int? DatasetVersion { get; init; }
    public IReadOnlyList<JsonElement>? Evaluators { get; init; }
    public IReadOnlyList<IEvaluator> CustomEvaluators { get; init; } = [];
    /// <summary>Handed to custom evaluators that call a model (the evaluation library's own judges).</summary>
    public ChatConfiguration? ChatConfiguration { get; init; }
    public int? Concurrency { get; init; }
    public int? Repeat { get; init; }
    public IReadOnlyDictionary<string, string>? Metadata { get; init; }
    /// <summary>An earlier sdk experiment to finish: only its missing runs are run.</summary>
    public string? ResumeId { get; init; }
}

/// <summary>The dataset item's expected output, for custom evaluators (<c>additionalContext.OfType&lt;ExpectedOutputContext&gt;()</c>).</summary>
public sealed class ExpectedOutputContext(JsonElement? expected) : EvaluationContext("Expected output", expected is { } e ? (e.ValueKind == JsonValueKind.String ? e.GetString()! : e.GetRawText()) : "")
{
    public JsonElement? Expected { get; } = expected;
}

internal static class EvalMessages
{
    /// <summary>An item's input as chat messages: messages as they are, a string as a user message, variables as "name: value" lines.</summary>
    public static List<ChatMessage> From(JsonElement? input) => input switch
    {
        { ValueKind: JsonValueKind.Array } messages => [.. messages.EnumerateArray().Select(m => new ChatMessage(
            new ChatRole(m.TryGetProperty("role", out var r) ? r.GetString() ?? "user" : "user"),
            m.TryGetProperty("content", out var c) ? (c.ValueKind == JsonValueKind.String ? c.GetString() : c.GetRawText()) : ""))],
        { ValueKind: JsonValueKind.String } text => [new ChatMessage(ChatRole.User, text.GetString())],
        { ValueKind: JsonValueKind.Object } variables => [new ChatMessage(ChatRole.User, string.Join("\n", variables.EnumerateObject().Select(p =>
            $"{p.Name}: {(p.Value.ValueKind == JsonValueKind.String ? p.Value.GetString() : p.Value.GetRawText())}")))],
        _ => [],
    };

    public static EvalScore ToScore(EvaluationMetric metric)
    {
        double? score = metric switch
        {
            NumericMetric n => n.Value,
            BooleanMetric b => b.Value is null ? null : b.Value.Value ? 1 : 0,
            _ => null,
        };
        var reason = metric.Interpretation?.Reason ?? metric.Reason ?? (metric is StringMetric s ? s.Value : null) ?? "";
        var status = metric.Diagnostics?.Any(d => d.Severity == EvaluationDiagnosticSeverity.Error) == true ? EvalStatus.Error
            : metric.Interpretation?.Failed == true ? EvalStatus.Fail
            : metric.Interpretation is null && metric is BooleanMetric { Value: false } ? EvalStatus.Fail
            : EvalStatus.Pass;
        if (status == EvalStatus.Error)
        {
            reason = string.Join("; ", metric.Diagnostics!.Where(d => d.Severity == EvaluationDiagnosticSeverity.Error).Select(d => d.Message));
        }
        return new EvalScore(metric.Name, status, score, reason);
    }
}

/// <summary>
/// A CI gate over an experiment's summary: conditions like "pass_rate>=0.9", joined by commas or "&amp;&amp;". Metrics:
/// pass_rate, error_rate, hallucination_rate, flaky_items, failed, errors, latency_p50, latency_p95, cost,
/// score.NAME (an evaluator's mean score), pass_rate.NAME (an evaluator's pass rate).
/// </summary>
public static partial class EvalGate
{
    [GeneratedRegex(@"^\s*([A-Za-z_][A-Za-z0-9_.\-:/]*)\s*(>=|<=|==|!=|>|<)\s*(-?[0-9]+(?:\.[0-9]+)?)\s*$")]
    private static partial Regex Condition();

    /// <summary>The conditions that failed (empty when the gate passes); a malformed expression or unknown metric throws ArgumentException naming it.</summary>
    public static List<string> Check(ExperimentSummary summary, string expression)
    {
        var failures = new List<string>();
        if (summary.Results < summary.Expected)
        {
            // A rate over part of the runs proves nothing about the rest.
            failures.Add($"only {summary.Results} of {summary.Expected} runs finished");
        }
        foreach (var part in expression.Split([",", "&&"], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var match = Condition().Match(part);
            if (!match.Success)
            {
                throw new ArgumentException($"Gate condition '{part}' must look like pass_rate>=0.9 (a metric, one of >= <= > < == !=, a number).", nameof(expression));
            }
            var metric = match.Groups[1].Value;
            var limit = double.Parse(match.Groups[3].Value, CultureInfo.InvariantCulture);
            var value = Value(summary, metric);
            var holds = value is { } v && match.Groups[2].Value switch
            {
                ">=" => v >= limit,
                "<=" => v <= limit,
                ">" => v > limit,
                "<" => v < limit,
                "==" => Math.Abs(v - limit) < 1e-9,
                _ => Math.Abs(v - limit) >= 1e-9,
            };
            if (!holds)
            {
                failures.Add($"{part.Trim()} (actual {(value is null ? "unknown" : value.Value.ToString("0.####", CultureInfo.InvariantCulture))})");
            }
        }
        return failures;
    }

    private static double? Value(ExperimentSummary summary, string metric)
    {
        EvaluatorSummary Evaluator(string name) => summary.Evaluators.FirstOrDefault(e => e.Name == name)
            ?? throw new ArgumentException($"Gate metric '{metric}': the experiment has no evaluator '{name}' (it has {string.Join(", ", summary.Evaluators.Select(e => e.Name))}).");
        return metric switch
        {
            "pass_rate" => summary.PassRate,
            "error_rate" => summary.ErrorRate,
            "hallucination_rate" => summary.HallucinationRate,
            "flaky_items" => summary.FlakyItems,
            "failed" => summary.Failed,
            "errors" => summary.Errors,
            "latency_p50" => summary.LatencyP50Ms,
            "latency_p95" => summary.LatencyP95Ms,
            "cost" => summary.Cost,
            _ when metric.StartsWith("score.", StringComparison.Ordinal) => Evaluator(metric[6..]).MeanScore,
            _ when metric.StartsWith("pass_rate.", StringComparison.Ordinal) => Evaluator(metric[10..]).PassRate,
            _ => throw new ArgumentException(
                $"Gate metric '{metric}' is unknown: use pass_rate, error_rate, hallucination_rate, flaky_items, failed, errors, latency_p50, latency_p95, cost, score.NAME or pass_rate.NAME."),
        };
    }
}
