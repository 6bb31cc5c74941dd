using System.Data.Common;
using System.Globalization;
using Dapper;

namespace Sextant.Core.Tracking.Search;

/// <summary>
/// Keyset pagination over an arbitrary sort order: the page token carries the sort values of the last row,
/// and the next page starts strictly after it. No OFFSET, no COUNT(*).
/// </summary>
internal sealed class KeysetPage
{
    private readonly IReadOnlyList<SearchSortKey> _keys;
    private readonly string?[]? _after;

    public KeysetPage(IReadOnlyList<SearchSortKey> keys, string? pageToken)
    {
        _keys = keys;
        _after = string.IsNullOrEmpty(pageToken) ? null : PageToken.Decode(pageToken, keys.Count);
    }

    public string OrderBy() => string.Join(", ", _keys.Select(k => $"{k.Expression} {(k.Ascending ? "ASC" : "DESC")}"));

    /// <summary>"Strictly after the last row" in this sort order, or "" on the first page.</summary>
    public string Predicate(SqlBuilder sql)
    {
        if (_after is null)
        {
            return "";
        }
        var values = _keys.Select((k, i) => sql.Param(Parse(k.Kind, _after[i]))).ToArray();
        var alternatives = new List<string>();
        for (var i = 0; i < _keys.Count; i++)
        {
            var parts = new List<string>();
            for (var j = 0; j < i; j++)
            {
                parts.Add($"{_keys[j].Expression} = {values[j]}");
            }
            parts.Add($"{_keys[i].Expression} {(_keys[i].Ascending ? ">" : "<")} {values[i]}");
            alternatives.Add("(" + string.Join(" AND ", parts) + ")");
        }
        return "(" + string.Join(" OR ", alternatives) + ")";
    }

    /// <summary>Runs a query whose first column is the row id and whose next columns are the sort keys.</summary>
    public async Task<(List<long> Ids, string? NextPageToken)> ReadAsync(DbConnection connection, string query, SqlBuilder sql, int limit, CancellationToken cancellationToken)
    {
        var ids = new List<long>(Math.Min(limit, 1024));
        string?[]? last = null;
        var more = false;
        await using var reader = await connection.ExecuteReaderAsync(new CommandDefinition(query, sql.Parameters, cancellationToken: cancellationToken));
        while (await reader.ReadAsync(cancellationToken))
        {
            if (ids.Count == limit)
            {
                more = true;
                break;
            }
            ids.Add(reader.GetInt64(0));
            last ??= new string?[_keys.Count];
            for (var i = 0; i < _keys.Count; i++)
            {
                last[i] = Convert.ToString(reader.GetValue(i + 1), CultureInfo.InvariantCulture);
            }
        }
        return (ids, more && last is not null ? PageToken.Encode(last) : null);
    }

    private static object? Parse(SqlKind kind, string? value)
    {
        try
        {
            return kind switch
            {
                SqlKind.Long => long.Parse(value!, CultureInfo.InvariantCulture),
                SqlKind.Double => double.Parse(value!, CultureInfo.InvariantCulture),
                _ => value ?? "",
            };
        }
        catch (Exception e) when (e is FormatException or OverflowException or ArgumentNullException)
        {
            throw SextantException.Invalid("page_token", "Invalid page_token: it does not belong to this query's sort order.");
        }
    }
}
