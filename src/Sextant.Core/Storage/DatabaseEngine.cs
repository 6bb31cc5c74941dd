namespace Sextant.Core.Storage;

/// <summary>The metadata database engines Sextant runs on.</summary>
public enum DatabaseEngine
{
    Sqlite,
    Postgres,
}
