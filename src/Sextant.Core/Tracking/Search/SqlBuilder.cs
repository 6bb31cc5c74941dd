using System.Globalization;
using Dapper;
using Sextant.Core.Storage;

namespace Sextant.Core.Tracking.Search;

/// <summary>The SQL type a filter or sort expression compares as.</summary>
internal enum SqlKind
{
    Text,
    Long,
    Double,
}

/// <summary>Collects the parameters and joins of one generated search query.</summary>
internal sealed class SqlBuilder(SextantDatabase database)
{
    public DynamicParameters Parameters { get; } = new();

    public List<string> Joins { get; } = [];

    public string Param(object? value)
    {
        var name = $"@p{_count++}";
        Parameters.Add(name, value);
        return name;
    }

    private int _count;

    /// <summary>The SQL predicate for one parsed comparison on <paramref name="column"/>.</summary>
    public string Compare(string column, FilterComparison comparison, SqlKind kind)
    {
        var value = comparison.Value;
        return comparison.Op switch
        {
            FilterOp.Like => database.Like(column, Param(database.LikePattern(value.Text!))),
            FilterOp.ILike => database.ILike(column, Param(value.Text!)),
            FilterOp.In => $"{column} IN ({string.Join(", ", value.List!.Select(v => Param(v)))})",
            FilterOp.NotIn => $"{column} NOT IN ({string.Join(", ", value.List!.Select(v => Param(v)))})",
            _ => $"{column} {Operator(comparison.Op)} {Param(Typed(value, kind))}",
        };
    }

    private static object? Typed(FilterValue value, SqlKind kind) => kind switch
    {
        SqlKind.Long when value.Number is { } n => (long)Math.Round(n),
        SqlKind.Double when value.Number is { } n => n,
        _ => value.Text ?? value.Number?.ToString(CultureInfo.InvariantCulture),
    };

    private static string Operator(FilterOp op) => op switch
    {
        FilterOp.Eq => "=",
        FilterOp.NotEq => "<>",
        FilterOp.Lt => "<",
        FilterOp.Le => "<=",
        FilterOp.Gt => ">",
        FilterOp.Ge => ">=",
        _ => throw new ArgumentOutOfRangeException(nameof(op), op, null),
    };
}

/// <summary>One component of a search's sort order; never NULL (callers wrap nullable columns).</summary>
internal sealed record SearchSortKey(string Expression, SqlKind Kind, bool Ascending);
