using System.Data.Common;
using System.Text.Json;
using System.Text.RegularExpressions;
using Dapper;
using Sextant.Contracts;
using Sextant.Core.Projects;
using Sextant.Core.Storage;

namespace Sextant.Core.Prompts;

/// <summary>
/// The prompt registry: prompts named with folders (support/answer), immutable numbered versions of a text or chat
/// template with a config object, labels that point at versions (moving one is a deployment, kept in the audit
/// log; protected labels need an admin), rendering, and diffs. <c>latest</c> is implied: the newest version.
/// </summary>
public sealed partial class PromptService(SextantDatabase database)
{
    public const int MaxTemplateBytes = 256 * 1024;
    public const int MaxConfigBytes = 64 * 1024;
    public const int MaxMessages = 100;
    public const int MaxTags = 50;
    public const int DefaultPageSize = 100;
    public const int MaxPageSize = 1000;
    public const string Latest = "latest";
    public const string Production = "production";

    /// <summary>Labels only an admin may move.</summary>
    public static readonly IReadOnlySet<string> ProtectedLabels = new HashSet<string>(StringComparer.Ordinal) { Production };

    private static readonly string[] Roles = ["system", "developer", "user", "assistant"];

    [GeneratedRegex(@"^[A-Za-z0-9][A-Za-z0-9_.\-]*(/[A-Za-z0-9][A-Za-z0-9_.\-]*)*\z")]
    private static partial Regex NamePattern();

    [GeneratedRegex(@"^[a-z0-9][a-z0-9_.\-]{0,63}\z")]
    private static partial Regex LabelPattern();

    private sealed record PromptRow(long Id, string Name, string Type, string Tags, long NextVersion, long UpdatedTime, string? Split);

    public const int MaxSplitArms = 10;

    private sealed record VersionRow(long Version, string Template, string? Config, string? Message, string? Author, long CreatedTime);

    public async Task<PromptVersion> CreateVersionAsync(Caller caller, string? name, CreatePromptVersionRequest request, CancellationToken cancellationToken = default)
    {
        caller.Require(Role.Editor);
        var promptName = Name(name);
        var type = request.Type ?? (request.Template?.ValueKind == JsonValueKind.Array ? "chat" : "text");
        if (type is not ("text" or "chat"))
        {
            throw SextantException.Invalid("type", $"'type' must be text or chat; got '{type}'.");
        }
        var template = Template(type, request.Template);
        var config = Config(request.Config);
        var tags = Tags(request.Tags);
        var labels = (request.Labels ?? []).Select(l => Label(l, "labels")).Distinct(StringComparer.Ordinal).ToList();
        if (labels.Any(ProtectedLabels.Contains))
        {
            caller.Require(Role.Admin);
        }
        if (request.Message is { Length: > 2000 })
        {
            throw SextantException.Invalid("message", "'message' may be at most 2000 characters.");
        }
        await using var connection = await database.OpenAsync(cancellationToken);
        await using var transaction = await SextantDatabase.BeginWriteAsync(connection, cancellationToken);
        var now = Clock.NowMs();
        await connection.ExecuteAsync(
            """
            INSERT INTO prompts (project_id, name, type, tags, next_version, created_time, updated_time) VALUES (@project, @promptName, @type, '[]', 1, @now, @now)
            ON CONFLICT (project_id, name) DO NOTHING
            """,
            new { project = caller.ProjectId, promptName, type, now }, transaction);
        // Taking the number and moving next_version in one statement serialises concurrent versions of one prompt.
        var taken = await connection.QuerySingleAsync<(long Id, string Type, long Version, string Tags)>(
            "UPDATE prompts SET next_version = next_version + 1, updated_time = @now WHERE project_id = @project AND name = @promptName RETURNING id, type, next_version - 1, tags",
            new { project = caller.ProjectId, promptName, now }, transaction);
        if (taken.Type != type)
        {
            throw SextantException.Invalid("type", $"Prompt '{promptName}' is a {taken.Type} prompt; a new version must be {taken.Type} too.");
        }
        if (request.Tags is not null)
        {
            await connection.ExecuteAsync("UPDATE prompts SET tags = @tags WHERE id = @id",
                new { id = taken.Id, tags = JsonSerializer.Serialize(tags, CoreJsonContext.Default.ListString) }, transaction);
        }
        var author = Actor(caller);
        await connection.ExecuteAsync(
            "INSERT INTO prompt_versions (prompt_id, version, template, config, message, author, created_time) VALUES (@Id, @Version, @template, @config, @Message, @author, @now)",
            new { taken.Id, taken.Version, template = template.GetRawText(), config = config?.GetRawText(), request.Message, author, now }, transaction);
        foreach (var label in labels)
        {
            await MoveLabelAsync(connection, transaction, caller, taken.Id, promptName, label, taken.Version, now);
        }
        await transaction.CommitAsync(cancellationToken);
        return await GetAsync(caller, promptName, (int)taken.Version, null, cancellationToken);
    }

