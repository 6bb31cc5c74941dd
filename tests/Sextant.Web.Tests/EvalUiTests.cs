using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Playwright;
using Sextant.Client.Evaluation;
using Sextant.Contracts;
using static Microsoft.Playwright.Assertions;

namespace Sextant.Web.Tests;

/// <summary>The evaluation pages in Chromium: experiments, one experiment's drill-down, a comparison, eval datasets, online scores, and the prompt playground's run.</summary>
public sealed class EvalUiTests(SeededFixture fixture) : IClassFixture<SeededFixture>, IAsyncLifetime
{
    private WebApplication? _fake;
    private string _good = "", _bad = "";

    private static JsonElement Json(string text) => JsonDocument.Parse(text).RootElement.Clone();

    public async Task InitializeAsync()
    {
        using var client = fixture.Client();
        // xUnit makes the class (and runs this) once per test; the server is shared, so the data is made once.
        if ((await client.ListEvalExperimentsAsync("ui/capitals")).Experiments is { Count: > 0 } made)
        {
            (_good, _bad) = (made.Single(e => e.Name == "capitals-good").Id, made.Single(e => e.Name == "capitals-bad").Id);
        }
        else
        {
            await SeedAsync(client);
        }
        await StartFakeAsync();
    }

    private async Task SeedAsync(Sextant.Client.SextantClient client)
    {
        string[] countries = ["France", "Spain", "Italy", "Japan"];
        string[] capitals = ["Paris", "Madrid", "Rome", "Tokyo"];
        await client.AddEvalItemsAsync("ui/capitals", [.. countries.Select((c, i) => new EvalItem(c.ToLowerInvariant(), Json($$"""{"country": "{{c}}"}"""), Json($"\"{capitals[i]}\"")))],
            message: "four capitals");
        var options = new EvalRunOptions { Evaluators = [Json("""{"type": "equals"}"""), Json("""{"type": "length", "max": 20}""")] };
        _good = (await client.RunEvalExperimentAsync("ui/capitals", (item, _) => Task.FromResult(capitals[item.Index]), options with { Name = "capitals-good" })).Id;
        _bad = (await client.RunEvalExperimentAsync("ui/capitals", (item, _) => Task.FromResult(item.Index < 2 ? "I am not sure about that one" : capitals[item.Index]),
            options with { Name = "capitals-bad" })).Id;
        var trace = "4bf92f3577b34da6a3ce929d0e0e4736";
        await client.ScoreTraceAsync(trace, "thumbs", true, "helpful");
        await client.CreatePromptVersionAsync("ui/echo", new CreatePromptVersionRequest("text", Json("\"Say {{word}}\""), Json("""{"model": "fake/ok"}"""), null, "echo", ["production"]));
    }

    private async Task StartFakeAsync()
    {

        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(k => k.Listen(System.Net.IPAddress.Loopback, 0));
        _fake = builder.Build();
        _fake.MapPost("/v1/chat/completions", async (HttpContext ctx) =>
        {
            using var body = await JsonDocument.ParseAsync(ctx.Request.Body);
            var said = body.RootElement.GetProperty("messages")[0].GetProperty("content").GetString();
            await ctx.Response.WriteAsJsonAsync(new
            {
                id = "c1", @object = "chat.completion", model = "ok",
                choices = new[] { new { index = 0, message = new { role = "assistant", content = "Echo: " + said }, finish_reason = "stop" } },
                usage = new { prompt_tokens = 5, completion_tokens = 3, total_tokens = 8 },
            });
        });
        await _fake.StartAsync();
        var address = _fake.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        using var http = new HttpClient { BaseAddress = fixture.Address };
        var put = await http.PutAsync("/api/v1/gateway/providers/fake", new StringContent($$"""{"kind": "openai", "base_url": "{{address}}/v1"}""", System.Text.Encoding.UTF8, "application/json"));
        put.EnsureSuccessStatusCode();
    }

