namespace Sextant.Core.Tests;

public sealed class NativeHeapTests
{
    [Fact]
    public void The_arena_cap_is_set_through_glibc_on_linux_unless_the_user_set_one()
    {
        var set = NativeHeap.LimitArenas(2);
        // Debian (where CI runs) has glibc: mallopt answers 1 for a cap it took. MALLOC_ARENA_MAX in the environment wins.
        var expected = OperatingSystem.IsLinux() && Environment.GetEnvironmentVariable("MALLOC_ARENA_MAX") is null;
        Assert.Equal(expected, set);
    }
}
