using System.Diagnostics;
using System.Text.Json;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.Emit;
using Sextant.Client;
using Sextant.Contracts;

namespace Sextant.Bench;

/// <summary>
/// Prompt fetch by label: through the API (the real server as a child process, sequential GETs after a warm-up),
/// and from the SDK's cache (BenchmarkDotNet, in process, against the same server).
/// </summary>
internal static class PromptBenchmark
{
    public static async Task<int> RunAsync(string[] args)
    {
        var cli = args.FirstOrDefault() ?? throw new ArgumentException("pass the path to sextant.dll");
        var folder = Path.Combine(Path.GetTempPath(), "sextant-prompt-bench-" + Guid.NewGuid().ToString("N")[..8]);
        var (server, url) = await ChildServer.StartAsync(cli, folder);
        try
        {
            using var client = new SextantClient(new Uri(url));
            var template = JsonSerializer.SerializeToElement(new[]
            {
                new { role = "system", content = "You are the support assistant of {{company}}. Answer in {{language}}, in at most {{limit}} sentences." },
                new { role = "user", content = "{{question}}" },
            });
            for (var v = 0; v < 20; v++)
            {
                await client.CreatePromptVersionAsync("bench/support/answer", new CreatePromptVersionRequest("chat", template,
                    JsonSerializer.SerializeToElement(new { model = "gpt-4o-mini", temperature = 0.2 + v / 100.0 }), ["bench"], $"version {v + 1}",
                    v == 10 ? ["production"] : null));
            }
            using var http = new HttpClient { BaseAddress = new Uri(url + "/") };
            const string path = "api/v1/prompts/get?name=bench/support/answer&label=production";
            for (var i = 0; i < 300; i++)
            {
                (await http.GetAsync(path)).EnsureSuccessStatusCode();
            }
            var samples = new List<double>();
            for (var i = 0; i < 3000; i++)
            {
                var start = Stopwatch.GetTimestamp();
                using var response = await http.GetAsync(path);
                await response.Content.ReadAsByteArrayAsync();
                samples.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
                response.EnsureSuccessStatusCode();
            }
            var health = new List<double>();
            for (var i = 0; i < 3000; i++)
            {
                var start = Stopwatch.GetTimestamp();
                using var response = await http.GetAsync("healthz");
                health.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
            }
            Console.WriteLine($"machine: {Environment.ProcessorCount} cores; a chat prompt of 20 versions, production at version 11");
            Console.WriteLine($"GET {path}: p50 {Stats.Percentile(samples, 0.5):F3} ms, p99 {Stats.Percentile(samples, 0.99):F3} ms (3,000 sequential)");
            Console.WriteLine($"GET /healthz (floor): p50 {Stats.Percentile(health, 0.5):F3} ms, p99 {Stats.Percentile(health, 0.99):F3} ms");

            PromptCacheBenchmarks.Url = url;
            BenchmarkRunner.Run<PromptCacheBenchmarks>(ManualConfig.CreateMinimumViable()
                .AddJob(Job.ShortRun.WithToolchain(InProcessEmitToolchain.Instance)));
            return 0;
        }
        finally
        {
            await ChildServer.StopAsync(server, folder);
        }
    }
}

/// <summary>The SDK's cached fetch: what an application pays per call once the prompt is kept.</summary>
[MemoryDiagnoser]
public class PromptCacheBenchmarks : IDisposable
{
    internal static string Url { get; set; } = "";

    private SextantClient _client = null!;

    [GlobalSetup]
    public void Setup()
    {
        _client = new SextantClient(new Uri(Url)) { PromptCacheTtl = TimeSpan.FromHours(1) };
        _client.GetPromptAsync("bench/support/answer").AsTask().GetAwaiter().GetResult();
    }

    [Benchmark]
    public PromptVersion CachedGetPrompt()
    {
        var fetch = _client.GetPromptAsync("bench/support/answer");
        // Kept: the call completes at once, without a task.
        return fetch.IsCompletedSuccessfully ? fetch.Result : throw new InvalidOperationException("the prompt was not served from the cache");
    }

    [GlobalCleanup]
    public void Dispose()
    {
        _client.Dispose();
        GC.SuppressFinalize(this);
    }
}
