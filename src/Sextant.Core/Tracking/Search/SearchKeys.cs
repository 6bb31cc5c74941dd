namespace Sextant.Core.Tracking.Search;

internal enum SearchValueKind { String, Number }

/// <summary>An <c>entity.key</c> reference as written, with the position where it starts.</summary>
internal readonly record struct SearchIdentifier(FilterEntity Entity, string Key, int Position);

/// <summary>Identifier syntax and the entity and attribute rules shared by filters and order_by clauses.</summary>
internal static class SearchKeys
{
    private const string IdentifierExample = "an identifier such as metrics.acc, params.lr, tags.`my tag` or status";

    private static readonly Dictionary<string, FilterEntity> Prefixes = new(StringComparer.OrdinalIgnoreCase)
    {
        ["metrics"] = FilterEntity.Metric, ["metric"] = FilterEntity.Metric,
        ["params"] = FilterEntity.Param, ["param"] = FilterEntity.Param,
        ["parameters"] = FilterEntity.Param, ["parameter"] = FilterEntity.Param,
        ["tags"] = FilterEntity.Tag, ["tag"] = FilterEntity.Tag,
        ["attributes"] = FilterEntity.Attribute, ["attribute"] = FilterEntity.Attribute,
        ["attr"] = FilterEntity.Attribute, ["run"] = FilterEntity.Attribute,
        ["datasets"] = FilterEntity.Dataset, ["dataset"] = FilterEntity.Dataset,
    };

    private static readonly string[] Keywords = ["AND", "OR", "NOT", "IN", "LIKE", "ILIKE", "ASC", "DESC"];

    private sealed record AttributeSpec(string Name, string Canonical, SearchValueKind Kind, bool OrderOnly = false);

    private static readonly AttributeSpec[] RunAttributes =
    [
        new("run_id", "run_id", SearchValueKind.String),
        new("run_name", "run_name", SearchValueKind.String),
        new("name", "run_name", SearchValueKind.String),
        new("status", "status", SearchValueKind.String),
        new("user_id", "user_id", SearchValueKind.String),
        new("artifact_uri", "artifact_uri", SearchValueKind.String),
        new("lifecycle_stage", "lifecycle_stage", SearchValueKind.String),
        new("start_time", "start_time", SearchValueKind.Number),
        new("end_time", "end_time", SearchValueKind.Number),
        new("created", "start_time", SearchValueKind.Number),
    ];

    private static readonly AttributeSpec[] ExperimentAttributes =
    [
        new("name", "name", SearchValueKind.String),
        new("creation_time", "creation_time", SearchValueKind.Number),
        new("last_update_time", "last_update_time", SearchValueKind.Number),
        new("experiment_id", "experiment_id", SearchValueKind.String, OrderOnly: true),
    ];

    private static readonly AttributeSpec[] ModelAttributes =
    [
        new("name", "name", SearchValueKind.String),
        new("creation_timestamp", "creation_timestamp", SearchValueKind.Number, OrderOnly: true),
        new("last_updated_timestamp", "last_updated_timestamp", SearchValueKind.Number, OrderOnly: true),
    ];

    private static readonly AttributeSpec[] ModelVersionAttributes =
    [
        new("name", "name", SearchValueKind.String),
        new("run_id", "run_id", SearchValueKind.String),
        new("source_path", "source_path", SearchValueKind.String),
        new("version_number", "version_number", SearchValueKind.Number),
        new("creation_timestamp", "creation_timestamp", SearchValueKind.Number, OrderOnly: true),
        new("last_updated_timestamp", "last_updated_timestamp", SearchValueKind.Number, OrderOnly: true),
    ];

    private static readonly string[] DatasetKeys = ["name", "digest", "context"];

    private static AttributeSpec[] AttributesOf(SearchTarget target) => target switch
    {
        SearchTarget.Runs => RunAttributes,
        SearchTarget.Experiments => ExperimentAttributes,
        SearchTarget.Models => ModelAttributes,
        _ => ModelVersionAttributes,
    };

