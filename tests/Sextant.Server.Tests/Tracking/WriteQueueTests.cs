using Microsoft.Data.Sqlite;

namespace Sextant.Server.Tests.Tracking;

/// <summary>
/// The group-commit queue is bounded: while the database is locked by another writer, requests beyond
/// the queue's capacity get 503 with Retry-After at once, and the queued ones commit when the lock goes.
/// </summary>
public sealed class WriteQueueTests() : IAsyncLifetime
{
    private readonly ServerFixture _fixture = new(options => options.Tracking.WriteQueueCapacity = 2);

    public Task InitializeAsync() => _fixture.InitializeAsync();

    public Task DisposeAsync() => _fixture.DisposeAsync();

    [Fact]
    public async Task A_full_queue_answers_503_with_retry_after_and_loses_nothing_acknowledged()
    {
        var http = _fixture.Http;
        var experiment = await http.CreateExperimentAsync("queue");
        var run = await http.CreateRunAsync(experiment);
        Task<ApiAnswer> Log(int step) => http.PostAsync("/api/2.0/mlflow/runs/log-metric", new { run_id = run, key = "m", value = 1.0, timestamp = 1, step });

        await using var blocker = new SqliteConnection($"Data Source={Path.Combine(_fixture.DataDirectory, "sextant.db")}");
        await blocker.OpenAsync();
        var transaction = blocker.BeginTransaction(deferred: false); // BEGIN IMMEDIATE: holds the write lock.
        var pending = new List<Task<ApiAnswer>>();
        ApiAnswer? refused = null;
        for (var step = 0; step < 20 && refused is null; step++)
        {
            var call = Log(step);
            var finished = await Task.WhenAny(call, Task.Delay(300));
            if (finished == call)
            {
                refused = await call;
            }
            else
            {
                pending.Add(call);
            }
        }
        Assert.NotNull(refused);
        Assert.Equal(503, refused.Status);
        Assert.Equal("TEMPORARILY_UNAVAILABLE", refused.ErrorCode);
        Assert.Equal("1", refused.Response.Headers.GetValues("Retry-After").Single());

        transaction.Rollback();
        // On a loaded machine a refusal can take longer than the wait above and land among the pending calls:
        // every call ends acknowledged (200) or refused (503), and exactly the acknowledged ones are stored.
        var answers = await Task.WhenAll(pending);
        Assert.All(answers, a => Assert.Contains(a.Status, new[] { 200, 503 }));
        var history = await http.GetJsonAsync($"/api/2.0/mlflow/metrics/get-history?run_id={run}&metric_key=m");
        Assert.Equal(answers.Count(a => a.Status == 200), history.Json!["metrics"]!.AsArray().Count);
    }
}
