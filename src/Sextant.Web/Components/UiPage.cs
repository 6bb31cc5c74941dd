using Microsoft.AspNetCore.Components;
using Sextant.Core;
using Sextant.Core.Projects;
using Sextant.Web.Auth;

namespace Sextant.Web.Components;

/// <summary>
/// Base of the UI's pages: the signed-in caller (cascaded by the layout, re-checked at every action), and one
/// place that turns service errors into a message on the page and a lost sign-in into the sign-in page.
/// </summary>
public abstract class UiPage : ComponentBase
{
    [Inject]
    protected UiSession Session { get; set; } = default!;

    [Inject]
    protected NavigationManager Navigation { get; set; } = default!;

    [CascadingParameter]
    protected Caller? Caller { get; set; }

    /// <summary>The last error, shown by the page (a bad filter, an unknown id, a refused action).</summary>
    protected string? Error { get; set; }

    protected bool CanEdit => Caller is { Role: >= Role.Editor };

    protected bool IsAdmin => Caller is { Role: Role.Admin };

    /// <summary>Runs <paramref name="action"/> as the current caller; false when it failed (the message is in <see cref="Error"/>).</summary>
    protected async Task<bool> TryAsync(Func<Caller, Task> action)
    {
        try
        {
            var caller = await Session.CallerAsync();
            Error = null;
            await action(caller);
            return true;
        }
        catch (UiSignInRequiredException)
        {
            Navigation.NavigateTo(SignInUrl(Navigation), forceLoad: true);
        }
        catch (SextantException e)
        {
            Error = e.Message;
        }
        catch (System.Data.Common.DbException e)
        {
            Error = $"The database could not answer: {e.Message}. Try again in a moment.";
        }
        return false;
    }

    public static string SignInUrl(NavigationManager navigation) =>
        "/ui/signin?returnUrl=" + Uri.EscapeDataString("/" + navigation.ToBaseRelativePath(navigation.Uri));

    protected static string Time(long? milliseconds) =>
        milliseconds is { } ms and > 0
            ? DateTimeOffset.FromUnixTimeMilliseconds(ms).UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss", System.Globalization.CultureInfo.InvariantCulture)
            : "";

    protected static string Duration(long start, long? end)
    {
        if (end is not { } e || e < start)
        {
            return "";
        }
        var span = TimeSpan.FromMilliseconds(e - start);
        return span.TotalSeconds < 60 ? $"{span.TotalSeconds:0.#} s"
            : span.TotalMinutes < 60 ? $"{span.TotalMinutes:0.#} min"
            : $"{span.TotalHours:0.#} h";
    }

    /// <summary>A share as a percentage: 0.5 is "50.0%".</summary>
    protected static string Percent(double value, int decimals = 1) =>
        (value * 100).ToString(decimals == 0 ? "0" : "0." + new string('0', decimals), System.Globalization.CultureInfo.InvariantCulture) + "%";

    protected static string Number(double value) =>
        double.IsNaN(value) ? "NaN" : value.ToString("G6", System.Globalization.CultureInfo.InvariantCulture);
}
