namespace Sextant.Core.Tracking.Search;

internal enum FilterEntity { Metric, Param, Tag, Attribute, Dataset }

internal enum FilterOp { Eq, NotEq, Lt, Le, Gt, Ge, Like, ILike, In, NotIn }

internal enum SearchTarget { Runs, Experiments, Models, ModelVersions }

/// <summary>One <c>entity.key op value</c> clause; <see cref="Position"/> is where its identifier starts.</summary>
internal sealed record FilterComparison(FilterEntity Entity, string Key, FilterOp Op, FilterValue Value, int Position);

/// <summary>Exactly one of <see cref="Text"/>, <see cref="Number"/> and <see cref="List"/> is set.</summary>
internal sealed record FilterValue(string? Text, double? Number, IReadOnlyList<string>? List);

internal sealed class SearchSyntaxException(string message, int position) : Exception(message)
{
    public int Position { get; } = position;
}

/// <summary>
/// Parses MLflow's search filter language: comparisons joined by AND, e.g.
/// <c>metrics.acc &gt; 0.9 AND tags."mlflow.runName" LIKE 'exp%' AND status IN ('RUNNING', 'FINISHED')</c>.
/// </summary>
internal static class SearchFilterParser
{
    private const string OperatorList = "=, !=, <, <=, >, >=, LIKE, ILIKE, IN, NOT IN";

    private static readonly FilterOp[] NumberOps =
        [FilterOp.Eq, FilterOp.NotEq, FilterOp.Lt, FilterOp.Le, FilterOp.Gt, FilterOp.Ge];

    private static readonly FilterOp[] StringOps =
        [FilterOp.Eq, FilterOp.NotEq, FilterOp.Like, FilterOp.ILike, FilterOp.In, FilterOp.NotIn];

    public static IReadOnlyList<FilterComparison> Parse(string? filter, SearchTarget target)
    {
        if (string.IsNullOrWhiteSpace(filter))
        {
            return [];
        }

        static SearchSyntaxException Error(int position, string message) =>
            new($"Invalid filter at position {position}: {message}", position);

        var tokens = SearchTokenizer.Tokenize(filter, Error);
        var or = tokens.FirstOrDefault(t => t.IsKeyword("OR"));
        if (or is not null)
        {
            throw Error(or.Position, "OR is not supported; only AND joins clauses");
        }

        var reader = new SearchTokenReader(tokens, Error, "end of filter");
        var comparisons = new List<FilterComparison>();
        while (true)
        {
            comparisons.Add(ParseComparison(reader, target));
            if (reader.Peek.Kind == SearchTokenKind.End)
            {
                return comparisons;
            }

            if (!reader.Peek.IsKeyword("AND"))
            {
                throw reader.Unexpected("AND or end of filter");
            }

            reader.Next();
        }
    }

    private static FilterComparison ParseComparison(SearchTokenReader reader, SearchTarget target)
    {
        var id = SearchKeys.Read(reader);
        var (key, kind) = ResolveKey(id, target, reader);

        var opToken = reader.Peek;
        var op = ReadOperator(reader);
        var allowed = kind == SearchValueKind.Number ? NumberOps : StringOps;
        if (!allowed.Contains(op))
        {
            throw reader.Fail(opToken.Position,
                $"operator {Name(op)} is not supported for {SearchKeys.Describe(id)}; " +
                $"expected one of {string.Join(", ", allowed.Select(Name))}");
        }

        var value = op is FilterOp.In or FilterOp.NotIn ? ReadList(reader) : ReadScalar(reader, id, kind);
        return new FilterComparison(id.Entity, key, op, value, id.Position);
    }

    private static (string Key, SearchValueKind Kind) ResolveKey(
        SearchIdentifier id, SearchTarget target, SearchTokenReader reader)
    {
        if (target != SearchTarget.Runs && id.Entity is not (FilterEntity.Tag or FilterEntity.Attribute))
        {
            throw reader.Fail(id.Position,
                $"{SearchKeys.Describe(id)} cannot be used when searching {SearchKeys.Plural(target)}; " +
                $"expected tags.<key> or one of the attributes {SearchKeys.AttributeList(target)}");
        }

        return id.Entity switch
        {
            FilterEntity.Metric => (id.Key, SearchValueKind.Number),
            FilterEntity.Param or FilterEntity.Tag => (id.Key, SearchValueKind.String),
            FilterEntity.Dataset => (SearchKeys.ResolveDatasetKey(id, reader), SearchValueKind.String),
            _ => SearchKeys.ResolveAttribute(target, id, forOrder: false, reader),
        };
    }

