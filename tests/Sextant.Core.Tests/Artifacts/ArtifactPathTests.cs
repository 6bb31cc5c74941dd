using Sextant.Core.Artifacts;

namespace Sextant.Core.Tests.Artifacts;

public sealed class ArtifactPathTests
{
    [Theory]
    [InlineData("model/weights.bin", "model/weights.bin")]
    [InlineData("folder/", "folder")]
    [InlineData("a b/c-d_e.f", "a b/c-d_e.f")]
    public void Normalize_keeps_relative_paths(string path, string expected) =>
        Assert.Equal(expected, ArtifactPath.Normalize(path, "path", allowEmpty: false));

    [Theory]
    [InlineData("../x")]
    [InlineData("a/../../x")]
    [InlineData("a/./b")]
    [InlineData("/etc/passwd")]
    [InlineData("a//b")]
    [InlineData("a\\b")]
    [InlineData("C:/x")]
    [InlineData("a/\u0001b")]
    public void Normalize_rejects_traversal_absolute_and_control_characters(string path)
    {
        var e = Assert.Throws<SextantException>(() => ArtifactPath.Normalize(path, "path", allowEmpty: false));
        Assert.Equal("path", e.Field);
    }

    [Fact]
    public void Normalize_allows_the_root_only_where_asked()
    {
        Assert.Equal("", ArtifactPath.Normalize(null, "path", allowEmpty: true));
        Assert.Throws<SextantException>(() => ArtifactPath.Normalize("", "path", allowEmpty: false));
    }
}
