using System.Data.Common;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using CsvHelper;
using CsvHelper.Configuration;
using Dapper;
using Sextant.Contracts;
using Sextant.Core.Projects;
using Sextant.Core.Storage;
using Sextant.Core.Tracing;
using Sextant.Core.Tracking;

namespace Sextant.Core.Evaluation;

/// <summary>
/// Eval datasets: items (input, expected output, metadata) in immutable numbered versions. A new version appends to
/// the latest one's items (an item whose id is already there replaces it in place) or replaces them all. Items come
/// as JSON, as a JSONL or CSV file (a broken line is a 400 naming it, and nothing is imported), or from traces.
/// </summary>
public sealed partial class EvalDatasetService(SextantDatabase database, TraceService traces)
{
    public const int MaxItemsPerVersion = 100_000;
    public const int MaxItemBytes = 1 << 20;
    public const int MaxImportBytes = 64 << 20;
    public const int DefaultPageSize = 100;
    public const int MaxPageSize = 1000;

    [GeneratedRegex(@"^[A-Za-z0-9][A-Za-z0-9_.\-]*(/[A-Za-z0-9][A-Za-z0-9_.\-]*)*\z")]
    private static partial Regex NamePattern();

    internal sealed record DatasetRow(long Id, string Name, string? Description, long NextVersion, long CreatedTime, long UpdatedTime);

    internal sealed record ItemRow(long Idx, string ItemKey, string? Input, string? Expected, string? Metadata, string? TraceId);

    public async Task<EvalDatasetVersion> AddItemsAsync(Caller caller, string? name, AddEvalItemsRequest request, CancellationToken cancellationToken = default)
    {
        caller.Require(Role.Editor);
        var datasetName = Name(name);
        if (request.Items is null)
        {
            throw SextantException.Missing("items");
        }
        var items = new List<EvalItem>(request.Items.Count);
        for (var i = 0; i < request.Items.Count; i++)
        {
            items.Add(Check(request.Items[i] ?? throw SextantException.Invalid($"items[{i}]", $"'items[{i}]' must be an object."), $"items[{i}]"));
        }
        return await WriteVersionAsync(caller, datasetName, items, Mode(request.Mode), request.Message, request.Description, cancellationToken);
    }

    /// <summary>A file of items: JSONL (one JSON object a line) or CSV (a header row). Every line is checked before anything is written.</summary>
    public async Task<EvalDatasetVersion> ImportAsync(Caller caller, string? name, string? format, Stream body, string? mode, string? message, CancellationToken cancellationToken = default)
    {
        caller.Require(Role.Editor);
        var datasetName = Name(name);
        var kind = (format ?? "jsonl").ToLowerInvariant();
        var items = kind switch
        {
            "jsonl" or "ndjson" => await ReadJsonLinesAsync(body, cancellationToken),
            "csv" => ReadCsv(body),
            _ => throw SextantException.Invalid("format", $"'format' must be jsonl or csv; got '{format}'."),
        };
        return await WriteVersionAsync(caller, datasetName, items, Mode(mode), message, null, cancellationToken);
    }

    /// <summary>Items from traces: each trace's first generation (its input messages; its output as the expected answer).</summary>
    public async Task<EvalDatasetVersion> FromTracesAsync(Caller caller, string? name, EvalItemsFromTracesRequest request, CancellationToken cancellationToken = default)
    {
        caller.Require(Role.Editor);
        var datasetName = Name(name);
        if (request.TraceIds is not { Count: > 0 })
        {
            throw SextantException.Missing("trace_ids");
        }
        if (request.TraceIds.Count > 10_000)
        {
            throw SextantException.Invalid("trace_ids", "'trace_ids' may name at most 10000 traces at once.");
        }
        var items = new List<EvalItem>();
        for (var i = 0; i < request.TraceIds.Count; i++)
        {
            TraceResponse trace;
            try
            {
                trace = await traces.GetTraceAsync(caller, request.TraceIds[i], cancellationToken);
            }
            catch (SextantException e) when (e.StatusCode == 404)
            {
                throw SextantException.Invalid($"trace_ids[{i}]", $"'trace_ids[{i}]': no trace '{request.TraceIds[i]}' in this project.");
            }
            var generation = trace.Spans.Where(s => s.Kind == "generation").OrderBy(s => s.StartTime).FirstOrDefault()
                ?? throw SextantException.Invalid($"trace_ids[{i}]", $"'trace_ids[{i}]': trace '{request.TraceIds[i]}' has no generation span to take an item from.");
            var metadata = new Dictionary<string, JsonElement>(StringComparer.Ordinal);
            if (generation.Model is { } model)
            {
                metadata["model"] = JsonSerializer.SerializeToElement(model, CoreJsonContext.Default.String);
            }
            var expected = generation.Output is { } output ? JsonSerializer.SerializeToElement(OutputText(output), CoreJsonContext.Default.String) : (JsonElement?)null;
            items.Add(Check(new EvalItem("trace-" + trace.Trace.TraceId, generation.Input, expected, metadata, trace.Trace.TraceId), $"trace_ids[{i}]"));
        }
        return await WriteVersionAsync(caller, datasetName, items, Mode(request.Mode), request.Message, null, cancellationToken);
    }

