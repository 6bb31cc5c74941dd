using System.Globalization;
using Sextant.Contracts;
using Sextant.Core.Projects;
using Sextant.Core.Storage;
using Sextant.Core.Tests.Storage;
using Sextant.Core.Tracking;

namespace Sextant.Core.Tests.Tracking.Search;

/// <summary>
/// The in-memory search copy must answer exactly as SQL does: the same runs, in the same order, with page
/// tokens that either path accepts. Random data with ties, NaN, missing keys and deleted runs.
/// </summary>
public sealed class RunIndexTests : IAsyncLifetime
{
    private TestDatabase _db = null!;
    private TrackingService _sql = null!;
    private string _experiment = "";
    private static readonly Caller Admin = TestDatabase.Admin;

    public async Task InitializeAsync()
    {
        _db = await TestDatabase.CreateAsync(DatabaseEngine.Sqlite);
        _sql = new TrackingService(_db.Database, _db.Writer, new TrackingOptions { InMemorySearch = false });
        _experiment = await _db.Tracking.CreateExperimentAsync(Admin, new CreateExperimentRequest("index"));
        var random = new Random(1234);
        string[] models = ["x", "y", "z"];
        for (var i = 0; i < 300; i++)
        {
            // Few distinct start times, so that ties are broken by id.
            var run = (await _db.Tracking.CreateRunAsync(Admin, new CreateRunRequest(_experiment, StartTime: 1_700_000_000_000 + random.Next(40)))).Info.RunId;
            var metrics = new List<MetricInput>();
            if (random.Next(10) > 0)
            {
                metrics.Add(new MetricInput("acc", random.Next(8) == 0 ? double.NaN : Math.Round(random.NextDouble(), 1), 1, 0));
            }
            if (random.Next(3) > 0)
            {
                metrics.Add(new MetricInput("loss", Math.Round(random.NextDouble(), 2), 1, random.Next(5)));
            }
            var parameters = new List<KeyValueInput>();
            if (random.Next(6) > 0)
            {
                parameters.Add(new KeyValueInput("model", models[random.Next(3)]));
            }
            parameters.Add(new KeyValueInput("lr", random.Next(2) == 0 ? "0.01" : "0.1"));
            var tags = random.Next(2) == 0 ? new List<KeyValueInput> { new("team", random.Next(2) == 0 ? "a" : "b") } : [];
            await _db.Tracking.LogBatchAsync(Admin, new LogBatchRequest(run, metrics, parameters, tags));
            if (random.Next(5) == 0)
            {
                await _db.Tracking.UpdateRunAsync(Admin, new UpdateRunRequest(run, Status: "FINISHED", EndTime: 1_700_000_100_000));
            }
            if (random.Next(20) == 0)
            {
                await _db.Tracking.LogInputsAsync(Admin, new LogInputsRequest(run,
                    [new DatasetInput([new KeyValue("mlflow.data.context", "training")], new Dataset("d", "abc", "local", "/data"))]));
            }
            if (random.Next(7) == 0)
            {
                await _db.Tracking.DeleteRunAsync(Admin, run);
            }
        }
    }

    public async Task DisposeAsync() => await _db.DisposeAsync();

    public static TheoryData<string> Filters => new()
    {
        "",
        "metrics.acc > 0.5",
        "metrics.acc >= 0.5 and params.model = 'x'",
        "metrics.acc = 0.3",
        "metrics.acc != 0.3",
        "metrics.acc < 0.2 and metrics.loss <= 0.5",
        "metrics.loss != 0.25 and tags.team = 'a'",
        "params.model != 'y'",
        "params.model IN ('x', 'z')",
        "params.model NOT IN ('x')",
        "params.lr = '0.01'",
        "params.lr = '0.1' and tags.team != 'b'",
        "metrics.nothing > 0",
        "params.nothing = 'x'",
    };

    [Theory]
    [MemberData(nameof(Filters))]
    public async Task The_copy_pages_exactly_as_SQL_does(string filter)
    {
        Assert.True(await _db.Tracking.BuildSearchIndexAsync(long.Parse(_experiment, CultureInfo.InvariantCulture)));
        foreach (var view in new[] { "ACTIVE_ONLY", "DELETED_ONLY", "ALL" })
        {
            foreach (var pageSize in new[] { 7, 1000 })
            {
                var fromSql = await PagesAsync(_sql, filter, view, pageSize);
                var fromMemory = await PagesAsync(_db.Tracking, filter, view, pageSize);
                Assert.Equal(fromSql.Ids, fromMemory.Ids);
                Assert.Equal(fromSql.Tokens, fromMemory.Tokens);
                // Whole runs, as they go on the wire: info, metrics with step and timestamp, params, tags, inputs.
                Assert.Equal(fromSql.Json, fromMemory.Json);
            }
        }
        Assert.NotNull(_db.Writer.Index.TryGet(long.Parse(_experiment, CultureInfo.InvariantCulture), Admin.ProjectId));
    }

    [Fact]
    public async Task A_write_makes_the_copy_stale_and_the_next_search_sees_it()
    {
        var experimentId = long.Parse(_experiment, CultureInfo.InvariantCulture);
        Assert.True(await _db.Tracking.BuildSearchIndexAsync(experimentId));
        var before = await _db.Tracking.SearchRunsAsync(Admin, new SearchRunsRequest([_experiment], "params.model = 'w'"));
        Assert.Empty(before.Runs);

        var run = (await _db.Tracking.CreateRunAsync(Admin, new CreateRunRequest(_experiment))).Info.RunId;
        await _db.Tracking.LogBatchAsync(Admin, new LogBatchRequest(run, Params: [new KeyValueInput("model", "w")]));
        var after = await _db.Tracking.SearchRunsAsync(Admin, new SearchRunsRequest([_experiment], "params.model = 'w'"));
        Assert.Equal(run, Assert.Single(after.Runs).Info.RunId);

        await _db.Tracking.DeleteRunAsync(Admin, run);
        Assert.Empty((await _db.Tracking.SearchRunsAsync(Admin, new SearchRunsRequest([_experiment], "params.model = 'w'"))).Runs);
    }

