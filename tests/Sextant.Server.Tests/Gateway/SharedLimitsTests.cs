using System.Diagnostics;
using System.Text.Json.Nodes;
using Sextant.Core.Tests.Storage;

namespace Sextant.Server.Tests.Gateway;

/// <summary>
/// Two Sextant processes behind one PostgreSQL and one real redis-server enforce one limit: requests per minute and
/// a daily budget counted across both, and a limit set on one replica applies on the other at once.
/// </summary>
public sealed class SharedLimitsTests : IAsyncLifetime
{
    private readonly string _data = Path.Combine(Path.GetTempPath(), "sextant-replicas-" + Guid.NewGuid().ToString("N")[..8]);
    private readonly List<Process> _servers = [];
    private readonly List<HttpClient> _clients = [];
    private FakeOpenAiServer _fake = null!;

    public async Task InitializeAsync()
    {
        _fake = await FakeOpenAiServer.StartAsync();
        var database = await PostgresServer.CreateDatabaseAsync();
        var redis = RedisServer.Get();
        for (var i = 0; i < 2; i++)
        {
            var port = FreePort.Next();
            // Replicas share the database, Redis and the data directory's keys (provider keys are encrypted with them).
            _servers.Add(ServerProcess.Start($"--port {port} --data \"{_data}\" --db \"{database}\" --redis {redis}"));
            _clients.Add(new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}/"), Timeout = TimeSpan.FromSeconds(30) });
        }
        // One after the other: the first applies the migrations.
        await ServerProcess.WaitReadyAsync(_clients[0]);
        await ServerProcess.WaitReadyAsync(_clients[1]);
    }

