using System.Security.Cryptography;
using System.Text.Json;

namespace Sextant.Client.Tests.Cli;

[Collection(ConsoleCollection.Name)]
public sealed class ArtifactsCommandTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    [Fact]
    public async Task Artifacts_get_writes_the_file_byte_identical()
    {
        var (runId, content) = await CreateRunWithArtifactAsync();
        var output = Path.Combine(Path.GetTempPath(), $"sextant-get-{Guid.NewGuid():N}.bin");
        try
        {
            var result = await CliRunner.RunAsync(fixture.Address, "artifacts", "get", runId, "weights/model.bin", "--output", output);

            Assert.Equal(0, result.ExitCode);
            Assert.Contains("Saved weights/model.bin", result.Out);
            Assert.Equal(content, await File.ReadAllBytesAsync(output));
        }
        finally
        {
            File.Delete(output);
        }
    }

    [Fact]
    public async Task Artifacts_get_json_reports_the_bytes_written()
    {
        var (runId, content) = await CreateRunWithArtifactAsync();
        var output = Path.Combine(Path.GetTempPath(), $"sextant-get-{Guid.NewGuid():N}.bin");
        try
        {
            var result = await CliRunner.RunAsync(fixture.Address, "artifacts", "get", runId, "weights/model.bin", "-o", output, "--json");

            using var json = JsonDocument.Parse(result.Out);
            Assert.Equal(content.Length, json.RootElement.GetProperty("bytes").GetInt64());
            Assert.Equal(output, json.RootElement.GetProperty("output").GetString());
        }
        finally
        {
            File.Delete(output);
        }
    }

    [Fact]
    public async Task Artifacts_get_of_a_missing_artifact_exits_1_and_leaves_no_file()
    {
        var (runId, _) = await CreateRunWithArtifactAsync();
        var output = Path.Combine(Path.GetTempPath(), $"sextant-get-{Guid.NewGuid():N}.bin");

        var result = await CliRunner.RunAsync(fixture.Address, "artifacts", "get", runId, "weights/missing.bin", "--output", output);

        Assert.Equal(1, result.ExitCode);
        Assert.StartsWith("sextant: ", Assert.Single(result.ErrorLines));
        Assert.False(File.Exists(output));
    }

    [Fact]
    public async Task Artifacts_list_shows_files_and_folders()
    {
        var (runId, _) = await CreateRunWithArtifactAsync();

        var root = await CliRunner.RunAsync(fixture.Address, "artifacts", "list", runId);
        var folder = await CliRunner.RunAsync(fixture.Address, "artifacts", "list", runId, "--path", "weights");

        Assert.Contains("weights/", root.Out);
        Assert.Contains("weights/model.bin", folder.Out);
    }

    private async Task<(string RunId, byte[] Content)> CreateRunWithArtifactAsync()
    {
        using var client = fixture.CreateClient();
        var content = RandomNumberGenerator.GetBytes(512 * 1024 + 3);
        await using var run = await client.StartRunAsync("cli-artifacts");
        await run.LogArtifactAsync(new MemoryStream(content), "weights/model.bin");
        return (run.RunId, content);
    }
}
