using Sextant.Contracts;
using Sextant.Core.Projects;
using Sextant.Core.Storage;
using Sextant.Core.Tests.Storage;
using Sextant.Core.Tracking;

namespace Sextant.Core.Tests.Tracking;

/// <summary>The tracking store's behaviour, written once and run against every database engine.</summary>
public abstract class TrackingContractTests(DatabaseEngine engine) : IAsyncLifetime
{
    private TestDatabase _db = null!;
    private static readonly Caller Admin = TestDatabase.Admin;

    protected TrackingService Tracking => _db.Tracking;

    public async Task InitializeAsync() => _db = await TestDatabase.CreateAsync(engine);

    public async Task DisposeAsync() => await _db.DisposeAsync();

    private async Task<string> NewExperimentAsync(string name = "exp") =>
        await Tracking.CreateExperimentAsync(Admin, new CreateExperimentRequest(name));

    private async Task<string> NewRunAsync(string experimentId, string? name = null) =>
        (await Tracking.CreateRunAsync(Admin, new CreateRunRequest(experimentId, RunName: name))).Info.RunId;

    private Task LogAsync(string runId, MetricInput[]? metrics = null, KeyValueInput[]? parameters = null, KeyValueInput[]? tags = null) =>
        Tracking.LogBatchAsync(Admin, new LogBatchRequest(runId, metrics, parameters, tags));

    private static MetricInput M(string key, double value, long step = 0, long timestamp = 1) => new(key, value, timestamp, step);

    private static KeyValueInput P(string key, string value) => new(key, value);

    [Fact]
    public async Task Default_experiment_has_id_zero()
    {
        var experiment = await Tracking.GetExperimentAsync(Admin, "0");
        Assert.Equal("Default", experiment.Name);
        Assert.Equal("active", experiment.LifecycleStage);
    }

    [Fact]
    public async Task CreateExperiment_rejects_a_duplicate_name_even_when_deleted()
    {
        var id = await NewExperimentAsync("dup");
        var e = await Assert.ThrowsAsync<SextantException>(() => NewExperimentAsync("dup"));
        Assert.Equal(ErrorCodes.ResourceAlreadyExists, e.ErrorCode);
        await Tracking.DeleteExperimentAsync(Admin, id);
        e = await Assert.ThrowsAsync<SextantException>(() => NewExperimentAsync("dup"));
        Assert.Contains("deleted state", e.Message);
    }

    [Fact]
    public async Task Experiment_rename_delete_restore_and_tags_round_trip()
    {
        var id = await NewExperimentAsync("before");
        await Tracking.RenameExperimentAsync(Admin, id, "after");
        await Tracking.SetExperimentTagAsync(Admin, id, "team", "vision");
        var byName = await Tracking.GetExperimentByNameAsync(Admin, "after");
        Assert.Equal(id, byName.ExperimentId);
        Assert.Equal(new KeyValue("team", "vision"), Assert.Single(byName.Tags));
        var run = await NewRunAsync(id);
        await Tracking.DeleteExperimentAsync(Admin, id);
        Assert.Equal("deleted", (await Tracking.GetExperimentAsync(Admin, id)).LifecycleStage);
        Assert.Equal("deleted", (await Tracking.GetRunAsync(Admin, run)).Info.LifecycleStage);
        await Tracking.RestoreExperimentAsync(Admin, id);
        Assert.Equal("active", (await Tracking.GetRunAsync(Admin, run)).Info.LifecycleStage);
    }

