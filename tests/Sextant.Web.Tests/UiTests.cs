using System.Text.RegularExpressions;
using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

namespace Sextant.Web.Tests;

/// <summary>End-to-end: a real server, runs logged with the SDK, Debian's Chromium clicking through the UI.</summary>
public sealed class UiTests(SeededFixture fixture) : IClassFixture<SeededFixture>
{
    [Fact]
    public async Task The_root_redirects_to_the_experiments_page()
    {
        var page = await fixture.NewPageAsync();
        await page.GotoInteractiveAsync("/");
        Assert.EndsWith("/ui", page.Url, StringComparison.Ordinal);
        await Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Experiments" })).ToBeVisibleAsync();
    }

    [Fact]
    public async Task The_experiments_page_lists_experiments_with_run_counts_and_searches_by_name()
    {
        var page = await fixture.NewPageAsync();
        await page.GotoInteractiveAsync("/ui");
        var row = page.GetByTestId("experiment-row").Filter(new() { HasText = SeededFixture.Experiment });
        await Expect(row.GetByTestId("run-count")).ToHaveTextAsync("3");
        await Screens.SaveAsync(page, "experiments");

        await page.GetByTestId("experiment-search").FillAsync("no-such-thing");
        await Expect(page.GetByText("No experiment name contains 'no-such-thing'.")).ToBeVisibleAsync();
        Assert.Contains("q=no-such-thing", page.Url, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Experiments_are_created_renamed_and_deleted_from_the_list()
    {
        var page = await fixture.NewPageAsync();
        await page.GotoInteractiveAsync("/ui");
        await page.GetByTestId("new-experiment").FillAsync("ui-made");
        await page.GetByRole(AriaRole.Button, new() { Name = "Create", Exact = true }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Heading, new() { Name = "ui-made" })).ToBeVisibleAsync();

        await page.GotoInteractiveAsync("/ui?q=ui-made");
        var row = page.GetByTestId("experiment-row").Filter(new() { HasText = "ui-made" });
        await row.GetByRole(AriaRole.Button, new() { Name = "Rename" }).ClickAsync();
        await page.GetByTestId("rename-input").FillAsync("ui-renamed");
        await page.GetByRole(AriaRole.Button, new() { Name = "Save" }).ClickAsync();
        await Expect(page.GetByTestId("rename-input")).ToHaveCountAsync(0);
        await page.GotoInteractiveAsync("/ui?q=ui-renamed");
        row = page.GetByTestId("experiment-row").Filter(new() { HasText = "ui-renamed" });
        await row.GetByRole(AriaRole.Button, new() { Name = "Delete" }).ClickAsync();
        await row.GetByRole(AriaRole.Button, new() { Name = "Confirm delete" }).ClickAsync();
        await Expect(page.GetByTestId("experiment-row").Filter(new() { HasText = "ui-renamed" })).ToHaveCountAsync(0);
    }

    [Fact]
    public async Task The_runs_table_filters_sorts_and_keeps_its_state_in_the_url()
    {
        var page = await fixture.NewPageAsync();
        await page.GotoInteractiveAsync($"/ui/experiments/{fixture.ExperimentId}");
        await Expect(page.GetByTestId("run-row")).ToHaveCountAsync(3);
        await Screens.SaveAsync(page, "runs");

        await page.GetByTestId("filter").FillAsync("metrics.acc > 0.9 and params.model = 'cnn'");
        await page.GetByRole(AriaRole.Button, new() { Name = "Apply" }).ClickAsync();
        await Expect(page.GetByTestId("run-row")).ToHaveCountAsync(2);
        Assert.Contains("filter=", page.Url, StringComparison.Ordinal);

        await page.GetByRole(AriaRole.Button, new() { Name = "metrics.acc" }).ClickAsync();
        await Expect(page.GetByTestId("run-row").First).ToContainTextAsync("run-0-cnn");
        await page.GetByRole(AriaRole.Button, new() { Name = "metrics.acc ▲" }).ClickAsync();
        await Expect(page.GetByTestId("run-row").First).ToContainTextAsync("run-2-cnn");
        Assert.Contains("order=", page.Url, StringComparison.Ordinal);

        // The same URL in a new page shows the same view.
        var shared = await fixture.NewPageAsync();
        await shared.GotoInteractiveAsync(page.Url);
        await Expect(shared.GetByTestId("run-row")).ToHaveCountAsync(2);
        await Expect(shared.GetByTestId("run-row").First).ToContainTextAsync("run-2-cnn");
    }

    [Fact]
    public async Task Columns_are_chosen_by_the_user()
    {
        var page = await fixture.NewPageAsync();
        await page.GotoInteractiveAsync($"/ui/experiments/{fixture.ExperimentId}");
        await Expect(page.GetByRole(AriaRole.Button, new() { Name = "tags.team" })).ToHaveCountAsync(0);
        await page.GetByRole(AriaRole.Button, new() { Name = "Columns" }).ClickAsync();
        await page.GetByTestId("column-picker").GetByRole(AriaRole.Button, new() { Name = "team" }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Button, new() { Name = "tags.team" })).ToBeVisibleAsync();
        Assert.Contains("cols=", page.Url, StringComparison.Ordinal);
        await Expect(page.GetByTestId("run-row").First).ToContainTextAsync("vision");
    }

