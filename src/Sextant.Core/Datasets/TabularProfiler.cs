using System.Globalization;
using System.Text;
using CsvHelper;
using CsvHelper.Configuration;
using Parquet;
using Parquet.Schema;
using Sextant.Contracts;

namespace Sextant.Core.Datasets;

/// <summary>
/// Schema and profile of a tabular file, read once as a stream: CSV and TSV (header row; types inferred from the
/// values) through CsvHelper, Parquet (types from its schema) through Parquet.Net.
/// </summary>
internal static class TabularProfiler
{
    public const int MaxColumns = 1000;
    public const int MaxFieldSize = 1 << 20;

    /// <summary>The format a path's extension names, or null when it is not a table Sextant profiles.</summary>
    public static string? FormatOf(string path) => Path.GetExtension(path).ToLowerInvariant() switch
    {
        ".csv" => "csv",
        ".tsv" => "tsv",
        ".parquet" => "parquet",
        _ => null,
    };

    public static async Task<TableProfile> ProfileAsync(string path, string format, Func<Stream> open, CancellationToken cancellationToken)
    {
        try
        {
            return format == "parquet"
                ? await ParquetAsync(path, open, cancellationToken)
                : Delimited(path, format, open, cancellationToken);
        }
        catch (Exception e) when (e is not OperationCanceledException and not Artifacts.BlobCorruptedException)
        {
            // A file that merely looks tabular is still a file of the version; it just has no profile.
            return new TableProfile(path, format, 0, [], Error: $"not readable as {format.ToUpperInvariant()}: {e.Message}");
        }
    }

    private static TableProfile Delimited(string path, string format, Func<Stream> open, CancellationToken cancellationToken)
    {
        using var stream = open();
        using var text = new StreamReader(stream, new UTF8Encoding(false, throwOnInvalidBytes: false), detectEncodingFromByteOrderMarks: true, bufferSize: 1 << 16);
        var config = new CsvConfiguration(CultureInfo.InvariantCulture)
        {
            Delimiter = format == "tsv" ? "\t" : ",",
            BadDataFound = null,
            MissingFieldFound = null,
            DetectColumnCountChanges = false,
            // TSV has no quoting: a stray quote must not swallow the rows after it.
            Mode = format == "tsv" ? CsvMode.NoEscape : CsvMode.RFC4180,
            // An unclosed quote would otherwise read the rest of the file into one field.
            MaxFieldSize = MaxFieldSize,
        };
        using var parser = new CsvParser(text, config);
        if (!parser.Read())
        {
            return new TableProfile(path, format, 0, []);
        }
        var header = parser.Record ?? [];
        if (header.Length > MaxColumns)
        {
            return new TableProfile(path, format, 0, [], Error: $"has {header.Length} columns; profiles stop at {MaxColumns}");
        }
        var columns = UniqueNames(header.Select((name, i) => name.Length == 0 ? $"column_{i + 1}" : name)).Select(name => new ColumnAccumulator(name)).ToArray();
        long rows = 0;
        while (parser.Read())
        {
            if ((rows & 0xFFFF) == 0)
            {
                cancellationToken.ThrowIfCancellationRequested();
            }
            rows++;
            var count = parser.Count;
            for (var i = 0; i < columns.Length; i++)
            {
                if (i < count)
                {
                    columns[i].AddText(parser[i]);
                }
                else
                {
                    columns[i].AddNull();
                }
            }
        }
        return new TableProfile(path, format, rows, [.. columns.Select(c => c.Build())], columns.Any(c => c.Sampled));
    }

    private static async Task<TableProfile> ParquetAsync(string path, Func<Stream> open, CancellationToken cancellationToken)
    {
        await using var stream = open();
        await using var reader = await ParquetReader.CreateAsync(stream, cancellationToken: cancellationToken);
        var fields = reader.Schema.GetDataFields();
        if (fields.Length > MaxColumns)
        {
            return new TableProfile(path, "parquet", 0, [], Error: $"has {fields.Length} columns; profiles stop at {MaxColumns}");
        }
        var names = UniqueNames(fields.Select(f => f.Path.ToString()));
        var columns = fields.Select((f, i) => new ColumnAccumulator(names[i], ParquetType(f))).ToArray();
        long rows = 0;
        for (var g = 0; g < reader.RowGroupCount; g++)
        {
            using var group = reader.OpenRowGroupReader(g);
            var count = checked((int)group.RowCount);
            rows += count;
            for (var c = 0; c < fields.Length; c++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                await ReadColumnAsync(group, fields[c], columns[c], count, cancellationToken);
            }
        }
        return new TableProfile(path, "parquet", rows, [.. columns.Select(c => c.Build())], columns.Any(c => c.Sampled));
    }

