using Microsoft.Playwright;
using Sextant.Client;
using Sextant.Server;

namespace Sextant.Web.Tests;

/// <summary>
/// A real Sextant server on 127.0.0.1 with a temporary data folder, and Debian's headless Chromium driven by
/// Playwright. Seeding goes through the .NET SDK, as a user's training code would.
/// </summary>
public class BrowserFixture : IAsyncLifetime
{
    public const string ChromiumPath = "/usr/bin/chromium";

    private IPlaywright? _playwright;

    public SextantServer Server { get; private set; } = null!;

    public IBrowser Browser { get; private set; } = null!;

    public string DataDirectory { get; } = Path.Combine(Path.GetTempPath(), "sextant-web-" + Guid.NewGuid().ToString("N")[..10]);

    public Uri Address => Server.Address;

    protected virtual void Configure(SextantServerOptions options)
    {
    }

    public virtual async Task InitializeAsync()
    {
        if (!File.Exists(ChromiumPath))
        {
            throw new InvalidOperationException($"Browser tests need Debian's Chromium at {ChromiumPath}: apt-get install -y chromium (test.sh does this).");
        }
        var options = new SextantServerOptions { Port = 0, DataDirectory = DataDirectory, ConsoleLogging = Environment.GetEnvironmentVariable("SEXTANT_TEST_LOG") == "1" };
        Configure(options);
        await SeedBeforeStartAsync(options);
        Server = await SextantServer.StartAsync(options);
        _playwright = await Playwright.CreateAsync();
        Browser = await _playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = ChromiumPath,
            Headless = true,
            Args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"],
        });
    }

    /// <summary>Runs before the server starts (e.g. to create a key in the data folder).</summary>
    protected virtual Task SeedBeforeStartAsync(SextantServerOptions options) => Task.CompletedTask;

    public SextantClient Client(string? key = null) => new(Server.Address, key);

    /// <summary>A new page whose console errors and failed requests fail the test that reads <see cref="PageErrors"/>.</summary>
    public async Task<IPage> NewPageAsync(int width = 1440, int height = 900)
    {
        var context = await Browser.NewContextAsync(new BrowserNewContextOptions
        {
            BaseURL = Server.Address.ToString(),
            ViewportSize = new ViewportSize { Width = width, Height = height },
            AcceptDownloads = true,
        });
        var page = await context.NewPageAsync();
        // Generous: the suite's four test assemblies and Chromium share two cores, and a circuit can start slowly.
        page.SetDefaultTimeout(30_000);
        Microsoft.Playwright.Assertions.SetDefaultExpectTimeout(15_000);
        var errors = new List<string>();
        page.PageError += (_, error) => errors.Add(error);
        page.Console += (_, message) =>
        {
            if (message.Type == "error")
            {
                errors.Add(message.Text);
            }
        };
        _errors[page] = errors;
        return page;
    }

    private readonly System.Collections.Concurrent.ConcurrentDictionary<IPage, List<string>> _errors = new();

    /// <summary>Script errors and console errors the page has reported so far.</summary>
    public IReadOnlyList<string> ErrorsOf(IPage page) => _errors.TryGetValue(page, out var errors) ? errors : [];

    public async Task DisposeAsync()
    {
        if (Browser is not null)
        {
            await Browser.DisposeAsync();
        }
        _playwright?.Dispose();
        if (Server is not null)
        {
            await Server.DisposeAsync();
        }
        try
        {
            Directory.Delete(DataDirectory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

public static class PageExtensions
{
    /// <summary>Waits until the page's circuit is live, so clicks reach the server.</summary>
    public static async Task GotoInteractiveAsync(this IPage page, string url)
    {
        await page.GotoAsync(url);
        await page.WaitForSelectorAsync("main[data-interactive='true']");
    }
}