    [Fact]
    public async Task SearchExperiments_filters_orders_and_pages()
    {
        for (var i = 0; i < 5; i++)
        {
            var id = await NewExperimentAsync($"search-{i}");
            await Tracking.SetExperimentTagAsync(Admin, id, "parity", i % 2 == 0 ? "even" : "odd");
        }
        var even = await Tracking.SearchExperimentsAsync(Admin, new SearchExperimentsRequest(Filter: "name LIKE 'search-%' AND tags.parity = 'even'", OrderBy: ["name DESC"]));
        Assert.Equal(["search-4", "search-2", "search-0"], even.Experiments.Select(e => e.Name));
        var names = new List<string>();
        string? token = null;
        do
        {
            var page = await Tracking.SearchExperimentsAsync(Admin, new SearchExperimentsRequest(MaxResults: 2, PageToken: token, Filter: "name LIKE 'search-%'", OrderBy: ["name"]));
            Assert.True(page.Experiments.Count <= 2);
            names.AddRange(page.Experiments.Select(e => e.Name));
            token = page.NextPageToken;
        }
        while (token is not null);
        Assert.Equal(Enumerable.Range(0, 5).Select(i => $"search-{i}"), names);
    }

    [Fact]
    public async Task CreateRun_generates_a_name_and_keeps_it_in_the_runName_tag()
    {
        var experiment = await NewExperimentAsync();
        var run = await Tracking.CreateRunAsync(Admin, new CreateRunRequest(experiment));
        Assert.Matches("^[a-z]+-[a-z]+-[0-9]+$", run.Info.RunName);
        Assert.Contains(new KeyValue("mlflow.runName", run.Info.RunName), run.Data.Tags);
        Assert.Equal($"mlflow-artifacts:/{experiment}/{run.Info.RunId}/artifacts", run.Info.ArtifactUri);
        await LogAsync(run.Info.RunId, tags: [P("mlflow.runName", "renamed")]);
        Assert.Equal("renamed", (await Tracking.GetRunAsync(Admin, run.Info.RunId)).Info.RunName);
    }

    [Fact]
    public async Task UpdateRun_sets_status_and_end_time_and_rejects_unknown_status()
    {
        var run = await NewRunAsync(await NewExperimentAsync());
        var info = await Tracking.UpdateRunAsync(Admin, new UpdateRunRequest(run, Status: "FINISHED", EndTime: 42));
        Assert.Equal(("FINISHED", 42L), (info.Status, info.EndTime!.Value));
        var e = await Assert.ThrowsAsync<SextantException>(() => Tracking.UpdateRunAsync(Admin, new UpdateRunRequest(run, Status: "DONE")));
        Assert.Equal("status", e.Field);
    }

    [Fact]
    public async Task Params_are_write_once_but_the_same_value_is_fine()
    {
        var run = await NewRunAsync(await NewExperimentAsync());
        await LogAsync(run, parameters: [P("lr", "0.1")]);
        await LogAsync(run, parameters: [P("lr", "0.1")]);
        var e = await Assert.ThrowsAsync<SextantException>(() => LogAsync(run, parameters: [P("lr", "0.2")]));
        Assert.Equal(ErrorCodes.InvalidParameterValue, e.ErrorCode);
        Assert.Contains("already logged with value='0.1'", e.Message);
    }

    [Fact]
    public async Task A_rejected_batch_writes_nothing()
    {
        var run = await NewRunAsync(await NewExperimentAsync());
        await LogAsync(run, parameters: [P("lr", "0.1")]);
        await Assert.ThrowsAsync<SextantException>(() =>
            LogAsync(run, metrics: [M("loss", 1)], parameters: [P("batch", "32"), P("lr", "0.5")], tags: [P("t", "v")]));
        var data = (await Tracking.GetRunAsync(Admin, run)).Data;
        Assert.Empty(data.Metrics);
        Assert.Equal(["lr"], data.Params.Select(p => p.Key));
        Assert.DoesNotContain(data.Tags, t => t.Key == "t");
    }

    [Fact]
    public async Task Metric_values_NaN_and_infinities_are_kept_exactly()
    {
        var run = await NewRunAsync(await NewExperimentAsync());
        await LogAsync(run, metrics: [M("a", double.NaN, 0), M("a", double.PositiveInfinity, 1), M("a", double.NegativeInfinity, 2), M("a", -0.000123456789012345, 3)]);
        var history = await Tracking.GetMetricHistoryAsync(Admin, run, "a", null, null);
        Assert.Equal([double.NaN, double.PositiveInfinity, double.NegativeInfinity, -0.000123456789012345], history.Metrics.Select(m => m.Value));
    }

