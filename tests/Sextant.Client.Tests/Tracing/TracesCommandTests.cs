using System.Text.Json;
using Sextant.Client.Tests.Cli;
using Sextant.Contracts;

namespace Sextant.Client.Tests.Tracing;

/// <summary>Spans through the SDK; `sextant traces`, `costs`, `prices` and `gateway` against a real server.</summary>
[Collection(ConsoleCollection.Name)]
public sealed class TracesCommandTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    [Fact]
    public async Task Sdk_spans_show_up_in_traces_costs_and_the_trace_tree()
    {
        using var client = fixture.CreateClient();
        var trace = Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(16));
        var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() * 1000;
        var messages = JsonSerializer.SerializeToElement(new[] { new { role = "user", content = "What is 2+2?" } });
        var answer = JsonSerializer.SerializeToElement(new { role = "assistant", content = "4" });
        var result = await client.IngestSpansAsync(
        [
            new Span(trace, "00000000000000a1", null, "math agent", "span", now, now + 900_000, "ok", UserId: "carol"),
            new Span(trace, "00000000000000a2", "00000000000000a1", "chat gpt-4.1", "generation", now + 100_000, now + 800_000, "ok",
                Provider: "openai", Model: "gpt-4.1", InputTokens: 2000, OutputTokens: 100, Input: messages, Output: answer),
            new Span(trace, "bad", null, "broken", "span", now, now, "ok"),
        ]);
        Assert.Equal((2, 1), (result.Accepted, result.Rejected));

        var list = await CliRunner.RunAsync(fixture.Address, "traces", "list", "--since", "1h", "--user", "carol");
        Assert.Equal(0, list.ExitCode);
        Assert.Contains("math agent", list.Out);
        var show = await CliRunner.RunAsync(fixture.Address, "traces", "show", trace);
        Assert.Equal(0, show.ExitCode);
        Assert.Contains("chat gpt-4.1", show.Out);
        Assert.Contains("user: What is 2+2?", show.Out);
        // gpt-4.1: 2,000 x $2 + 100 x $8 per million = $0.0048.
        Assert.Contains("$0.0048", show.Out);
        var costs = await CliRunner.RunAsync(fixture.Address, "costs", "--by", "model", "--since", "1d", "--json");
        var row = JsonDocument.Parse(costs.Out).RootElement.GetProperty("rows").EnumerateArray().Single(r => r.GetProperty("key").GetString() == "gpt-4.1");
        Assert.Equal(0.0048, row.GetProperty("cost").GetDouble(), 9);
        Assert.Equal(1, (await CliRunner.RunAsync(fixture.Address, "costs", "--since", "7 days")).ExitCode);
    }

    [Fact]
    public async Task Prices_and_gateway_routes_are_set_and_listed()
    {
        var set = await CliRunner.RunAsync(fixture.Address, "prices", "set", "inhouse-*", "--input", "0.2", "--output", "0.4");
        Assert.Equal(0, set.ExitCode);
        var list = await CliRunner.RunAsync(fixture.Address, "prices", "list", "--model", "inhouse-13b");
        Assert.Contains("inhouse-*", list.Out);
        Assert.Contains("project", list.Out);

        Environment.SetEnvironmentVariable("SEXTANT_TEST_UPSTREAM_KEY", "sk-never-shown");
        var provider = await CliRunner.RunAsync(fixture.Address, "gateway", "providers", "set", "local", "--base-url", "http://127.0.0.1:9/v1", "--api-key-env", "SEXTANT_TEST_UPSTREAM_KEY");
        Assert.Equal(0, provider.ExitCode);
        var providers = await CliRunner.RunAsync(fixture.Address, "gateway", "providers", "list", "--json");
        Assert.Contains("\"has_api_key\":true", providers.Out.Replace(" ", "", StringComparison.Ordinal));
        Assert.DoesNotContain("sk-never-shown", providers.Out);
        var route = await CliRunner.RunAsync(fixture.Address, "gateway", "routes", "set", "assistant", "--target", "local/llama-3-8b=3", "local/mistral-7b", "--retries", "2");
        Assert.Equal(0, route.ExitCode);
        var routes = await CliRunner.RunAsync(fixture.Address, "gateway", "routes", "list");
        Assert.Contains("local/llama-3-8b x3", routes.Out);
        var bad = await CliRunner.RunAsync(fixture.Address, "gateway", "routes", "set", "assistant", "--target", "no-slash");
        Assert.Equal(1, bad.ExitCode);
    }
}
