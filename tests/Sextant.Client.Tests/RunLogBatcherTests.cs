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
    public async Task A_batch_whose_answer_was_lost_after_the_commit_is_retried_and_stored_once()
    {
        // A proxy that lets the first log-batch reach the server, then answers 504 as if the reply timed out.
        var keys = new List<string>();
        using var http = new HttpClient(new LostAnswerHandler(keys));
        using var client = new SextantClient(fixture.Address, httpClient: http);
        await using var run = await client.StartRunAsync("run-lost-answer");

        for (var step = 0; step < 50; step++)
        {
            run.LogMetric("loss", 1.0 / (step + 1), step);
        }
        await run.FlushAsync();
        var history = await client.GetMetricHistoryAsync(run.RunId, "loss");

        Assert.True(keys.Count >= 2, $"{keys.Count} log-batch requests were sent.");
        Assert.Equal(keys[0], keys[1]);
        Assert.Equal(50, history.Metrics.Count);
    }

    private sealed class LostAnswerHandler(List<string> keys) : DelegatingHandler(new SocketsHttpHandler())
    {
        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            var response = await base.SendAsync(request, cancellationToken);
            if (!request.RequestUri!.AbsolutePath.EndsWith("/log-batch", StringComparison.Ordinal))
            {
                return response;
            }
            int count;
            lock (keys)
            {
                keys.Add(request.Headers.GetValues("Idempotency-Key").Single());
                count = keys.Count;
            }
            if (count > 1)
            {
                return response;
            }
            response.Dispose();
            return new HttpResponseMessage(System.Net.HttpStatusCode.GatewayTimeout) { RequestMessage = request };
        }
    }

    [Fact]
    public async Task A_503_with_Retry_After_is_sent_again_after_the_wait_the_server_asked_for()
    {
        var attempts = new List<TimeSpan>();
        var clock = Stopwatch.StartNew();
        using var http = new HttpClient(new FaultInjectingHandler
        {
            OnLogBatch = (_, _) =>
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
            OnLogBatch = async (request, cancellationToken) =>
            {
                var body = await request.Content!.ReadAsStringAsync(cancellationToken);
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
            OnLogBatch = async (_, _) =>
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

    [Fact]
    public async Task Params_too_large_together_for_one_request_are_split_by_size_and_all_arrive()
    {
        var bodySizes = new List<long>();
        using var http = new HttpClient(new FaultInjectingHandler
        {
            OnLogBatch = async (request, cancellationToken) =>
            {
                var body = await request.Content!.ReadAsByteArrayAsync(cancellationToken);
                lock (bodySizes)
                {
                    bodySizes.Add(body.Length);
                }
                return null;
            },
        });
        using var client = new SextantClient(fixture.Address, httpClient: http);
        // JSON escapes each CJK character as \uXXXX: 36,000 bytes a value, 3.6 MB in all, past the server's 1 MiB.
        var value = string.Concat(Enumerable.Repeat("\u6A21\u578B\u53C2\u6570", 1500));
        string runId;
        await using (var run = await client.StartRunAsync("run-large-params"))
        {
            runId = run.RunId;
            for (var i = 0; i < 100; i++)
            {
                run.LogParam($"p{i:000}", value);
            }
        }
        var stored = await client.GetRunAsync(runId);

        Assert.True(bodySizes.Count > 1, $"Sent in {bodySizes.Count} request.");
        Assert.All(bodySizes, size => Assert.True(size < 900_000, $"A request of {size} bytes."));
        Assert.Equal(100, stored.Data.Params.Count);
        Assert.All(stored.Data.Params, p => Assert.Equal(value, p.Value));
    }

    [Fact]
    public async Task A_value_larger_than_MaxBatchBytes_is_sent_in_a_request_of_its_own()
    {
        var itemsPerRequest = new List<int>();
        using var http = new HttpClient(new FaultInjectingHandler
        {
            OnLogBatch = async (request, cancellationToken) =>
            {
                var body = await request.Content!.ReadAsStringAsync(cancellationToken);
                lock (itemsPerRequest)
                {
                    itemsPerRequest.Add(body.Split("\"key\":").Length - 1);
                }
                return null;
            },
        });
        using var client = new SextantClient(fixture.Address, httpClient: http);
        var options = new SextantRunOptions { MaxBatchBytes = 1000, FlushInterval = TimeSpan.FromHours(1) };
        await using var run = await client.StartRunAsync("run-small-requests", options: options);

        run.SetTag("notes", new string('n', 5000));
        run.SetTag("short", "s");
        run.LogMetric("loss", 0.5);
        await run.FlushAsync();
        var stored = await client.GetRunAsync(run.RunId);

        Assert.Equal([1, 2], itemsPerRequest);
        Assert.Contains(stored.Data.Tags, t => t.Key == "notes" && t.Value.Length == 5000);
        Assert.Contains(stored.Data.Tags, t => t is { Key: "short", Value: "s" });
        Assert.Equal(0.5, Assert.Single(stored.Data.Metrics).Value);
    }

    [Fact]
    public async Task Every_log_batch_carries_an_Idempotency_Key_that_the_retries_of_that_batch_reuse()
    {
        var attempts = new List<(string? Key, string Body)>();
        using var http = new HttpClient(new FaultInjectingHandler
        {
            OnLogBatch = async (request, cancellationToken) =>
            {
                var body = await request.Content!.ReadAsStringAsync(cancellationToken);
                var key = request.Headers.TryGetValues("Idempotency-Key", out var values) ? Assert.Single(values) : null;
                lock (attempts)
                {
                    attempts.Add((key, body));
                    // The first batch's first two attempts meet a gateway that lost the server's answer.
                    return attempts.Count <= 2 ? new HttpResponseMessage(HttpStatusCode.GatewayTimeout) : null;
                }
            },
        });
        using var client = new SextantClient(fixture.Address, httpClient: http);
        await using var run = await client.StartRunAsync("run-idempotent", options: new SextantRunOptions { FlushInterval = TimeSpan.FromHours(1) });

        run.LogMetric("loss", 0.9, step: 0);
        await run.FlushAsync();
        run.LogMetric("loss", 0.8, step: 1);
        await run.FlushAsync();
        var history = await client.GetMetricHistoryAsync(run.RunId, "loss");

        Assert.Equal(4, attempts.Count);
        Assert.All(attempts, a => Assert.Matches("^[0-9a-f]{32}$", a.Key));
        Assert.Single(attempts.Take(3).Select(a => a.Key).Distinct());
        Assert.NotEqual(attempts[0].Key, attempts[3].Key);
        Assert.Equal([0L, 1], history.Metrics.Select(m => m.Step));
    }

    [Fact]
    public async Task A_timeout_of_a_caller_supplied_HttpClient_is_retried_like_any_other_timeout()
    {
        var attempts = 0;
        using var http = new HttpClient(new FaultInjectingHandler
        {
            OnLogBatch = async (_, cancellationToken) =>
            {
                if (Interlocked.Increment(ref attempts) == 1)
                {
                    // Longer than the HttpClient waits: it cancels this with its own timeout.
                    await Task.Delay(TimeSpan.FromMinutes(1), cancellationToken);
                }
                return null;
            },
        })
        {
            // Well under SextantClient.RequestTimeout (100 s), and still ample for the server's other calls.
            Timeout = TimeSpan.FromSeconds(2),
        };
        using var client = new SextantClient(fixture.Address, httpClient: http);
        await using var run = await client.StartRunAsync("run-http-timeout", options: new SextantRunOptions { FlushInterval = TimeSpan.FromHours(1) });

        run.LogMetric("acc", 0.5);
        await run.FlushAsync();
        var stored = await client.GetRunAsync(run.RunId);

        Assert.Equal(2, attempts);
        Assert.Equal(0.5, Assert.Single(stored.Data.Metrics).Value);
    }

    private static HttpResponseMessage Busy(TimeSpan retryAfter) => new(HttpStatusCode.ServiceUnavailable)
    {
        Headers = { RetryAfter = new RetryConditionHeaderValue(retryAfter) },
        Content = new StringContent("""{"error_code":"TEMPORARILY_UNAVAILABLE","message":"The write queue is full."}""", Encoding.UTF8, "application/json"),
    };
}
