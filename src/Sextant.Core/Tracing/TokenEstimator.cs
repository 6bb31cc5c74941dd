using System.Text.Json;
using Microsoft.ML.Tokenizers;

namespace Sextant.Core.Tracing;

/// <summary>
/// Counts tokens when a provider reports no usage, with Microsoft.ML.Tokenizers: o200k_base for OpenAI's newer
/// models, cl100k_base for the rest (an estimate for models with other tokenizers). Chat messages add OpenAI's
/// per-message overhead. Spans with counted tokens are marked estimated.
/// </summary>
public static class TokenEstimator
{
    private static readonly Lazy<Tokenizer> O200k = new(() => TiktokenTokenizer.CreateForEncoding("o200k_base"));
    private static readonly Lazy<Tokenizer> Cl100k = new(() => TiktokenTokenizer.CreateForEncoding("cl100k_base"));
    private static readonly string[] O200kModels = ["gpt-4o", "gpt-4.1", "gpt-4.5", "gpt-5", "o1", "o3", "o4", "chatgpt-4o"];

    private static Tokenizer For(string? model) =>
        model is not null && O200kModels.Any(m => model.StartsWith(m, StringComparison.OrdinalIgnoreCase)) ? O200k.Value : Cl100k.Value;

    public static long Count(string? model, string text) => text.Length == 0 ? 0 : For(model).CountTokens(text);

    /// <summary>The tokens of chat messages (OpenAI's shape or plain strings): each message's text, 3 per message and 3 to prime the answer.</summary>
    public static long CountMessages(string? model, JsonElement messages)
    {
        if (messages.ValueKind == JsonValueKind.String)
        {
            return Count(model, messages.GetString()!);
        }
        if (messages.ValueKind != JsonValueKind.Array)
        {
            return Count(model, messages.GetRawText());
        }
        long total = 3;
        foreach (var message in messages.EnumerateArray())
        {
            total += 3 + Fields(model, message);
        }
        return total;
    }

    /// <summary>As OpenAI counts a message: the tokens of each of its values (role, name, content's text), added up.</summary>
    private static long Fields(string? model, JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.String => Count(model, value.GetString()!),
        JsonValueKind.Object => value.EnumerateObject()
            .Where(p => p.NameEquals("content") || p.NameEquals("role") || p.NameEquals("name") || p.NameEquals("text"))
            .Sum(p => Fields(model, p.Value)),
        JsonValueKind.Array => value.EnumerateArray().Sum(v => Fields(model, v)),
        JsonValueKind.Null or JsonValueKind.Undefined => 0,
        _ => Count(model, value.GetRawText()),
    };
}
