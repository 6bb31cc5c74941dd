using System.Diagnostics;
using System.Globalization;
using System.Net;
using Sextant.Core.Tests.Storage;

namespace Sextant.Bench;

/// <summary>The real server as users run it: `sextant server` from a built sextant.dll, as a child process on a free port.</summary>
internal static class ChildServer
{
    private const string ServerEnvPrefix = "SEXTANT_SERVER_ENV_";

    public static async Task<(Process Process, string Url)> StartAsync(string cli, string dataDirectory, string extraArguments = "")
    {
        var port = FreePort.Next();
        var start = new ProcessStartInfo("dotnet", $"exec \"{cli}\" server --port {port} --data {dataDirectory} {extraArguments}") { RedirectStandardOutput = true, UseShellExecute = false };
        // SEXTANT_SERVER_ENV_NAME=value in the bench's environment sets NAME=value for the server alone (runtime settings
        // tried on the server without changing the driver's).
        foreach (var variable in Environment.GetEnvironmentVariables().Keys.Cast<string>().Where(k => k.StartsWith(ServerEnvPrefix, StringComparison.Ordinal)))
        {
            start.Environment[variable[ServerEnvPrefix.Length..]] = Environment.GetEnvironmentVariable(variable);
        }
        var process = Process.Start(start)!;
        var url = $"http://127.0.0.1:{port}";
        using var http = new HttpClient();
        for (var i = 0; i < 1200; i++)
        {
            try
            {
                if ((await http.GetAsync(url + "/readyz")).StatusCode == HttpStatusCode.OK)
                {
                    return (process, url);
                }
            }
            catch (HttpRequestException)
            {
            }
            await Task.Delay(50);
        }
        process.Kill();
        throw new TimeoutException($"the server at {url} never became ready");
    }

    public static async Task StopAsync(Process process)
    {
        process.Kill();
        await process.WaitForExitAsync();
        process.Dispose();
    }

    /// <summary>Stops the server and removes its data folder (what it cannot remove stays in the temporary folder).</summary>
    public static async Task StopAsync(Process process, string dataDirectory)
    {
        await StopAsync(process);
        try
        {
            Directory.Delete(dataDirectory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

/// <summary>A process's memory and CPU from /proc (Linux).</summary>
internal static class ProcStatus
{
    /// <summary>Resident memory now, in MiB.</summary>
    public static double Rss(int pid) => Field(pid, "VmRSS:");

    /// <summary>Peak resident memory (VmHWM), in MiB.</summary>
    public static double Peak(int pid) => Field(pid, "VmHWM:");

    /// <summary>Resets the peak resident memory (clear_refs 5).</summary>
    public static void ResetPeak(int pid) => File.WriteAllText($"/proc/{pid}/clear_refs", "5");

    /// <summary>Open sockets (connections and listeners); a descriptor closed while they are counted is left out.</summary>
    public static int Sockets(int pid) =>
        new DirectoryInfo($"/proc/{pid}/fd").EnumerateFileSystemInfos().Count(fd =>
        {
            try
            {
                return fd.LinkTarget?.StartsWith("socket:", StringComparison.Ordinal) == true;
            }
            catch (IOException)
            {
                return false;
            }
        });

    /// <summary>CPU time so far (user and system), in milliseconds.</summary>
    public static double CpuMs(int pid)
    {
        var stat = File.ReadAllText($"/proc/{pid}/stat");
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        // utime and stime are fields 14 and 15 of /proc/pid/stat, in clock ticks (100 a second).
        return (long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture)) * 10.0;
    }

    private static double Field(int pid, string field) =>
        double.Parse(File.ReadAllLines($"/proc/{pid}/status").First(l => l.StartsWith(field, StringComparison.Ordinal)).Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) / 1024;
}
