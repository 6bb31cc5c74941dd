using Sextant.Cli;

namespace Sextant.Client.Tests.Cli;

/// <summary>Runs the `sextant` command in-process against a server, capturing what it prints.</summary>
internal static class CliRunner
{
    public static async Task<CliResult> RunAsync(Uri server, params string[] args)
    {
        var (stdout, stderr) = (new StringWriter(), new StringWriter());
        var (previousOut, previousError) = (Console.Out, Console.Error);
        Console.SetOut(stdout);
        Console.SetError(stderr);
        try
        {
            var exitCode = await SextantCli.Build().Parse([.. args, "--url", server.ToString()]).InvokeAsync();
            return new CliResult(exitCode, stdout.ToString(), stderr.ToString());
        }
        finally
        {
            Console.SetOut(previousOut);
            Console.SetError(previousError);
        }
    }
}

internal sealed record CliResult(int ExitCode, string Out, string Error)
{
    public string[] ErrorLines => Error.Split('\n', StringSplitOptions.RemoveEmptyEntries);
}
