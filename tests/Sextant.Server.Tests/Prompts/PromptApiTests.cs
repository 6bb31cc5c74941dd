using System.Text.Json.Nodes;

namespace Sextant.Server.Tests.Prompts;

/// <summary>The prompt registry over HTTP: versions, labels and their audit, rendering, diffs and bad input, on both engines.</summary>
public abstract class PromptApiTests(ServerFixture fixture)
{
    private HttpClient Http => fixture.Http;

    private Task<ApiAnswer> CreateAsync(string name, object body, string? key = null) =>
        Http.PostAsync($"/api/v1/prompts/versions?name={Uri.EscapeDataString(name)}", body, key);

    private Task<string> KeyAsync(string project, string role) => Http.CreateKeyAsync(project, role);

    [Fact]
    public async Task Versions_are_numbered_and_immutable_and_labels_deploy_them_with_an_audit_trail()
    {
        var first = await CreateAsync("support/answer", new
        {
            template = new object[]
            {
                new { role = "system", content = "You answer for {{company}}." },
                new { role = "user", content = "{{question}}" },
            },
            config = new { model = "gpt-4o-mini", temperature = 0.2 },
            tags = new[] { "support" },
            message = "first cut",
            labels = new[] { "production" },
        });
        Assert.Equal(200, first.Status);
        Assert.Equal((1, "chat"), (first.Json!["version"]!.GetValue<int>(), first.Json["type"]!.GetValue<string>()));
        Assert.Equal(["company", "question"], first.Json["variables"]!.AsArray().Select(v => v!.GetValue<string>()));
        Assert.Equal(["production", "latest"], first.Json["labels"]!.AsArray().Select(v => v!.GetValue<string>()));

        var second = await CreateAsync("support/answer", new
        {
            template = new object[]
            {
                new { role = "system", content = "You answer for {{company}}, briefly." },
                new { role = "user", content = "{{question}}" },
            },
            config = new { model = "gpt-4o", temperature = 0.2 },
            message = "shorter answers",
            labels = new[] { "staging" },
        });
        Assert.Equal(2, second.Json!["version"]!.GetValue<int>());

        // The default fetch is production's version; labels and numbers name others; latest is the newest.
        Assert.Equal(1, (await Http.GetJsonAsync("/api/v1/prompts/get?name=support/answer")).Json!["version"]!.GetValue<int>());
        Assert.Equal(2, (await Http.GetJsonAsync("/api/v1/prompts/get?name=support/answer&label=staging")).Json!["version"]!.GetValue<int>());
        Assert.Equal(2, (await Http.GetJsonAsync("/api/v1/prompts/get?name=support/answer&label=latest")).Json!["version"]!.GetValue<int>());
        Assert.Equal("first cut", (await Http.GetJsonAsync("/api/v1/prompts/get?name=support/answer&version=1")).Json!["message"]!.GetValue<string>());

        // Promotion is a label move, and so is a roll-back; both are in the history with who made them.
        Assert.Equal(200, (await Http.SendAsync(HttpMethod.Put, "/api/v1/prompts/labels?name=support/answer&label=production", """{"version": 2}""")).Status);
        Assert.Equal(2, (await Http.GetJsonAsync("/api/v1/prompts/get?name=support/answer")).Json!["version"]!.GetValue<int>());
        Assert.Equal(200, (await Http.SendAsync(HttpMethod.Put, "/api/v1/prompts/labels?name=support/answer&label=production", """{"version": 1}""")).Status);
        var history = (await Http.GetJsonAsync("/api/v1/prompts/labels/history?name=support/answer")).Json!["moves"]!.AsArray();
        Assert.Equal([("production", 2, 1), ("production", 1, 2), ("staging", 0, 2), ("production", 0, 1)],
            history.Select(m => (m!["label"]!.GetValue<string>(), m["from_version"]?.GetValue<int>() ?? 0, m["to_version"]!.GetValue<int>())));
        Assert.All(history, m => Assert.Equal("anonymous", m!["actor"]!.GetValue<string>()));

        var list = (await Http.GetJsonAsync("/api/v1/prompts?prefix=support/")).Json!["prompts"]!.AsArray();
        var summary = Assert.Single(list)!;
        Assert.Equal((2, 1, 2), (summary["latest_version"]!.GetValue<int>(), summary["labels"]!["production"]!.GetValue<int>(), summary["labels"]!["staging"]!.GetValue<int>()));
        Assert.Equal(["support"], summary["tags"]!.AsArray().Select(t => t!.GetValue<string>()));

        var diff = (await Http.GetJsonAsync("/api/v1/prompts/diff?name=support/answer&from=1&to=2")).Json!;
        Assert.Contains(diff["template"]!.AsArray(), l => l!["kind"]!.GetValue<string>() == "removed" && l["text"]!.GetValue<string>() == "You answer for {{company}}.");
        Assert.Contains(diff["template"]!.AsArray(), l => l!["kind"]!.GetValue<string>() == "added" && l["text"]!.GetValue<string>() == "You answer for {{company}}, briefly.");
        var change = Assert.Single(diff["config"]!.AsArray())!;
        Assert.Equal(("model", "gpt-4o-mini", "gpt-4o"), (change["key"]!.GetValue<string>(), change["old"]!.GetValue<string>(), change["new"]!.GetValue<string>()));
    }

