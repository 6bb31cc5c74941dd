using System.Runtime.InteropServices;

namespace Sextant.Core.Artifacts;

/// <summary>The POSIX calls .NET lacks for making a rename durable (fsync of a directory, syncfs).</summary>
internal static partial class NativeMethods
{
    [LibraryImport("libc", EntryPoint = "open", StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "fsync")]
    internal static partial int Fsync(int fd);

    /// <summary>Linux: commits every file system buffer of the file system holding <paramref name="fd"/>.</summary>
    [LibraryImport("libc", EntryPoint = "syncfs")]
    internal static partial int Syncfs(int fd);

    [LibraryImport("libc", EntryPoint = "close")]
    internal static partial int Close(int fd);
}
