using System.Text.Json;
using Sextant.Core.Evaluation;

namespace Sextant.Core.Tests.Evaluation;

/// <summary>Every deterministic evaluator, negated too, and the refusal of configurations of the wrong shape.</summary>
public sealed class DeterministicEvaluatorTests
{
    private static DeterministicEvaluator Evaluator(string json) => DeterministicEvaluator.Parse(JsonDocument.Parse(json).RootElement, "evaluators[0]");

    private static string Status(string config, string output, string? expected = null, double? latency = null, double? cost = null) =>
        Evaluator(config).Evaluate(new EvalInput(output, expected is null ? null : JsonDocument.Parse(expected).RootElement, latency, cost)).Status;

    [Theory]
    [InlineData("""{"type": "equals", "value": "Paris"}""", " Paris ", "pass")]
    [InlineData("""{"type": "equals"}""", "Paris", "pass")]
    [InlineData("""{"type": "equals", "value": "Paris"}""", "paris", "fail")]
    [InlineData("""{"type": "not-equals", "value": "Paris"}""", "Rome", "pass")]
    [InlineData("""{"type": "contains", "value": ["refund", "days"]}""", "A refund within 30 days.", "pass")]
    [InlineData("""{"type": "contains", "value": ["refund", "weeks"]}""", "A refund within 30 days.", "fail")]
    [InlineData("""{"type": "icontains", "value": "REFUND"}""", "a refund", "pass")]
    [InlineData("""{"type": "not-contains", "value": "sorry"}""", "Sure!", "pass")]
    [InlineData("""{"type": "regex", "value": "^\\d{3}-\\d{4}$"}""", "555-1234", "pass")]
    [InlineData("""{"type": "starts-with", "value": "Dear"}""", "  Dear customer", "pass")]
    [InlineData("""{"type": "is-json"}""", "{\"a\": 1}", "pass")]
    [InlineData("""{"type": "is-json"}""", "{a: 1}", "fail")]
    [InlineData("""{"type": "not-is-json"}""", "plain words", "pass")]
    [InlineData("""{"type": "json-schema", "value": {"type": "object", "required": ["id"], "properties": {"id": {"type": "integer"}}}}""", "{\"id\": 7}", "pass")]
    [InlineData("""{"type": "json-schema", "value": {"type": "object", "required": ["id"], "properties": {"id": {"type": "integer"}}}}""", "{\"id\": \"7\"}", "fail")]
    [InlineData("""{"type": "json-path-equals", "path": "$.order.items[1]", "value": "pen"}""", "{\"order\": {\"items\": [\"ink\", \"pen\"]}}", "pass")]
    [InlineData("""{"type": "json-path-equals", "path": "/order/total", "value": 12.5}""", "{\"order\": {\"total\": 12.5}}", "pass")]
    [InlineData("""{"type": "json-path-equals", "path": "$.order.total", "value": 12.5}""", "{\"order\": {}}", "fail")]
    [InlineData("""{"type": "length", "min": 3, "max": 10}""", "hello", "pass")]
    [InlineData("""{"type": "length", "max": 3}""", "hello", "fail")]
    public void Deterministic_checks(string config, string output, string status) => Assert.Equal(status, Status(config, output, "\"Paris\""));

    [Fact]
    public void Latency_and_cost_bounds_and_an_unknown_cost_is_an_error_not_a_fail()
    {
        Assert.Equal("pass", Status("""{"type": "latency", "value": 500}""", "x", latency: 320));
        Assert.Equal("fail", Status("""{"type": "latency", "value": 500}""", "x", latency: 820));
        Assert.Equal("pass", Status("""{"type": "cost", "value": 0.01}""", "x", cost: 0.002));
        var unknown = Evaluator("""{"type": "cost", "value": 0.01}""").Evaluate(new EvalInput("x"));
        Assert.Equal(("error", null), (unknown.Status, unknown.Score));
        Assert.Contains("price unknown", unknown.Reason, StringComparison.Ordinal);
        Assert.Equal("error", Status("""{"type": "equals"}""", "x"));
    }

    [Fact]
    public void A_verdict_has_a_score_and_a_reason()
    {
        var verdict = Evaluator("""{"type": "json-schema", "name": "shape", "value": {"type": "object", "required": ["id"]}}""").Evaluate(new EvalInput("{}"));
        Assert.Equal(("shape", "fail", 0.0), (verdict.Name, verdict.Status, verdict.Score));
        Assert.Contains("does not match the schema", verdict.Reason, StringComparison.Ordinal);
        var negated = Evaluator("""{"type": "not-contains", "value": "sorry"}""").Evaluate(new EvalInput("I am sorry"));
        Assert.Equal(("fail", "not: the output contains 'sorry'"), (negated.Status, negated.Reason));
    }

    [Theory]
    [InlineData("""["contains"]""", "evaluators[0]")]
    [InlineData("""{"value": "x"}""", "evaluators[0].type")]
    [InlineData("""{"type": "similar-ish"}""", "evaluators[0].type")]
    [InlineData("""{"type": "contains", "value": 3}""", "evaluators[0].value")]
    [InlineData("""{"type": "regex", "value": "(unclosed"}""", "evaluators[0].value")]
    [InlineData("""{"type": "json-schema", "value": "object"}""", "evaluators[0].value")]
    [InlineData("""{"type": "json-path-equals", "value": 1}""", "evaluators[0].path")]
    [InlineData("""{"type": "json-path-equals", "path": "order.total", "value": 1}""", "evaluators[0].path")]
    [InlineData("""{"type": "length"}""", "evaluators[0]")]
    [InlineData("""{"type": "length", "min": -1}""", "evaluators[0].min")]
    [InlineData("""{"type": "latency", "value": "fast"}""", "evaluators[0].value")]
    public void A_configuration_of_the_wrong_shape_is_refused_naming_the_field(string config, string field)
    {
        var error = Assert.Throws<SextantException>(() => Evaluator(config));
        Assert.Equal((400, field), (error.StatusCode, error.Field));
    }
}