    [Fact]
    public async Task A_copy_read_while_a_write_commits_is_not_kept()
    {
        var experimentId = long.Parse(_experiment, CultureInfo.InvariantCulture);
        var index = _db.Writer.Index;
        var kept = await index.BuildAsync(experimentId, async (id, generation, ct) =>
        {
            await using var connection = await _db.Database.OpenAsync(ct);
            var snapshot = await Sextant.Core.Tracking.Search.RunIndex.ReadAsync(connection, id, generation, 1000, 1_000_000, ct);
            index.Changed();
            return snapshot;
        });
        Assert.False(kept);
        Assert.Null(index.TryGet(experimentId, Admin.ProjectId));
    }

    [Fact]
    public async Task Another_project_never_gets_this_experiments_runs_from_the_copy()
    {
        Assert.True(await _db.Tracking.BuildSearchIndexAsync(long.Parse(_experiment, CultureInfo.InvariantCulture)));
        var other = await _db.CallerInNewProjectAsync("intruder", Role.Viewer);
        for (var i = 0; i < 3; i++)
        {
            var found = await _db.Tracking.SearchRunsAsync(other, new SearchRunsRequest([_experiment], "metrics.acc > -1"));
            Assert.Empty(found.Runs);
        }
        Assert.NotEmpty((await _db.Tracking.SearchRunsAsync(Admin, new SearchRunsRequest([_experiment], "metrics.acc > -1"))).Runs);
    }

    [Fact]
    public async Task An_experiment_with_too_many_columns_is_not_copied()
    {
        await using var wide = await TestDatabase.CreateAsync(DatabaseEngine.Sqlite);
        var experiment = await wide.Tracking.CreateExperimentAsync(Admin, new CreateExperimentRequest("wide"));
        var run = (await wide.Tracking.CreateRunAsync(Admin, new CreateRunRequest(experiment))).Info.RunId;
        await wide.Tracking.LogBatchAsync(Admin, new LogBatchRequest(run, Enumerable.Range(0, 50).Select(i => new MetricInput($"fold_{i}", i, 1, 0)).ToList()));
        await using var connection = await wide.Database.OpenAsync();
        Assert.Null(await Sextant.Core.Tracking.Search.RunIndex.ReadAsync(connection, long.Parse(experiment, CultureInfo.InvariantCulture), 0, 1000, 100, default));
        Assert.NotNull(await Sextant.Core.Tracking.Search.RunIndex.ReadAsync(connection, long.Parse(experiment, CultureInfo.InvariantCulture), 0, 1000, 1000, default));
    }

    [Fact]
    public async Task An_experiment_over_the_size_limit_is_not_copied()
    {
        await using var small = await TestDatabase.CreateAsync(DatabaseEngine.Sqlite, new TrackingOptions { InMemorySearchMaxRuns = 2 });
        var experiment = await small.Tracking.CreateExperimentAsync(Admin, new CreateExperimentRequest("big"));
        for (var i = 0; i < 3; i++)
        {
            await small.Tracking.CreateRunAsync(Admin, new CreateRunRequest(experiment));
        }
        Assert.False(await small.Tracking.BuildSearchIndexAsync(long.Parse(experiment, CultureInfo.InvariantCulture)));
        Assert.Equal(3, (await small.Tracking.SearchRunsAsync(Admin, new SearchRunsRequest([experiment]))).Runs.Count);
    }

    [Fact]
    public async Task A_page_token_from_one_path_continues_on_the_other()
    {
        Assert.True(await _db.Tracking.BuildSearchIndexAsync(long.Parse(_experiment, CultureInfo.InvariantCulture)));
        var first = await _sql.SearchRunsAsync(Admin, new SearchRunsRequest([_experiment], "metrics.acc > 0.2", MaxResults: 10));
        var second = await _db.Tracking.SearchRunsAsync(Admin, new SearchRunsRequest([_experiment], "metrics.acc > 0.2", MaxResults: 10, PageToken: first.NextPageToken));
        var expected = await _sql.SearchRunsAsync(Admin, new SearchRunsRequest([_experiment], "metrics.acc > 0.2", MaxResults: 10, PageToken: first.NextPageToken));
        Assert.Equal(expected.Runs.Select(r => r.Info.RunId), second.Runs.Select(r => r.Info.RunId));
        Assert.NotEmpty(second.Runs);
    }

    private static async Task<(List<string> Ids, List<string?> Tokens, List<string> Json)> PagesAsync(TrackingService tracking, string filter, string view, int pageSize)
    {
        var ids = new List<string>();
        var tokens = new List<string?>();
        var json = new List<string>();
        string? token = null;
        do
        {
            var page = await tracking.SearchRunsAsync(Admin, new SearchRunsRequest([], filter, view, pageSize, null, token) with { ExperimentIds = [await ExperimentAsync(tracking)] });
            ids.AddRange(page.Runs.Select(r => r.Info.RunId));
            json.Add(System.Text.Json.JsonSerializer.Serialize(page, SextantJsonContext.Default.SearchRunsResponse));
            token = page.NextPageToken;
            tokens.Add(token);
        }
        while (token is not null);
        return (ids, tokens, json);
    }

    private static async Task<string> ExperimentAsync(TrackingService tracking) =>
        (await tracking.GetExperimentByNameAsync(Admin, "index")).ExperimentId;
}