    /// <summary>Repeated or clashing names get a suffix (a, a_2, a_3): a profile names each column once.</summary>
    private static List<string> UniqueNames(IEnumerable<string> names)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var result = new List<string>();
        foreach (var name in names)
        {
            var unique = name;
            for (var n = 2; !seen.Add(unique); n++)
            {
                unique = $"{name}_{n}";
            }
            result.Add(unique);
        }
        return result;
    }

    private static string? ParquetType(DataField field)
    {
        if (field.IsArray)
        {
            return "list";
        }
        var type = Nullable.GetUnderlyingType(field.ClrType) ?? field.ClrType;
        return type == typeof(bool) ? "boolean"
            : type == typeof(string) || type == typeof(ReadOnlyMemory<char>) ? "string"
            : type == typeof(DateTime) || type == typeof(DateTimeOffset) || type == typeof(DateOnly) ? "timestamp"
            : type == typeof(float) || type == typeof(double) || type == typeof(decimal) ? "float"
            : type == typeof(int) || type == typeof(long) || type == typeof(short) || type == typeof(sbyte) || type == typeof(byte)
              || type == typeof(uint) || type == typeof(ushort) || type == typeof(ulong) ? "integer"
            : "binary";
    }

    private static async Task ReadColumnAsync(ParquetRowGroupReader group, DataField field, ColumnAccumulator column, int count, CancellationToken cancellationToken)
    {
        if (field.IsArray)
        {
            return;
        }
        var type = Nullable.GetUnderlyingType(field.ClrType) ?? field.ClrType;
        // Parquet.Net 6 describes UTF-8 string columns as ReadOnlyMemory<char>.
        if (type == typeof(string) || type == typeof(ReadOnlyMemory<char>))
        {
            var values = new string?[count];
            await group.ReadAsync(field, values.AsMemory(), null, cancellationToken);
            foreach (var value in values)
            {
                if (value is null) { column.AddNull(); } else { column.AddString(value); }
            }
        }
        else if (type == typeof(bool))
        {
            foreach (var value in await ReadAsync<bool>(group, field, count, cancellationToken))
            {
                if (value is { } b) { column.AddBoolean(b); } else { column.AddNull(); }
            }
        }
        else if (type == typeof(int)) { Numbers(column, await ReadAsync<int>(group, field, count, cancellationToken), v => v, true); }
        else if (type == typeof(long)) { Numbers(column, await ReadAsync<long>(group, field, count, cancellationToken), v => v, true); }
        else if (type == typeof(short)) { Numbers(column, await ReadAsync<short>(group, field, count, cancellationToken), v => v, true); }
        else if (type == typeof(byte)) { Numbers(column, await ReadAsync<byte>(group, field, count, cancellationToken), v => v, true); }
        else if (type == typeof(sbyte)) { Numbers(column, await ReadAsync<sbyte>(group, field, count, cancellationToken), v => v, true); }
        else if (type == typeof(uint)) { Numbers(column, await ReadAsync<uint>(group, field, count, cancellationToken), v => v, true); }
        else if (type == typeof(ulong)) { Numbers(column, await ReadAsync<ulong>(group, field, count, cancellationToken), v => v, true); }
        else if (type == typeof(float)) { Numbers(column, await ReadAsync<float>(group, field, count, cancellationToken), v => v, false); }
        else if (type == typeof(double)) { Numbers(column, await ReadAsync<double>(group, field, count, cancellationToken), v => v, false); }
        else if (type == typeof(decimal)) { Numbers(column, await ReadAsync<decimal>(group, field, count, cancellationToken), v => (double)v, false); }
        // Timestamps as milliseconds since the Unix epoch (UTC).
        else if (type == typeof(DateTime)) { Numbers(column, await ReadAsync<DateTime>(group, field, count, cancellationToken), v => new DateTimeOffset(DateTime.SpecifyKind(v, DateTimeKind.Utc)).ToUnixTimeMilliseconds(), true); }
        else if (type == typeof(DateOnly)) { Numbers(column, await ReadAsync<DateOnly>(group, field, count, cancellationToken), v => new DateTimeOffset(v.ToDateTime(TimeOnly.MinValue), TimeSpan.Zero).ToUnixTimeMilliseconds(), true); }
        else if (type == typeof(DateTimeOffset)) { Numbers(column, await ReadAsync<DateTimeOffset>(group, field, count, cancellationToken), v => v.ToUnixTimeMilliseconds(), true); }
        else
        {
            // Binary and other types: counted, not described.
            for (var i = 0; i < count; i++)
            {
                column.AddNull();
            }
        }
    }

    private static async Task<T?[]> ReadAsync<T>(ParquetRowGroupReader group, DataField field, int count, CancellationToken cancellationToken)
        where T : struct
    {
        var values = new T?[count];
        if (field.IsNullable)
        {
            await group.ReadAsync(field, values.AsMemory(), null, cancellationToken);
            return values;
        }
        // A required column has no definition levels: read it as plain values.
        var plain = new T[count];
        await group.ReadAsync(field, plain.AsMemory(), null, cancellationToken);
        for (var i = 0; i < count; i++)
        {
            values[i] = plain[i];
        }
        return values;
    }

    private static void Numbers<T>(ColumnAccumulator column, T?[] values, Func<T, double> convert, bool integer)
        where T : struct
    {
        foreach (var value in values)
        {
            if (value is { } v) { column.AddNumber(convert(v), integer); } else { column.AddNull(); }
        }
    }
}
