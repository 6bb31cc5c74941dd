using System.Diagnostics;
using Npgsql;

namespace Sextant.Core.Tests.Storage;

/// <summary>
/// The PostgreSQL the tests run against: SEXTANT_TEST_POSTGRES when given (a postgresql:// URI to a server
/// where the user may create databases), otherwise a throwaway server started once per test run with
/// initdb/pg_ctl on a temporary folder, trust auth and a spare port, stopped when the run ends.
/// A test host can be killed before its exit handlers run, so each run also stops and removes the servers that
/// earlier runs left behind: a server's socket folder names the process that started it.
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
        var asRoot = Environment.UserName == "root";
        _pgCtl = Path.Combine(bin, "pg_ctl");
        RemoveLeftovers(asRoot);
        var port = FreePort.Next();
        _dataFolder = Path.Combine(Path.GetTempPath(), "sextant-pg-" + Guid.NewGuid().ToString("N")[..8]);
        var socketFolder = _dataFolder + "-sock";
        Directory.CreateDirectory(_dataFolder);
        Directory.CreateDirectory(socketFolder);
        File.WriteAllText(Path.Combine(socketFolder, OwnerFile), $"{Environment.ProcessId} {StartTicks(Environment.ProcessId)}");
        if (asRoot)
        {
            Run("chown", $"postgres {_dataFolder} {socketFolder}");
        }
        RunPostgres(asRoot, Path.Combine(bin, "initdb"), $"-D {_dataFolder} --auth=trust -U postgres -E UTF8 --locale=C.UTF-8 --no-sync");
        RunPostgres(asRoot, _pgCtl,
            $"-D {_dataFolder} -l {_dataFolder}/server.log -w -t 60 -o \"-p {port} -k {socketFolder} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300\" start");
        AppDomain.CurrentDomain.ProcessExit += (_, _) => Stop(asRoot);
        return $"postgresql://postgres@127.0.0.1:{port}/postgres";
    }

    private const string FolderPrefix = "sextant-pg-";
    private const string OwnerFile = "owner";

    /// <summary>
    /// Stops and deletes the servers of test runs whose process is gone: a folder whose owner file names a process
    /// that no longer runs (or a different one under a reused id), or, without an owner file, one untouched for an hour.
    /// </summary>
    private static void RemoveLeftovers(bool asRoot)
    {
        foreach (var folder in Directory.EnumerateDirectories(Path.GetTempPath(), FolderPrefix + "*"))
        {
            if (folder.EndsWith("-sock", StringComparison.Ordinal))
            {
                continue;
            }
            var socketFolder = folder + "-sock";
            var owner = Path.Combine(socketFolder, OwnerFile);
            bool stale;
            if (File.Exists(owner))
            {
                var parts = File.ReadAllText(owner).Split(' ');
                stale = parts.Length != 2 || !int.TryParse(parts[0], out var pid) || StartTicks(pid) != parts[1];
            }
            else
            {
                stale = Directory.GetLastWriteTimeUtc(folder) < DateTime.UtcNow.AddHours(-1);
            }
            if (stale)
            {
                StopAndDelete(asRoot, folder);
            }
        }
    }

    /// <summary>Stops the server on a data folder if it runs, then deletes the folder and its socket folder.</summary>
    private static void StopAndDelete(bool asRoot, string folder)
    {
        try
        {
            if (File.Exists(Path.Combine(folder, "postmaster.pid")))
            {
                RunPostgres(asRoot, _pgCtl!, $"-D {folder} -m immediate -w stop");
            }
        }
        catch (InvalidOperationException)
        {
            // Not running: its pid file outlived it.
        }
        try
        {
            Directory.Delete(folder, recursive: true);
            if (Directory.Exists(folder + "-sock"))
            {
                Directory.Delete(folder + "-sock", recursive: true);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Another run removing it at the same time, or not ours to remove; a leftover temp folder is harmless.
        }
    }

    /// <summary>A process's start time in clock ticks since boot (/proc/PID/stat field 22), or "" when it is gone.</summary>
    private static string StartTicks(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            // The command name (field 2) may hold spaces; the fields after its closing parenthesis are plain.
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            return fields[19];
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return "";
        }
    }

    private static void Stop(bool asRoot) => StopAndDelete(asRoot, _dataFolder!);

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