    /// <summary>What a search looks for, for messages: "runs", "registered models".</summary>
    public static string Plural(SearchTarget target) => target switch
    {
        SearchTarget.Runs => "runs",
        SearchTarget.Experiments => "experiments",
        SearchTarget.Models => "registered models",
        _ => "model versions",
    };

    /// <summary>The attributes a filter may name for the target, for messages.</summary>
    public static string AttributeList(SearchTarget target) =>
        string.Join(", ", AttributesOf(target).Where(s => !s.OrderOnly && s.Name == s.Canonical).Select(s => s.Name));

    /// <summary>
    /// Reads <c>prefix.key</c>, <c>prefix.`quoted key`</c>, <c>prefix."quoted key"</c> or a bare attribute name.
    /// The prefix ends at the first dot, so the rest of an unquoted word (dots included) is the key.
    /// </summary>
    public static SearchIdentifier Read(SearchTokenReader reader)
    {
        var token = reader.Peek;
        if (token.Kind == SearchTokenKind.LeftParen)
        {
            throw reader.Fail(token.Position, "parentheses are only supported around IN lists, not for grouping");
        }

        if (token.Kind != SearchTokenKind.Word || Keywords.Any(token.IsKeyword))
        {
            throw reader.Unexpected(IdentifierExample);
        }

        reader.Next();
        var dot = token.Text.IndexOf('.');
        if (dot < 0)
        {
            return new SearchIdentifier(FilterEntity.Attribute, token.Text, token.Position);
        }

        var prefix = token.Text[..dot];
        if (!Prefixes.TryGetValue(prefix, out var entity))
        {
            throw reader.Fail(token.Position,
                $"unknown entity prefix '{prefix}'; expected one of metrics, params, tags, attributes, datasets " +
                "(singular forms are accepted too) or a bare attribute name");
        }

        var key = token.Text[(dot + 1)..];
        var next = reader.Peek;
        if (key.Length == 0 && next.IsQuotedKey && next.Position == token.EndPosition)
        {
            reader.Next();
            key = next.Text;
        }

        if (key.Length == 0)
        {
            throw reader.Fail(token.Position, $"empty key after '{token.Text}'; expected {IdentifierExample}");
        }

        return new SearchIdentifier(entity, key, token.Position);
    }

    /// <summary>Validates an attribute name for the target and returns its canonical name and value kind.</summary>
    public static (string Key, SearchValueKind Kind) ResolveAttribute(
        SearchTarget target, SearchIdentifier id, bool forOrder, SearchTokenReader reader)
    {
        var specs = AttributesOf(target)
            .Where(s => forOrder || !s.OrderOnly)
            .ToList();
        var match = specs.FirstOrDefault(s => string.Equals(s.Name, id.Key, StringComparison.Ordinal));
        if (match is not null)
        {
            return (match.Canonical, match.Kind);
        }

        var allowed = string.Join(", ", specs.Where(s => s.Name == s.Canonical).Select(s => s.Name));
        var what = target switch
        {
            SearchTarget.Runs => "run",
            SearchTarget.Experiments => "experiment",
            SearchTarget.Models => "registered model",
            _ => "model version",
        };
        throw reader.Fail(id.Position, $"unknown {what} attribute '{id.Key}'; expected one of {allowed}");
    }

    public static string ResolveDatasetKey(SearchIdentifier id, SearchTokenReader reader) =>
        DatasetKeys.Contains(id.Key, StringComparer.Ordinal)
            ? id.Key
            : throw reader.Fail(id.Position,
                $"unknown dataset field '{id.Key}'; expected one of {string.Join(", ", DatasetKeys)}");

    /// <summary>Names the identifier for messages, e.g. "metric 'acc'".</summary>
    public static string Describe(SearchIdentifier id)
    {
        var noun = id.Entity switch
        {
            FilterEntity.Metric => "metric",
            FilterEntity.Param => "param",
            FilterEntity.Tag => "tag",
            FilterEntity.Dataset => "dataset field",
            _ => "attribute",
        };
        return $"{noun} '{id.Key}'";
    }
}
