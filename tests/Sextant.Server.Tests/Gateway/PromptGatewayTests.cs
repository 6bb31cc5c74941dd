using System.Text.Json.Nodes;

namespace Sextant.Server.Tests.Gateway;

/// <summary>Prompts from the registry called through the gateway: rendered, configured, traced, and switched by a label move.</summary>
public sealed class PromptGatewayTests(ServerFixture fixture) : IClassFixture<ServerFixture>, IAsyncLifetime
{
    private FakeOpenAiServer _fake = null!;
    private HttpClient Http => fixture.Http;

    public async Task InitializeAsync()
    {
        _fake = await FakeOpenAiServer.StartAsync();
        Assert.Equal(200, (await Http.SendAsync(HttpMethod.Put, "/api/v1/gateway/providers/fake",
            new JsonObject { ["kind"] = "openai", ["base_url"] = _fake.BaseUrl.ToString() }.ToJsonString())).Status);
    }

    public async Task DisposeAsync() => await _fake.DisposeAsync();

    private async Task<int> VersionAsync(string name, string system, object config, params string[] labels)
    {
        var created = await Http.PostAsync($"/api/v1/prompts/versions?name={name}", new
        {
            template = new object[] { new { role = "system", content = system } },
            config,
            labels,
        });
        Assert.Equal(200, created.Status);
        return created.Json!["version"]!.GetValue<int>();
    }

    private Task<ApiAnswer> ChatAsync(JsonObject body) => GatewayCalls.SendAsync(Http, "/v1/chat/completions", body.ToJsonString());

