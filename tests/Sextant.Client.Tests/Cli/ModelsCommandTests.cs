namespace Sextant.Client.Tests.Cli;

/// <summary>The registry through the SDK and the `sextant models` verbs, against a real server.</summary>
[Collection(ConsoleCollection.Name)]
public sealed class ModelsCommandTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private async Task<string> RunWithModelAsync(string experiment)
    {
        using var client = new SextantClient(fixture.Address);
        await using var run = await client.StartRunAsync(experiment);
        await run.LogArtifactAsync(new MemoryStream([1, 2, 3]), "model/model.onnx");
        await run.LogArtifactAsync(new MemoryStream("flavors: {}"u8.ToArray()), "model/MLmodel");
        return run.RunId;
    }

    [Fact]
    public async Task The_sdk_registers_a_model_sets_an_alias_resolves_and_downloads_it()
    {
        var runId = await RunWithModelAsync("sdk-registry");
        using var client = new SextantClient(fixture.Address);
        var version = await client.RegisterModelAsync("sdk-model", $"runs:/{runId}/model");
        Assert.Equal(("1", runId), (version.Version, version.RunId));
        await client.SetModelAliasAsync("sdk-model", "champion", "1");
        Assert.Equal("1", (await client.ResolveModelAsync("models:/sdk-model@champion")).Version);

        var folder = Path.Combine(Path.GetTempPath(), "sextant-model-" + Guid.NewGuid().ToString("N")[..8]);
        try
        {
            await client.DownloadModelAsync("models:/sdk-model@champion", folder);
            Assert.Equal([1, 2, 3], await File.ReadAllBytesAsync(Path.Combine(folder, "model.onnx")));
            Assert.Equal("flavors: {}", await File.ReadAllTextAsync(Path.Combine(folder, "MLmodel")));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
        await client.DeleteModelAliasAsync("sdk-model", "champion");
        await Assert.ThrowsAsync<SextantApiException>(() => client.ResolveModelAsync("models:/sdk-model@champion"));
        Assert.Null(await client.GetRegisteredModelAsync("no-such-model"));
    }

    [Fact]
    public async Task Models_verbs_register_alias_resolve_list_and_show()
    {
        var runId = await RunWithModelAsync("cli-registry");
        var registered = await CliRunner.RunAsync(fixture.Address, "models", "register", "cli-model", "--source", $"runs:/{runId}/model");
        Assert.Equal(0, registered.ExitCode);
        Assert.Contains("version 1", registered.Out);

        Assert.Equal(0, (await CliRunner.RunAsync(fixture.Address, "models", "alias", "cli-model", "prod", "1")).ExitCode);
        var resolved = await CliRunner.RunAsync(fixture.Address, "models", "resolve", "models:/cli-model@prod");
        Assert.Contains("cli-model", resolved.Out);
        Assert.Contains(runId, resolved.Out);

        var listed = await CliRunner.RunAsync(fixture.Address, "models", "list", "--json");
        Assert.Contains("\"cli-model\"", listed.Out);
        var shown = await CliRunner.RunAsync(fixture.Address, "models", "show", "cli-model");
        Assert.Contains("prod", shown.Out);

        var reserved = await CliRunner.RunAsync(fixture.Address, "models", "alias", "cli-model", "latest", "1");
        Assert.Equal(1, reserved.ExitCode);
        Assert.Contains("reserved", Assert.Single(reserved.ErrorLines));
        var unknown = await CliRunner.RunAsync(fixture.Address, "models", "resolve", "models:/cli-model/9");
        Assert.Equal(1, unknown.ExitCode);
    }
}

[Collection(ConsoleCollection.Name)]
public sealed class LineageCommandTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    [Fact]
    public async Task Lineage_prints_where_a_model_came_from_as_a_tree()
    {
        using var client = new SextantClient(fixture.Address);
        string runId;
        await using (var run = await client.StartRunAsync("lineage-cli", "trainer"))
        {
            await run.LogArtifactAsync(new MemoryStream([1]), "model/weights.bin");
            runId = run.RunId;
        }
        using (var http = new HttpClient { BaseAddress = fixture.Address })
        {
            var body = $$$"""{"run_id": "{{{runId}}}", "datasets": [{"dataset": {"name": "customers", "digest": "d4", "source_type": "local", "source": "/data"}}]}""";
            (await http.PostAsync("/api/2.0/mlflow/runs/log-inputs", new StringContent(body, System.Text.Encoding.UTF8, "application/json"))).EnsureSuccessStatusCode();
        }
        await client.RegisterModelAsync("lineage-model", $"runs:/{runId}/model");
        await client.SetModelAliasAsync("lineage-model", "champion", "1");

        var result = await CliRunner.RunAsync(fixture.Address, "lineage", "models:/lineage-model@champion");
        Assert.Equal(0, result.ExitCode);
        Assert.Contains("model lineage-model version 1", result.Out);
        Assert.Contains("produced by", result.Out);
        Assert.Contains("run trainer", result.Out);
        Assert.Contains("dataset customers (d4)", result.Out);

        var json = await CliRunner.RunAsync(fixture.Address, "lineage", $"runs:/{runId}", "--direction", "down", "--json");
        Assert.Contains("models:/lineage-model/1", json.Out);
    }
}