    /// <summary>A version by number, by label, or (neither given) the production label's.</summary>
    public async Task<PromptVersion> GetAsync(Caller caller, string? name, int? version, string? label, CancellationToken cancellationToken = default) =>
        (await GetAsync(caller, name, version, label, user: null, split: false, cancellationToken)).Version;

    /// <summary>
    /// The version a call gets: by number or label when it names one; else, when the prompt has a traffic split, the
    /// arm the user falls in (the same user always the same arm; a call without a user, any arm by weight); else production.
    /// </summary>
    public Task<(PromptVersion Version, string? Arm)> GetForCallAsync(Caller caller, string? name, int? version, string? label, string? user,
        CancellationToken cancellationToken = default) =>
        GetAsync(caller, name, version, label, user, split: true, cancellationToken);

    private async Task<(PromptVersion Version, string? Arm)> GetAsync(Caller caller, string? name, int? version, string? label, string? user, bool split,
        CancellationToken cancellationToken)
    {
        caller.Require(Role.Viewer);
        var promptName = Name(name);
        await using var connection = await database.OpenAsync(cancellationToken);
        var prompt = await PromptAsync(connection, caller, promptName);
        var labels = await LabelsAsync(connection, prompt.Id);
        string? arm = null;
        if (split && version is null && label is null && SplitArms(prompt.Split) is { Count: > 0 } arms)
        {
            arm = label = Pick(arms, promptName, user);
        }
        var number = version ?? ResolveLabel(prompt, labels, label is null ? Production : Label(label, "label"));
        var row = await connection.QuerySingleOrDefaultAsync<VersionRow>(
            "SELECT version, template, config, message, author, created_time AS CreatedTime FROM prompt_versions WHERE prompt_id = @Id AND version = @number",
            new { prompt.Id, number })
            ?? throw SextantException.NotFound($"Prompt '{promptName}' has no version {number} (versions 1-{prompt.NextVersion - 1}).");
        return (ToVersion(prompt, row, labels), arm);
    }

    public async Task<List<PromptVersion>> ListVersionsAsync(Caller caller, string? name, CancellationToken cancellationToken = default)
    {
        caller.Require(Role.Viewer);
        var promptName = Name(name);
        await using var connection = await database.OpenAsync(cancellationToken);
        var prompt = await PromptAsync(connection, caller, promptName);
        var labels = await LabelsAsync(connection, prompt.Id);
        var rows = await connection.QueryAsync<VersionRow>(
            "SELECT version, template, config, message, author, created_time AS CreatedTime FROM prompt_versions WHERE prompt_id = @Id ORDER BY version DESC", new { prompt.Id });
        return [.. rows.Select(r => ToVersion(prompt, r, labels))];
    }