    [Fact]
    public async Task Latest_metric_is_the_greatest_step_not_the_last_logged()
    {
        var run = await NewRunAsync(await NewExperimentAsync());
        await LogAsync(run, metrics: [M("acc", 0.9, step: 5)]);
        await LogAsync(run, metrics: [M("acc", 0.1, step: 2)]);
        Assert.Equal(0.9, Assert.Single((await Tracking.GetRunAsync(Admin, run)).Data.Metrics).Value);
    }

    [Fact]
    public async Task Metric_history_pages_in_step_order()
    {
        var run = await NewRunAsync(await NewExperimentAsync());
        await LogAsync(run, metrics: Enumerable.Range(0, 1000).Select(i => M("loss", i, step: 999 - i)).ToArray());
        var steps = new List<long>();
        string? token = null;
        do
        {
            var page = await Tracking.GetMetricHistoryAsync(Admin, run, "loss", 300, token);
            steps.AddRange(page.Metrics.Select(m => m.Step));
            token = page.NextPageToken;
        }
        while (token is not null);
        Assert.Equal(Enumerable.Range(0, 1000).Select(i => (long)i), steps);
    }

    [Fact]
    public async Task Concurrent_batches_are_all_committed()
    {
        var run = await NewRunAsync(await NewExperimentAsync());
        await Task.WhenAll(Enumerable.Range(0, 16).Select(b =>
            LogAsync(run, metrics: Enumerable.Range(0, 500).Select(i => M($"m{b % 4}", i, step: (b * 500) + i)).ToArray())));
        var total = 0;
        for (var k = 0; k < 4; k++)
        {
            total += (await Tracking.GetMetricHistoryAsync(Admin, run, $"m{k}", null, null)).Metrics.Count;
        }
        Assert.Equal(16 * 500, total);
    }

    [Fact]
    public async Task Logging_to_a_deleted_run_is_refused()
    {
        var run = await NewRunAsync(await NewExperimentAsync());
        await Tracking.DeleteRunAsync(Admin, run);
        var e = await Assert.ThrowsAsync<SextantException>(() => LogAsync(run, metrics: [M("x", 1)]));
        Assert.Contains("must be in the 'active' state", e.Message);
        await Tracking.RestoreRunAsync(Admin, run);
        await LogAsync(run, metrics: [M("x", 1)]);
    }

    [Fact]
    public async Task SearchRuns_filters_on_metrics_params_tags_attributes_and_datasets()
    {
        var experiment = await NewExperimentAsync();
        var runs = new List<string>();
        for (var i = 0; i < 6; i++)
        {
            var run = await NewRunAsync(experiment, $"run-{i}");
            runs.Add(run);
            await LogAsync(run, metrics: [M("acc", i / 10.0)], parameters: [P("model", i % 2 == 0 ? "x" : "y")], tags: [P("stage", i < 3 ? "dev" : "Prod")]);
        }
        await Tracking.LogInputsAsync(Admin, new LogInputsRequest(runs[5],
            [new DatasetInput([new KeyValue("mlflow.data.context", "training")], new Dataset("iris", "abc123", "local", "/data/iris.csv"))]));

        async Task<string[]> Names(string filter) =>
            (await Tracking.SearchRunsAsync(Admin, new SearchRunsRequest([experiment], filter, OrderBy: ["attributes.run_name"]))).Runs.Select(r => r.Info.RunName).ToArray();

        Assert.Equal(["run-4"], await Names("metrics.acc > 0.3 and params.model = 'x'"));
        Assert.Equal(["run-0", "run-1", "run-2"], await Names("metrics.acc <= 0.2"));
        Assert.Equal(["run-1", "run-3", "run-5"], await Names("params.model != 'x'"));
        Assert.Equal(["run-3", "run-4", "run-5"], await Names("tags.stage LIKE 'Pr%'"));
        Assert.Empty(await Names("tags.stage LIKE 'pr%'"));
        Assert.Equal(["run-3", "run-4", "run-5"], await Names("tags.stage ILIKE 'pr%'"));
        Assert.Equal(["run-0", "run-5"], await Names("attributes.run_name IN ('run-0', 'run-5')"));
        Assert.Equal(["run-1", "run-2", "run-3", "run-4", "run-5"], await Names("attributes.run_name NOT IN ('run-0')"));
        Assert.Equal(["run-5"], await Names("datasets.name = 'iris' and datasets.context = 'training'"));
        Assert.Equal(["run-2"], await Names($"attributes.run_id = '{runs[2]}'"));
        Assert.Equal(6, (await Names("attributes.status = 'RUNNING' and attributes.start_time > 0")).Length);
        Assert.Equal(["run-0"], await Names("tags.`mlflow.runName` = 'run-0'"));
    }