    private static FilterOp ReadOperator(SearchTokenReader reader)
    {
        var token = reader.Peek;
        FilterOp? op = token.Kind == SearchTokenKind.Operator
            ? token.Text switch
            {
                "=" => FilterOp.Eq,
                "!=" or "<>" => FilterOp.NotEq,
                "<" => FilterOp.Lt,
                "<=" => FilterOp.Le,
                ">" => FilterOp.Gt,
                _ => FilterOp.Ge,
            }
            : token.IsKeyword("LIKE") ? FilterOp.Like
            : token.IsKeyword("ILIKE") ? FilterOp.ILike
            : token.IsKeyword("IN") ? FilterOp.In
            : token.IsKeyword("NOT") ? FilterOp.NotIn
            : null;
        if (op is null)
        {
            throw reader.Unexpected($"a comparison operator ({OperatorList})");
        }

        reader.Next();
        if (op == FilterOp.NotIn)
        {
            if (!reader.Peek.IsKeyword("IN"))
            {
                throw reader.Unexpected("IN after NOT");
            }

            reader.Next();
        }

        return op.Value;
    }

    private static FilterValue ReadScalar(SearchTokenReader reader, SearchIdentifier id, SearchValueKind kind)
    {
        var token = reader.Peek;
        if (token.Kind == SearchTokenKind.LeftParen)
        {
            throw reader.Fail(token.Position, "a parenthesized list is only allowed after IN or NOT IN");
        }

        if (!token.IsStringValue && token.Kind != SearchTokenKind.Number)
        {
            throw reader.Unexpected("a value (a quoted string or a number)");
        }

        if (kind == SearchValueKind.Number && token.Kind != SearchTokenKind.Number)
        {
            throw reader.Fail(token.Position,
                $"expected a number for {SearchKeys.Describe(id)} but found string {reader.Describe(token)}");
        }

        if (kind == SearchValueKind.String && token.Kind == SearchTokenKind.Number)
        {
            throw reader.Fail(token.Position,
                $"expected a quoted string for {SearchKeys.Describe(id)} but found number {token.Raw}");
        }

        reader.Next();
        return token.Kind == SearchTokenKind.Number
            ? new FilterValue(null, token.Number, null)
            : new FilterValue(token.Text, null, null);
    }

    private static FilterValue ReadList(SearchTokenReader reader)
    {
        if (reader.Peek.Kind != SearchTokenKind.LeftParen)
        {
            throw reader.Unexpected("a parenthesized list of quoted strings, e.g. ('a', 'b')");
        }

        reader.Next();
        if (reader.Peek.Kind == SearchTokenKind.RightParen)
        {
            throw reader.Fail(reader.Peek.Position, "an IN list must contain at least one quoted string");
        }

        var items = new List<string>();
        while (true)
        {
            if (!reader.Peek.IsStringValue)
            {
                throw reader.Unexpected("a quoted string in the IN list");
            }

            items.Add(reader.Next().Text);
            if (reader.Peek.Kind == SearchTokenKind.RightParen)
            {
                reader.Next();
                return new FilterValue(null, null, items);
            }

            if (reader.Peek.Kind != SearchTokenKind.Comma)
            {
                throw reader.Unexpected("',' or ')' in the IN list");
            }

            reader.Next();
        }
    }

    internal static string Name(FilterOp op) => op switch
    {
        FilterOp.Eq => "=",
        FilterOp.NotEq => "!=",
        FilterOp.Lt => "<",
        FilterOp.Le => "<=",
        FilterOp.Gt => ">",
        FilterOp.Ge => ">=",
        FilterOp.Like => "LIKE",
        FilterOp.ILike => "ILIKE",
        FilterOp.In => "IN",
        _ => "NOT IN",
    };
}
