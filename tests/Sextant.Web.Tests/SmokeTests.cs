namespace Sextant.Web.Tests;

public sealed class SmokeTests(BrowserFixture fixture) : IClassFixture<BrowserFixture>
{
    [Fact]
    public async Task The_root_redirects_to_the_experiments_page()
    {
        var page = await fixture.NewPageAsync();
        await page.GotoInteractiveAsync("/");
        Assert.EndsWith("/ui", page.Url, StringComparison.Ordinal);
        await page.GetByRole(Microsoft.Playwright.AriaRole.Heading, new() { Name = "Experiments" }).WaitForAsync();
    }
}