    /// <summary>The text of a generation's output: its assistant message content, or the JSON as it is.</summary>
    public static string OutputText(JsonElement output)
    {
        if (output.ValueKind == JsonValueKind.String)
        {
            return output.GetString()!;
        }
        if (output.ValueKind == JsonValueKind.Array)
        {
            return string.Join("\n", output.EnumerateArray().Select(OutputText));
        }
        if (output.ValueKind == JsonValueKind.Object)
        {
            if (output.TryGetProperty("content", out var content))
            {
                return content.ValueKind == JsonValueKind.Array
                    ? string.Concat(content.EnumerateArray().Select(p => p.ValueKind == JsonValueKind.Object && p.TryGetProperty("text", out var t) ? t.ToString() : p.ValueKind == JsonValueKind.String ? p.GetString() : ""))
                    : content.ToString();
            }
            if (output.TryGetProperty("message", out var message))
            {
                return OutputText(message);
            }
        }
        return output.GetRawText();
    }

    public async Task<EvalDatasetsResponse> ListAsync(Caller caller, int? maxResults, string? pageToken, CancellationToken cancellationToken = default)
    {
        caller.Require(Role.Viewer);
        var size = PageSize(maxResults);
        var after = pageToken is null ? "" : PageToken.Decode(pageToken, 1)[0] ?? "";
        await using var connection = await database.OpenAsync(cancellationToken);
        var rows = (await connection.QueryAsync<(string Name, string? Description, long Latest, long? Count, long Created, long Updated)>(
            """
            SELECT d.name, d.description, d.next_version - 1, v.item_count, d.created_time, d.updated_time
            FROM eval_datasets d LEFT JOIN eval_dataset_versions v ON v.dataset_id = d.id AND v.version = d.next_version - 1
            WHERE d.project_id = @project AND d.name > @after ORDER BY d.name LIMIT @limit
            """,
            new { project = caller.ProjectId, after, limit = size + 1 })).ToList();
        var page = rows.Take(size).Select(r => new EvalDataset(r.Name, r.Description, (int)r.Latest, (int)(r.Count ?? 0), r.Created, r.Updated)).ToList();
        return new EvalDatasetsResponse(page, rows.Count > size ? PageToken.Encode([page[^1].Name]) : null);
    }

    public async Task<EvalDatasetVersionsResponse> VersionsAsync(Caller caller, string? name, CancellationToken cancellationToken = default)
    {
        caller.Require(Role.Viewer);
        var datasetName = Name(name);
        await using var connection = await database.OpenAsync(cancellationToken);
        var dataset = await DatasetAsync(connection, caller.ProjectId, datasetName);
        var rows = await connection.QueryAsync<(long Version, long Count, long Added, string? Message, string? Author, long Created)>(
            "SELECT version, item_count, added, message, author, created_time FROM eval_dataset_versions WHERE dataset_id = @Id ORDER BY version DESC", new { dataset.Id });
        return new EvalDatasetVersionsResponse([.. rows.Select(r => new EvalDatasetVersion(datasetName, (int)r.Version, (int)r.Count, (int)r.Added, r.Message, r.Author, r.Created))]);
    }

