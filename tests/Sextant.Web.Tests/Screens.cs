using Microsoft.Playwright;

namespace Sextant.Web.Tests;

/// <summary>
/// Screenshots of the main pages: written to docs/screenshots/ when SEXTANT_SCREENSHOTS names that folder (how the
/// README's pictures are made), otherwise to a temporary folder so that a test run never changes the repository.
/// </summary>
public static class Screens
{
    public static readonly string Folder = Environment.GetEnvironmentVariable("SEXTANT_SCREENSHOTS") is { Length: > 0 } folder
        ? folder
        : Path.Combine(Path.GetTempPath(), "sextant-screenshots");

    public static async Task SaveAsync(IPage page, string name)
    {
        Directory.CreateDirectory(Folder);
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(Folder, name + ".png"), FullPage = false });
    }
}
