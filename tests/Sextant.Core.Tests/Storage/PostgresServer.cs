using System.Diagnostics;
using Npgsql;

namespace Sextant.Core.Tests.Storage;

/// <summary>
/// The PostgreSQL the tests run against: SEXTANT_TEST_POSTGRES when given (a postgresql:// URI to a server
/// where the user may create databases), otherwise a throwaway server started once per test run with
/// initdb/pg_ctl on a temporary folder, trust auth and a spare port, stopped when the run ends.
/// </summary>
public static class PostgresServer
{
    private static readonly Lazy<string> BaseUri = new(Start, LazyThreadSafetyMode.ExecutionAndPublication);
    private static string? _dataFolder;
    private static string? _pgCtl;

    /// <summary>Creates a fresh database and returns its URI.</summary>
    public static async Task<string> CreateDatabaseAsync()
    {
        var baseUri = BaseUri.Value;
        var name = "sextant_test_" + Guid.NewGuid().ToString("N")[..12];
        var admin = Sextant.Core.Storage.DatabaseUri.Parse(baseUri);
        await using (var connection = new NpgsqlConnection(admin.ConnectionString))
        {
            await connection.OpenAsync();
            await using var command = new NpgsqlCommand($"CREATE DATABASE {name}", connection);
            await command.ExecuteNonQueryAsync();
        }
        var uri = new UriBuilder(baseUri) { Path = "/" + name };
        return uri.Uri.ToString();
    }

    private static string Start()
    {
        var given = Environment.GetEnvironmentVariable("SEXTANT_TEST_POSTGRES");
        if (!string.IsNullOrEmpty(given))
        {
            return given;
        }
        var bin = Directory.Exists("/usr/lib/postgresql")
            ? Directory.GetDirectories("/usr/lib/postgresql").Select(d => Path.Combine(d, "bin")).Where(d => File.Exists(Path.Combine(d, "initdb"))).OrderDescending().FirstOrDefault()
            : null;
        if (bin is null)
        {
            throw new InvalidOperationException("PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb) and SEXTANT_TEST_POSTGRES is not set. Run .ci/run, or apt-get install postgresql.");
        }
        var port = FreePort.Next();
        _dataFolder = Path.Combine(Path.GetTempPath(), "sextant-pg-" + Guid.NewGuid().ToString("N")[..8]);
        var socketFolder = _dataFolder + "-sock";
        Directory.CreateDirectory(_dataFolder);
        Directory.CreateDirectory(socketFolder);
        var asRoot = Environment.UserName == "root";
        if (asRoot)
        {
            Run("chown", $"postgres {_dataFolder} {socketFolder}");
        }
        _pgCtl = Path.Combine(bin, "pg_ctl");
        RunPostgres(asRoot, Path.Combine(bin, "initdb"), $"-D {_dataFolder} --auth=trust -U postgres -E UTF8 --locale=C.UTF-8 --no-sync");
        RunPostgres(asRoot, _pgCtl,
            $"-D {_dataFolder} -l {_dataFolder}/server.log -w -t 60 -o \"-p {port} -k {socketFolder} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300\" start");
        AppDomain.CurrentDomain.ProcessExit += (_, _) => Stop(asRoot);
        return $"postgresql://postgres@127.0.0.1:{port}/postgres";
    }

    private static void Stop(bool asRoot)
    {
        try
        {
            RunPostgres(asRoot, _pgCtl!, $"-D {_dataFolder} -m immediate -w stop");
            Directory.Delete(_dataFolder!, recursive: true);
            Directory.Delete(_dataFolder + "-sock", recursive: true);
        }
        catch (Exception e) when (e is InvalidOperationException or IOException or UnauthorizedAccessException)
        {
            // Best effort at process exit: a leftover temp folder is harmless.
        }
    }

    private static void RunPostgres(bool asRoot, string program, string arguments)
    {
        if (asRoot)
        {
            Run("runuser", $"-u postgres -- {program} {arguments}");
        }
        else
        {
            Run(program, arguments);
        }
    }

    private static void Run(string program, string arguments)
    {
        using var process = Process.Start(new ProcessStartInfo(program, arguments)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        })!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{program} {arguments} failed ({process.ExitCode}): {error} {output.Result}");
        }
    }
}
