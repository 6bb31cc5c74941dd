using System.Text.Json;
using Sextant.Contracts;

namespace Sextant.Client.Tests.Cli;

[Collection(ConsoleCollection.Name)]
public sealed class RunsCommandTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    [Fact]
    public async Task Runs_list_with_a_filter_shows_only_the_matching_runs()
    {
        var (good, bad) = await CreateRunsAsync("cli-runs-filter");

        var table = await CliRunner.RunAsync(fixture.Address, "runs", "list", "--experiment", "cli-runs-filter", "--filter", "metrics.acc > 0.5");
        var json = await CliRunner.RunAsync(fixture.Address, "runs", "list", "--experiment", "cli-runs-filter", "--filter", "metrics.acc > 0.5", "--json");

        Assert.Equal(0, table.ExitCode);
        Assert.Contains(good, table.Out);
        Assert.Contains("acc=0.9", table.Out);
        Assert.DoesNotContain(bad, table.Out);
        using var document = JsonDocument.Parse(json.Out);
        var run = Assert.Single(document.RootElement.GetProperty("runs").EnumerateArray());
        Assert.Equal(good, run.GetProperty("info").GetProperty("run_id").GetString());
    }

    [Fact]
    public async Task Runs_list_orders_by_the_given_keys_and_honours_max()
    {
        var (good, bad) = await CreateRunsAsync("cli-runs-order");

        var ascending = await CliRunner.RunAsync(fixture.Address, "runs", "list", "--experiment", "cli-runs-order", "--order-by", "metrics.acc ASC", "--json");
        var top = await CliRunner.RunAsync(fixture.Address, "runs", "list", "--experiment", "cli-runs-order", "--order-by", "metrics.acc DESC", "--max", "1", "--json");

        Assert.Equal([bad, good], RunIds(ascending.Out));
        Assert.Equal([good], RunIds(top.Out));
    }

    [Fact]
    public async Task Runs_list_for_a_missing_experiment_exits_1()
    {
        var result = await CliRunner.RunAsync(fixture.Address, "runs", "list", "--experiment", "cli-nowhere");

        Assert.Equal(1, result.ExitCode);
        Assert.Equal("sextant: Experiment 'cli-nowhere' does not exist.", Assert.Single(result.ErrorLines).TrimEnd());
    }

    [Fact]
    public async Task Runs_show_prints_info_params_metrics_and_tags()
    {
        var (good, _) = await CreateRunsAsync("cli-runs-show");

        var result = await CliRunner.RunAsync(fixture.Address, "runs", "show", good);

        Assert.Equal(0, result.ExitCode);
        Assert.Contains("good", result.Out);
        Assert.Contains("FINISHED", result.Out);
        Assert.Contains("0.01", result.Out);
        Assert.Contains("0.9", result.Out);
        Assert.Contains("owner", result.Out);
    }

    [Fact]
    public async Task Runs_compare_shows_both_runs_params_side_by_side()
    {
        var (good, bad) = await CreateRunsAsync("cli-runs-compare");

        var result = await CliRunner.RunAsync(fixture.Address, "runs", "compare", good, bad);

        Assert.Equal(0, result.ExitCode);
        var lrRow = Assert.Single(result.Out.Split('\n'), l => l.Contains(" lr "));
        Assert.True(lrRow.IndexOf("0.01", StringComparison.Ordinal) < lrRow.IndexOf("0.5", StringComparison.Ordinal), lrRow);
        var batchRow = Assert.Single(result.Out.Split('\n'), l => l.Contains(" batch "));
        Assert.Equal(2, batchRow.Split("32").Length - 1);
        Assert.Contains(good, result.Out);
        Assert.Contains(bad, result.Out);
    }

    [Fact]
    public async Task Runs_compare_needs_two_runs()
    {
        var (good, _) = await CreateRunsAsync("cli-runs-compare-one");

        var result = await CliRunner.RunAsync(fixture.Address, "runs", "compare", good);

        Assert.NotEqual(0, result.ExitCode);
    }

    [Fact]
    public async Task An_unknown_run_id_exits_1_with_one_error_line()
    {
        var result = await CliRunner.RunAsync(fixture.Address, "runs", "show", "ffffffffffffffffffffffffffffffff");

        Assert.Equal(1, result.ExitCode);
        var line = Assert.Single(result.ErrorLines);
        Assert.StartsWith("sextant: ", line);
        Assert.Contains("ffffffffffffffffffffffffffffffff", line);
        Assert.Empty(result.Out);
    }

    private async Task<(string Good, string Bad)> CreateRunsAsync(string experimentName)
    {
        using var client = fixture.CreateClient();
        string good, bad;
        await using (var run = await client.StartRunAsync(experimentName, "good"))
        {
            good = run.RunId;
            run.LogParam("lr", "0.01");
            run.LogParam("batch", "32");
            run.LogMetric("acc", 0.9);
            run.SetTag("owner", "ada");
        }
        await using (var run = await client.StartRunAsync(experimentName, "bad"))
        {
            bad = run.RunId;
            run.LogParam("lr", "0.5");
            run.LogParam("batch", "32");
            run.LogMetric("acc", 0.2);
        }
        return (good, bad);
    }

    private static List<string> RunIds(string json)
    {
        var response = JsonSerializer.Deserialize(json, SextantJsonContext.Default.SearchRunsResponse)!;
        return response.Runs.Select(r => r.Info.RunId).ToList();
    }
}
