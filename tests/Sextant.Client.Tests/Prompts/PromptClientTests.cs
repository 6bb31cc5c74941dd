using System.Text.Json;
using Sextant.Contracts;

namespace Sextant.Client.Tests.Prompts;

/// <summary>Prompts through the SDK: the cache (fresh, stale while revalidating), the fallback, and rendering here.</summary>
public sealed class PromptClientTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private static CreatePromptVersionRequest Text(string template, params string[] labels) =>
        new("text", JsonSerializer.SerializeToElement(template), Labels: labels);

    [Fact]
    public async Task A_fetched_prompt_is_served_from_the_cache_then_revalidated_in_the_background()
    {
        using var admin = fixture.CreateClient();
        await admin.CreatePromptVersionAsync("sdk/cached", Text("v1 for {{user}}", "production"));
        // Long enough that the steps within it finish inside it on a loaded CI machine (300 ms was not, once).
        using var client = new SextantClient(fixture.Server.Address) { PromptCacheTtl = TimeSpan.FromMilliseconds(1500) };
        Assert.Equal(1, (await client.GetPromptAsync("sdk/cached")).Version);

        // A new production version: within the time-to-live the kept one is served, without asking the server.
        await admin.CreatePromptVersionAsync("sdk/cached", Text("v2 for {{user}}", "production"));
        Assert.Equal(1, (await client.GetPromptAsync("sdk/cached")).Version);
        var fromCache = client.GetPromptAsync("sdk/cached");
        Assert.True(fromCache.IsCompletedSuccessfully);

        // Past it, the stale one comes back at once and a fresh one is fetched beside; later calls get it.
        await Task.Delay(1600);
        Assert.Equal(1, (await client.GetPromptAsync("sdk/cached")).Version);
        PromptVersion latest = null!;
        for (var i = 0; i < 50; i++)
        {
            latest = await client.GetPromptAsync("sdk/cached");
            if (latest.Version == 2)
            {
                break;
            }
            await Task.Delay(50);
        }
        Assert.Equal(2, latest.Version);
        Assert.Equal("v2 for Ana", SextantClient.RenderPrompt(latest, new Dictionary<string, string> { ["user"] = "Ana" }).Text);
    }

    [Fact]
    public async Task Without_a_server_the_fallback_is_used_and_a_missing_prompt_is_still_an_error()
    {
        var closed = Sextant.Core.Tests.Storage.FreePort.Next();
        using var offline = new SextantClient(new Uri($"http://127.0.0.1:{closed}")) { RequestTimeout = TimeSpan.FromSeconds(5) };
        var fallback = SextantClient.FallbackPrompt("sdk/offline", [new PromptMessage("system", "Be helpful to {{user}}.")]);
        var got = await offline.GetPromptAsync("sdk/offline", fallback: fallback);
        Assert.Same(fallback, got);
        Assert.Equal(["user"], got.Variables);
        Assert.Equal("Be helpful to Bo.", SextantClient.RenderPrompt(got, new Dictionary<string, string> { ["user"] = "Bo" }).Messages![0].Content);
        await Assert.ThrowsAnyAsync<HttpRequestException>(async () => await offline.GetPromptAsync("sdk/offline"));

        // A server that answers "no such prompt" is not unreachable: the fallback does not hide it.
        using var client = fixture.CreateClient();
        var missing = await Assert.ThrowsAsync<SextantApiException>(async () => await client.GetPromptAsync("sdk/none", fallback: fallback));
        Assert.Equal(404, (int)missing.StatusCode);
    }

    [Fact]
    public async Task Rendering_here_names_missing_variables_like_the_server()
    {
        using var client = fixture.CreateClient();
        await client.CreatePromptVersionAsync("sdk/render", Text("{{greeting}}, {{name}}!", "production"));
        var prompt = await client.GetPromptAsync("sdk/render");
        var error = Assert.Throws<PromptTemplate.MissingVariablesException>(() => SextantClient.RenderPrompt(prompt, new Dictionary<string, string> { ["name"] = "Cy" }));
        Assert.Equal(["greeting"], error.Missing);
        var rendered = SextantClient.RenderPrompt(prompt, new Dictionary<string, string> { ["greeting"] = "Hi", ["name"] = "Cy", ["extra"] = "x" });
        Assert.Equal(("Hi, Cy!", "extra"), (rendered.Text, rendered.UnusedVariables.Single()));

        await client.SetPromptLabelAsync("sdk/render", "staging", 1);
        var history = await client.GetPromptLabelHistoryAsync("sdk/render");
        Assert.Equal(["staging", "production"], history.Moves.Select(m => m.Label));
    }
}