    /// <summary>Prompts by name (keyset paging), optionally under a folder prefix.</summary>
    public async Task<PromptsResponse> ListAsync(Caller caller, string? prefix, int? maxResults, string? pageToken, CancellationToken cancellationToken = default)
    {
        caller.Require(Role.Viewer);
        var limit = maxResults ?? DefaultPageSize;
        if (limit is < 1 or > MaxPageSize)
        {
            throw SextantException.Invalid("max_results", $"'max_results' must be between 1 and {MaxPageSize}; got {limit}.");
        }
        await using var connection = await database.OpenAsync(cancellationToken);
        var rows = (await connection.QueryAsync<PromptRow>(
            $"""
            SELECT id, name, type, tags, next_version AS NextVersion, updated_time AS UpdatedTime, split FROM prompts
            WHERE project_id = @project {(prefix is { Length: > 0 } ? "AND substr(name, 1, @length) = @prefix" : "")} {(pageToken is null ? "" : "AND name > @pageToken")}
            ORDER BY name LIMIT @take
            """,
            new { project = caller.ProjectId, prefix, length = prefix?.Length ?? 0, pageToken, take = limit + 1 })).ToList();
        var summaries = new List<PromptSummary>();
        foreach (var row in rows.Take(limit))
        {
            var labels = await LabelsAsync(connection, row.Id);
            summaries.Add(new PromptSummary(row.Name, row.Type, (int)row.NextVersion - 1, labels, TagList(row.Tags), row.UpdatedTime, SplitArms(row.Split)));
        }
        return new PromptsResponse(summaries, rows.Count > limit ? rows[limit - 1].Name : null);
    }

