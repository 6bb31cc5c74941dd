using System.Text.Json.Nodes;
using Sextant.Core.Projects;

namespace Sextant.Core.Evaluation;

/// <summary>
/// Calls Sextant's own gateway from inside the server (experiments, judges, online evaluation): the same routes,
/// limits, prompts, cache and traces as an application's call, without a network hop.
/// </summary>
public interface IGatewayCaller
{
    /// <summary>A chat completion (OpenAI's request shape; "model" may name a prompt). Tags mark the trace (sextant:experiment, sextant:judge).</summary>
    Task<GatewayAnswer> ChatAsync(Caller caller, JsonObject request, IReadOnlyList<string> tags, CancellationToken cancellationToken);

    /// <summary>Embeddings of texts from a provider's model through the gateway.</summary>
    Task<float[][]> EmbedAsync(Caller caller, string model, IReadOnlyList<string> texts, CancellationToken cancellationToken);
}

/// <summary>
/// A gateway answer: the status, the assistant's text (or the error message), the whole body, and what the call
/// took as its trace recorded it (tokens, cost: null when the price is unknown).
/// </summary>
public sealed record GatewayAnswer(int Status, string? Text, JsonNode? Body, string? Error, double LatencyMs, long? InputTokens, long? OutputTokens, double? Cost, string? TraceId)
{
    public bool Ok => Status is >= 200 and < 300 && Error is null;
}
