using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Sextant.Core.Tests.Storage;

namespace Sextant.Bench;

/// <summary>
/// Gateway overhead: a fake upstream that answers at once (in this process), called directly, through Sextant (a
/// child process of the real CLI, SQLite, every call traced) and through the Portkey gateway (node, when its
/// start-server.js is given), at fixed request rates (open loop: latency is counted from when a request was due, so
/// a slow gateway cannot hide its queue). Non-streaming and streaming.
/// </summary>
internal static class GatewayBenchmark
{
    private const string Answer = """{"id":"chatcmpl-1","object":"chat.completion","created":1700000000,"model":"fake-model","choices":[{"index":0,"message":{"role":"assistant","content":"Hello there"},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":3,"total_tokens":15}}""";
    private static readonly string[] Pieces = ["Hel", "lo", " there"];
    private const string Body = """{"model":"MODEL","messages":[{"role":"user","content":"Say hello"}],"temperature":0.2,"stream":STREAM}""";

    public static async Task<int> RunAsync(string[] args)
    {
        var cli = args.FirstOrDefault() ?? throw new ArgumentException("pass the path to sextant.dll");
        var portkey = args.Length > 1 && args[1] != "-" ? args[1] : null;
        var seconds = args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 10;
        var rates = args.Length > 3 ? args[3].Split(',').Select(r => int.Parse(r, CultureInfo.InvariantCulture)).ToArray() : [500, 1000, 2000];
        // "even" (the default): one request every 1/rate s, as wrk2, vegeta and k6's constant-arrival-rate send them;
        // "poisson": the same mean rate with random (exponential) gaps, so requests also arrive in clumps.
        var poisson = args.Length > 4 && args[4] switch
        {
            "poisson" => true,
            "even" => false,
            _ => throw new ArgumentException($"arrivals must be even or poisson, not '{args[4]}'"),
        };
        await using var upstream = await StartUpstreamAsync();
        var folder = Path.Combine(Path.GetTempPath(), "sextant-gateway-bench-" + Guid.NewGuid().ToString("N")[..8]);
        // As the other benches start it, so that SEXTANT_SERVER_ENV_<NAME> settings reach this server too.
        var (sextant, baseUrl) = await ChildServer.StartAsync(cli, folder);
        Process? portkeyProcess = null;
        var portkeyPort = FreePort.Next();
        try
        {
            using var admin = new HttpClient { BaseAddress = new Uri(baseUrl + "/") };
            (await admin.PutAsync("api/v1/gateway/providers/fake", Json($$"""{"kind":"openai","base_url":"{{upstream.BaseUrl}}","api_key":"sk-bench"}"""))).EnsureSuccessStatusCode();
            (await admin.PutAsync("api/v1/gateway/routes/bench", Json("""{"targets":[{"provider":"fake","model":"fake-model"}]}"""))).EnsureSuccessStatusCode();
            if (portkey is not null)
            {
                portkeyProcess = Process.Start(new ProcessStartInfo("node", $"\"{portkey}\" --port={portkeyPort} --headless")
                    { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, Environment = { ["NODE_ENV"] = "production" } })!;
                _ = portkeyProcess.StandardOutput.ReadToEndAsync();
                _ = portkeyProcess.StandardError.ReadToEndAsync();
                using var probe = new HttpClient();
                await WaitAsync(probe, $"http://127.0.0.1:{portkeyPort}/");
            }
            Console.WriteLine($"machine: {Environment.ProcessorCount} cores; {seconds} s per rate and target, in {BlockSeconds} s blocks the targets take in turn; latency from when each request was due (open loop); {(poisson ? "Poisson" : "evenly spaced")} arrivals");
            using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = 4096, PooledConnectionLifetime = TimeSpan.FromMinutes(10) }) { Timeout = TimeSpan.FromSeconds(30) };
            var targets = new List<(string Name, string Url, string Model, Action<HttpRequestMessage> Headers)>
            {
                ("direct", upstream.BaseUrl + "/chat/completions", "fake-model", r => r.Headers.Authorization = new("Bearer", "sk-bench")),
                ("sextant", baseUrl + "/v1/chat/completions", "bench", _ => { }),
            };
            if (portkey is not null)
            {
                targets.Add(("portkey", $"http://127.0.0.1:{portkeyPort}/v1/chat/completions", "fake-model", r =>
                {
                    r.Headers.Authorization = new("Bearer", "sk-bench");
                    r.Headers.Add("x-portkey-provider", "openai");
                    r.Headers.Add("x-portkey-custom-host", upstream.BaseUrl);
                }));
            }
            var warmed = new HashSet<(string Target, bool Stream)>();
            foreach (var stream in new[] { false, true })
            {
                Console.WriteLine(stream ? "streaming (3 chunks and a usage chunk):" : "non-streaming:");
                Console.WriteLine("  rate     target    p50 ms   p99 ms   added p50  added p99  errors  achieved/s  gateway CPU ms/request");
                foreach (var rate in rates)
                {
                    foreach (var (name, url, model, headers) in targets)
                    {
                        // Warm connections and JIT first, at up to 1,000 requests/s, so that the measured round runs the code
                        // the runtime settles on, not the compiler: its tiered compiler re-compiles hot methods in the
                        // background, and in a fresh server it compiles 400-1,000 methods a second, on up to half a core,
                        // for the first 10 s of load (dotnet-counters, dotnet.jit.*). 15 s the first time a target runs a
                        // kind of request, 5 s after that.
                        var warmUp = warmed.Add((name, stream)) ? 15 : 5;
                        await DriveAsync(http, url, model, stream, headers, Math.Min(rate, 1000), warmUp, poisson);
                    }
                    // The measured seconds are taken in blocks that alternate between the targets (the order turned each
                    // block), so that a noisy stretch of this shared VM falls on all of them alike rather than on whichever
                    // ran then; each target's percentiles are over all its blocks.
                    var blocks = Math.Max(1, seconds / BlockSeconds);
                    var latencies = targets.Select(_ => new List<double>(rate * seconds)).ToArray();
                    var (errors, elapsed, cpuMs) = (new int[targets.Count], new double[targets.Count], new double[targets.Count]);
                    for (var block = 0; block < blocks; block++)
                    {
                        for (var k = 0; k < targets.Count; k++)
                        {
                            var t = block % 2 == 0 ? k : targets.Count - 1 - k;
                            var (name, url, model, headers) = targets[t];
                            var gatewayPid = name switch { "sextant" => sextant.Id, "portkey" => portkeyProcess!.Id, _ => 0 };
                            var cpuBefore = gatewayPid == 0 ? 0 : ProcStatus.CpuMs(gatewayPid);
                            var result = await DriveAsync(http, url, model, stream, headers, rate, seconds / blocks, poisson);
                            cpuMs[t] += gatewayPid == 0 ? 0 : ProcStatus.CpuMs(gatewayPid) - cpuBefore;
                            latencies[t].AddRange(result.Latencies);
                            (errors[t], elapsed[t]) = (errors[t] + result.Errors, elapsed[t] + result.Seconds);
                        }
                    }
                    (double P50, double P99)? direct = null;
                    for (var t = 0; t < targets.Count; t++)
                    {
                        latencies[t].Sort();
                        var (p50, p99) = (Stats.Percentile(latencies[t], 0.50), Stats.Percentile(latencies[t], 0.99));
                        direct ??= (p50, p99);
                        var name = targets[t].Name;
                        var cpu = name == "direct" ? "" : $"{cpuMs[t] / latencies[t].Count:F3}";
                        var added = name == "direct" ? "" : $"{p50 - direct.Value.P50,9:F2}  {p99 - direct.Value.P99,9:F2}";
                        Console.WriteLine($"  {rate,5}  {name,-8} {p50,8:F2} {p99,8:F2}  {added,-20} {errors[t],6} {latencies[t].Count / elapsed[t],10:F0}  {cpu}");
                    }
                }
            }
            Console.WriteLine($"sextant peak RSS (VmHWM): {ProcStatus.Peak(sextant.Id):F0} MiB; now {ProcStatus.Rss(sextant.Id):F0} MiB");
            if (portkeyProcess is not null)
            {
                Console.WriteLine($"portkey peak RSS (VmHWM): {ProcStatus.Peak(portkeyProcess.Id):F0} MiB");
            }
            return 0;
        }
        finally
        {
            if (portkeyProcess is not null)
            {
                portkeyProcess.Kill(entireProcessTree: true);
                await portkeyProcess.WaitForExitAsync();
                portkeyProcess.Dispose();
            }
            await ChildServer.StopAsync(sextant, folder);
        }
    }

    /// <summary>A long run through Sextant alone at one rate: latency and resident memory minute by minute.</summary>
    public static async Task<int> SoakAsync(string[] args)
    {
        var cli = args.FirstOrDefault() ?? throw new ArgumentException("pass the path to sextant.dll");
        var seconds = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 600;
        var rate = args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 1000;
        // "sync": the server syncs every span commit (--sync-spans).
        var sync = args.Length > 3 && args[3] == "sync";
        await using var upstream = await StartUpstreamAsync();
        var folder = Path.Combine(Path.GetTempPath(), "sextant-gateway-soak-" + Guid.NewGuid().ToString("N")[..8]);
        var (sextant, baseUrl) = await ChildServer.StartAsync(cli, folder, sync ? "--sync-spans" : "");
        try
        {
            using var admin = new HttpClient { BaseAddress = new Uri(baseUrl + "/") };
            (await admin.PutAsync("api/v1/gateway/providers/fake", Json($$"""{"kind":"openai","base_url":"{{upstream.BaseUrl}}","api_key":"sk-bench"}"""))).EnsureSuccessStatusCode();
            (await admin.PutAsync("api/v1/gateway/routes/bench", Json("""{"targets":[{"provider":"fake","model":"fake-model"}]}"""))).EnsureSuccessStatusCode();
            using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = 4096 }) { Timeout = TimeSpan.FromSeconds(30) };
            var url = baseUrl + "/v1/chat/completions";
            // The bench's own side (this process's driver and fake upstream) is warmed first, by calling the upstream
            // directly at the rate, so that the first minute shows Sextant's cold start rather than the bench's.
            await DriveAsync(http, upstream.BaseUrl + "/chat/completions", "fake-model", false, r => r.Headers.Authorization = new("Bearer", "sk-bench"), rate, 10);
            Console.WriteLine($"soak: {rate} requests/s for {seconds} s through Sextant (non-streaming, every call traced; span commits {(sync ? "synced" : "not synced")}); the bench's side warmed, Sextant cold");
            Console.WriteLine("  minute   p50 ms   p99 ms   errors   RSS MiB   spans stored");
            for (var minute = 1; minute * 60 <= seconds; minute++)
            {
                var result = await DriveAsync(http, url, "bench", false, _ => { }, rate, 60);
                var stored = await admin.GetStringAsync("api/v1/costs?by=model");
                var requests = System.Text.Json.JsonDocument.Parse(stored).RootElement.GetProperty("rows").EnumerateArray().Sum(r => r.GetProperty("requests").GetInt64());
                Console.WriteLine($"  {minute,6} {result.P50,8:F2} {result.P99,8:F2} {result.Errors,8} {ProcStatus.Rss(sextant.Id),9:F0} {requests,14:N0}");
                if (minute == 1)
                {
                    // A cold server's first seconds at the full rate, from the requests due in each (latencies are in due order).
                    var firsts = Enumerable.Range(0, 5).Select(second => Stats.Percentile(result.Latencies.Skip(second * rate).Take(rate).ToList(), 0.99).ToString("F0", CultureInfo.InvariantCulture));
                    Console.WriteLine($"         p99 ms of each of the first 5 seconds: {string.Join(", ", firsts)}; sockets Sextant holds now: {ProcStatus.Sockets(sextant.Id)}");
                }
            }
            Console.WriteLine($"peak RSS (VmHWM): {ProcStatus.Peak(sextant.Id):F0} MiB");
            return 0;
        }
        finally
        {
            await ChildServer.StopAsync(sextant, folder);
        }
    }

    private static StringContent Json(string json) => new(json, Encoding.UTF8, "application/json");

    private static async Task WaitAsync(HttpClient http, string path)
    {
        for (var i = 0; i < 600; i++)
        {
            try
            {
                if ((await http.GetAsync(path)).StatusCode != HttpStatusCode.ServiceUnavailable)
                {
                    return;
                }
            }
            catch (HttpRequestException)
            {
            }
            await Task.Delay(50);
        }
        throw new TimeoutException($"{path} never answered");
    }

    /// <summary>Seconds of each measured block; the targets take turns block by block.</summary>
    private const int BlockSeconds = 2;

    private sealed record Result(double P50, double P99, int Errors, double[] Latencies, double Seconds);

    /// <summary>
    /// Sends <paramref name="rate"/> requests a second for <paramref name="seconds"/> seconds, each when it is due (open loop):
    /// a thread of its own sleeps until a request is due and starts it there, so that each request goes out on its own
    /// schedule rather than in bursts the driver makes; latency counts from when the request was due, so a late start
    /// counts too.
    /// </summary>
    /// <param name="poisson">Exponential gaps of mean 1/rate (a fixed seed) instead of even ones.</param>
    private static async Task<Result> DriveAsync(HttpClient http, string url, string model, bool stream, Action<HttpRequestMessage> headers, int rate, int seconds,
        bool poisson = false)
    {
        var total = rate * seconds;
        var latencies = new double[total];
        var errors = 0;
        var body = Body.Replace("MODEL", model, StringComparison.Ordinal).Replace("STREAM", stream ? "true" : "false", StringComparison.Ordinal);
        var tasks = new Task[total];
        var clock = Stopwatch.StartNew();
        async Task SendAsync(int index, double due)
        {
            try
            {
                using var request = new HttpRequestMessage(HttpMethod.Post, url) { Content = Json(body) };
                headers(request);
                using var response = await http.SendAsync(request, HttpCompletionOption.ResponseContentRead);
                if (!response.IsSuccessStatusCode)
                {
                    Interlocked.Increment(ref errors);
                }
            }
            catch (Exception)
            {
                Interlocked.Increment(ref errors);
            }
            latencies[index] = (clock.Elapsed.TotalSeconds - due) * 1000;
        }
        var paced = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var pacer = new Thread(() =>
        {
            var gaps = new Random(42);
            var due = 0.0;
            for (var i = 0; i < total; i++)
            {
                Pace.SleepUntil(clock, due);
                tasks[i] = SendAsync(i, due);
                due = poisson ? due - Math.Log(1 - gaps.NextDouble()) / rate : (double)(i + 1) / rate;
            }
            paced.SetResult();
        }) { IsBackground = true, Name = "bench pacer" };
        pacer.Start();
        await paced.Task;
        await Task.WhenAll(tasks);
        var elapsed = clock.Elapsed.TotalSeconds;
        var sorted = latencies.Order().ToList();
        return new Result(Stats.Percentile(sorted, 0.50), Stats.Percentile(sorted, 0.99), errors, latencies, elapsed);
    }

    private static Task<LocalUpstream> StartUpstreamAsync()
    {
        var answer = Encoding.UTF8.GetBytes(Answer);
        var chunks = Encoding.UTF8.GetBytes(string.Concat(Pieces.Select(p =>
            $"data: {{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"model\":\"fake-model\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{p}\"}}}}]}}\n\n"))
            + "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"model\":\"fake-model\",\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":3,\"total_tokens\":15}}\n\ndata: [DONE]\n\n");
        return LocalUpstream.StartAsync(app => app.MapPost("/v1/chat/completions", async (HttpContext ctx) =>
        {
            using var reader = new StreamReader(ctx.Request.Body);
            var request = await reader.ReadToEndAsync();
            var stream = request.Contains("\"stream\":true", StringComparison.Ordinal);
            ctx.Response.ContentType = stream ? "text/event-stream" : "application/json";
            await ctx.Response.Body.WriteAsync(stream ? chunks : answer);
        }));
    }
}
