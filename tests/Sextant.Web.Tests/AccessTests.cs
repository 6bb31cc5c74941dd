using System.Net;
using Microsoft.Playwright;
using Sextant.Core.Projects;
using Sextant.Core.Storage;
using Sextant.Server;
using static Microsoft.Playwright.Assertions;

namespace Sextant.Web.Tests;

/// <summary>A server started with --require-keys: the UI asks for an API key and keeps it in an http-only cookie.</summary>
public sealed class KeyedFixture : BrowserFixture
{
    public string AdminKey { get; private set; } = "";

    public string ViewerKey { get; private set; } = "";

    protected override void Configure(SextantServerOptions options) => options.RequireKeys = true;

    protected override async Task SeedBeforeStartAsync(SextantServerOptions options)
    {
        Directory.CreateDirectory(options.DataDirectory);
        var database = new SextantDatabase(DatabaseUri.Sqlite(Path.Combine(options.DataDirectory, "sextant.db")));
        await database.MigrateAsync();
        var projects = new ProjectService(database);
        await projects.EnsureDefaultProjectAsync();
        AdminKey = (await projects.CreateKeyAsync(1, "admin", "admin")).Secret;
        ViewerKey = (await projects.CreateKeyAsync(1, "viewer", "viewer")).Secret;
    }
}

public sealed class AccessTests(KeyedFixture fixture) : IClassFixture<KeyedFixture>
{
    /// <summary>
    /// Wait for a navigation to commit, not for its load event: a loaded CI machine has been seen to take over 30 s to
    /// fire load on a page with a live circuit; what follows waits for the elements it needs.
    /// </summary>
    private static readonly PageWaitForURLOptions Committed = new() { WaitUntil = WaitUntilState.Commit, Timeout = 60_000 };

    private async Task<IPage> SignInAsync(string key, string returnUrl = "/ui")
    {
        var page = await fixture.NewPageAsync();
        await page.GotoAsync(returnUrl);
        await page.WaitForURLAsync(url => url.Contains("/ui/signin", StringComparison.Ordinal), Committed);
        await page.Locator("#key").FillAsync(key);
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign in" }).ClickAsync();
        return page;
    }

    [Fact]
    public async Task Without_a_key_the_ui_asks_for_one_and_refuses_a_wrong_one()
    {
        var page = await SignInAsync("sx_1_not-a-real-key");
        await Expect(page.GetByTestId("signin-error")).ToContainTextAsync("unknown or has been revoked");
        await Screens.SaveAsync(page, "signin");
    }

    [Fact]
    public async Task An_admin_key_signs_in_into_an_http_only_strict_cookie_and_returns_to_the_page_asked_for()
    {
        var page = await SignInAsync(fixture.AdminKey, "/ui/keys");
        await page.WaitForURLAsync(url => url.EndsWith("/ui/keys", StringComparison.Ordinal), Committed);
        await page.WaitForSelectorAsync("main[data-interactive='true']", new() { Timeout = 60_000 });
        await Expect(page.GetByTestId("who")).ToContainTextAsync("default · admin");
        var cookie = (await page.Context.CookiesAsync()).Single(c => c.Name == "sextant_key");
        Assert.True(cookie.HttpOnly);
        Assert.Equal(SameSiteAttribute.Strict, cookie.SameSite);
        Assert.Equal(0, await page.EvaluateAsync<int>("document.cookie.length"));

        await page.GetByRole(AriaRole.Button, new() { Name = "Sign out" }).ClickAsync();
        await page.WaitForURLAsync(url => url.Contains("/ui/signin", StringComparison.Ordinal), Committed);
        await page.GotoAsync("/ui");
        await page.WaitForURLAsync(url => url.Contains("/ui/signin", StringComparison.Ordinal), Committed);
    }