    [Fact]
    public async Task SearchRuns_orders_by_metric_with_missing_values_last_and_pages_without_gaps()
    {
        var experiment = await NewExperimentAsync();
        var expected = new List<string>();
        for (var i = 0; i < 25; i++)
        {
            var run = await NewRunAsync(experiment, $"r{i:00}");
            if (i % 5 != 0)
            {
                await LogAsync(run, metrics: [M("score", i % 7)]);
            }
        }
        var all = (await Tracking.SearchRunsAsync(Admin, new SearchRunsRequest([experiment], OrderBy: ["metrics.score DESC"]))).Runs;
        var scores = all.Select(r => r.Data.Metrics.Count > 0 ? r.Data.Metrics[0].Value : (double?)null).ToList();
        Assert.Equal(25, scores.Count);
        Assert.All(scores.TakeLast(5), s => Assert.Null(s));
        Assert.Equal(scores.Take(20).OrderDescending(), scores.Take(20));

        var paged = new List<string>();
        string? token = null;
        do
        {
            var page = await Tracking.SearchRunsAsync(Admin, new SearchRunsRequest([experiment], OrderBy: ["metrics.score DESC"], MaxResults: 4, PageToken: token));
            paged.AddRange(page.Runs.Select(r => r.Info.RunId));
            token = page.NextPageToken;
        }
        while (token is not null);
        Assert.Equal(all.Select(r => r.Info.RunId), paged);
    }

    [Fact]
    public async Task SearchRuns_view_type_selects_deleted_runs()
    {
        var experiment = await NewExperimentAsync();
        var kept = await NewRunAsync(experiment);
        var gone = await NewRunAsync(experiment);
        await Tracking.DeleteRunAsync(Admin, gone);
        async Task<string[]> Ids(string view) =>
            (await Tracking.SearchRunsAsync(Admin, new SearchRunsRequest([experiment], RunViewType: view))).Runs.Select(r => r.Info.RunId).Order().ToArray();
        Assert.Equal([kept], await Ids("ACTIVE_ONLY"));
        Assert.Equal([gone], await Ids("DELETED_ONLY"));
        Assert.Equal(new[] { kept, gone }.Order(), await Ids("ALL"));
    }

    [Fact]
    public async Task A_bad_filter_names_the_position()
    {
        var experiment = await NewExperimentAsync();
        var e = await Assert.ThrowsAsync<SextantException>(() =>
            Tracking.SearchRunsAsync(Admin, new SearchRunsRequest([experiment], "metrics.acc >")));
        Assert.Equal("filter", e.Field);
        Assert.Contains("position 13", e.Message);
    }

    [Fact]
    public async Task A_forged_page_token_is_a_400()
    {
        var experiment = await NewExperimentAsync();
        var e = await Assert.ThrowsAsync<SextantException>(() =>
            Tracking.SearchRunsAsync(Admin, new SearchRunsRequest([experiment], PageToken: "not-a-token")));
        Assert.Equal("page_token", e.Field);
    }