    [Fact]
    public async Task Rendering_fills_variables_without_escaping_and_names_what_is_missing_or_unused()
    {
        Assert.Equal(200, (await CreateAsync("greeting", new { template = "Hello {{name}} & welcome to {{place}}!{{#items}} - {{title}}{{/items}}", labels = new[] { "production" } })).Status);
        var rendered = await Http.PostAsync("/api/v1/prompts/render?name=greeting", new
        {
            variables = new { name = "Ana <admin>", place = "Lisbon", items = new[] { new { title = "a" }, new { title = "b" } }, extra = 1 },
        });
        Assert.Equal(200, rendered.Status);
        Assert.Equal("Hello Ana <admin> & welcome to Lisbon! - a - b", rendered.Json!["text"]!.GetValue<string>());
        Assert.Equal(["extra"], rendered.Json["unused_variables"]!.AsArray().Select(v => v!.GetValue<string>()));

        var missing = await Http.PostAsync("/api/v1/prompts/render?name=greeting", new { variables = new { name = "Ana" } });
        Assert.Equal(400, missing.Status);
        Assert.Equal("variables.place", missing.Json!["field"]!.GetValue<string>());
        Assert.Contains("'place', 'items'", missing.Json!["message"]!.GetValue<string>(), StringComparison.Ordinal);

        var unknownLabel = await Http.PostAsync("/api/v1/prompts/render?name=greeting", new { label = "canary", variables = new { } });
        Assert.Equal(404, unknownLabel.Status);
        Assert.Contains("'production', 'latest'", unknownLabel.Json!["message"]!.GetValue<string>(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Malformed_templates_are_refused_with_their_position_and_nothing_is_stored()
    {
        var unclosed = await CreateAsync("broken", new { template = "Line one\nHello {{name" });
        Assert.Equal(400, unclosed.Status);
        Assert.Contains("line 2, column 7", unclosed.Json!["message"]!.GetValue<string>(), StringComparison.Ordinal);

        var section = await CreateAsync("broken", new { template = new object[] { new { role = "user", content = "Items:\n  {{#items}} open" } } });
        Assert.Equal(400, section.Status);
        Assert.Contains("template[0].content", section.Json!["message"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.EndsWith("The section 'items' is opened here but never closed with {{/items}} (line 2, column 3).", section.Json!["message"]!.GetValue<string>(), StringComparison.Ordinal);

        var role = await CreateAsync("broken", new { template = new object[] { new { role = "wizard", content = "hi" } } });
        Assert.Equal(400, role.Status);
        Assert.Equal(400, (await CreateAsync("broken", new { template = "x", config = "not an object" })).Status);
        Assert.Equal(400, (await CreateAsync("bad name!", new { template = "x" })).Status);
        Assert.Equal(400, (await CreateAsync("broken", new { template = "x", labels = new[] { "latest" } })).Status);
        Assert.Equal(404, (await Http.GetJsonAsync("/api/v1/prompts/get?name=broken")).Status);

        // A prompt keeps its type.
        Assert.Equal(200, (await CreateAsync("typed", new { template = "text" })).Status);
        Assert.Equal(400, (await CreateAsync("typed", new { template = new object[] { new { role = "user", content = "chat" } } })).Status);
    }

    [Fact]
    public async Task Protected_labels_need_an_admin_key()
    {
        var editor = await KeyAsync("prompt-team", "editor");
        var admin = await KeyAsync("prompt-team", "admin");
        Assert.Equal(200, (await CreateAsync("team/summary", new { template = "Summarise {{text}}", labels = new[] { "staging" } }, editor)).Status);
        Assert.Equal(403, (await CreateAsync("team/summary", new { template = "Summarise: {{text}}", labels = new[] { "production" } }, editor)).Status);
        Assert.Equal(403, (await Http.SendAsync(HttpMethod.Put, "/api/v1/prompts/labels?name=team/summary&label=production", """{"version": 1}""", editor)).Status);
        Assert.Equal(200, (await Http.SendAsync(HttpMethod.Put, "/api/v1/prompts/labels?name=team/summary&label=production", """{"version": 1}""", admin)).Status);
        var move = (await Http.GetJsonAsync("/api/v1/prompts/labels/history?name=team/summary", admin)).Json!["moves"]![0]!;
        // The admin key's id (never its secret).
        Assert.Matches("^[0-9a-f]{12}$", move["actor"]!.GetValue<string>());
        // Another project does not see it.
        Assert.Equal(404, (await Http.GetJsonAsync("/api/v1/prompts/get?name=team/summary")).Status);
    }
}

public sealed class SqlitePromptApiTests(ServerFixture fixture) : PromptApiTests(fixture), IClassFixture<ServerFixture>;

public sealed class PostgresPromptApiTests(PostgresServerFixture fixture) : PromptApiTests(fixture), IClassFixture<PostgresServerFixture>;
