using System.Security.Cryptography;
using Sextant.Contracts;

namespace Sextant.Client.Tests;

public sealed class SextantRunTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    [Fact]
    public async Task Disposing_a_run_sends_everything_logged_from_many_threads_and_ends_it_FINISHED()
    {
        using var client = fixture.CreateClient();
        string runId;
        await using (var run = await client.StartRunAsync("run-everything", "all-in"))
        {
            runId = run.RunId;
            // 150 params and tags: more than the 100 a single request may carry.
            for (var i = 0; i < 150; i++)
            {
                run.LogParam($"p{i:000}", i.ToString(System.Globalization.CultureInfo.InvariantCulture));
                run.SetTag($"t{i:000}", "x");
            }
            Parallel.For(0, 2500, new ParallelOptions { MaxDegreeOfParallelism = 4 }, step => run.LogMetric("loss", 1.0 / (step + 1), step));
        }

        var stored = await client.GetRunAsync(runId);
        var firstPage = await client.GetMetricHistoryAsync(runId, "loss", maxResults: 1000);
        var history = await client.GetFullMetricHistoryAsync(runId, "loss", pageSize: 1000).ToListAsync();

        Assert.Equal("FINISHED", stored.Info.Status);
        Assert.NotNull(stored.Info.EndTime);
        Assert.Equal(150, stored.Data.Params.Count);
        Assert.Equal(150, stored.Data.Tags.Count(t => t.Key.StartsWith('t')));
        Assert.NotNull(firstPage.NextPageToken);
        Assert.Equal(2500, history.Count);
        Assert.Equal(Enumerable.Range(0, 2500).Select(i => (long)i), history.Select(m => m.Step));
    }

    [Fact]
    public async Task StartRunAsync_creates_a_missing_experiment_and_reuses_an_existing_one()
    {
        using var client = fixture.CreateClient();

        string first, second;
        await using (var run = await client.StartRunAsync("run-reuse"))
        {
            first = run.ExperimentId;
        }
        await using (var run = await client.StartRunAsync("run-reuse"))
        {
            second = run.ExperimentId;
        }

        Assert.Equal(first, second);
        Assert.Equal("run-reuse", (await client.GetExperimentAsync(first)).Name);
    }

    [Fact]
    public async Task Logged_values_are_sent_in_the_background_without_a_flush()
    {
        using var client = fixture.CreateClient();
        await using var run = await client.StartRunAsync("run-background", options: new SextantRunOptions { FlushInterval = TimeSpan.FromMilliseconds(50) });

        run.LogMetric("acc", 0.75);
        var deadline = DateTime.UtcNow.AddSeconds(10);
        Run stored;
        do
        {
            await Task.Delay(50);
            stored = await client.GetRunAsync(run.RunId);
        }
        while (stored.Data.Metrics.Count == 0 && DateTime.UtcNow < deadline);

        Assert.Equal(0.75, Assert.Single(stored.Data.Metrics).Value);
    }

    [Fact]
    public async Task A_run_disposed_while_an_exception_escapes_ends_FAILED()
    {
        using var client = fixture.CreateClient();
        string? runId = null;

        async Task TrainAsync()
        {
            await using var run = await client.StartRunAsync("run-failures", "crashes");
            runId = run.RunId;
            run.LogMetric("loss", 1.0);
            await Task.Yield();
            throw new InvalidOperationException("diverged");
        }

        var error = await Assert.ThrowsAsync<InvalidOperationException>(TrainAsync);
        var stored = await client.GetRunAsync(runId!);

        Assert.Equal("diverged", error.Message);
        Assert.Equal("FAILED", stored.Info.Status);
        Assert.Single(stored.Data.Metrics);
    }

    [Fact]
    public async Task An_exception_handled_before_the_last_log_call_leaves_the_run_FINISHED()
    {
        using var client = fixture.CreateClient();
        string runId;

        await using (var run = await client.StartRunAsync("run-failures", "recovers"))
        {
            runId = run.RunId;
            try
            {
                await Task.Yield();
                throw new TimeoutException("retry me");
            }
            catch (TimeoutException)
            {
                run.SetTag("retried", "true");
            }
        }

        Assert.Equal("FINISHED", (await client.GetRunAsync(runId)).Info.Status);
    }

    [Fact]
    public async Task Fail_ends_the_run_FAILED_without_an_exception()
    {
        using var client = fixture.CreateClient();
        string runId;

        await using (var run = await client.StartRunAsync("run-failures", "gave-up"))
        {
            runId = run.RunId;
            run.Fail();
        }

        Assert.Equal("FAILED", (await client.GetRunAsync(runId)).Info.Status);
    }

    [Fact]
    public async Task A_batch_the_server_rejects_is_thrown_from_the_next_FlushAsync_once_and_spares_the_metrics_logged_with_it()
    {
        using var client = fixture.CreateClient();
        await using var run = await client.StartRunAsync("run-rejected", options: new SextantRunOptions { FlushInterval = TimeSpan.FromHours(1) });
        // Another process logs the param first: the conflict is only visible on the server.
        await client.LogBatchAsync(run.RunId, parameters: [new KeyValueInput("lr", "0.1")]);

        run.LogParam("lr", "0.2");
        run.LogMetric("acc", 0.5);
        run.SetTag("phase", "warmup");
        var error = await Assert.ThrowsAsync<SextantSendException>(() => run.FlushAsync());
        run.LogMetric("after", 1);
        await run.FlushAsync();
        var stored = await client.GetRunAsync(run.RunId);

        Assert.Equal((1, 1L), (error.FailedBatches, error.FailedItems));
        var rejected = Assert.IsType<SextantApiException>(error.InnerException);
        Assert.Equal(ErrorCodes.InvalidParameterValue, rejected.ErrorCode);
        Assert.Equal("params", rejected.Field);
        Assert.Contains(rejected.Message, error.Message);
        Assert.Equal(["acc", "after"], stored.Data.Metrics.Select(m => m.Key).Order());
        Assert.Contains(stored.Data.Tags, t => t is { Key: "phase", Value: "warmup" });
        Assert.Equal("0.1", Assert.Single(stored.Data.Params).Value);
    }

    [Fact]
    public async Task DisposeAsync_throws_the_send_failures_that_no_flush_reported_with_their_count_and_still_ends_the_run()
    {
        using var client = fixture.CreateClient();
        var run = await client.StartRunAsync("run-rejected", options: new SextantRunOptions { MaxParamsPerBatch = 1 });
        await client.LogBatchAsync(run.RunId, parameters: [new KeyValueInput("lr", "0.1"), new KeyValueInput("depth", "3")]);
        run.LogParam("lr", "0.3");
        run.LogParam("depth", "4");
        run.LogParam("width", "64");

        var error = await Assert.ThrowsAsync<SextantSendException>(() => run.DisposeAsync().AsTask());
        var stored = await client.GetRunAsync(run.RunId);

        Assert.Equal((2, 2L), (error.FailedBatches, error.FailedItems));
        Assert.Contains("2 batches", error.Message);
        Assert.Equal("params", Assert.IsType<SextantApiException>(error.InnerException).Field);
        Assert.Equal("FINISHED", stored.Info.Status);
        Assert.Contains(stored.Data.Params, p => p is { Key: "width", Value: "64" });
    }

    [Theory]
    [InlineData("loss@1")]
    [InlineData("/loss")]
    [InlineData("train/../loss")]
    [InlineData("train/./loss")]
    [InlineData("loss<NUL>")]
    public async Task An_invalid_metric_key_throws_at_LogMetric_and_the_other_metrics_of_the_window_arrive(string key)
    {
        key = key.Replace("<NUL>", "\0", StringComparison.Ordinal); // a real NUL would break test reports
        using var client = fixture.CreateClient();
        await using var run = await client.StartRunAsync("run-validation", options: new SextantRunOptions { FlushInterval = TimeSpan.FromHours(1) });

        run.LogMetric("loss", 0.9, step: 0);
        var error = Assert.Throws<ArgumentException>(() => run.LogMetric(key, 1.0));
        run.LogMetric("loss", 0.8, step: 1);
        await run.FlushAsync();

        Assert.Equal("key", error.ParamName);
        Assert.Contains("metric key", error.Message);
        Assert.Equal([0.9, 0.8], (await client.GetMetricHistoryAsync(run.RunId, "loss")).Metrics.Select(m => m.Value));
    }

    [Fact]
    public async Task Keys_and_values_past_the_servers_limits_throw_at_the_call_naming_the_argument()
    {
        using var client = fixture.CreateClient();
        await using var run = await client.StartRunAsync("run-validation");
        var longest = new string('k', 250);

        run.LogMetric(longest, 1);
        run.LogParam("p", new string('v', 6000));
        run.SetTag("t", new string('v', 5000));
        var errors = new[]
        {
            Assert.Throws<ArgumentException>(() => run.LogMetric(longest + "k", 1)),
            Assert.Throws<ArgumentException>(() => run.LogParam("q", new string('v', 6001))),
            Assert.Throws<ArgumentException>(() => run.SetTag("u", new string('v', 5001))),
            Assert.Throws<ArgumentException>(() => run.SetTag("u", "a\0b")),
            Assert.Throws<ArgumentException>(() => run.SetTag("bad key!", "x")),
        };
        await run.FlushAsync();
        var stored = await client.GetRunAsync(run.RunId);

        Assert.Equal(["key", "value", "value", "value", "key"], errors.Select(e => e.ParamName));
        Assert.Contains("251 characters long; the limit is 250", errors[0].Message);
        Assert.Contains("6001 characters long; the limit is 6000", errors[1].Message);
        Assert.Contains("5001 characters long; the limit is 5000", errors[2].Message);
        Assert.Contains("NUL", errors[3].Message);
        Assert.Contains("'bad key!'", errors[4].Message);
        Assert.Equal(longest, Assert.Single(stored.Data.Metrics).Key);
        Assert.Equal(6000, Assert.Single(stored.Data.Params).Value.Length);
        Assert.Contains(stored.Data.Tags, t => t.Key == "t" && t.Value.Length == 5000);
    }

    [Fact]
    public async Task A_param_logged_again_with_another_value_throws_at_LogParam_and_the_same_value_is_accepted()
    {
        using var client = fixture.CreateClient();
        await using var run = await client.StartRunAsync("run-validation");

        run.LogParam("lr", "0.1");
        run.LogParam("lr", "0.1");
        var error = Assert.Throws<ArgumentException>(() => run.LogParam("lr", "0.2"));
        await run.FlushAsync();

        Assert.Equal("value", error.ParamName);
        Assert.Contains("'lr'", error.Message);
        Assert.Contains("'0.1'", error.Message);
        Assert.Equal("0.1", Assert.Single((await client.GetRunAsync(run.RunId)).Data.Params).Value);
    }

    [Fact]
    public async Task A_param_whose_batch_was_given_up_can_be_logged_again_and_arrives_once_per_send()
    {
        var failing = true;
        var lrPerRequest = new List<int>();
        using var http = new HttpClient(new FaultInjectingHandler
        {
            OnLogBatch = async (request, cancellationToken) =>
            {
                var body = await request.Content!.ReadAsStringAsync(cancellationToken);
                lock (lrPerRequest)
                {
                    lrPerRequest.Add(body.Split("\"key\":\"lr\"").Length - 1);
                }
                return Volatile.Read(ref failing) ? new HttpResponseMessage(System.Net.HttpStatusCode.BadGateway) : null;
            },
        });
        using var client = new SextantClient(fixture.Address, httpClient: http);
        var options = new SextantRunOptions { MaxRetryDuration = TimeSpan.FromMilliseconds(300), FlushInterval = TimeSpan.FromHours(1) };
        await using var run = await client.StartRunAsync("run-param-retry", options: options);

        run.LogParam("lr", "0.1");
        // The same value while the first is still waiting is not sent again.
        run.LogParam("lr", "0.1");
        var error = await Assert.ThrowsAsync<SextantSendException>(() => run.FlushAsync());
        Volatile.Write(ref failing, false);
        run.LogParam("lr", "0.1");
        await run.FlushAsync();
        var stored = await client.GetRunAsync(run.RunId);

        Assert.Equal(1, error.FailedItems);
        Assert.True(lrPerRequest.Count >= 2, $"Sent {lrPerRequest.Count} times.");
        Assert.All(lrPerRequest, count => Assert.Equal(1, count));
        Assert.Equal("0.1", Assert.Single(stored.Data.Params, p => p.Key == "lr").Value);
    }

    [Fact]
    public async Task Logging_after_dispose_throws_ObjectDisposedException()
    {
        using var client = fixture.CreateClient();
        var run = await client.StartRunAsync("run-disposed");
        await run.DisposeAsync();

        Assert.Throws<ObjectDisposedException>(() => run.LogMetric("late", 1));
    }

    [Fact]
    public async Task Artifacts_from_a_file_a_folder_and_a_stream_are_listed_and_download_byte_identical()
    {
        using var client = fixture.CreateClient();
        var folder = Directory.CreateTempSubdirectory("sextant-artifacts-");
        var model = RandomNumberGenerator.GetBytes(3 * 1024 * 1024 + 17);
        var blob = RandomNumberGenerator.GetBytes(100_000);
        await File.WriteAllBytesAsync(Path.Combine(folder.FullName, "model.bin"), model);
        Directory.CreateDirectory(Path.Combine(folder.FullName, "plots", "2d"));
        await File.WriteAllTextAsync(Path.Combine(folder.FullName, "plots", "2d", "loss.svg"), "<svg/>");
        string runId;
        try
        {
            await using var run = await client.StartRunAsync("run-artifacts");
            runId = run.RunId;
            await run.LogArtifactAsync(Path.Combine(folder.FullName, "model.bin"));
            await run.LogArtifactAsync(Path.Combine(folder.FullName, "plots"), "figures");
            await run.LogArtifactAsync(new MemoryStream(blob), "data/blob.bin");
        }
        finally
        {
            folder.Delete(recursive: true);
        }

        var root = await client.ListArtifactsAsync(runId);
        var data = await client.ListArtifactsAsync(runId, "data");
        var figures = await client.ListArtifactsAsync(runId, "figures/2d");
        var downloadedModel = new MemoryStream();
        var modelBytes = await client.DownloadArtifactAsync(runId, "model.bin", downloadedModel);
        var downloadedBlob = new MemoryStream();
        await client.DownloadArtifactAsync(runId, "data/blob.bin", downloadedBlob);

        Assert.Contains(root.Files, f => f is { Path: "model.bin", IsDir: false } && f.FileSize == model.Length);
        Assert.Contains(root.Files, f => f is { Path: "data", IsDir: true });
        Assert.Equal(["data/blob.bin"], data.Files.Select(f => f.Path));
        Assert.Equal(["figures/2d/loss.svg"], figures.Files.Select(f => f.Path));
        Assert.Equal(model.Length, modelBytes);
        Assert.Equal(model, downloadedModel.ToArray());
        Assert.Equal(blob, downloadedBlob.ToArray());
    }

    [Fact]
    public async Task LogArtifactAsync_leaves_the_callers_stream_open_where_it_stopped_reading()
    {
        using var client = fixture.CreateClient();
        await using var run = await client.StartRunAsync("run-artifacts");
        var bytes = RandomNumberGenerator.GetBytes(10_000);
        using var content = new MemoryStream(bytes);
        content.Position = 100;

        await run.LogArtifactAsync(content, "from-100.bin");
        var positionAfter = content.Position;
        content.Position = 0;
        var reread = new byte[bytes.Length];
        content.ReadExactly(reread);
        var downloaded = new MemoryStream();
        await client.DownloadArtifactAsync(run.RunId, "from-100.bin", downloaded);

        Assert.Equal(bytes.Length, positionAfter);
        Assert.Equal(bytes, reread);
        Assert.Equal(bytes[100..], downloaded.ToArray());
    }

    [Fact]
    public async Task Downloading_a_missing_artifact_is_a_404_SextantApiException()
    {
        using var client = fixture.CreateClient();
        await using var run = await client.StartRunAsync("run-artifacts");

        var error = await Assert.ThrowsAsync<SextantApiException>(() => client.DownloadArtifactAsync(run.RunId, "nothing/here.txt", Stream.Null));

        Assert.Equal(ErrorCodes.ResourceDoesNotExist, error.ErrorCode);
    }

    [Fact]
    public async Task Run_options_below_one_are_rejected_before_anything_is_created()
    {
        using var client = fixture.CreateClient();

        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => client.StartRunAsync("run-options", options: new SextantRunOptions { MaxMetricsPerBatch = 0 }));

        Assert.Null(await client.GetExperimentByNameAsync("run-options"));
    }
}
