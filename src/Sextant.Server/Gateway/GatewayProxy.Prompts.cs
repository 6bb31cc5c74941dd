using System.Text.Json;
using System.Text.Json.Nodes;
using Sextant.Contracts;
using Sextant.Core;
using Sextant.Core.Projects;
using Sextant.Core.Prompts;

namespace Sextant.Server.Gateway;

// Prompts through the gateway: "model": "prompt:support/answer@production" (or @3 for a version), or a "prompt"
// object {name, label, version, variables}. The version is rendered with the request's variables, its messages go
// before the request's own, its config fills what the request does not set, and its config's model is called. A
// new version goes live by moving a label, with no change to the application.
internal sealed partial class GatewayProxy
{
    public const string PromptPrefix = "prompt:";

    /// <summary>Which prompt version a call used, for its span.</summary>
    internal sealed record PromptUse(string Name, int Version, string? Label, string? Arm);

    /// <param name="user">Who the call is for: a prompt's traffic split keeps each user on one arm.</param>
    private async Task<PromptUse> ApplyPromptAsync(Caller caller, JsonObject request, string? user, CancellationToken cancellationToken)
    {
        string? name, label = null;
        int? version = null;
        string? modelOverride = null;
        JsonNode? variables;
        if (request["prompt"] is JsonObject reference)
        {
            name = reference["name"] is JsonValue n && n.TryGetValue<string>(out var text) ? text : throw SextantException.Invalid("prompt.name", "'prompt.name' is required.");
            label = reference["label"]?.GetValue<string>();
            version = reference["version"] is JsonValue v && v.TryGetValue<int>(out var number) ? number : null;
            variables = reference["variables"];
            // An experiment may try a prompt version with another model than its config's.
            modelOverride = reference["model"] is JsonValue m && m.TryGetValue<string>(out var other) && other.Length > 0 ? other : null;
        }
        else if (request["prompt"] is not null)
        {
            throw SextantException.Invalid("prompt", "'prompt' is an object: {\"name\": ..., \"label\" or \"version\": ..., \"variables\": {...}}.");
        }
        else
        {
            var spec = request["model"]!.GetValue<string>()[PromptPrefix.Length..];
            var at = spec.LastIndexOf('@');
            name = at < 0 ? spec : spec[..at];
            var selector = at < 0 ? null : spec[(at + 1)..];
            if (selector is { Length: > 0 } && selector.All(char.IsAsciiDigit))
            {
                version = int.Parse(selector, System.Globalization.CultureInfo.InvariantCulture);
            }
            else
            {
                label = selector;
            }
            variables = request["variables"];
        }
        if (variables is not null and not JsonObject)
        {
            throw SextantException.Invalid("variables", "'variables' is an object of name to value.");
        }
        var (prompt, arm) = await prompts.GetForCallAsync(caller, name, version, label, user, cancellationToken);
        var values = variables is JsonObject given
            ? given.ToDictionary(p => p.Key, p => JsonSerializer.SerializeToElement(p.Value, GatewayJson.Default.JsonNode))
            : [];
        var rendered = PromptService.Render(prompt, values);
        var messages = new JsonArray();
        if (rendered.Text is { } text1)
        {
            messages.Add(new JsonObject { ["role"] = "user", ["content"] = text1 });
        }
        foreach (var message in rendered.Messages ?? [])
        {
            messages.Add(new JsonObject { ["role"] = message.Role, ["content"] = message.Content });
        }
        if (request["messages"] is JsonArray own)
        {
            foreach (var message in own)
            {
                messages.Add(message?.DeepClone());
            }
        }
        request["messages"] = messages;
        request.Remove("prompt");
        request.Remove("variables");
        string? model = modelOverride;
        if (prompt.Config is { ValueKind: JsonValueKind.Object } config)
        {
            foreach (var property in config.EnumerateObject())
            {
                if (property.Name == "model")
                {
                    model ??= property.Value.ValueKind == JsonValueKind.String ? property.Value.GetString() : null;
                }
                else if (request[property.Name] is null)
                {
                    request[property.Name] = JsonNode.Parse(property.Value.GetRawText());
                }
            }
        }
        request["model"] = model ?? throw SextantException.Invalid("prompt",
            $"Prompt '{prompt.Name}' version {prompt.Version} has no 'model' in its config: set one (a route or provider/model) to call it through the gateway.");
        return new PromptUse(prompt.Name, prompt.Version, version is null ? arm ?? label ?? PromptService.Production : null, arm);
    }
}
