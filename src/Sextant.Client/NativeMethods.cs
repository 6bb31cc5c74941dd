using System.Runtime.InteropServices;

namespace Sextant.Client;

/// <summary>The one POSIX call the client needs that .NET lacks: the type of a file (statx), to refuse pipes and devices.</summary>
internal static partial class NativeMethods
{
    [LibraryImport("libc", EntryPoint = "statx", StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int Statx(int directoryFd, string path, int flags, uint mask, [Out] byte[] buffer);
}