    /// <summary>An arm by weight: from a hash of the prompt and the user when there is one, so that it sticks.</summary>
    internal static string Pick(IReadOnlyList<PromptSplitArm> arms, string prompt, string? user)
    {
        double point;
        if (user is { Length: > 0 })
        {
            var hash = System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(prompt + "\n" + user));
            point = (System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(hash) >> 11) / (double)(1UL << 53);
        }
        else
        {
            point = Random.Shared.NextDouble();
        }
        var target = point * arms.Sum(a => a.Weight);
        foreach (var arm in arms)
        {
            if ((target -= arm.Weight) < 0)
            {
                return arm.Label!;
            }
        }
        return arms[^1].Label!;
    }

    /// <summary>Sets (or, with no arms, removes) the prompt's traffic split; it decides what production traffic gets, so it needs an admin.</summary>
    public async Task<List<PromptSplitArm>> SetSplitAsync(Caller caller, string? name, IReadOnlyList<PromptSplitArm>? arms, CancellationToken cancellationToken = default)
    {
        caller.Require(Role.Admin);
        var promptName = Name(name);
        var list = (arms ?? []).ToList();
        if (list.Count is 1 or > MaxSplitArms)
        {
            throw SextantException.Invalid("arms", $"A split has 2-{MaxSplitArms} arms (or none, to remove it); got {list.Count}.");
        }
        for (var i = 0; i < list.Count; i++)
        {
            Label(list[i].Label, $"arms[{i}].label");
            if (!double.IsFinite(list[i].Weight) || list[i].Weight <= 0)
            {
                throw SextantException.Invalid($"arms[{i}].weight", $"'weight' must be a positive number; got {list[i].Weight}.");
            }
        }
        if (list.Select(a => a.Label).Distinct().Count() != list.Count)
        {
            throw SextantException.Invalid("arms", "Each label may appear in one arm only.");
        }
        await using var connection = await database.OpenAsync(cancellationToken);
        await using var transaction = await SextantDatabase.BeginWriteAsync(connection, cancellationToken);
        var prompt = await PromptAsync(connection, caller, promptName, transaction);
        var labels = await LabelsAsync(connection, prompt.Id, transaction);
        if (list.FirstOrDefault(a => a.Label != Latest && !labels.ContainsKey(a.Label!)) is { } unknown)
        {
            throw new SextantException(ErrorCodes.ResourceDoesNotExist,
                $"Prompt '{promptName}' has no label '{unknown.Label}'. Its labels: {string.Join(", ", labels.Keys.Append(Latest).Select(l => $"'{l}'"))}.", 404, "arms");
        }
        var json = list.Count == 0 ? null : JsonSerializer.Serialize(list, SextantJsonContext.Default.IReadOnlyListPromptSplitArm);
        await connection.ExecuteAsync("UPDATE prompts SET split = @json, updated_time = @now WHERE id = @Id", new { json, now = Clock.NowMs(), prompt.Id }, transaction);
        await connection.ExecuteAsync(
            "INSERT INTO audit_log (project_id, time, actor, action, target, detail) VALUES (@project, @now, @actor, 'prompt.split', @target, @detail)",
            new { project = caller.ProjectId, now = Clock.NowMs(), actor = Actor(caller), target = "prompt:" + promptName, detail = json ?? "[]" }, transaction);
        await transaction.CommitAsync(cancellationToken);
        return list;
    }

    private static List<PromptSplitArm>? SplitArms(string? json) => json is null ? null : JsonSerializer.Deserialize(json, SextantJsonContext.Default.IReadOnlyListPromptSplitArm)?.ToList();

    /// <summary>Points a label at a version: a deployment, written to the audit log. Protected labels need an admin.</summary>
    public async Task SetLabelAsync(Caller caller, string? name, string? label, int? version, CancellationToken cancellationToken = default)
    {
        var labelName = Label(label, "label");
        caller.Require(ProtectedLabels.Contains(labelName) ? Role.Admin : Role.Editor);
        var promptName = Name(name);
        if (version is null)
        {
            throw SextantException.Missing("version");
        }
        await using var connection = await database.OpenAsync(cancellationToken);
        await using var transaction = await SextantDatabase.BeginWriteAsync(connection, cancellationToken);
        var prompt = await PromptAsync(connection, caller, promptName, transaction);
        if (version < 1 || version >= prompt.NextVersion)
        {
            throw SextantException.NotFound($"Prompt '{promptName}' has no version {version} (versions 1-{prompt.NextVersion - 1}).");
        }
        await MoveLabelAsync(connection, transaction, caller, prompt.Id, promptName, labelName, version.Value, Clock.NowMs());
        await transaction.CommitAsync(cancellationToken);
    }

    public async Task DeleteLabelAsync(Caller caller, string? name, string? label, CancellationToken cancellationToken = default)
    {
        var labelName = Label(label, "label");
        caller.Require(ProtectedLabels.Contains(labelName) ? Role.Admin : Role.Editor);
        var promptName = Name(name);
        await using var connection = await database.OpenAsync(cancellationToken);
        await using var transaction = await SextantDatabase.BeginWriteAsync(connection, cancellationToken);
        var prompt = await PromptAsync(connection, caller, promptName, transaction);
        var was = await connection.ExecuteScalarAsync<long?>("SELECT version FROM prompt_labels WHERE prompt_id = @Id AND label = @labelName", new { prompt.Id, labelName }, transaction)
            ?? throw SextantException.NotFound($"Prompt '{promptName}' has no label '{labelName}'.");
        await connection.ExecuteAsync("DELETE FROM prompt_labels WHERE prompt_id = @Id AND label = @labelName", new { prompt.Id, labelName }, transaction);
        await AuditAsync(connection, transaction, caller, promptName, labelName, was, null, Clock.NowMs());
        await transaction.CommitAsync(cancellationToken);
    }

    public async Task<List<PromptLabelMove>> LabelHistoryAsync(Caller caller, string? name, CancellationToken cancellationToken = default)
    {
        caller.Require(Role.Viewer);
        var promptName = Name(name);
        await using var connection = await database.OpenAsync(cancellationToken);
        await PromptAsync(connection, caller, promptName);
        var rows = await connection.QueryAsync<(string Actor, string Detail, long Time)>(
            "SELECT actor, detail, time FROM audit_log WHERE project_id = @project AND target = @target AND action = 'prompt.label' ORDER BY id DESC LIMIT 1000",
            new { project = caller.ProjectId, target = "prompt:" + promptName });
        return [.. rows.Select(r => JsonSerializer.Deserialize(r.Detail, SextantJsonContext.Default.PromptLabelMove)! with { Actor = r.Actor, Time = r.Time })];
    }

    /// <summary>Renders a version with variables: a missing variable is a 400 naming it; unused ones are reported.</summary>
    public async Task<RenderedPrompt> RenderAsync(Caller caller, string? name, RenderPromptRequest request, CancellationToken cancellationToken = default)
    {
        var version = await GetAsync(caller, name, request.Version, request.Label, cancellationToken);
        return Render(version, request.Variables ?? new Dictionary<string, JsonElement>());
    }

    /// <summary>Renders a version (the SDK does the same with a cached one); a missing variable is a 400 naming it.</summary>
    public static RenderedPrompt Render(PromptVersion version, IReadOnlyDictionary<string, JsonElement> variables)
    {
        try
        {
            return PromptTemplate.Render(version, variables);
        }
        catch (PromptTemplate.MissingVariablesException e)
        {
            throw SextantException.Invalid($"variables.{e.Missing[0]}", e.Message);
        }
    }

    /// <summary>The template line by line and the config key by key, from one version to another.</summary>
    public async Task<PromptDiff> DiffAsync(Caller caller, string? name, int? from, int? to, CancellationToken cancellationToken = default)
    {
        if (from is null || to is null)
        {
            throw SextantException.Missing(from is null ? "from" : "to");
        }
        var a = await GetAsync(caller, name, from, null, cancellationToken);
        var b = await GetAsync(caller, name, to, null, cancellationToken);
        var diff = DiffPlex.Differ.Instance.CreateLineDiffs(TemplateText(a), TemplateText(b), ignoreWhitespace: false);
        var lines = new List<DiffLine>();
        var oldLines = TemplateText(a).Split('\n');
        var newLines = TemplateText(b).Split('\n');
        var position = 0;
        foreach (var block in diff.DiffBlocks)
        {
            for (; position < block.DeleteStartA; position++)
            {
                lines.Add(new DiffLine("same", oldLines[position]));
            }
            lines.AddRange(oldLines.Skip(block.DeleteStartA).Take(block.DeleteCountA).Select(l => new DiffLine("removed", l)));
            lines.AddRange(newLines.Skip(block.InsertStartB).Take(block.InsertCountB).Select(l => new DiffLine("added", l)));
            position = block.DeleteStartA + block.DeleteCountA;
        }
        for (; position < oldLines.Length; position++)
        {
            lines.Add(new DiffLine("same", oldLines[position]));
        }
        return new PromptDiff(a.Name, a.Version, b.Version, lines, ConfigChanges(a.Config, b.Config));
    }

    private static string TemplateText(PromptVersion version) => version.Type == "text"
        ? version.Template.GetString()!
        : string.Join("\n", version.Template.EnumerateArray().Select(m => $"[{m.GetProperty("role").GetString()}]\n{m.GetProperty("content").GetString()}"));

    private static List<ConfigChange> ConfigChanges(JsonElement? a, JsonElement? b)
    {
        static Dictionary<string, JsonElement> Keys(JsonElement? config) =>
            config is { ValueKind: JsonValueKind.Object } c ? c.EnumerateObject().ToDictionary(p => p.Name, p => p.Value) : [];
        var (old, fresh) = (Keys(a), Keys(b));
        return [.. old.Keys.Union(fresh.Keys).Order(StringComparer.Ordinal)
            .Where(k => !old.TryGetValue(k, out var o) || !fresh.TryGetValue(k, out var n) || o.GetRawText() != n.GetRawText())
            .Select(k => new ConfigChange(k, old.TryGetValue(k, out var o) ? o : null, fresh.TryGetValue(k, out var n) ? n : null))];
    }

    // ---- Helpers ----

    private static async Task MoveLabelAsync(DbConnection connection, DbTransaction transaction, Caller caller, long promptId, string promptName, string label, long version, long now)
    {
        var was = await connection.ExecuteScalarAsync<long?>("SELECT version FROM prompt_labels WHERE prompt_id = @promptId AND label = @label", new { promptId, label }, transaction);
        await connection.ExecuteAsync(
            "INSERT INTO prompt_labels (prompt_id, label, version) VALUES (@promptId, @label, @version) ON CONFLICT (prompt_id, label) DO UPDATE SET version = excluded.version",
            new { promptId, label, version }, transaction);
        await AuditAsync(connection, transaction, caller, promptName, label, was, version, now);
    }

    private static Task<int> AuditAsync(DbConnection connection, DbTransaction transaction, Caller caller, string promptName, string label, long? from, long? to, long now) =>
        connection.ExecuteAsync(
            "INSERT INTO audit_log (project_id, time, actor, action, target, detail) VALUES (@project, @now, @actor, 'prompt.label', @target, @detail)",
            new
            {
                project = caller.ProjectId, now, actor = Actor(caller), target = "prompt:" + promptName,
                detail = JsonSerializer.Serialize(new PromptLabelMove(label, (int?)from, (int?)to, null, 0), SextantJsonContext.Default.PromptLabelMove),
            },
            transaction);

    private static string Actor(Caller caller) => caller.KeyId ?? "anonymous";

    private static async Task<PromptRow> PromptAsync(DbConnection connection, Caller caller, string promptName, DbTransaction? transaction = null) =>
        await connection.QuerySingleOrDefaultAsync<PromptRow>(
            "SELECT id, name, type, tags, next_version AS NextVersion, updated_time AS UpdatedTime, split FROM prompts WHERE project_id = @project AND name = @promptName",
            new { project = caller.ProjectId, promptName }, transaction)
        ?? throw SextantException.NotFound($"No prompt '{promptName}' in project '{caller.ProjectName}'.");

    private static async Task<Dictionary<string, int>> LabelsAsync(DbConnection connection, long promptId, DbTransaction? transaction = null) =>
        (await connection.QueryAsync<(string Label, long Version)>("SELECT label, version FROM prompt_labels WHERE prompt_id = @promptId ORDER BY label", new { promptId }, transaction))
        .ToDictionary(l => l.Label, l => (int)l.Version, StringComparer.Ordinal);

    private static long ResolveLabel(PromptRow prompt, Dictionary<string, int> labels, string label) =>
        label == Latest ? prompt.NextVersion - 1
        : labels.TryGetValue(label, out var version) ? version
        : throw new SextantException(ErrorCodes.ResourceDoesNotExist,
            $"Prompt '{prompt.Name}' has no label '{label}'. Its labels: {string.Join(", ", labels.Keys.Append(Latest).Select(l => $"'{l}'"))}.", 404, "label");

    private static PromptVersion ToVersion(PromptRow prompt, VersionRow row, Dictionary<string, int> labels)
    {
        using var template = JsonDocument.Parse(row.Template);
        using var config = row.Config is null ? null : JsonDocument.Parse(row.Config);
        var versionLabels = labels.Where(l => l.Value == row.Version).Select(l => l.Key).ToList();
        if (row.Version == prompt.NextVersion - 1)
        {
            versionLabels.Add(Latest);
        }
        return new PromptVersion(prompt.Name, (int)row.Version, prompt.Type, template.RootElement.Clone(), config?.RootElement.Clone(), TagList(prompt.Tags),
            versionLabels, PromptTemplate.Variables(prompt.Type, template.RootElement), row.Message, row.Author, row.CreatedTime);
    }

    private static List<string> TagList(string json) => JsonSerializer.Deserialize(json, CoreJsonContext.Default.ListString) ?? [];

    private static string Name(string? name)
    {
        if (string.IsNullOrEmpty(name))
        {
            throw SextantException.Missing("name");
        }
        if (name.Length > 256 || !NamePattern().IsMatch(name))
        {
            throw SextantException.Invalid("name",
                $"A prompt's 'name' is up to 256 letters, digits and . _ -, with / between folders (support/answer); got '{(name.Length > 80 ? name[..80] + "..." : name)}'.");
        }
        return name;
    }

    private static string Label(string? label, string field)
    {
        if (string.IsNullOrEmpty(label) || !LabelPattern().IsMatch(label))
        {
            throw SextantException.Invalid(field, $"A label is 1-64 lower-case letters, digits and . _ -, starting with a letter or digit; got '{label}'.");
        }
        if (label.All(char.IsAsciiDigit))
        {
            throw SextantException.Invalid(field, $"A label may not be only digits ('{label}'): prompt:name@3 names version 3.");
        }
        if (field != "label" && label == Latest)
        {
            throw SextantException.Invalid(field, "'latest' always names the newest version; it cannot be set.");
        }
        return label;
    }

    /// <summary>Checks a template's shape and that every text in it parses; a parse error names its message and position.</summary>
    private static JsonElement Template(string type, JsonElement? template)
    {
        if (template is not { } t || t.ValueKind is JsonValueKind.Undefined or JsonValueKind.Null)
        {
            throw SextantException.Missing("template");
        }
        if (System.Text.Encoding.UTF8.GetByteCount(t.GetRawText()) > MaxTemplateBytes)
        {
            throw SextantException.Invalid("template", $"A template may hold at most {MaxTemplateBytes} bytes.");
        }
        if (type == "text")
        {
            if (t.ValueKind != JsonValueKind.String)
            {
                throw SextantException.Invalid("template", "A text prompt's 'template' is a string.");
            }
            Check(t.GetString()!, "template");
            return t;
        }
        if (t.ValueKind != JsonValueKind.Array || t.GetArrayLength() is 0 or > MaxMessages)
        {
            throw SextantException.Invalid("template", $"A chat prompt's 'template' is an array of 1-{MaxMessages} messages, each {{\"role\": ..., \"content\": ...}}.");
        }
        var i = 0;
        foreach (var message in t.EnumerateArray())
        {
            var at = $"template[{i++}]";
            if (message.ValueKind != JsonValueKind.Object
                || !message.TryGetProperty("role", out var role) || role.ValueKind != JsonValueKind.String || !Roles.Contains(role.GetString())
                || !message.TryGetProperty("content", out var content) || content.ValueKind != JsonValueKind.String)
            {
                throw SextantException.Invalid(at, $"'{at}' must be {{\"role\": system, developer, user or assistant, \"content\": a string}}.");
            }
            Check(content.GetString()!, $"{at}.content");
        }
        return t;
    }

    private static void Check(string text, string field)
    {
        try
        {
            PromptTemplate.Parse(text);
        }
        catch (PromptTemplate.TemplateException e)
        {
            throw SextantException.Invalid(field, $"'{field}' is not a valid template: {e.Message}");
        }
    }

    private static JsonElement? Config(JsonElement? config)
    {
        if (config is not { } c || c.ValueKind is JsonValueKind.Undefined or JsonValueKind.Null)
        {
            return null;
        }
        if (c.ValueKind != JsonValueKind.Object)
        {
            throw SextantException.Invalid("config", "'config' is a JSON object (model, temperature, tools, response_format...).");
        }
        if (System.Text.Encoding.UTF8.GetByteCount(c.GetRawText()) > MaxConfigBytes)
        {
            throw SextantException.Invalid("config", $"'config' may hold at most {MaxConfigBytes} bytes.");
        }
        return c;
    }

    private static List<string> Tags(IReadOnlyList<string>? tags)
    {
        var list = (tags ?? []).Distinct(StringComparer.Ordinal).ToList();
        if (list.Count > MaxTags || list.Any(t => string.IsNullOrWhiteSpace(t) || t.Length > 64))
        {
            throw SextantException.Invalid("tags", $"At most {MaxTags} tags of 1-64 characters.");
        }
        return list;
    }
}