    public async Task DisposeAsync()
    {
        if (_fake is not null)
        {
            await _fake.DisposeAsync();
        }
    }

    [Fact]
    public async Task Experiments_drill_down_and_compare_with_regressions_first()
    {
        var page = await fixture.NewPageAsync();
        await page.GotoInteractiveAsync("/ui/eval");
        await Expect(page.GetByTestId("experiment-row").Filter(new() { HasText = "capitals-good" })).ToContainTextAsync("100.0%");
        await Expect(page.GetByTestId("experiment-row").Filter(new() { HasText = "capitals-bad" })).ToContainTextAsync("50.0%");
        await page.GetByTestId("experiment-row").Filter(new() { HasText = "capitals-good" }).GetByTestId("pick-experiment").CheckAsync();
        await page.GetByTestId("experiment-row").Filter(new() { HasText = "capitals-bad" }).GetByTestId("pick-experiment").CheckAsync();
        await page.GetByTestId("compare-experiments").ClickAsync();
        await Expect(page.GetByTestId("metric-row").Filter(new() { HasText = "pass_rate" })).ToContainTextAsync("-0.5");
        await Expect(page.GetByTestId("item-row").First).ToContainTextAsync("regression");
        await Expect(page.GetByTestId("item-row").First).ToContainTextAsync("I am not sure about that one");
        await Screens.SaveAsync(page, "eval-compare");

        await page.GotoInteractiveAsync($"/ui/eval/experiment?id={_bad}");
        await Expect(page.GetByTestId("pass-rate")).ToHaveTextAsync("50.0%");
        await Expect(page.GetByTestId("evaluator-row")).ToHaveCountAsync(2);
        await page.GetByTestId("filter-fail").ClickAsync();
        await Expect(page.GetByTestId("result-row")).ToHaveCountAsync(2);
        await page.GetByTestId("result-row").First.ClickAsync();
        await Expect(page.GetByTestId("result-detail")).ToContainTextAsync("France");
        await Expect(page.GetByTestId("score-reason").First).ToContainTextAsync("the output is not 'Paris'");
        await Screens.SaveAsync(page, "eval-experiment");
        Assert.Empty(fixture.ErrorsOf(page));
    }

    [Fact]
    public async Task Eval_datasets_online_scores_and_the_playground_run()
    {
        var page = await fixture.NewPageAsync();
        await page.GotoInteractiveAsync("/ui/eval/datasets");
        await page.GetByTestId("eval-dataset-row").Filter(new() { HasText = "ui/capitals" }).GetByRole(AriaRole.Link).ClickAsync();
        await Expect(page.GetByTestId("eval-item-row")).ToHaveCountAsync(4);
        await Expect(page.GetByTestId("eval-version-row")).ToContainTextAsync("four capitals");

        await page.GotoInteractiveAsync("/ui/eval/scores");
        await Expect(page.GetByTestId("score-row").Filter(new() { HasText = "thumbs" })).ToContainTextAsync("helpful");

        await page.GotoInteractiveAsync("/ui/prompt?name=ui%2Fecho");
        await page.GetByTestId("var-word").FillAsync("hello");
        await page.GetByTestId("run").ClickAsync();
        await Expect(page.GetByTestId("run-output")).ToHaveTextAsync("Echo: Say hello");
        await Expect(page.GetByTestId("run-answer")).ToContainTextAsync("5 + 3 tokens");
        await Expect(page.GetByTestId("run-trace")).ToBeVisibleAsync();
        Assert.Empty(fixture.ErrorsOf(page));

        // Feedback on the run's trace shows on its page.
        var trace = (await page.GetByTestId("run-trace").GetAttributeAsync("href"))!.Split('/')[^1];
        using var client = fixture.Client();
        await client.ScoreTraceAsync(trace, "quality", 4.0, "good echo");
        await page.GotoInteractiveAsync($"/ui/traces/{trace}");
        await Expect(page.GetByTestId("trace-scores")).ToContainTextAsync("quality: 4");
    }
}
