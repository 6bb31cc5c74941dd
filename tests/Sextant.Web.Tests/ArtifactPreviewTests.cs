using System.Text;
using Sextant.Web.Components.Shared;

namespace Sextant.Web.Tests;

public sealed class ArtifactPreviewTests
{
    private static Task<ArtifactPreview> PreviewAsync(string path, byte[] content) =>
        ArtifactPreview.ReadAsync(path, new MemoryStream(content), content.Length, default);

    private static Task<ArtifactPreview> PreviewAsync(string path, string content) => PreviewAsync(path, Encoding.UTF8.GetBytes(content));

    [Fact]
    public async Task Json_is_pretty_printed()
    {
        var preview = await PreviewAsync("a/config.json", """{"a":[1,2],"b":{"c":"d"}}""");
        Assert.Equal("json", preview.Kind);
        Assert.Contains("\n", preview.Text, StringComparison.Ordinal);
        Assert.Contains("\"c\": \"d\"", preview.Text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Invalid_json_is_shown_as_text_with_a_note()
    {
        var preview = await PreviewAsync("bad.json", "{not json");
        Assert.Equal("text", preview.Kind);
        Assert.Contains("Not valid JSON", preview.Note, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Csv_becomes_rows_with_quoted_fields_kept_whole()
    {
        var preview = await PreviewAsync("m.csv", "name,notes\nrun-1,\"a, b\"\nrun-2,\"say \"\"hi\"\"\"\n");
        Assert.Equal("csv", preview.Kind);
        Assert.Equal(["run-1", "a, b"], preview.Rows![1]);
        Assert.Equal(["run-2", "say \"hi\""], preview.Rows![2]);
        Assert.False(preview.Truncated);
    }

    [Fact]
    public async Task Long_csv_shows_its_first_rows_and_says_so()
    {
        var csv = "i\n" + string.Join("\n", Enumerable.Range(0, 1000));
        var preview = await PreviewAsync("long.tsv", csv);
        Assert.Equal(ArtifactPreview.MaxCsvRows, preview.Rows!.Count);
        Assert.True(preview.Truncated);
    }

    [Fact]
    public async Task Big_text_is_cut_and_binary_and_unknown_files_are_not_shown()
    {
        var big = await PreviewAsync("train.log", new string('x', ArtifactPreview.MaxTextBytes + 10));
        Assert.Equal(("text", true, ArtifactPreview.MaxTextBytes), (big.Kind, big.Truncated, big.Text!.Length));
        Assert.Equal("none", (await PreviewAsync("weights.txt", [0xff, 0xfe, 0x00, 0xc3])).Kind);
        Assert.Equal("none", (await PreviewAsync("model.onnx", [1, 2, 3])).Kind);
        Assert.Equal("image", (await PreviewAsync("plots/roc.PNG", [1, 2, 3])).Kind);
    }
}
