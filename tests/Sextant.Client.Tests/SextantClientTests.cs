using System.Net;
using Sextant.Contracts;

namespace Sextant.Client.Tests;

public sealed class SextantClientTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    [Fact]
    public async Task An_experiment_can_be_created_read_by_id_and_name_and_deleted()
    {
        using var client = fixture.CreateClient();

        var created = await client.CreateExperimentAsync("client-crud", new Dictionary<string, string> { ["team"] = "vision" });
        var byId = await client.GetExperimentAsync(created.ExperimentId);
        var byName = await client.GetExperimentByNameAsync("client-crud");
        await client.DeleteExperimentAsync(created.ExperimentId);
        var active = await client.SearchExperimentsAsync();

        Assert.Equal("client-crud", byId.Name);
        Assert.Contains(byId.Tags, t => t is { Key: "team", Value: "vision" });
        Assert.Equal(created.ExperimentId, byName?.ExperimentId);
        Assert.DoesNotContain(active.Experiments, e => e.ExperimentId == created.ExperimentId);
    }

    [Fact]
    public async Task Names_and_keys_with_slashes_and_escapes_are_found_through_their_escaped_path()
    {
        using var client = fixture.CreateClient();

        var created = await client.CreateExperimentAsync("team/vision 50% #1?");
        var byName = await client.GetExperimentByNameAsync("team/vision 50% #1?");
        var run = await client.CreateRunAsync(created.ExperimentId);
        await client.LogBatchAsync(run.Info.RunId, metrics: [new MetricInput("train/loss", 0.5, 1, 0), new MetricInput("train", 9, 1, 0)]);
        var history = await client.GetMetricHistoryAsync(run.Info.RunId, "train/loss");

        Assert.Equal(created.ExperimentId, byName?.ExperimentId);
        Assert.Equal(0.5, Assert.Single(history.Metrics).Value);
    }

    [Theory]
    [InlineData(".")]
    [InlineData("..")]
    public async Task An_experiment_named_like_a_dot_segment_is_found_by_name(string name)
    {
        using var client = fixture.CreateClient();
        var created = await client.CreateExperimentAsync(name);

        var byName = await client.GetExperimentByNameAsync(name);

        Assert.Equal(created.ExperimentId, byName?.ExperimentId);
    }

    [Fact]
    public async Task Ids_keys_and_artifact_paths_that_a_URL_would_resolve_as_dot_segments_are_refused_before_sending()
    {
        using var client = fixture.CreateClient();
        var experiment = await client.CreateExperimentAsync("client-dot-segments");
        var run = await client.CreateRunAsync(experiment.ExperimentId);

        var runId = await Assert.ThrowsAsync<ArgumentException>(() => client.GetRunAsync(".."));
        var key = await Assert.ThrowsAsync<ArgumentException>(() => client.GetMetricHistoryAsync(run.Info.RunId, ".."));
        var artifact = await Assert.ThrowsAsync<ArgumentException>(() => client.UploadArtifactAsync(run.Info.RunId, "../../../experiments/x", new MemoryStream([1])));

        Assert.Equal(["runId", "key", "artifactPath"], new[] { runId, key, artifact }.Select(e => e.ParamName));
        Assert.Contains("'..'", runId.Message);
    }

    [Fact]
    public async Task GetExperimentByName_returns_null_for_an_unknown_name()
    {
        using var client = fixture.CreateClient();

        Assert.Null(await client.GetExperimentByNameAsync("no-such-experiment"));
    }

    [Fact]
    public async Task SearchExperiments_pages_with_the_servers_token()
    {
        using var client = fixture.CreateClient();
        foreach (var name in new[] { "paged-a", "paged-b", "paged-c" })
        {
            await client.CreateExperimentAsync(name);
        }

        var first = await client.SearchExperimentsAsync("name LIKE 'paged-%'", maxResults: 2, orderBy: ["name ASC"]);
        var second = await client.SearchExperimentsAsync("name LIKE 'paged-%'", maxResults: 2, pageToken: first.NextPageToken, orderBy: ["name ASC"]);

        Assert.Equal(["paged-a", "paged-b"], first.Experiments.Select(e => e.Name));
        Assert.Equal(["paged-c"], second.Experiments.Select(e => e.Name));
        Assert.Null(second.NextPageToken);
    }

    [Fact]
    public async Task SearchRuns_with_a_filter_and_order_returns_only_the_matching_runs()
    {
        using var client = fixture.CreateClient();
        var experiment = await client.CreateExperimentAsync("client-search");
        foreach (var (name, accuracy) in new[] { ("low", 0.2), ("mid", 0.6), ("high", 0.9) })
        {
            var run = await client.CreateRunAsync(experiment.ExperimentId, name);
            await client.LogBatchAsync(run.Info.RunId, metrics: [new MetricInput("acc", accuracy, 1, 0)]);
        }

        var response = await client.SearchRunsAsync([experiment.ExperimentId], "metrics.acc > 0.5", ["metrics.acc DESC"]);

        Assert.Equal(["high", "mid"], response.Runs.Select(r => r.Info.RunName));
    }

    [Fact]
    public async Task An_unknown_run_is_a_SextantApiException_with_the_servers_404_code()
    {
        using var client = fixture.CreateClient();

        var error = await Assert.ThrowsAsync<SextantApiException>(() => client.GetRunAsync("0123456789abcdef0123456789abcdef"));

        Assert.Equal(HttpStatusCode.NotFound, error.StatusCode);
        Assert.Equal(ErrorCodes.ResourceDoesNotExist, error.ErrorCode);
        Assert.Contains("0123456789abcdef0123456789abcdef", error.Message);
    }

    [Fact]
    public async Task A_rejected_request_carries_the_servers_error_code_and_field()
    {
        using var client = fixture.CreateClient();
        var experiment = await client.CreateExperimentAsync("client-errors");
        var run = await client.CreateRunAsync(experiment.ExperimentId);
        var tooMany = Enumerable.Range(0, 1001).Select(i => new MetricInput("loss", i, 1, i)).ToList();

        var error = await Assert.ThrowsAsync<SextantApiException>(() => client.LogBatchAsync(run.Info.RunId, metrics: tooMany));
        var duplicate = await Assert.ThrowsAsync<SextantApiException>(() => client.CreateExperimentAsync("client-errors"));

        Assert.Equal(HttpStatusCode.BadRequest, error.StatusCode);
        Assert.Equal(ErrorCodes.InvalidParameterValue, error.ErrorCode);
        Assert.Equal("metrics", error.Field);
        Assert.Contains("1000", error.Message);
        Assert.Equal(ErrorCodes.ResourceAlreadyExists, duplicate.ErrorCode);
    }

    [Fact]
    public async Task A_caller_supplied_HttpClients_timeout_is_a_TimeoutException_and_the_callers_cancellation_is_not()
    {
        using var admin = fixture.CreateClient();
        var experiment = await admin.CreateExperimentAsync("client-http-timeout");
        var run = await admin.CreateRunAsync(experiment.ExperimentId);
        using var http = new HttpClient(new FaultInjectingHandler
        {
            OnLogBatch = async (_, cancellationToken) =>
            {
                await Task.Delay(TimeSpan.FromMinutes(1), cancellationToken);
                return null;
            },
        })
        {
            Timeout = TimeSpan.FromMilliseconds(500),
        };
        using var client = new SextantClient(fixture.Address, httpClient: http);

        var timeout = await Assert.ThrowsAsync<TimeoutException>(() => client.LogBatchAsync(run.Info.RunId, metrics: [new MetricInput("acc", 1, 1, 0)]));
        // Cancelled before the call: deterministic, whatever the machine's load (a timer racing the
        // HttpClient's own timeout was flaky under a loaded CI run).
        using var cancel = new CancellationTokenSource();
        await cancel.CancelAsync();
        var cancelled = await Assert.ThrowsAnyAsync<OperationCanceledException>(
            () => client.LogBatchAsync(run.Info.RunId, metrics: [new MetricInput("acc", 1, 1, 0)], cancellationToken: cancel.Token));

        Assert.Contains("HttpClient's Timeout of 0.5 s", timeout.Message);
        Assert.IsType<TimeoutException>(timeout.InnerException?.InnerException);
        Assert.False(cancelled.InnerException is TimeoutException);
    }

    [Fact]
    public async Task A_key_authenticates_until_it_is_revoked_then_gets_401()
    {
        using var admin = fixture.CreateClient();
        var created = await admin.CreateKeyAsync("client-test", "viewer");
        using var viewer = fixture.CreateClient(created.Secret);

        var identity = await viewer.WhoAmIAsync();
        await admin.RevokeKeyAsync(created.Key.KeyId);
        var error = await Assert.ThrowsAsync<SextantApiException>(() => viewer.WhoAmIAsync());

        Assert.Equal(("default", "viewer", false), (identity.Project, identity.Role, identity.Anonymous));
        Assert.Contains(await admin.ListKeysAsync(), k => k.KeyId == created.Key.KeyId && k.RevokedAt is not null);
        Assert.Equal(HttpStatusCode.Unauthorized, error.StatusCode);
        Assert.Equal(ErrorCodes.Unauthenticated, error.ErrorCode);
    }

    [Fact]
    public async Task A_viewer_key_cannot_create_experiments()
    {
        using var admin = fixture.CreateClient();
        var created = await admin.CreateKeyAsync("client-viewer", "viewer");
        using var viewer = fixture.CreateClient(created.Secret);

        var error = await Assert.ThrowsAsync<SextantApiException>(() => viewer.CreateExperimentAsync("viewer-made"));

        Assert.Equal(HttpStatusCode.Forbidden, error.StatusCode);
        Assert.Equal(ErrorCodes.PermissionDenied, error.ErrorCode);
    }

    [Fact]
    public void The_client_rejects_an_address_that_is_not_http()
    {
        var error = Assert.Throws<ArgumentException>(() => new SextantClient(new Uri("ftp://example.com")));

        Assert.Contains("http", error.Message);
    }
}