    [Fact]
    public async Task A_viewer_sees_no_write_buttons()
    {
        using (var admin = fixture.Client(fixture.AdminKey))
        {
            await admin.CreateExperimentAsync("viewer-sees-this");
        }
        var page = await SignInAsync(fixture.ViewerKey);
        await page.WaitForSelectorAsync("main[data-interactive='true']");
        await Expect(page.GetByTestId("experiment-row").Filter(new() { HasText = "viewer-sees-this" })).ToHaveCountAsync(1);
        await Expect(page.GetByRole(AriaRole.Button, new() { Name = "Create", Exact = true })).ToHaveCountAsync(0);
        await Expect(page.GetByRole(AriaRole.Button, new() { Name = "Delete" })).ToHaveCountAsync(0);
        await Expect(page.GetByRole(AriaRole.Button, new() { Name = "Rename" })).ToHaveCountAsync(0);
        await page.GotoInteractiveAsync("/ui/keys");
        await Expect(page.GetByText("Only admins of this project manage its keys")).ToBeVisibleAsync();
        await Expect(page.GetByTestId("create-key")).ToHaveCountAsync(0);
    }

    [Fact]
    public async Task A_revoked_key_sends_the_user_back_to_sign_in_with_a_clear_message()
    {
        using var admin = fixture.Client(fixture.AdminKey);
        var created = await admin.CreateKeyAsync("short-lived", "editor");
        var page = await SignInAsync(created.Secret);
        await page.WaitForSelectorAsync("main[data-interactive='true']");
        await admin.RevokeKeyAsync(created.Key.KeyId);

        await page.ReloadAsync();
        await page.WaitForURLAsync(url => url.Contains("/ui/signin", StringComparison.Ordinal), Committed);
        await Expect(page.GetByTestId("signin-error")).ToContainTextAsync("no longer valid");
    }

    [Fact]
    public async Task Artifact_downloads_need_the_sign_in_too()
    {
        using var http = new HttpClient { BaseAddress = fixture.Address };
        var response = await http.GetAsync("/ui/download/0123456789abcdef0123456789abcdef/model.bin");
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
    }
}

/// <summary>On a loopback server without keys, the anonymous local user is only for requests that come from this machine's own pages.</summary>
public sealed class AnonymousAccessTests(BrowserFixture fixture) : IClassFixture<BrowserFixture>
{
    [Fact]
    public async Task A_foreign_host_header_gets_the_sign_in_page_not_the_local_admin()
    {
        using var http = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false }) { BaseAddress = fixture.Address };
        using var request = new HttpRequestMessage(HttpMethod.Get, "/ui");
        request.Headers.Host = "evil.example";
        var response = await http.SendAsync(request);
        Assert.Equal(HttpStatusCode.Redirect, response.StatusCode);
        Assert.Contains("/ui/signin", response.Headers.Location?.OriginalString, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Ui_pages_may_not_be_framed_by_another_site()
    {
        using var http = new HttpClient { BaseAddress = fixture.Address };
        var response = await http.GetAsync("/ui");
        Assert.Equal("DENY", response.Headers.GetValues("X-Frame-Options").Single());
        Assert.Contains("frame-ancestors 'none'", response.Headers.GetValues("Content-Security-Policy").Single(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_link_on_another_site_does_not_switch_the_project()
    {
        using var http = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false, UseCookies = false }) { BaseAddress = fixture.Address };
        using var request = new HttpRequestMessage(HttpMethod.Get, "/ui/switch-project?name=other&returnUrl=/ui/keys");
        request.Headers.Add("Sec-Fetch-Site", "cross-site");
        var response = await http.SendAsync(request);
        Assert.Equal(HttpStatusCode.Redirect, response.StatusCode);
        Assert.False(response.Headers.Contains("Set-Cookie"));
    }

    [Fact]
    public async Task A_local_page_view_needs_no_sign_in()
    {
        using var http = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false }) { BaseAddress = fixture.Address };
        var response = await http.GetAsync("/ui");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Contains("Experiments", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }
}
