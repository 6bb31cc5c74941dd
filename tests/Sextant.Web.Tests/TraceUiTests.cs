using System.Text.Json;
using Microsoft.Playwright;
using Sextant.Contracts;
using static Microsoft.Playwright.Assertions;

namespace Sextant.Web.Tests;

/// <summary>The trace pages in Chromium: the list with filters, a trace's span tree and conversation, sessions, the cost dashboard.</summary>
public sealed class TraceUiTests(SeededFixture fixture) : IClassFixture<SeededFixture>, IAsyncLifetime
{
    private const string Trace = "4bf92f3577b34da6a3ce929d0e0e4736";

    public async Task InitializeAsync()
    {
        using var client = fixture.Client();
        var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() * 1000;
        var question = JsonSerializer.SerializeToElement(new object[]
        {
            new { role = "system", content = "You are a support agent." },
            new { role = "user", content = "Where is my order #1234?" },
        });
        var answer = JsonSerializer.SerializeToElement(new { role = "assistant", content = "It ships tomorrow." });
        var result = await client.IngestSpansAsync(
        [
            new Span(Trace, "00f067aa0ba902b7", null, "support agent", "span", now, now + 1_500_000, "ok", UserId: "maria", SessionId: "support-7"),
            new Span(Trace, "00f067aa0ba902b8", "00f067aa0ba902b7", "lookup order", "span", now + 50_000, now + 300_000, "ok"),
            new Span(Trace, "00f067aa0ba902b9", "00f067aa0ba902b7", "chat gpt-4o-mini", "generation", now + 350_000, now + 1_400_000, "ok",
                Provider: "openai", Model: "gpt-4o-mini", InputTokens: 1200, OutputTokens: 80, CachedInputTokens: 1000, Input: question, Output: answer,
                TimeToFirstTokenMs: 210),
            new Span("5bf92f3577b34da6a3ce929d0e0e4737", "10f067aa0ba902b7", null, "chat claude-sonnet-4-5", "generation", now - 86_400_000_000, now - 86_399_000_000, "error",
                "overloaded", "anthropic", "claude-sonnet-4-5-20250929", InputTokens: 10, OutputTokens: 0, UserId: "li"),
        ]);
        Assert.Equal(0, result.Rejected);
    }

    public Task DisposeAsync() => Task.CompletedTask;

    [Fact]
    public async Task A_trace_shows_its_span_tree_timeline_and_conversation()
    {
        var page = await fixture.NewPageAsync();
        await page.GotoInteractiveAsync("/ui/traces");
        var row = page.GetByTestId("trace-row").Filter(new() { HasText = "support agent" });
        await Expect(row).ToContainTextAsync("maria");
        await Expect(page.GetByTestId("trace-row").Filter(new() { HasText = "claude" })).ToContainTextAsync("error");
        await Screens.SaveAsync(page, "traces");

        await page.GetByTestId("filter-model").FillAsync("claude-sonnet-4-5-20250929");
        await page.GetByRole(AriaRole.Button, new() { Name = "Apply" }).ClickAsync();
        await Expect(page.GetByTestId("trace-row")).ToHaveCountAsync(1);

        await page.GotoInteractiveAsync($"/ui/traces/{Trace}");
        await Expect(page.GetByTestId("span-row")).ToHaveCountAsync(3);
        // The generation is selected first: its conversation and cost.
        await Expect(page.GetByTestId("span-title")).ToHaveTextAsync("chat gpt-4o-mini");
        await Expect(page.GetByTestId("message")).ToHaveCountAsync(3);
        await Expect(page.GetByTestId("conversation")).ToContainTextAsync("Where is my order #1234?");
        await Expect(page.GetByTestId("conversation")).ToContainTextAsync("It ships tomorrow.");
        // gpt-4o-mini: 200 x 0.15 + 1000 x 0.075 + 80 x 0.60 = 153 USD per million.
        await Expect(page.GetByTestId("span-cost")).ToHaveTextAsync("$0.000153");
        await Screens.SaveAsync(page, "trace");
        await page.GetByTestId("span-row").Filter(new() { HasText = "lookup order" }).ClickAsync();
        await Expect(page.GetByTestId("span-title")).ToHaveTextAsync("lookup order");
    }

    [Fact]
    public async Task Picked_traces_become_eval_dataset_items()
    {
        var page = await fixture.NewPageAsync();
        await page.GotoInteractiveAsync("/ui/traces");
        await page.GetByTestId("trace-row").Filter(new() { HasText = "support agent" }).GetByTestId("pick-trace").CheckAsync();
        await page.GetByTestId("dataset-name").FillAsync("support/from-traces");
        await page.GetByTestId("add-to-dataset").ClickAsync();
        await Expect(page.GetByTestId("added")).ToContainTextAsync("support/from-traces version 1: 1 items");
        using var client = fixture.Client();
        var item = Assert.Single(await client.GetEvalItemsAsync("support/from-traces")).Item;
        Assert.Equal(("It ships tomorrow.", Trace), (item.Expected!.Value.GetString(), item.TraceId));
    }

    [Fact]
    public async Task Sessions_and_the_cost_dashboard()
    {
        var page = await fixture.NewPageAsync();
        await page.GotoInteractiveAsync("/ui/sessions");
        await page.GetByRole(AriaRole.Link, new() { Name = "support-7" }).ClickAsync();
        await page.WaitForURLAsync(url => url.Contains("session=support-7", StringComparison.Ordinal));
        await Expect(page.GetByTestId("trace-row")).ToHaveCountAsync(1);

        await page.GotoInteractiveAsync("/ui/costs?days=7");
        await Expect(page.GetByTestId("cost-row").Filter(new() { HasText = "gpt-4o-mini" })).ToContainTextAsync("$0.000153");
        await Expect(page.GetByTestId("cost-row").Filter(new() { HasText = "claude" })).ToContainTextAsync("1");
        await Expect(page.Locator("[data-testid=chart] .main-svg").First).ToBeVisibleAsync();
        await Screens.SaveAsync(page, "costs");
        await Expect(page.GetByTestId("error")).ToHaveCountAsync(0);
        await page.GotoInteractiveAsync("/ui/traces/not-a-trace");
        await Expect(page.GetByTestId("error")).ToContainTextAsync("32 lower-case hex digits");
    }
}
