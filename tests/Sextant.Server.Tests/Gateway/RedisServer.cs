using System.Diagnostics;
using System.Net.Sockets;
using Sextant.Core.Tests.Storage;

namespace Sextant.Server.Tests.Gateway;

/// <summary>
/// A throwaway redis-server (Debian's package; test.sh installs it) on a spare loopback port, without persistence,
/// started once per test run and stopped when the run ends.
/// </summary>
public static class RedisServer
{
    private static readonly Lazy<string> Address = new(Start, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>host:port of the server.</summary>
    public static string Get() => Address.Value;

    private static string Start()
    {
        const string program = "/usr/bin/redis-server";
        if (!File.Exists(program))
        {
            throw new InvalidOperationException("redis-server is not installed. Run .ci/run, or apt-get install redis-server.");
        }
        var port = FreePort.Next();
        // A watchdog shell stops the server when this test process is gone, however it ended.
        var script = $"{program} --port {port} --bind 127.0.0.1 --save '' --appendonly no --daemonize no --protected-mode yes & child=$!; "
            + $"while kill -0 {Environment.ProcessId} 2>/dev/null && kill -0 $child 2>/dev/null; do sleep 1; done; kill $child";
        var start = new ProcessStartInfo("/bin/sh")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add(script);
        var process = Process.Start(start)!;
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            try
            {
                process.Kill(entireProcessTree: true);
            }
            catch (InvalidOperationException)
            {
            }
        };
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (true)
        {
            try
            {
                using var client = new TcpClient();
                client.Connect("127.0.0.1", port);
                return $"127.0.0.1:{port}";
            }
            catch (SocketException) when (DateTime.UtcNow < deadline && !process.HasExited)
            {
                Thread.Sleep(50);
            }
        }
    }
}
