using System.Text.Json;

namespace Sextant.Contracts;

/// <summary>
/// A new version of a prompt (the prompt is created with its first version). Template: a string for a text prompt,
/// an array of {role, content} messages for a chat prompt, with {{variables}} (Mustache). Config: any JSON object
/// (model, temperature, tools, response format...). Labels: moved to the new version as it is made.
/// </summary>
public sealed record CreatePromptVersionRequest(
    string? Type,
    JsonElement? Template,
    JsonElement? Config = null,
    IReadOnlyList<string>? Tags = null,
    string? Message = null,
    IReadOnlyList<string>? Labels = null);

/// <summary>One immutable, numbered version of a prompt, with the labels that point at it and the variables its template uses.</summary>
public sealed record PromptVersion(
    string Name,
    int Version,
    string Type,
    JsonElement Template,
    JsonElement? Config,
    IReadOnlyList<string> Tags,
    IReadOnlyList<string> Labels,
    IReadOnlyList<string> Variables,
    string? Message,
    string? Author,
    long CreatedTime);

/// <summary>A prompt: its type, latest version, labels (label to version; latest is implied), tags and traffic split.</summary>
public sealed record PromptSummary(string Name, string Type, int LatestVersion, IReadOnlyDictionary<string, int> Labels, IReadOnlyList<string> Tags, long UpdatedTime,
    IReadOnlyList<PromptSplitArm>? Split = null);

/// <summary>One arm of an A/B test: a label and its share of the traffic (weights are relative).</summary>
public sealed record PromptSplitArm(string? Label, double Weight);

/// <summary>
/// Splits the calls that name a prompt without a label or version between labels, by weight, sticky per user (the
/// same user always gets the same arm). An empty list removes the split.
/// </summary>
public sealed record SetPromptSplitRequest(IReadOnlyList<PromptSplitArm>? Arms);

public sealed record PromptsResponse(IReadOnlyList<PromptSummary> Prompts, string? NextPageToken = null);

public sealed record PromptVersionsResponse(IReadOnlyList<PromptVersion> Versions);

/// <summary>Points a label at a version.</summary>
public sealed record SetPromptLabelRequest(int? Version);

/// <summary>Renders a version (by number or label; production when neither is given) with these variables.</summary>
public sealed record RenderPromptRequest(int? Version = null, string? Label = null, IReadOnlyDictionary<string, JsonElement>? Variables = null);

/// <summary>
/// A rendered prompt: text for a text prompt, messages for a chat prompt, the version's config, and the variables
/// given that the template does not use.
/// </summary>
public sealed record RenderedPrompt(string Name, int Version, string Type, string? Text, IReadOnlyList<PromptMessage>? Messages, JsonElement? Config,
    IReadOnlyList<string> UnusedVariables);

public sealed record PromptMessage(string Role, string Content);

/// <summary>What changed between two versions: the template line by line, the config by key (old and new values).</summary>
public sealed record PromptDiff(string Name, int From, int To, IReadOnlyList<DiffLine> Template, IReadOnlyList<ConfigChange> Config);

/// <param name="Kind">same, added or removed.</param>
public sealed record DiffLine(string Kind, string Text);

public sealed record ConfigChange(string Key, JsonElement? Old, JsonElement? New);

/// <summary>A label move: a deployment of a prompt version, as the audit log keeps it.</summary>
public sealed record PromptLabelMove(string Label, int? FromVersion, int? ToVersion, string? Actor, long Time);

public sealed record PromptLabelHistoryResponse(IReadOnlyList<PromptLabelMove> Moves);
