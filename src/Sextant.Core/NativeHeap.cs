using System.Runtime.InteropServices;

namespace Sextant.Core;

/// <summary>
/// The C heap under the runtime (SQLite's page caches and statements, OpenSSL, the runtime's own native data). glibc's
/// malloc gives threads that allocate at the same time arenas of their own, up to 8 per core, and each arena keeps the
/// memory it once held. A server's many short-lived pool threads spread SQLite's allocations over them, so its resident
/// memory crept up by 2-3 MiB a minute under a steady gateway load without growing in use (bench/RESULTS.md 12j).
/// </summary>
internal static partial class NativeHeap
{
    private const int ArenaMaxOption = -8; // M_ARENA_MAX in glibc's malloc.h

    /// <summary>
    /// Caps glibc's malloc arenas at <paramref name="arenas"/> for the rest of the process (arenas already made stay).
    /// Does nothing where MALLOC_ARENA_MAX is set (the user's choice stands) or where the C library is not glibc.
    /// </summary>
    /// <returns>Whether the cap was set.</returns>
    public static bool LimitArenas(int arenas)
    {
        if (!OperatingSystem.IsLinux() || Environment.GetEnvironmentVariable("MALLOC_ARENA_MAX") is not null)
        {
            return false;
        }
        try
        {
            return MallOpt(ArenaMaxOption, arenas) == 1;
        }
        catch (Exception e) when (e is EntryPointNotFoundException or DllNotFoundException)
        {
            return false;
        }
    }

    [LibraryImport("libc", EntryPoint = "mallopt")]
    private static partial int MallOpt(int option, int value);
}