    [Fact]
    public async Task Projects_are_isolated_by_id_and_by_search()
    {
        var alice = await _db.CallerInNewProjectAsync("alice");
        var bob = await _db.CallerInNewProjectAsync("bob");
        var experiment = await Tracking.CreateExperimentAsync(alice, new CreateExperimentRequest("secret"));
        var run = (await Tracking.CreateRunAsync(alice, new CreateRunRequest(experiment))).Info.RunId;

        await Assert.ThrowsAsync<SextantException>(() => Tracking.GetExperimentAsync(bob, experiment));
        await Assert.ThrowsAsync<SextantException>(() => Tracking.GetExperimentByNameAsync(bob, "secret"));
        await Assert.ThrowsAsync<SextantException>(() => Tracking.GetRunAsync(bob, run));
        await Assert.ThrowsAsync<SextantException>(() => Tracking.LogBatchAsync(bob, new LogBatchRequest(run, [M("x", 1)])));
        Assert.Empty((await Tracking.SearchRunsAsync(bob, new SearchRunsRequest([experiment]))).Runs);
        Assert.DoesNotContain((await Tracking.SearchExperimentsAsync(bob, new SearchExperimentsRequest())).Experiments, e => e.Name == "secret");
        // The same name is free in another project.
        await Tracking.CreateExperimentAsync(bob, new CreateExperimentRequest("secret"));
    }

    [Fact]
    public async Task Experiment_zero_means_the_callers_own_default_experiment()
    {
        var other = await _db.CallerInNewProjectAsync("elsewhere");
        var run = await Tracking.CreateRunAsync(other, new CreateRunRequest("0"));
        var experiment = await Tracking.GetExperimentAsync(other, "0");
        Assert.Equal("Default", experiment.Name);
        Assert.Equal(experiment.ExperimentId, run.Info.ExperimentId);
        Assert.NotEqual("0", run.Info.ExperimentId);
        Assert.Single((await Tracking.SearchRunsAsync(other, new SearchRunsRequest(["0"]))).Runs);
        Assert.DoesNotContain((await Tracking.SearchRunsAsync(Admin, new SearchRunsRequest(["0"]))).Runs, r => r.Info.RunId == run.Info.RunId);
    }

    [Fact]
    public async Task Like_patterns_treat_backslashes_literally_on_every_engine()
    {
        var experiment = await NewExperimentAsync();
        var run = await NewRunAsync(experiment, "paths");
        await LogAsync(run, tags: [P("path", "C:\\data\\x_1"), P("plain", "a%b")]);
        async Task<int> Count(string filter) => (await Tracking.SearchRunsAsync(Admin, new SearchRunsRequest([experiment], filter))).Runs.Count;
        Assert.Equal(1, await Count("tags.path LIKE 'C:\\%'"));
        Assert.Equal(1, await Count("tags.path ILIKE 'c:\\data\\%'"));
        Assert.Equal(1, await Count("tags.plain LIKE 'a%'"));
        Assert.Equal(0, await Count("tags.path LIKE 'C:\\'"));
    }

    [Fact]
    public async Task Concurrent_creation_of_one_experiment_name_yields_one_winner_and_already_exists()
    {
        var results = await Task.WhenAll(Enumerable.Range(0, 8).Select(async _ =>
        {
            try
            {
                await Tracking.CreateExperimentAsync(Admin, new CreateExperimentRequest("race"));
                return "created";
            }
            catch (SextantException e)
            {
                return e.ErrorCode;
            }
        }));
        Assert.Equal(1, results.Count(r => r == "created"));
        Assert.All(results.Where(r => r != "created"), r => Assert.Equal(ErrorCodes.ResourceAlreadyExists, r));
    }

    [Fact]
    public async Task A_viewer_cannot_write()
    {
        var viewer = await _db.CallerInNewProjectAsync("readers", Role.Viewer);
        var e = await Assert.ThrowsAsync<SextantException>(() => Tracking.CreateExperimentAsync(viewer, new CreateExperimentRequest("nope")));
        Assert.Equal(ErrorCodes.PermissionDenied, e.ErrorCode);
        Assert.Equal(403, e.StatusCode);
    }

