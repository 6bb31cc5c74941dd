using Microsoft.Data.Sqlite;
using Npgsql;

namespace Sextant.Core.Storage;

/// <summary>
/// A database URI as users write it: <c>sqlite:///abs/path.db</c>, <c>sqlite://relative.db</c> or
/// <c>postgresql://user:password@host:port/database?sslmode=...</c>.
/// </summary>
public sealed record DatabaseUri(DatabaseEngine Engine, string ConnectionString, string Display)
{
    public static DatabaseUri Sqlite(string path) =>
        new(DatabaseEngine.Sqlite, new SqliteConnectionStringBuilder { DataSource = Path.GetFullPath(path), Pooling = true }.ToString(), "sqlite:///" + Path.GetFullPath(path).TrimStart('/'));

    public static DatabaseUri Parse(string uri)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(uri);
        if (uri.StartsWith("sqlite://", StringComparison.OrdinalIgnoreCase))
        {
            var path = uri["sqlite://".Length..];
            if (path.Length == 0)
            {
                throw new FormatException("A sqlite URI needs a file path: sqlite:///absolute/path.db or sqlite://relative.db.");
            }
            return Sqlite(path);
        }
        if (uri.StartsWith("postgresql://", StringComparison.OrdinalIgnoreCase) || uri.StartsWith("postgres://", StringComparison.OrdinalIgnoreCase))
        {
            var parsed = new Uri(uri);
            var builder = new NpgsqlConnectionStringBuilder
            {
                Host = parsed.Host,
                Port = parsed.IsDefaultPort || parsed.Port <= 0 ? 5432 : parsed.Port,
                Database = Uri.UnescapeDataString(parsed.AbsolutePath.Trim('/')) is { Length: > 0 } db ? db : "postgres",
            };
            if (parsed.UserInfo.Length > 0)
            {
                var parts = parsed.UserInfo.Split(':', 2);
                builder.Username = Uri.UnescapeDataString(parts[0]);
                if (parts.Length == 2)
                {
                    builder.Password = Uri.UnescapeDataString(parts[1]);
                }
            }
            foreach (var pair in parsed.Query.TrimStart('?').Split('&', StringSplitOptions.RemoveEmptyEntries))
            {
                var kv = pair.Split('=', 2);
                var key = Uri.UnescapeDataString(kv[0]);
                var value = kv.Length == 2 ? Uri.UnescapeDataString(kv[1]) : "";
                // libpq spells the socket folder "host"; everything else maps by name.
                builder[key switch { "sslmode" => "SSL Mode", "host" => "Host", _ => key }] = value;
            }
            var display = $"postgresql://{builder.Username}@{builder.Host}:{builder.Port}/{builder.Database}";
            return new DatabaseUri(DatabaseEngine.Postgres, builder.ToString(), display);
        }
        throw new FormatException($"Unsupported database URI '{uri}': use sqlite:///path/to/file.db or postgresql://user@host:port/db.");
    }
}
