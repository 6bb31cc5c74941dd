using System.Globalization;
using Spectre.Console;

namespace Sextant.Cli.Commands;

/// <summary>Console and formatting helpers shared by the verbs.</summary>
internal static class CliOutput
{
    /// <summary>Width used when stdout is not a terminal, so piped tables are not wrapped at 80 columns.</summary>
    private const int RedirectedWidth = 200;

    /// <summary>A Spectre console over the current Console.Out (created per command, so redirection is honoured).</summary>
    public static IAnsiConsole CreateConsole()
    {
        var output = new AnsiConsoleOutput(Console.Out);
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = output });
        if (!output.IsTerminal)
        {
            console.Profile.Width = RedirectedWidth;
        }
        return console;
    }

    public static string Time(long? unixMilliseconds) =>
        unixMilliseconds is { } ms and > 0
            ? DateTimeOffset.FromUnixTimeMilliseconds(ms).ToLocalTime().ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture)
            : "-";

    public static string Duration(long startMilliseconds, long? endMilliseconds)
    {
        if (endMilliseconds is not { } end || end < startMilliseconds)
        {
            return "-";
        }
        var duration = TimeSpan.FromMilliseconds(end - startMilliseconds);
        return duration.TotalHours >= 1 ? $"{(int)duration.TotalHours}h{duration.Minutes:00}m"
            : duration.TotalMinutes >= 1 ? $"{duration.Minutes}m{duration.Seconds:00}s"
            : $"{duration.TotalSeconds:0.0}s";
    }

    public static string Number(double value) => value.ToString("G7", CultureInfo.InvariantCulture);

    public static string Status(string status) => status switch
    {
        "FINISHED" => "[green]FINISHED[/]",
        "FAILED" => "[red]FAILED[/]",
        "KILLED" => "[red]KILLED[/]",
        "RUNNING" => "[blue]RUNNING[/]",
        _ => Markup.Escape(status),
    };

    public static string Bytes(long? bytes) => bytes switch
    {
        null => "-",
        < 1024 => $"{bytes} B",
        < 1024 * 1024 => $"{bytes / 1024.0:0.0} KiB",
        < 1024L * 1024 * 1024 => $"{bytes / (1024.0 * 1024):0.0} MiB",
        _ => $"{bytes / (1024.0 * 1024 * 1024):0.0} GiB",
    };
}