    public async Task<EvalItemsResponse> ItemsAsync(Caller caller, string? name, int? version, int? maxResults, string? pageToken, CancellationToken cancellationToken = default)
    {
        caller.Require(Role.Viewer);
        var datasetName = Name(name);
        var size = PageSize(maxResults);
        var after = -1L;
        if (pageToken is not null && !long.TryParse(PageToken.Decode(pageToken, 1)[0], NumberStyles.None, CultureInfo.InvariantCulture, out after))
        {
            throw SextantException.Invalid("page_token", "Invalid page_token: pass back the next_page_token of the previous page unchanged.");
        }
        await using var connection = await database.OpenAsync(cancellationToken);
        var dataset = await DatasetAsync(connection, caller.ProjectId, datasetName);
        var number = ResolveVersion(dataset, version);
        var rows = (await connection.QueryAsync<ItemRow>(
            "SELECT idx, item_key AS ItemKey, input, expected, metadata, trace_id AS TraceId FROM eval_items WHERE dataset_id = @Id AND version = @number AND idx > @after ORDER BY idx LIMIT @limit",
            new { dataset.Id, number, after, limit = size + 1 })).ToList();
        var page = rows.Take(size).Select(r => new IndexedEvalItem((int)r.Idx, ToItem(r))).ToList();
        return new EvalItemsResponse(datasetName, number, page, rows.Count > size ? PageToken.Encode([page[^1].Index.ToString(CultureInfo.InvariantCulture)]) : null);
    }

    /// <summary>Every item of a version, for an experiment.</summary>
    internal async Task<(DatasetRow Dataset, int Version, List<IndexedEvalItem> Items)> LoadAsync(long project, string datasetName, int? version, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        var dataset = await DatasetAsync(connection, project, datasetName);
        var number = ResolveVersion(dataset, version);
        var rows = await connection.QueryAsync<ItemRow>(
            "SELECT idx, item_key AS ItemKey, input, expected, metadata, trace_id AS TraceId FROM eval_items WHERE dataset_id = @Id AND version = @number ORDER BY idx",
            new { dataset.Id, number });
        return (dataset, number, [.. rows.Select(r => new IndexedEvalItem((int)r.Idx, ToItem(r)))]);
    }

    internal static async Task<DatasetRow> DatasetAsync(DbConnection connection, long project, string name) =>
        await connection.QuerySingleOrDefaultAsync<DatasetRow>(
            "SELECT id, name, description, next_version AS NextVersion, created_time AS CreatedTime, updated_time AS UpdatedTime FROM eval_datasets WHERE project_id = @project AND name = @name",
            new { project, name })
        ?? throw SextantException.NotFound($"No eval dataset '{name}' in this project.");

    private static int ResolveVersion(DatasetRow dataset, int? version)
    {
        var latest = (int)dataset.NextVersion - 1;
        if (version is null or 0)
        {
            return latest;
        }
        return version >= 1 && version <= latest ? version.Value
            : throw SextantException.NotFound($"Eval dataset '{dataset.Name}' has no version {version} (versions 1-{latest}).");
    }

