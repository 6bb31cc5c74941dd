using System.Diagnostics;

namespace Sextant.Server.Tests;

/// <summary>`sextant server` as a separate process, as users run it (crash and scale-out tests).</summary>
public static class ServerProcess
{
    /// <summary>Starts `sextant server` with these arguments; its output is read and dropped.</summary>
    public static Process Start(string arguments)
    {
        var cli = Path.Combine(AppContext.BaseDirectory, "sextant.dll");
        var start = new ProcessStartInfo("dotnet", $"exec \"{cli}\" server {arguments}")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        var process = Process.Start(start)!;
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    /// <summary>Waits until the server answers /readyz (at most a minute).</summary>
    public static async Task WaitReadyAsync(HttpClient http)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            try
            {
                if ((await http.GetAsync("/readyz")).IsSuccessStatusCode)
                {
                    return;
                }
            }
            catch (HttpRequestException) when (DateTime.UtcNow < deadline)
            {
            }
            await Task.Delay(100);
        }
    }

    /// <summary>Kills the process and its children if it is still running.</summary>
    public static async Task StopAsync(Process process)
    {
        if (!process.HasExited)
        {
            process.Kill(entireProcessTree: true);
        }
        await process.WaitForExitAsync();
    }
}