    [Fact]
    public async Task Metric_series_are_in_step_order_sampled_with_extremes_and_keep_NaN()
    {
        var exp = await NewExperimentAsync();
        var a = await NewRunAsync(exp);
        var b = await NewRunAsync(exp);
        // 3,000 points with one spike at step 1,234 and a NaN at step 10.
        await LogAsync(a, metrics: Enumerable.Range(0, 1000).Select(i => M("loss", i == 1234 % 1000 ? 0 : 1, step: i)).ToArray());
        await LogAsync(a, metrics: Enumerable.Range(1000, 1000).Select(i => M("loss", i == 1234 ? 99 : 1, step: i)).ToArray());
        await LogAsync(a, metrics: Enumerable.Range(2000, 1000).Select(i => M("loss", 1, step: i)).ToArray());
        await LogAsync(b, metrics: [M("loss", 5, step: 1), M("loss", double.NaN, step: 10), M("loss", 4, step: 20)]);

        var series = await Tracking.MetricSeriesAsync(Admin, [a, b], "loss", 100);
        Assert.Equal([a, b], series.Select(s => s.RunId));
        var sampled = series[0];
        Assert.Equal(3000, sampled.TotalPoints);
        Assert.InRange(sampled.Points.Count, 3, 100);
        Assert.Equal(sampled.Points.OrderBy(p => p.Step).Select(p => p.Step), sampled.Points.Select(p => p.Step));
        Assert.Contains(sampled.Points, p => p.Step == 1234 && p.Value == 99);
        Assert.Contains(sampled.Points, p => p.Step == 234 && p.Value == 0);
        Assert.Equal(2999, sampled.Points[^1].Step);
        Assert.Equal([5, double.NaN, 4], series[1].Points.Select(p => p.Value));

        var e = await Assert.ThrowsAsync<SextantException>(() => Tracking.MetricSeriesAsync(Admin, ["0123456789abcdef0123456789abcdef"], "loss", 100));
        Assert.Equal(404, e.StatusCode);
    }

    [Fact]
    public async Task Experiment_stats_count_active_runs_and_run_keys_list_what_recent_runs_logged()
    {
        var exp = await NewExperimentAsync();
        var empty = await NewExperimentAsync("empty");
        var first = await NewRunAsync(exp);
        var second = await NewRunAsync(exp);
        await LogAsync(first, metrics: [M("acc", 1)], parameters: [P("lr", "0.1")], tags: [P("team", "x")]);
        await LogAsync(second, metrics: [M("loss", 1)]);
        await Tracking.DeleteRunAsync(Admin, second);

        var stats = await Tracking.ExperimentStatsAsync(Admin, [exp, empty, "not-a-number"]);
        Assert.Equal(1, stats[exp].Runs);
        Assert.NotNull(stats[exp].LastActivity);
        Assert.False(stats.ContainsKey(empty));

        var keys = await Tracking.RunKeysAsync(Admin, exp);
        Assert.Equal(["acc", "loss"], keys.Metrics);
        Assert.Equal(["lr"], keys.Params);
        Assert.Contains("team", keys.Tags);
        Assert.Equal($"{exp}/{first}/artifacts", await Tracking.RunArtifactRootAsync(Admin, first));
    }

    [Fact]
    public async Task Api_keys_authenticate_until_revoked()
    {
        var created = await _db.Projects.CreateKeyAsync(1, "ci", "editor");
        var caller = await _db.Projects.AuthenticateAsync(created.Secret);
        Assert.Equal((ProjectService.DefaultProject, Role.Editor), (caller!.ProjectName, caller.Role));
        Assert.Null(await _db.Projects.AuthenticateAsync(created.Secret + "x"));
        await _db.Projects.RevokeKeyAsync(null, created.Key.KeyId);
        Assert.Null(await _db.Projects.AuthenticateAsync(created.Secret));
        Assert.DoesNotContain(created.Secret, string.Join(",", (await _db.Projects.ListKeysAsync(null)).Select(k => k.ToString())));
    }
}

public sealed class SqliteTrackingContractTests() : TrackingContractTests(DatabaseEngine.Sqlite);

public sealed class PostgresTrackingContractTests() : TrackingContractTests(DatabaseEngine.Postgres);