    private async Task<EvalDatasetVersion> WriteVersionAsync(Caller caller, string datasetName, List<EvalItem> items, bool replace, string? message, string? description,
        CancellationToken cancellationToken)
    {
        EvalText.Check(message, "message", 2000);
        EvalText.Check(description, "description", 2000);
        var duplicate = items.Where(i => i.Id is not null).GroupBy(i => i.Id, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null)
        {
            throw SextantException.Invalid("items", $"Item id '{duplicate.Key}' appears {duplicate.Count()} times; ids must be unique within a dataset.");
        }
        await using var connection = await database.OpenAsync(cancellationToken);
        await using var transaction = await SextantDatabase.BeginWriteAsync(connection, cancellationToken);
        var now = Clock.NowMs();
        await connection.ExecuteAsync(
            """
            INSERT INTO eval_datasets (project_id, name, description, next_version, created_time, updated_time) VALUES (@project, @datasetName, @description, 1, @now, @now)
            ON CONFLICT (project_id, name) DO NOTHING
            """,
            new { project = caller.ProjectId, datasetName, description, now }, transaction);
        var taken = await connection.QuerySingleAsync<(long Id, long Version)>(
            "UPDATE eval_datasets SET next_version = next_version + 1, updated_time = @now, description = COALESCE(@description, description) WHERE project_id = @project AND name = @datasetName RETURNING id, next_version - 1",
            new { project = caller.ProjectId, datasetName, description, now }, transaction);
        var rows = new List<ItemRow>();
        if (!replace && taken.Version > 1)
        {
            rows.AddRange(await connection.QueryAsync<ItemRow>(
                "SELECT idx, item_key AS ItemKey, input, expected, metadata, trace_id AS TraceId FROM eval_items WHERE dataset_id = @Id AND version = @previous ORDER BY idx",
                new { taken.Id, previous = taken.Version - 1 }, transaction));
        }
        var byKey = rows.Select((r, i) => (r.ItemKey, i)).ToDictionary(x => x.ItemKey, x => x.i, StringComparer.Ordinal);
        // Keys made up for items without an id never take an id that an item of this request names.
        var named = items.Where(i => i.Id is not null).Select(i => i.Id!).ToHashSet(StringComparer.Ordinal);
        foreach (var item in items)
        {
            var key = item.Id;
            if (key is null)
            {
                var n = rows.Count + 1;
                while (byKey.ContainsKey(key = "item-" + n.ToString(CultureInfo.InvariantCulture)) || named.Contains(key))
                {
                    n++;
                }
            }
            var row = new ItemRow(0, key, Json(item.Input), Json(item.Expected),
                item.Metadata is { Count: > 0 } m ? JsonSerializer.Serialize(m, CoreJsonContext.Default.DictionaryStringJsonElement) : null, item.TraceId);
            if (byKey.TryGetValue(key, out var at))
            {
                rows[at] = row;
            }
            else
            {
                byKey[key] = rows.Count;
                rows.Add(row);
            }
        }
        if (rows.Count > MaxItemsPerVersion)
        {
            throw SextantException.Invalid("items", $"A dataset version holds at most {MaxItemsPerVersion} items; this one would hold {rows.Count}.");
        }
        const int chunk = 200;
        for (var start = 0; start < rows.Count; start += chunk)
        {
            var sql = new StringBuilder("INSERT INTO eval_items (dataset_id, version, idx, item_key, input, expected, metadata, trace_id) VALUES ");
            var parameters = new DynamicParameters(new { taken.Id, taken.Version });
            for (var i = start; i < Math.Min(rows.Count, start + chunk); i++)
            {
                sql.Append(i == start ? "" : ", ").Append(CultureInfo.InvariantCulture, $"(@Id, @Version, {i}, @k{i}, @i{i}, @e{i}, @m{i}, @t{i})");
                parameters.Add("k" + i, rows[i].ItemKey);
                parameters.Add("i" + i, rows[i].Input);
                parameters.Add("e" + i, rows[i].Expected);
                parameters.Add("m" + i, rows[i].Metadata);
                parameters.Add("t" + i, rows[i].TraceId);
            }
            await connection.ExecuteAsync(sql.ToString(), parameters, transaction);
        }
        var author = caller.KeyId ?? "anonymous";
        await connection.ExecuteAsync(
            "INSERT INTO eval_dataset_versions (dataset_id, version, item_count, added, message, author, created_time) VALUES (@Id, @Version, @count, @added, @message, @author, @now)",
            new { taken.Id, taken.Version, count = rows.Count, added = items.Count, message, author, now }, transaction);
        await transaction.CommitAsync(cancellationToken);
        return new EvalDatasetVersion(datasetName, (int)taken.Version, rows.Count, items.Count, message, author, now);
    }

    private static async Task<List<EvalItem>> ReadJsonLinesAsync(Stream body, CancellationToken cancellationToken)
    {
        var items = new List<EvalItem>();
        using var reader = new StreamReader(body, Encoding.UTF8, detectEncodingFromByteOrderMarks: true);
        var line = 0;
        while (await reader.ReadLineAsync(cancellationToken) is { } text)
        {
            line++;
            if (string.IsNullOrWhiteSpace(text))
            {
                continue;
            }
            var field = $"line {line}";
            JsonElement element;
            try
            {
                using var document = JsonDocument.Parse(text);
                element = document.RootElement.Clone();
            }
            catch (JsonException e)
            {
                throw SextantException.Invalid("file", $"Line {line} is not valid JSON ({e.Message}); nothing was imported.");
            }
            if (element.ValueKind != JsonValueKind.Object)
            {
                throw SextantException.Invalid("file", $"Line {line} must be a JSON object like {{\"input\": {{...}}, \"expected\": \"...\"}}; nothing was imported.");
            }
            items.Add(Check(FromObject(element, field), field));
            if (items.Count > MaxItemsPerVersion)
            {
                throw SextantException.Invalid("file", $"The file has more than {MaxItemsPerVersion} items; nothing was imported.");
            }
        }
        return items;
    }

