using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Sextant.Bench;

/// <summary>Sleeping until a moment with microsecond resolution, for open-loop load drivers.</summary>
internal static partial class Pace
{
    /// <summary>
    /// Blocks the calling thread until <paramref name="due"/> seconds on <paramref name="clock"/>. On Linux it sleeps with
    /// usleep (microseconds); elsewhere with Thread.Sleep, whose millisecond steps make the pace coarser.
    /// </summary>
    public static void SleepUntil(Stopwatch clock, double due)
    {
        while (true)
        {
            var wait = due - clock.Elapsed.TotalSeconds;
            if (wait <= 0)
            {
                return;
            }
            if (OperatingSystem.IsLinux())
            {
                _ = USleep((uint)Math.Ceiling(wait * 1e6));
            }
            else
            {
                Thread.Sleep(TimeSpan.FromSeconds(Math.Max(wait, 0.001)));
            }
        }
    }

    [LibraryImport("libc", EntryPoint = "usleep")]
    private static partial int USleep(uint microseconds);
}