    [Fact]
    public async Task A_prompt_is_rendered_with_its_config_and_a_label_move_switches_the_version_without_changing_the_call()
    {
        await VersionAsync("support/answer", "You answer for {{company}}.", new { model = "fake/ok-prompt-1", temperature = 0.1, max_tokens = 50 }, "production");
        JsonObject Call() => new()
        {
            ["model"] = "prompt:support/answer@production",
            ["variables"] = new JsonObject { ["company"] = "Acme" },
            ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "Where is my order?" }),
            ["max_tokens"] = 20,
        };
        var answer = await ChatAsync(Call());
        Assert.Equal(200, answer.Status);
        var sent = _fake.Requests.Last(r => r.Model == "ok-prompt-1").Body;
        Assert.Equal("You answer for Acme.", sent["messages"]![0]!["content"]!.GetValue<string>());
        Assert.Equal("Where is my order?", sent["messages"]![1]!["content"]!.GetValue<string>());
        // The config fills what the request leaves out; the request's own values win.
        Assert.Equal((0.1, 20), (sent["temperature"]!.GetValue<double>(), sent["max_tokens"]!.GetValue<int>()));
        Assert.Null(sent["variables"]);
        var span = (await GatewayCalls.TraceAsync(Http, answer))["spans"]![0]!;
        Assert.Equal(("support/answer", 1, "production"), (span["attributes"]!["sextant.prompt.name"]!.GetValue<string>(),
            span["attributes"]!["sextant.prompt.version"]!.GetValue<int>(), span["attributes"]!["sextant.prompt.label"]!.GetValue<string>()));

        // Version 2 goes live by moving the label: the same call now sends its text to its model.
        var v2 = await VersionAsync("support/answer", "You answer for {{company}}, briefly.", new { model = "fake/ok-prompt-2" });
        Assert.Equal(200, (await Http.SendAsync(HttpMethod.Put, "/api/v1/prompts/labels?name=support/answer&label=production", $$"""{"version": {{v2}}}""")).Status);
        var switched = await ChatAsync(Call());
        Assert.Equal(200, switched.Status);
        Assert.Equal("You answer for Acme, briefly.", _fake.Requests.Last(r => r.Model == "ok-prompt-2").Body["messages"]![0]!["content"]!.GetValue<string>());
        Assert.Equal(2, (await GatewayCalls.TraceAsync(Http, switched))["spans"]![0]!["attributes"]!["sextant.prompt.version"]!.GetValue<int>());

        // A version by number, as a prompt object.
        var pinned = await ChatAsync(new JsonObject
        {
            ["prompt"] = new JsonObject { ["name"] = "support/answer", ["version"] = 1, ["variables"] = new JsonObject { ["company"] = "Initech" } },
        });
        Assert.Equal(200, pinned.Status);
        Assert.Equal("You answer for Initech.", _fake.Requests.Last(r => r.Model == "ok-prompt-1").Body["messages"]![0]!["content"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_traffic_split_sends_each_user_to_one_arm_in_the_given_proportions()
    {
        await VersionAsync("ab/greet", "Version A for {{who}}.", new { model = "fake/ok-ab-a" }, "production");
        await VersionAsync("ab/greet", "Version B for {{who}}.", new { model = "fake/ok-ab-b" }, "canary");
        Task<ApiAnswer> SplitAsync(string arms) => Http.SendAsync(HttpMethod.Put, "/api/v1/prompts/split?name=ab/greet", "{\"arms\": " + arms + "}");
        Assert.Equal(200, (await SplitAsync("""[{"label": "production", "weight": 3}, {"label": "canary", "weight": 1}]""")).Status);

        async Task<string> CallAsync(string user)
        {
            var answer = await GatewayCalls.SendAsync(Http, "/v1/chat/completions",
                new JsonObject { ["model"] = "prompt:ab/greet", ["variables"] = new JsonObject { ["who"] = user } }.ToJsonString(),
                r => r.Headers.Add("x-sextant-user", user));
            Assert.Equal(200, answer.Status);
            return answer.Response.Headers.GetValues("x-sextant-trace-id").Single();
        }

        string LastSystemMessage() => _fake.Requests.Last().Body["messages"]![0]!["content"]!.GetValue<string>();

        var arms = new Dictionary<string, string>();
        for (var i = 0; i < 200; i++)
        {
            await CallAsync($"user-{i}");
            arms[$"user-{i}"] = LastSystemMessage().StartsWith("Version B", StringComparison.Ordinal) ? "canary" : "production";
        }
        // 1 in 4 to the canary: 50 expected of 200, binomial sd 6.1; 5 sd either way.
        Assert.InRange(arms.Values.Count(a => a == "canary"), 20, 80);
        // Sticky: the same users get the same arm again; the trace names the arm.
        foreach (var user in arms.Keys.Take(20))
        {
            var trace = await CallAsync(user);
            var span = (await GatewayCalls.TraceAsync(Http, trace))["spans"]![0]!;
            Assert.Equal(arms[user], span["attributes"]!["sextant.prompt.arm"]!.GetValue<string>());
        }
        // A call naming a label bypasses the split.
        var pinned = await GatewayCalls.SendAsync(Http, "/v1/chat/completions",
            new JsonObject { ["model"] = "prompt:ab/greet@canary", ["variables"] = new JsonObject { ["who"] = "x" } }.ToJsonString());
        Assert.Equal(200, pinned.Status);
        Assert.StartsWith("Version B", LastSystemMessage(), StringComparison.Ordinal);

        Assert.Equal(404, (await SplitAsync("""[{"label": "production", "weight": 1}, {"label": "nope", "weight": 1}]""")).Status);
        Assert.Equal(400, (await SplitAsync("""[{"label": "production", "weight": 0}, {"label": "canary", "weight": 1}]""")).Status);
        Assert.Equal(200, (await SplitAsync("[]")).Status);
        await CallAsync("user-after");
        Assert.StartsWith("Version A", LastSystemMessage(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Prompt_errors_are_openai_style_and_name_what_is_wrong()
    {
        await VersionAsync("errs/needs", "Hello {{who}} from {{where}}.", new { model = "fake/ok-errs" }, "production");
        await VersionAsync("errs/nomodel", "No model here.", new { temperature = 0.5 }, "production");

        var missing = await ChatAsync(new JsonObject { ["model"] = "prompt:errs/needs", ["variables"] = new JsonObject { ["who"] = "Ana" } });
        Assert.Equal(400, missing.Status);
        Assert.Equal("variables.where", missing.Json!["error"]!["param"]!.GetValue<string>());
        Assert.Contains("'where'", missing.Json["error"]!["message"]!.GetValue<string>(), StringComparison.Ordinal);

        var unknown = await ChatAsync(new JsonObject { ["model"] = "prompt:errs/none" });
        Assert.Equal(404, unknown.Status);
        var label = await ChatAsync(new JsonObject { ["model"] = "prompt:errs/needs@canary", ["variables"] = new JsonObject { ["who"] = "a", ["where"] = "b" } });
        Assert.Equal(404, label.Status);
        Assert.Contains("no label 'canary'", label.Json!["error"]!["message"]!.GetValue<string>(), StringComparison.Ordinal);
        var noModel = await ChatAsync(new JsonObject { ["model"] = "prompt:errs/nomodel" });
        Assert.Equal(400, noModel.Status);
        Assert.Contains("has no 'model' in its config", noModel.Json!["error"]!["message"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Equal(400, (await ChatAsync(new JsonObject { ["prompt"] = "errs/needs" })).Status);
    }
}