    /// <summary>
    /// A JSONL line: {"id", "input", "expected", "metadata"}; a line without "input" has its other fields as the
    /// input's variables ({"question": "...", "expected": "..."}).
    /// </summary>
    private static EvalItem FromObject(JsonElement element, string field)
    {
        string? id = null;
        JsonElement? input = null, expected = null;
        Dictionary<string, JsonElement>? metadata = null;
        var variables = new Dictionary<string, JsonElement>(StringComparer.Ordinal);
        foreach (var property in element.EnumerateObject())
        {
            switch (property.Name)
            {
                case "id":
                    id = property.Value.ValueKind is JsonValueKind.String or JsonValueKind.Number ? property.Value.ToString()
                        : throw SextantException.Invalid("file", $"{Capital(field)}: 'id' must be a string or a number; nothing was imported.");
                    break;
                case "input":
                    input = property.Value.Clone();
                    break;
                case "expected" or "expected_output":
                    expected = property.Value.Clone();
                    break;
                case "metadata":
                    metadata = property.Value.ValueKind == JsonValueKind.Object
                        ? property.Value.EnumerateObject().ToDictionary(p => p.Name, p => p.Value.Clone(), StringComparer.Ordinal)
                        : throw SextantException.Invalid("file", $"{Capital(field)}: 'metadata' must be an object; nothing was imported.");
                    break;
                default:
                    variables[property.Name] = property.Value.Clone();
                    break;
            }
        }
        if (input is null && variables.Count > 0)
        {
            input = JsonSerializer.SerializeToElement(variables, CoreJsonContext.Default.DictionaryStringJsonElement);
        }
        else if (variables.Count > 0)
        {
            throw SextantException.Invalid("file", $"{Capital(field)}: unknown field '{variables.Keys.First()}' beside 'input' (fields: id, input, expected, metadata); nothing was imported.");
        }
        return new EvalItem(id, input, expected, metadata);
    }

    /// <summary>
    /// CSV with a header: an id column, an expected column, metadata.NAME columns, an input column holding JSON;
    /// every other column is an input variable.
    /// </summary>
    private static List<EvalItem> ReadCsv(Stream body)
    {
        var items = new List<EvalItem>();
        using var reader = new StreamReader(body, Encoding.UTF8, detectEncodingFromByteOrderMarks: true);
        var configuration = new CsvConfiguration(CultureInfo.InvariantCulture) { DetectColumnCountChanges = true, BadDataFound = null };
        using var csv = new CsvReader(reader, configuration);
        string[] header;
        try
        {
            if (!csv.Read() || !csv.ReadHeader() || csv.HeaderRecord is not { Length: > 0 } h)
            {
                throw SextantException.Invalid("file", "The CSV file is empty: it needs a header row (question,expected,...).");
            }
            header = h;
        }
        catch (CsvHelperException e)
        {
            throw SextantException.Invalid("file", $"Line 1 (the header) cannot be read: {e.Message.Split('\n')[0]}; nothing was imported.");
        }
        if (header.GroupBy(x => x, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1) is { } repeated)
        {
            throw SextantException.Invalid("file", $"Line 1: column '{repeated.Key}' appears twice; nothing was imported.");
        }
        while (true)
        {
            string[] record;
            int line;
            try
            {
                if (!csv.Read())
                {
                    break;
                }
                line = csv.Parser.RawRow;
                record = csv.Parser.Record ?? [];
            }
            catch (CsvHelperException e)
            {
                throw SextantException.Invalid("file", $"Line {csv.Parser.RawRow} cannot be read: {e.Message.Split('\n')[0]}; nothing was imported.");
            }
            if (record.Length != header.Length)
            {
                if (record.Length == 1 && record[0].Length == 0)
                {
                    continue;
                }
                throw SextantException.Invalid("file", $"Line {line} has {record.Length} fields; the header has {header.Length}; nothing was imported.");
            }
            var field = $"line {line}";
            string? id = null;
            JsonElement? input = null, expected = null;
            var metadata = new Dictionary<string, JsonElement>(StringComparer.Ordinal);
            var variables = new Dictionary<string, JsonElement>(StringComparer.Ordinal);
            for (var c = 0; c < header.Length; c++)
            {
                var value = record[c];
                var text = JsonSerializer.SerializeToElement(value, CoreJsonContext.Default.String);
                switch (header[c])
                {
                    case "id":
                        id = value.Length > 0 ? value : null;
                        break;
                    case "expected" or "expected_output":
                        expected = value.Length > 0 ? text : null;
                        break;
                    case "input":
                        try
                        {
                            using var document = JsonDocument.Parse(value);
                            input = document.RootElement.Clone();
                        }
                        catch (JsonException e)
                        {
                            throw SextantException.Invalid("file", $"Line {line}: the 'input' column must hold JSON ({e.Message}); nothing was imported.");
                        }
                        break;
                    case var name when name.StartsWith("metadata.", StringComparison.Ordinal):
                        metadata[name["metadata.".Length..]] = text;
                        break;
                    default:
                        variables[header[c]] = text;
                        break;
                }
            }
            if (input is not null && variables.Count > 0)
            {
                throw SextantException.Invalid("file", $"Line {line}: an 'input' column and variable columns ({variables.Keys.First()}) cannot be mixed; nothing was imported.");
            }
            input ??= variables.Count > 0 ? JsonSerializer.SerializeToElement(variables, CoreJsonContext.Default.DictionaryStringJsonElement) : null;
            items.Add(Check(new EvalItem(id, input, expected, metadata.Count > 0 ? metadata : null), field));
            if (items.Count > MaxItemsPerVersion)
            {
                throw SextantException.Invalid("file", $"The file has more than {MaxItemsPerVersion} items; nothing was imported.");
            }
        }
        return items;
    }

