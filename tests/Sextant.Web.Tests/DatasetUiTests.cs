using System.Text;
using Microsoft.Playwright;
using static Microsoft.Playwright.Assertions;

namespace Sextant.Web.Tests;

/// <summary>The dataset pages in Chromium: versions, profile with histograms, files, lineage and the diff of two versions.</summary>
public sealed class DatasetUiTests(SeededFixture fixture) : IClassFixture<SeededFixture>, IAsyncLifetime
{
    private const string Dataset = "churn-ui";
    private readonly string _folder = Directory.CreateTempSubdirectory("sextant-ui-data-").FullName;

    public async Task InitializeAsync()
    {
        using var client = fixture.Client();
        if ((await client.ListDatasetsAsync(Dataset)).Datasets.Count > 0)
        {
            return;
        }
        await File.WriteAllTextAsync(Path.Combine(_folder, "train.csv"), Table(400, extraColumn: false));
        await File.WriteAllTextAsync(Path.Combine(_folder, "README.md"), "churn data");
        await client.AddDatasetAsync(_folder, Dataset, "first cut");
        await File.WriteAllTextAsync(Path.Combine(_folder, "train.csv"), Table(600, extraColumn: true));
        await client.AddDatasetAsync(_folder, Dataset, "more rows, a tenure column");
        await using var run = await client.StartRunAsync("churn-ui-training", "gbm");
        await run.LogDatasetInputAsync(Dataset + "@2", "training");
    }

    public Task DisposeAsync()
    {
        Directory.Delete(_folder, recursive: true);
        return Task.CompletedTask;
    }

    private static string Table(int rows, bool extraColumn)
    {
        var csv = new StringBuilder(extraColumn ? "customer,plan,monthly,tenure\n" : "customer,plan,monthly\n");
        for (var i = 0; i < rows; i++)
        {
            csv.Append(System.Globalization.CultureInfo.InvariantCulture, $"c{i},{(i % 3 == 0 ? "pro" : "basic")},{20 + i % 50}.5{(extraColumn ? $",{i % 24}" : "")}\n");
        }
        return csv.ToString();
    }

    [Fact]
    public async Task Browse_versions_profile_files_lineage_and_compare_two_versions()
    {
        var page = await fixture.NewPageAsync();
        await page.GotoInteractiveAsync("/ui/datasets");
        await Expect(page.GetByTestId("dataset-row").Filter(new() { HasText = Dataset })).ToContainTextAsync("2");
        await page.GetByRole(AriaRole.Link, new() { Name = Dataset, Exact = true }).ClickAsync();
        await page.WaitForURLAsync(url => url.EndsWith("/ui/datasets/" + Dataset, StringComparison.Ordinal));
        await Expect(page.GetByTestId("version-row")).ToHaveCountAsync(2);
        await Screens.SaveAsync(page, "dataset");

        // Pick both versions and compare them.
        var picks = page.GetByTestId("pick-version");
        await picks.Nth(0).CheckAsync();
        await picks.Nth(1).CheckAsync();
        await page.GetByTestId("compare-versions").ClickAsync();
        await page.WaitForURLAsync(url => url.Contains("/ui/dataset-diff", StringComparison.Ordinal));
        await Expect(page.GetByTestId("diff-summary")).ToHaveTextAsync("0 added, 0 removed, 1 changed");
        await Expect(page.GetByTestId("table-change")).ToContainTextAsync("rows 400 → 600");
        await Expect(page.GetByTestId("table-change")).ToContainTextAsync("columns added: tenure");
        await Screens.SaveAsync(page, "dataset-diff");

        await page.GotoInteractiveAsync($"/ui/dataset-version?name={Dataset}&version=2");
        var monthly = page.GetByTestId("profile-column").Filter(new() { HasText = "monthly" });
        await Expect(monthly).ToContainTextAsync("float");
        await Expect(page.GetByTestId("profile-column").Filter(new() { HasText = "plan" })).ToContainTextAsync("basic (400)");
        // One histogram per numeric column, drawn by plotly.
        await Expect(page.Locator("[data-testid=chart] .main-svg").First).ToBeVisibleAsync();
        await Expect(page.GetByTestId("chart")).ToHaveCountAsync(2);
        await Screens.SaveAsync(page, "dataset-version");

        await page.GetByRole(AriaRole.Tab, new() { Name = "Files (2)" }).ClickAsync();
        await Expect(page.GetByTestId("manifest-file")).ToHaveCountAsync(2);
        await Expect(page.GetByTestId("manifest")).ToContainTextAsync("train.csv");
        await page.GetByRole(AriaRole.Tab, new() { Name = "Lineage" }).ClickAsync();
        await Expect(page.GetByTestId("lineage")).ToContainTextAsync("run gbm");
    }

    [Fact]
    public async Task Unknown_datasets_and_versions_show_a_message()
    {
        var page = await fixture.NewPageAsync();
        await page.GotoInteractiveAsync("/ui/datasets/no-such-data");
        await Expect(page.GetByTestId("error")).ToContainTextAsync("No dataset named 'no-such-data'");
        await page.GotoInteractiveAsync($"/ui/dataset-version?name={Dataset}&version=9");
        await Expect(page.GetByTestId("error")).ToContainTextAsync("has no version 9");
        await page.GotoInteractiveAsync($"/ui/dataset-diff?name={Dataset}&from=1&to=x");
        await Expect(page.GetByTestId("error")).ToContainTextAsync("version number");
    }
}
