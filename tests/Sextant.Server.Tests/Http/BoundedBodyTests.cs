using Sextant.Server.Http;

namespace Sextant.Server.Tests.Http;

/// <summary>Reading a body whole: with and without a declared length, and a declared length that is wrong.</summary>
public sealed class BoundedBodyTests
{
    private static byte[] Bytes(int count) => Enumerable.Range(0, count).Select(i => (byte)(i * 7)).ToArray();

    /// <summary>Hands out at most a few bytes per read, as a socket does.</summary>
    private sealed class Trickle(byte[] content) : MemoryStream(content)
    {
        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            base.ReadAsync(buffer[..Math.Min(buffer.Length, 5)], cancellationToken);
    }

    [Theory]
    [InlineData(0, null)]
    [InlineData(1000, null)]
    [InlineData(1000, 1000L)]
    public async Task A_body_comes_back_whole(int size, long? declared)
    {
        var body = Bytes(size);
        Assert.Equal(body, await BoundedBody.ReadAsync(new Trickle(body), 4096, CancellationToken.None, declared));
    }

    [Fact]
    public async Task A_body_shorter_than_declared_is_what_came()
    {
        var body = Bytes(300);
        Assert.Equal(body, await BoundedBody.ReadAsync(new Trickle(body), 4096, CancellationToken.None, 1000));
    }

    [Fact]
    public async Task A_body_longer_than_declared_is_read_to_its_end()
    {
        var body = Bytes(3000);
        Assert.Equal(body, await BoundedBody.ReadAsync(new Trickle(body), 4096, CancellationToken.None, 1000));
    }

    [Theory]
    [InlineData(null)]
    [InlineData(1000L)]
    [InlineData(5000L)]
    public async Task A_body_over_the_limit_is_null_whatever_it_declared(long? declared)
    {
        Assert.Null(await BoundedBody.ReadAsync(new Trickle(Bytes(5000)), 4096, CancellationToken.None, declared));
    }
}
