using System.Text.Json;
using Microsoft.Playwright;
using Sextant.Contracts;
using static Microsoft.Playwright.Assertions;

namespace Sextant.Web.Tests;

/// <summary>The prompt pages in Chromium: the list, a prompt's versions and labels, a diff, the playground, a label move.</summary>
public sealed class PromptUiTests(SeededFixture fixture) : IClassFixture<SeededFixture>, IAsyncLifetime
{
    public async Task InitializeAsync()
    {
        using var client = fixture.Client();
        await client.CreatePromptVersionAsync("support/answer", new CreatePromptVersionRequest("chat",
            JsonSerializer.SerializeToElement(new[] { new { role = "system", content = "You answer for {{company}}." }, new { role = "user", content = "{{question}}" } }),
            JsonSerializer.SerializeToElement(new { model = "gpt-4o-mini" }), ["support"], "first cut", ["production"]));
        await client.CreatePromptVersionAsync("support/answer", new CreatePromptVersionRequest("chat",
            JsonSerializer.SerializeToElement(new[] { new { role = "system", content = "You answer for {{company}}, briefly." }, new { role = "user", content = "{{question}}" } }),
            JsonSerializer.SerializeToElement(new { model = "gpt-4o" }), null, "shorter", ["staging"]));
    }

    public Task DisposeAsync() => Task.CompletedTask;

    [Fact]
    public async Task A_prompt_page_shows_versions_a_diff_a_rendered_playground_and_moves_a_label()
    {
        var page = await fixture.NewPageAsync();
        await page.GotoInteractiveAsync("/ui/prompts");
        var row = page.GetByTestId("prompt-row").Filter(new() { HasText = "support/answer" });
        await Expect(row).ToContainTextAsync("production: v1");
        await Expect(row).ToContainTextAsync("staging: v2");
        await row.GetByRole(AriaRole.Link, new() { Name = "support/answer" }).ClickAsync();

        // The production version is shown first.
        await Expect(page.GetByTestId("version-row")).ToHaveCountAsync(2);
        await Expect(page.GetByTestId("template")).ToContainTextAsync("You answer for {{company}}.");
        await Expect(page.GetByTestId("config")).ToContainTextAsync("gpt-4o-mini");

        await page.GetByTestId("pick-version").Nth(0).CheckAsync();
        await page.GetByTestId("pick-version").Nth(1).CheckAsync();
        await page.GetByTestId("compare-versions").ClickAsync();
        await Expect(page.GetByTestId("prompt-diff")).ToContainTextAsync("+ You answer for {{company}}, briefly.");
        await Expect(page.GetByTestId("config-change")).ToContainTextAsync("model");

        await page.GetByTestId("render").ClickAsync();
        await Expect(page.GetByTestId("render-error")).ToContainTextAsync("'company', 'question'");
        await page.GetByTestId("var-company").FillAsync("Acme");
        await page.GetByTestId("var-question").FillAsync("Where is my parcel?");
        await page.GetByTestId("render").ClickAsync();
        await Expect(page.GetByTestId("rendered")).ToContainTextAsync("You answer for Acme.");
        await Expect(page.GetByTestId("rendered")).ToContainTextAsync("Where is my parcel?");
        await Screens.SaveAsync(page, "prompt");

        // Deploy version 2 to production from the page (the local user is an admin); the history records it.
        await page.GotoInteractiveAsync("/ui/prompt?name=support%2Fanswer&version=2");
        await page.GetByTestId("label-name").FillAsync("production");
        await page.GetByTestId("move-label").ClickAsync();
        await Expect(page.GetByTestId("label-move").First).ToContainTextAsync("production");
        await Expect(page.GetByTestId("version-row").Filter(new() { HasText = "shorter" })).ToContainTextAsync("production");
        await Expect(page.GetByTestId("error")).ToHaveCountAsync(0);
    }
}
