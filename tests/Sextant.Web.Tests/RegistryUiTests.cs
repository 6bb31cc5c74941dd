using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

namespace Sextant.Web.Tests;

/// <summary>The registry pages in Chromium: models, versions, aliases, files and lineage.</summary>
public sealed class RegistryUiTests(SeededFixture fixture) : IClassFixture<SeededFixture>
{
    [Fact]
    public async Task The_models_page_lists_models_with_their_aliases_and_filters()
    {
        var page = await fixture.NewPageAsync();
        await page.GotoInteractiveAsync("/ui/models");
        var row = page.GetByTestId("model-row").Filter(new() { HasText = SeededFixture.Model });
        await Expect(row).ToContainTextAsync("champion → v1");
        await Screens.SaveAsync(page, "models");

        await page.GetByTestId("model-filter").FillAsync("name LIKE 'nothing%'");
        await page.GetByRole(AriaRole.Button, new() { Name = "Apply" }).ClickAsync();
        await Expect(page.GetByTestId("model-row")).ToHaveCountAsync(0);
        await page.GotoInteractiveAsync("/ui/models?filter=" + Uri.EscapeDataString("metrics.acc > 1"));
        await Expect(page.GetByTestId("error")).ToContainTextAsync("cannot be used when searching registered models");
    }

    [Fact]
    public async Task Aliases_are_set_and_deleted_on_the_model_page()
    {
        var page = await fixture.NewPageAsync();
        await page.GotoInteractiveAsync("/ui/models/" + SeededFixture.Model);
        await Expect(page.GetByTestId("version-row")).ToHaveCountAsync(1);
        await page.GetByTestId("alias-name").FillAsync("challenger");
        await page.GetByRole(AriaRole.Button, new() { Name = "Set", Exact = true }).ClickAsync();
        var challenger = page.GetByTestId("alias-row").Filter(new() { HasText = "@challenger" });
        await Expect(challenger).ToContainTextAsync("version 1");
        await challenger.GetByRole(AriaRole.Button, new() { Name = "Delete" }).ClickAsync();
        await Expect(challenger).ToHaveCountAsync(0);

        await page.GetByTestId("alias-name").FillAsync("latest");
        await page.GetByRole(AriaRole.Button, new() { Name = "Set", Exact = true }).ClickAsync();
        await Expect(page.GetByTestId("error")).ToContainTextAsync("reserved");
    }

    [Fact]
    public async Task A_version_page_shows_its_files_and_where_it_came_from()
    {
        var page = await fixture.NewPageAsync();
        await page.GotoInteractiveAsync($"/ui/model-version?name={SeededFixture.Model}&version=1");
        await Expect(page.GetByTestId("version-alias")).ToHaveTextAsync("@champion");
        await Expect(page.GetByTestId("model-files")).ToContainTextAsync("confusion.png");
        await Expect(page.GetByTestId("flavor")).ToHaveTextAsync("opaque");
        var lineage = page.GetByTestId("lineage");
        await Expect(lineage).ToContainTextAsync("run run-0-cnn");
        await Expect(lineage).ToContainTextAsync("dataset mnist-train (9f2c)");
        await Screens.SaveAsync(page, "model-version");

        await lineage.GetByRole(AriaRole.Link, new() { Name = "run run-0-cnn" }).ClickAsync();
        await page.WaitForURLAsync(url => url.Contains($"/ui/runs/{fixture.RunIds[0]}", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Unknown_models_and_versions_show_a_message()
    {
        var page = await fixture.NewPageAsync();
        await page.GotoInteractiveAsync("/ui/models/no-such-model");
        await Expect(page.GetByTestId("error")).ToContainTextAsync("There is no registered model named 'no-such-model'");
        await page.GotoInteractiveAsync($"/ui/model-version?name={SeededFixture.Model}&version=99");
        await Expect(page.GetByTestId("error")).ToContainTextAsync("not found");
        await page.GotoInteractiveAsync($"/ui/model-version?name={SeededFixture.Model}&version=abc");
        await Expect(page.GetByTestId("error")).ToContainTextAsync("positive integer");
    }
}