    [Fact]
    public async Task A_bad_filter_shows_the_error_and_its_position_on_the_page()
    {
        var page = await fixture.NewPageAsync();
        await page.GotoInteractiveAsync($"/ui/experiments/{fixture.ExperimentId}?filter=" + Uri.EscapeDataString("metrics.acc >> 1"));
        await Expect(page.GetByTestId("error")).ToContainTextAsync("position");
        await Expect(page.GetByTestId("error-position")).ToContainTextAsync("^");
        Assert.Empty(fixture.ErrorsOf(page));
    }

    [Fact]
    public async Task A_run_page_shows_params_metrics_and_a_chart_per_metric()
    {
        var page = await fixture.NewPageAsync();
        await page.GotoInteractiveAsync($"/ui/runs/{fixture.RunIds[0]}");
        await Expect(page.GetByTestId("params")).ToContainTextAsync("cnn");
        await Expect(page.GetByTestId("metrics")).ToContainTextAsync("loss");
        await Expect(page.GetByTestId("tags")).ToContainTextAsync("vision");
        await Expect(page.GetByTestId("inputs")).ToContainTextAsync("mnist-train");
        await Expect(page.GetByTestId("inputs")).ToContainTextAsync("training");
        await Screens.SaveAsync(page, "run");

        await page.GetByRole(AriaRole.Tab, new() { Name = "Charts" }).ClickAsync();
        await Expect(page.GetByTestId("chart")).ToHaveCountAsync(2);
        await Expect(page.Locator("[data-testid=chart] .scatterlayer .trace")).ToHaveCountAsync(2);
        await Screens.SaveAsync(page, "run-charts");

        await page.GetByRole(AriaRole.Button, new() { Name = "Time" }).ClickAsync();
        await Expect(page.Locator("[data-testid=chart]").First).ToContainTextAsync("time (UTC)");
        Assert.Contains("x=time", page.Url, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Artifacts_are_browsed_previewed_and_downloaded()
    {
        var page = await fixture.NewPageAsync();
        await page.GotoInteractiveAsync($"/ui/runs/{fixture.RunIds[0]}?tab=artifacts");
        await page.GetByRole(AriaRole.Link, new() { Name = "config.json", Exact = true }).ClickAsync();
        await Expect(page.GetByTestId("preview")).ToHaveAttributeAsync("data-kind", "json");
        await Expect(page.GetByTestId("preview")).ToContainTextAsync("\"dropout\": 0.2");

        await page.GetByRole(AriaRole.Link, new() { Name = "📁 eval", Exact = true }).ClickAsync();
        await page.GetByRole(AriaRole.Link, new() { Name = "metrics.csv", Exact = true }).ClickAsync();
        await Expect(page.GetByTestId("preview")).ToHaveAttributeAsync("data-kind", "csv");
        await Expect(page.GetByTestId("preview").Locator("th")).ToHaveCountAsync(3);
        await Expect(page.GetByTestId("preview").Locator("td").Nth(3)).ToHaveTextAsync("2");
        await Screens.SaveAsync(page, "artifacts");

        await page.GotoInteractiveAsync($"/ui/runs/{fixture.RunIds[0]}?tab=artifacts&path=plots&file=plots/confusion.png");
        var image = page.GetByTestId("preview").Locator("img");
        await Expect(image).ToBeVisibleAsync();
        Assert.True(await image.EvaluateAsync<bool>("img => img.complete && img.naturalWidth === 2"));

        var download = await page.RunAndWaitForDownloadAsync(() => page.GetByTestId("download").First.ClickAsync());
        Assert.Equal("confusion.png", download.SuggestedFilename);
        var path = await download.PathAsync();
        Assert.Equal(SeededFixture.Png, await File.ReadAllBytesAsync(path));
    }

    [Fact]
    public async Task Two_runs_are_compared_with_differences_highlighted_and_overlaid_charts()
    {
        var page = await fixture.NewPageAsync();
        await page.GotoInteractiveAsync($"/ui/experiments/{fixture.ExperimentId}");
        await page.GetByRole(AriaRole.Checkbox, new() { Name = "Select run-0-cnn" }).CheckAsync();
        await page.GetByRole(AriaRole.Checkbox, new() { Name = "Select run-1-mlp" }).CheckAsync();
        await Expect(page.GetByTestId("compare")).ToContainTextAsync("(2)");
        await page.GetByTestId("compare").ClickAsync();
        await page.WaitForURLAsync(new Regex("/ui/compare"));
        await page.WaitForSelectorAsync("main[data-interactive='true']");

        var model = page.Locator("[data-testid=param-row][data-key=model]");
        await Expect(model).ToHaveAttributeAsync("data-differs", "true");
        await Expect(model).ToHaveClassAsync(new Regex("sx-diff"));
        await Expect(page.Locator("[data-testid=param-row][data-key=epochs]")).ToHaveAttributeAsync("data-differs", "false");

        var charts = page.GetByTestId("history-charts").GetByTestId("chart");
        await Expect(charts).ToHaveCountAsync(2);
        await Expect(charts.First.Locator(".scatterlayer .trace")).ToHaveCountAsync(2);
        await Expect(page.GetByTestId("scatter").Locator(".scatterlayer .trace")).ToHaveCountAsync(2);
        await Screens.SaveAsync(page, "compare");
    }

    [Fact]
    public async Task Unknown_runs_and_experiments_show_a_message_not_a_blank_page()
    {
        var page = await fixture.NewPageAsync();
        await page.GotoInteractiveAsync("/ui/runs/0123456789abcdef0123456789abcdef");
        await Expect(page.GetByTestId("error")).ToContainTextAsync("There is no run with id");
        await page.GotoInteractiveAsync("/ui/experiments/987654");
        await Expect(page.GetByTestId("error")).ToContainTextAsync("There is no experiment with id '987654'");
        await page.GotoInteractiveAsync("/ui/compare?runs=" + fixture.RunIds[0]);
        await Expect(page.GetByTestId("error")).ToContainTextAsync("Pick between 2 and 20 runs");
        await page.GotoInteractiveAsync("/ui/no/such/page");
        await Expect(page.GetByTestId("error")).ToContainTextAsync("There is no page at /ui/no/such/page");
        Assert.Empty(fixture.ErrorsOf(page));
    }

    [Fact]
    public async Task A_deleted_experiment_says_so_and_can_be_restored()
    {
        using var client = fixture.Client();
        var experiment = await client.CreateExperimentAsync("to-delete-ui");
        await client.DeleteExperimentAsync(experiment.ExperimentId);
        var page = await fixture.NewPageAsync();
        await page.GotoInteractiveAsync($"/ui/experiments/{experiment.ExperimentId}");
        await Expect(page.GetByTestId("deleted")).ToContainTextAsync("This experiment was deleted");
        await page.GetByRole(AriaRole.Button, new() { Name = "Restore it" }).ClickAsync();
        await Expect(page.GetByTestId("deleted")).ToHaveCountAsync(0);
    }

    [Fact]
    public async Task Keys_are_created_with_the_secret_shown_once_and_revoked()
    {
        var page = await fixture.NewPageAsync();
        await page.GotoInteractiveAsync("/ui/keys");
        await page.GetByTestId("new-key-name").FillAsync("ci-bot");
        await page.GetByTestId("create-key").ClickAsync();
        var secret = await page.GetByTestId("new-secret").TextContentAsync();
        Assert.StartsWith("sx_", secret, StringComparison.Ordinal);
        using (var client = fixture.Client(secret))
        {
            Assert.Equal("viewer", (await client.WhoAmIAsync()).Role);
        }
        await Screens.SaveAsync(page, "keys");

        // Shown once: a fresh page lists the key without its secret.
        await page.GotoInteractiveAsync("/ui/keys");
        await Expect(page.GetByTestId("new-secret")).ToHaveCountAsync(0);
        var row = page.Locator("[data-testid=key-row][data-key-name=ci-bot]");
        await row.GetByRole(AriaRole.Button, new() { Name = "Revoke" }).ClickAsync();
        await row.GetByRole(AriaRole.Button, new() { Name = "Confirm revoke" }).ClickAsync();
        await Expect(row.GetByTestId("key-state")).ToContainTextAsync("revoked");
        using (var client = fixture.Client(secret))
        {
            await Assert.ThrowsAsync<Sextant.Client.SextantApiException>(() => client.WhoAmIAsync());
        }
    }

    [Fact]
    public async Task The_theme_toggles_between_light_and_dark_and_is_remembered()
    {
        var page = await fixture.NewPageAsync();
        await page.GotoInteractiveAsync("/ui");
        await page.GetByRole(AriaRole.Button, new() { Name = "Switch to the dark theme" }).ClickAsync();
        await Expect(page.GetByRole(AriaRole.Button, new() { Name = "Switch to the light theme" })).ToBeVisibleAsync();
        await page.ReloadAsync();
        await page.WaitForSelectorAsync("main[data-interactive='true']");
        await Expect(page.GetByRole(AriaRole.Button, new() { Name = "Switch to the light theme" })).ToBeVisibleAsync();
        await Screens.SaveAsync(page, "experiments-dark");
    }
}

/// <summary>Keyboard use, widths, and project switching on the loopback server.</summary>
public sealed class UiUsabilityTests(SeededFixture fixture) : IClassFixture<SeededFixture>
{
    [Fact]
    public async Task The_filter_and_sorting_work_from_the_keyboard()
    {
        var page = await fixture.NewPageAsync();
        await page.GotoInteractiveAsync($"/ui/experiments/{fixture.ExperimentId}");
        await page.GetByTestId("filter").FocusAsync();
        await page.Keyboard.TypeAsync("params.model = 'mlp'");
        await page.Keyboard.PressAsync("Enter");
        await Expect(page.GetByTestId("run-row")).ToHaveCountAsync(1);

        await page.GotoInteractiveAsync($"/ui/experiments/{fixture.ExperimentId}");
        await page.GetByRole(AriaRole.Button, new() { Name = "Run", Exact = true }).FocusAsync();
        await page.Keyboard.PressAsync("Enter");
        await Expect(page.GetByTestId("run-row").First).ToContainTextAsync("run-0-cnn");
    }

    [Theory]
    [InlineData(1280, 800)]
    [InlineData(2560, 1440)]
    public async Task Pages_fit_laptop_and_wide_screens_without_sideways_scrolling(int width, int height)
    {
        var page = await fixture.NewPageAsync(width, height);
        foreach (var url in new[] { "/ui", $"/ui/experiments/{fixture.ExperimentId}", $"/ui/runs/{fixture.RunIds[0]}", $"/ui/compare?runs={fixture.RunIds[0]},{fixture.RunIds[1]}" })
        {
            await page.GotoInteractiveAsync(url);
            Assert.True(await page.EvaluateAsync<bool>("document.documentElement.scrollWidth <= window.innerWidth"), $"{url} scrolls sideways at {width}px");
        }
    }

    [Fact]
    public async Task A_server_admin_creates_a_project_and_switches_to_it()
    {
        var page = await fixture.NewPageAsync();
        await page.GotoInteractiveAsync("/ui/keys");
        await page.GetByTestId("new-project").FillAsync("team-b");
        await page.GetByRole(AriaRole.Button, new() { Name = "Create project" }).ClickAsync();
        var row = page.GetByTestId("projects").Locator("tr").Filter(new() { HasText = "team-b" });
        await row.GetByTestId("switch-project").ClickAsync();
        await page.WaitForSelectorAsync("main[data-interactive='true']");
        await Expect(page.GetByTestId("who")).ToContainTextAsync("team-b · admin");
        await page.GotoInteractiveAsync("/ui");
        await Expect(page.GetByTestId("experiment-row").Filter(new() { HasText = SeededFixture.Experiment })).ToHaveCountAsync(0);

        await page.GotoInteractiveAsync("/ui/keys");
        await page.GetByTestId("projects").Locator("tr").Filter(new() { HasText = "default" }).GetByTestId("switch-project").ClickAsync();
        await page.WaitForSelectorAsync("main[data-interactive='true']");
        await Expect(page.GetByTestId("who")).ToContainTextAsync("default · admin");
    }
}
