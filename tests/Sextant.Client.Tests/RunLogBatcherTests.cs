using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using Sextant.Server;

namespace Sextant.Client.Tests;

/// <summary>How a run's background batches get through a server that is down, busy or slow.</summary>
public sealed class RunLogBatcherTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    [Fact]
    public async Task Metrics_logged_while_the_server_is_down_all_arrive_after_it_restarts()
    {
        var dataDirectory = Directory.CreateTempSubdirectory("sextant-client-restart-").FullName;
        SextantServer? server = await SextantServer.StartAsync(new SextantServerOptions { Port = 0, DataDirectory = dataDirectory });
        try
        {
            var address = server.Address;
            using var client = new SextantClient(address);
            string runId;
            await using (var run = await client.StartRunAsync("run-outage", options: new SextantRunOptions { FlushInterval = TimeSpan.FromMilliseconds(50) }))
            {
                runId = run.RunId;
                run.LogMetric("loss", 0, step: 0);
                await run.FlushAsync();
                await server.DisposeAsync();
                server = null;

                for (var step = 1; step <= 2500; step++)
                {
                    run.LogMetric("loss", step, step);
                }
                // Long enough for several sends to fail against the closed port and back off.
                await Task.Delay(TimeSpan.FromSeconds(1.5));
                server = await SextantServer.StartAsync(new SextantServerOptions { Port = address.Port, DataDirectory = dataDirectory });
            }

            var history = await client.GetFullMetricHistoryAsync(runId, "loss").ToListAsync();
            var stored = await client.GetRunAsync(runId);

            Assert.Equal(Enumerable.Range(0, 2501).Select(i => (long)i), history.Select(m => m.Step));
            Assert.Equal("FINISHED", stored.Info.Status);
        }
        finally
        {
            if (server is not null)
            {
                await server.DisposeAsync();
            }
            Directory.Delete(dataDirectory, recursive: true);
        }
    }

    [Fact]
    public async Task A_503_with_Retry_After_is_sent_again_after_the_wait_the_server_asked_for()
    {
        var attempts = new List<TimeSpan>();
        var clock = Stopwatch.StartNew();
        using var http = new HttpClient(new FaultInjectingHandler
        {
            OnLogBatch = _ =>
            {
                lock (attempts)
                {
                    attempts.Add(clock.Elapsed);
                    return Task.FromResult<HttpResponseMessage?>(attempts.Count == 1 ? Busy(TimeSpan.FromSeconds(1)) : null);
                }
            },
        });
        using var client = new SextantClient(fixture.Address, httpClient: http);
        await using var run = await client.StartRunAsync("run-busy");

        run.LogMetric("acc", 0.5);
        await run.FlushAsync();
        var stored = await client.GetRunAsync(run.RunId);

        Assert.Equal(2, attempts.Count);
        // Without Retry-After the first backoff is at most 250 ms.
        Assert.True(attempts[1] - attempts[0] >= TimeSpan.FromSeconds(0.95), $"Sent again after {(attempts[1] - attempts[0]).TotalMilliseconds:0} ms.");
        Assert.Equal(0.5, Assert.Single(stored.Data.Metrics).Value);
    }

    [Fact]
    public async Task Batches_still_failing_after_MaxRetryDuration_are_given_up_counted_and_later_ones_tried_once()
    {
        var attemptsByKey = new Dictionary<string, int>();
        using var http = new HttpClient(new FaultInjectingHandler
        {
            OnLogBatch = async request =>
            {
                var body = await request.Content!.ReadAsStringAsync();
                lock (attemptsByKey)
                {
                    foreach (var key in new[] { "a", "b", "c" }.Where(k => body.Contains($"\"key\":\"{k}\"", StringComparison.Ordinal)))
                    {
                        attemptsByKey[key] = attemptsByKey.GetValueOrDefault(key) + 1;
                    }
                }
                return new HttpResponseMessage(HttpStatusCode.BadGateway) { Content = new StringContent("<html>bad gateway</html>") };
            },
        });
        using var client = new SextantClient(fixture.Address, httpClient: http);
        var options = new SextantRunOptions { MaxRetryDuration = TimeSpan.FromSeconds(1), MaxMetricsPerBatch = 1, FlushInterval = TimeSpan.FromHours(1) };
        await using var run = await client.StartRunAsync("run-gateway", options: options);

        run.LogMetric("a", 1);
        run.LogMetric("b", 2);
        run.LogMetric("c", 3);
        var clock = Stopwatch.StartNew();
        var error = await Assert.ThrowsAsync<SextantSendException>(() => run.FlushAsync());

        Assert.Equal((3, 3L), (error.FailedBatches, error.FailedItems));
        Assert.Equal(HttpStatusCode.BadGateway, Assert.IsType<SextantApiException>(error.InnerException).StatusCode);
        Assert.True(clock.Elapsed >= TimeSpan.FromSeconds(0.95), $"Gave up after {clock.Elapsed.TotalMilliseconds:0} ms.");
        Assert.True(attemptsByKey["a"] >= 2, $"The first batch was sent {attemptsByKey["a"]} times.");
        Assert.Equal((1, 1), (attemptsByKey["b"], attemptsByKey["c"]));
    }

    [Fact]
    public async Task Past_MaxBufferedItems_LogMetric_waits_until_the_server_has_taken_the_batches_in_flight()
    {
        var arrived = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var http = new HttpClient(new FaultInjectingHandler
        {
            OnLogBatch = async _ =>
            {
                arrived.TrySetResult();
                await release.Task;
                return null;
            },
        });
        using var client = new SextantClient(fixture.Address, httpClient: http);
        var options = new SextantRunOptions { MaxBufferedItems = 3, FlushInterval = TimeSpan.FromMilliseconds(20) };
        await using var run = await client.StartRunAsync("run-backpressure", options: options);

        for (var step = 0; step < 3; step++)
        {
            run.LogMetric("loss", step, step);
        }
        await arrived.Task.WaitAsync(TimeSpan.FromSeconds(30));
        var fourth = Task.Run(() => run.LogMetric("loss", 3, 3));
        await Task.Delay(300);
        var waitedWhileFull = !fourth.IsCompleted;
        release.SetResult();
        await fourth.WaitAsync(TimeSpan.FromSeconds(30));
        await run.FlushAsync();
        var history = await client.GetMetricHistoryAsync(run.RunId, "loss");

        Assert.True(waitedWhileFull);
        Assert.Equal([0L, 1, 2, 3], history.Metrics.Select(m => m.Step));
    }

    private static HttpResponseMessage Busy(TimeSpan retryAfter) => new(HttpStatusCode.ServiceUnavailable)
    {
        Headers = { RetryAfter = new RetryConditionHeaderValue(retryAfter) },
        Content = new StringContent("""{"error_code":"TEMPORARILY_UNAVAILABLE","message":"The write queue is full."}""", Encoding.UTF8, "application/json"),
    };
}
