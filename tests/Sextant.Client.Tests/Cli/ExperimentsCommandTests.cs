using System.Text.Json;

namespace Sextant.Client.Tests.Cli;

[Collection(ConsoleCollection.Name)]
public sealed class ExperimentsCommandTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    [Fact]
    public async Task Experiments_create_then_list_json_contains_it()
    {
        var created = await CliRunner.RunAsync(fixture.Address, "experiments", "create", "cli-created");
        var listed = await CliRunner.RunAsync(fixture.Address, "experiments", "list", "--json");

        Assert.Equal(0, created.ExitCode);
        Assert.Contains("Created experiment cli-created", created.Out);
        Assert.Equal(0, listed.ExitCode);
        using var json = JsonDocument.Parse(listed.Out);
        Assert.Contains(json.RootElement.GetProperty("experiments").EnumerateArray(), e => e.GetProperty("name").GetString() == "cli-created");
    }

    [Fact]
    public async Task Experiments_list_shows_a_table_and_delete_removes_the_experiment()
    {
        using var client = fixture.CreateClient();
        var experiment = await client.CreateExperimentAsync("cli-doomed");

        var before = await CliRunner.RunAsync(fixture.Address, "experiments", "list");
        var deleted = await CliRunner.RunAsync(fixture.Address, "experiments", "delete", experiment.ExperimentId);
        var after = await CliRunner.RunAsync(fixture.Address, "experiments", "list");

        Assert.Contains("cli-doomed", before.Out);
        Assert.Equal(0, deleted.ExitCode);
        Assert.DoesNotContain("cli-doomed", after.Out);
    }

    [Fact]
    public async Task Creating_a_duplicate_exits_1_with_the_servers_message_on_one_line()
    {
        await CliRunner.RunAsync(fixture.Address, "experiments", "create", "cli-twice");

        var result = await CliRunner.RunAsync(fixture.Address, "experiments", "create", "cli-twice");

        Assert.Equal(1, result.ExitCode);
        var line = Assert.Single(result.ErrorLines);
        Assert.StartsWith("sextant: ", line);
        Assert.Contains("cli-twice", line);
        Assert.Empty(result.Out);
    }

    [Fact]
    public async Task An_unreachable_server_exits_1_naming_the_url()
    {
        // Port 1 on loopback: nothing listens there, so the connection is refused at once.
        var result = await CliRunner.RunAsync(new Uri("http://127.0.0.1:1/"), "experiments", "list");

        Assert.Equal(1, result.ExitCode);
        var line = Assert.Single(result.ErrorLines);
        Assert.StartsWith("sextant: could not reach http://127.0.0.1:1/", line);
    }
}
