using System.Text.Json.Nodes;
using Sextant.Server.Tests.Gateway;

namespace Sextant.Server.Tests.Evaluation;

/// <summary>A server whose online evaluation looks every 200 ms, with a fake upstream registered as provider "fake".</summary>
public class EvalFixture() : ServerFixture(options =>
{
    options.OnlineEvalInterval = TimeSpan.FromMilliseconds(200);
    options.OnlineEvalSettle = TimeSpan.FromMilliseconds(100);
}), IAsyncLifetime
{
    public FakeOpenAiServer Fake { get; private set; } = null!;

    async Task IAsyncLifetime.InitializeAsync()
    {
        await InitializeAsync();
        Fake = await FakeOpenAiServer.StartAsync();
        Assert.Equal(200, (await Http.SendAsync(HttpMethod.Put, "/api/v1/gateway/providers/fake",
            new JsonObject { ["kind"] = "openai", ["base_url"] = Fake.BaseUrl.ToString() }.ToJsonString())).Status);
    }

    async Task IAsyncLifetime.DisposeAsync()
    {
        await Fake.DisposeAsync();
        await DisposeAsync();
    }
}

/// <summary>The same with the metadata in a fresh PostgreSQL database.</summary>
public sealed class PostgresEvalFixture : EvalFixture
{
    protected override async Task ConfigureAsync(SextantServerOptions options) =>
        options.DatabaseUri = await Sextant.Core.Tests.Storage.PostgresServer.CreateDatabaseAsync();
}

internal static class Experiments
{
    /// <summary>Creates an experiment and waits until it is no longer queued or running.</summary>
    public static async Task<JsonNode> RunAsync(HttpClient http, object request)
    {
        var created = await http.PostAsync("/api/v1/eval/experiments", request);
        Assert.True(created.Status == 200, created.Body);
        return await WaitAsync(http, created.Json!["id"]!.GetValue<string>());
    }

    public static async Task<JsonNode> WaitAsync(HttpClient http, string id, int seconds = 60)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (true)
        {
            var experiment = (await http.GetJsonAsync($"/api/v1/eval/experiments/{id}")).Json!;
            if (experiment["status"]!.GetValue<string>() is not ("queued" or "running") || DateTime.UtcNow > deadline)
            {
                return experiment;
            }
            await Task.Delay(100);
        }
    }

    public static async Task<JsonArray> ResultsAsync(HttpClient http, string id) =>
        (await http.GetJsonAsync($"/api/v1/eval/experiments/{id}/results?max_results=1000")).Json!["results"]!.AsArray();

    public static JsonNode Score(JsonNode result, string name) => result["scores"]!.AsArray().Single(s => s!["name"]!.GetValue<string>() == name)!;
}