    public async Task DisposeAsync()
    {
        foreach (var server in _servers)
        {
            await ServerProcess.StopAsync(server);
        }
        foreach (var client in _clients)
        {
            client.Dispose();
        }
        await _fake.DisposeAsync();
        try
        {
            Directory.Delete(_data, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    private Task<ApiAnswer> ChatAsync(int replica) =>
        GatewayCalls.SendAsync(_clients[replica], "/v1/chat/completions", """{"model": "fake/ok-shared", "messages": [{"role": "user", "content": "hi"}]}""");

    [Fact]
    public async Task Two_replicas_sharing_redis_enforce_one_request_limit_and_one_budget()
    {
        var (a, b) = (_clients[0], _clients[1]);
        Assert.Equal(200, (await a.SendAsync(HttpMethod.Put, "/api/v1/gateway/providers/fake",
            new JsonObject { ["kind"] = "openai", ["base_url"] = _fake.BaseUrl.ToString(), ["api_key"] = "sk-shared" }.ToJsonString())).Status);
        // Replica b reads the project's limits (none) before they are set, so that it holds them in its cache.
        Assert.Equal(200, (await ChatAsync(1)).Status);
        // Counters are per minute: start well inside one.
        if (DateTime.UtcNow.Second > 45)
        {
            await Task.Delay(TimeSpan.FromSeconds(61 - DateTime.UtcNow.Second));
        }
        Assert.Equal(200, (await a.SendAsync(HttpMethod.Put, "/api/v1/gateway/limits/project", """{"requests_per_minute": 10}""")).Status);

        var statuses = new List<int>();
        var answered = new List<(int Replica, ApiAnswer Answer)>();
        for (var i = 0; i < 14; i++)
        {
            var answer = await ChatAsync(i % 2);
            statuses.Add(answer.Status);
            if (answer.Status == 200)
            {
                answered.Add((i % 2, answer));
            }
            if (answer.Status == 429)
            {
                Assert.True(answer.Response.Headers.RetryAfter is not null);
                Assert.Contains("10 requests per minute", answer.Json!["error"]!["message"]!.GetValue<string>(), StringComparison.Ordinal);
            }
        }
        // Ten in all, not ten per replica; both replicas refuse once the shared count is reached.
        Assert.Equal(10, statuses.Count(s => s == 200));
        Assert.Equal([429, 429, 429, 429], statuses[10..]);
        // Their spans are stored (and their cost counted) in the background: wait until all are, so that none is
        // priced with the price set next and counted against the budget below.
        foreach (var (replica, answer) in answered)
        {
            await GatewayCalls.TraceAsync(_clients[replica], answer);
        }

        // A daily budget: every call costs 1 USD (12 input + 5 output tokens at these prices); the budget is 3 USD.
        // Each replica keeps its price catalog for 30 s: the price is given to both.
        foreach (var replica in _clients)
        {
            Assert.Equal(200, (await replica.PostAsync("/api/v1/prices", new { model = "ok-shared*", input = 1e6 / 17, output = 1e6 / 17, effective_from = 1 })).Status);
        }
        Assert.Equal(200, (await b.SendAsync(HttpMethod.Put, "/api/v1/gateway/limits/project", """{"daily_budget": 3}""")).Status);
        // What the earlier calls cost was counted before a price was known: none. Three calls, alternating replicas, spend it.
        var spent = 0;
        for (var i = 0; i < 3; i++)
        {
            var answer = await ChatAsync(i % 2);
            Assert.Equal(200, answer.Status);
            spent++;
            // The cost is counted when the call's span is stored, just after the answer: wait for it.
            await GatewayCalls.TraceAsync(_clients[i % 2], answer);
            await Task.Delay(200);
        }
        Assert.Equal(3, spent);
        foreach (var replica in new[] { 0, 1 })
        {
            var refused = await ChatAsync(replica);
            Assert.Equal(429, refused.Status);
            Assert.Equal("budget_exceeded", refused.Json!["error"]!["code"]!.GetValue<string>());
        }
    }
}

/// <summary>A server configured with a Redis that is down: limits are still enforced, in the process, without delay.</summary>
public sealed class UnreachableRedisTests() : IAsyncLifetime
{
    private readonly ServerFixture _server = new(options => options.Redis = $"127.0.0.1:{FreePort.Next()},connectTimeout=500");
    private FakeOpenAiServer _fake = null!;

    public async Task InitializeAsync()
    {
        await _server.InitializeAsync();
        _fake = await FakeOpenAiServer.StartAsync();
    }

    public async Task DisposeAsync()
    {
        await _fake.DisposeAsync();
        await _server.DisposeAsync();
    }

    [Fact]
    public async Task Limits_fall_back_to_the_process_when_redis_is_down()
    {
        var http = _server.Http;
        Assert.Equal(200, (await http.SendAsync(HttpMethod.Put, "/api/v1/gateway/providers/fake",
            new JsonObject { ["kind"] = "openai", ["base_url"] = _fake.BaseUrl.ToString() }.ToJsonString())).Status);
        if (DateTime.UtcNow.Second > 50)
        {
            await Task.Delay(TimeSpan.FromSeconds(61 - DateTime.UtcNow.Second));
        }
        Assert.Equal(200, (await http.SendAsync(HttpMethod.Put, "/api/v1/gateway/limits/project", """{"requests_per_minute": 2}""")).Status);
        var clock = Stopwatch.StartNew();
        var statuses = new List<int>();
        for (var i = 0; i < 3; i++)
        {
            statuses.Add((await GatewayCalls.SendAsync(http, "/v1/chat/completions", """{"model": "fake/ok-down", "messages": [{"role": "user", "content": "hi"}]}""")).Status);
        }
        Assert.Equal([200, 200, 429], statuses);
        // No call waited for Redis's time-out.
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(3), $"three calls took {clock.Elapsed}");
        var embeddings = await GatewayCalls.SendAsync(http, "/v1/embeddings", """{"prompt": {"name": "x"}, "input": "hi"}""");
        Assert.Equal(400, embeddings.Status);
        Assert.Equal("model", embeddings.Json!["error"]!["param"]!.GetValue<string>());
    }
}
