using System.Text.Json.Nodes;
using Sextant.Core.Tests.Storage;
using Sextant.Server.Tests.Gateway;

namespace Sextant.Server.Tests.Evaluation;

/// <summary>An experiment interrupted by kill -9 of the server resumes at the next start with only what was missing.</summary>
public sealed class ExperimentResumeTests : IAsyncLifetime
{
    private readonly string _data = Path.Combine(Path.GetTempPath(), "sextant-resume-" + Guid.NewGuid().ToString("N")[..8]);
    private FakeOpenAiServer _fake = null!;

    public async Task InitializeAsync() => _fake = await FakeOpenAiServer.StartAsync();

    public async Task DisposeAsync()
    {
        await _fake.DisposeAsync();
        try
        {
            Directory.Delete(_data, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    [Fact]
    public async Task A_killed_server_resumes_its_experiment_without_running_finished_items_again()
    {
        var port = FreePort.Next();
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}/"), Timeout = TimeSpan.FromSeconds(30) };
        var server = ServerProcess.Start($"--port {port} --data \"{_data}\"");
        string id;
        int before;
        try
        {
            await ServerProcess.WaitReadyAsync(http);
            Assert.Equal(200, (await http.SendAsync(HttpMethod.Put, "/api/v1/gateway/providers/fake",
                new JsonObject { ["kind"] = "openai", ["base_url"] = _fake.BaseUrl.ToString() }.ToJsonString())).Status);
            var items = Enumerable.Range(0, 30).Select(i => (object)new { id = $"i{i}", input = $"question {i}" }).ToArray();
            Assert.Equal(200, (await http.PostAsync("/api/v1/eval/datasets/items?name=resume", new { items })).Status);
            var created = await http.PostAsync("/api/v1/eval/experiments", new
            {
                dataset = "resume",
                target = new { type = "model", model = "fake/delay-200-resume" },
                evaluators = new object[] { new { type = "contains", value = "Hello" } },
                concurrency = 2,
            });
            Assert.True(created.Status == 200, created.Body);
            id = created.Json!["id"]!.GetValue<string>();
            do
            {
                await Task.Delay(100);
                before = (await http.GetJsonAsync($"/api/v1/eval/experiments/{id}")).Json!["summary"]!["results"]!.GetValue<int>();
            }
            while (before < 6);
        }
        finally
        {
            await ServerProcess.StopAsync(server);
        }
        var calledBeforeKill = _fake.Hits["delay-200-resume"];
        Assert.InRange(calledBeforeKill, before, 29);
        var restarted = ServerProcess.Start($"--port {port} --data \"{_data}\"");
        try
        {
            await ServerProcess.WaitReadyAsync(http);
            var done = await Experiments.WaitAsync(http, id);
            Assert.Equal("completed", done["status"]!.GetValue<string>());
            Assert.Equal((30, 30), (done["summary"]!["results"]!.GetValue<int>(), done["summary"]!["passed"]!.GetValue<int>()));
            var results = await Experiments.ResultsAsync(http, id);
            Assert.Equal(Enumerable.Range(0, 30), results.Select(r => r!["item"]!.GetValue<int>()));
            // Finished items were not called again: at most the two in flight at the kill were.
            Assert.InRange(_fake.Hits["delay-200-resume"], 30, 32);
        }
        finally
        {
            await ServerProcess.StopAsync(restarted);
        }
    }
}
