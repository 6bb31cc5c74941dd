namespace Sextant.Core.Tracking.Search;

internal sealed record OrderTerm(FilterEntity Entity, string Key, bool Ascending);

/// <summary>
/// Parses MLflow order_by clauses such as <c>metrics.acc DESC</c>, <c>tags.`a b` asc</c> or <c>start_time</c>;
/// each clause is one identifier optionally followed by ASC or DESC (ascending by default).
/// </summary>
internal static class SearchOrderParser
{
    public static IReadOnlyList<OrderTerm> Parse(IEnumerable<string>? orderBy, SearchTarget target) =>
        orderBy is null ? [] : orderBy.Select(clause => ParseClause(clause ?? "", target)).ToList();

    private static OrderTerm ParseClause(string clause, SearchTarget target)
    {
        SearchSyntaxException Error(int position, string message) =>
            new($"Invalid order_by clause '{clause}': {message} (at position {position})", position);

        var reader = new SearchTokenReader(SearchTokenizer.Tokenize(clause, Error), Error, "end of clause");
        var id = SearchKeys.Read(reader);
        var key = id.Entity switch
        {
            FilterEntity.Dataset => throw reader.Fail(id.Position,
                "datasets cannot be used in order_by; expected metrics, params, tags or attributes"),
            FilterEntity.Attribute => SearchKeys.ResolveAttribute(target, id, forOrder: true, reader).Key,
            _ when target == SearchTarget.Experiments => throw reader.Fail(id.Position,
                $"{SearchKeys.Describe(id)} cannot be used to order experiments; expected one of the attributes " +
                "name, creation_time, last_update_time, experiment_id"),
            _ when target is SearchTarget.Models or SearchTarget.ModelVersions => throw reader.Fail(id.Position,
                $"{SearchKeys.Describe(id)} cannot be used to order {SearchKeys.Plural(target)}; expected an attribute such as name or last_updated_timestamp"),
            _ => id.Key,
        };

        var ascending = true;
        if (reader.Peek.IsKeyword("ASC") || reader.Peek.IsKeyword("DESC"))
        {
            ascending = reader.Next().IsKeyword("ASC");
        }
        else if (reader.Peek.Kind != SearchTokenKind.End)
        {
            throw reader.Unexpected("ASC, DESC or end of clause");
        }

        if (reader.Peek.Kind != SearchTokenKind.End)
        {
            throw reader.Unexpected("end of clause");
        }

        return new OrderTerm(id.Entity, key, ascending);
    }
}