    private static EvalItem Check(EvalItem item, string field)
    {
        var where = field.StartsWith("line", StringComparison.Ordinal) ? "file" : field;
        var suffix = where == "file" ? "; nothing was imported" : "";
        if (item.Id is { } id && (id.Length is 0 or > 200 || id.Any(char.IsControl)))
        {
            throw SextantException.Invalid(where, $"{Capital(field)}: 'id' must be 1-200 characters without control characters{suffix}.");
        }
        if (item.Input is null && item.Expected is null)
        {
            throw SextantException.Invalid(where, $"{Capital(field)}: an item needs an 'input' (variables or messages) or an 'expected' output{suffix}.");
        }
        if (item.Input is { } input && input.ValueKind is not (JsonValueKind.Object or JsonValueKind.Array or JsonValueKind.String))
        {
            throw SextantException.Invalid(where, $"{Capital(field)}: 'input' must be an object of variables, an array of messages, or a string{suffix}.");
        }
        if (item.Input is { ValueKind: JsonValueKind.Array } messages && messages.EnumerateArray().Any(m => m.ValueKind != JsonValueKind.Object || !m.TryGetProperty("role", out _)))
        {
            throw SextantException.Invalid(where, $"{Capital(field)}: an 'input' array must hold chat messages ({{\"role\": \"user\", \"content\": \"...\"}}){suffix}.");
        }
        var size = (item.Input?.GetRawText().Length ?? 0) + (item.Expected?.GetRawText().Length ?? 0);
        if (size > MaxItemBytes)
        {
            throw SextantException.Invalid(where, $"{Capital(field)}: an item may hold at most {MaxItemBytes} bytes of input and expected output{suffix}.");
        }
        return item;
    }

    private static string Capital(string field) => char.ToUpperInvariant(field[0]) + field[1..];

    private static bool Mode(string? mode) => mode switch
    {
        null or "append" => false,
        "replace" => true,
        _ => throw SextantException.Invalid("mode", $"'mode' must be append (the default: the latest version's items, then these) or replace; got '{mode}'."),
    };

    private static string? Json(JsonElement? element) => element is { ValueKind: not JsonValueKind.Undefined and not JsonValueKind.Null } e ? e.GetRawText() : null;

    private static EvalItem ToItem(ItemRow row) => new(
        row.ItemKey,
        Parse(row.Input),
        Parse(row.Expected),
        row.Metadata is null ? null : JsonSerializer.Deserialize(row.Metadata, CoreJsonContext.Default.DictionaryStringJsonElement),
        row.TraceId);

    private static JsonElement? Parse(string? json)
    {
        if (json is null)
        {
            return null;
        }
        using var document = JsonDocument.Parse(json);
        return document.RootElement.Clone();
    }

    private static int PageSize(int? maxResults) => maxResults switch
    {
        null => DefaultPageSize,
        >= 1 and <= MaxPageSize => maxResults.Value,
        _ => throw SextantException.Invalid("max_results", $"'max_results' must be 1-{MaxPageSize}."),
    };

    internal static string Name(string? name)
    {
        if (string.IsNullOrEmpty(name))
        {
            throw SextantException.Missing("name");
        }
        if (name.Length > 256 || !NamePattern().IsMatch(name))
        {
            throw SextantException.Invalid("name", $"A dataset's 'name' is up to 256 letters, digits and . _ -, with / between folders; got '{(name.Length > 80 ? name[..80] + "..." : name)}'.");
        }
        return name;
    }
}
