using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text;
using Microsoft.Data.Sqlite;
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
            Console.WriteLine($"machine: {Environment.ProcessorCount} cores; {seconds} s per rate and target; the direct call and Sextant in {SliceSeconds * 1000:F0} ms slices they take in turn (the first {GuardSeconds * 1000:F0} ms of each not counted){(portkey is null ? "" : ", then Portkey alone")}; latency from when each request was due (open loop); {(poisson ? "Poisson" : "evenly spaced")} arrivals");
            using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = 4096, PooledConnectionLifetime = TimeSpan.FromMinutes(10) }) { Timeout = TimeSpan.FromSeconds(30) };
            var targets = new List<Target>
            {
                new("direct", upstream.BaseUrl + "/chat/completions", "fake-model", r => r.Headers.Authorization = new("Bearer", "sk-bench")),
                new("sextant", baseUrl + "/v1/chat/completions", "bench", _ => { }),
            };
            if (portkey is not null)
            {
                targets.Add(new("portkey", $"http://127.0.0.1:{portkeyPort}/v1/chat/completions", "fake-model", r =>
                {
                    r.Headers.Authorization = new("Bearer", "sk-bench");
                    r.Headers.Add("x-portkey-provider", "openai");
                    r.Headers.Add("x-portkey-custom-host", upstream.BaseUrl);
                }));
            }
            var warmed = new HashSet<(string Target, bool Stream)>();
            bool stream = false;
            int rate = 0;
            async Task WarmAsync(Target target)
            {
                var warmUp = warmed.Add((target.Name, stream)) ? 15 : 5;
                await DriveAsync(http, [target], stream, Math.Min(rate, 1000), warmUp, poisson);
                await IdleAsync(target.Name == "portkey" ? portkeyProcess!.Id : 0);
            }
            foreach (var streamed in new[] { false, true })
            {
                stream = streamed;
                Console.WriteLine(stream ? "streaming (3 chunks and a usage chunk):" : "non-streaming:");
                Console.WriteLine("  rate     target    p50 ms   p99 ms   added p50  added p99  errors  achieved/s  gateway CPU ms/request");
                foreach (var measuredRate in rates)
                {
                    rate = measuredRate;
                    foreach (var target in targets.Where(t => t.Name != "portkey"))
                    {
                        // Warm connections and JIT first, at up to 1,000 requests/s, so that the measured round runs the code
                        // the runtime settles on, not the compiler: its tiered compiler re-compiles hot methods in the
                        // background, and in a fresh server it compiles 400-1,000 methods a second, on up to half a core,
                        // for the first 10 s of load (dotnet-counters, dotnet.jit.*). 15 s the first time a target runs a
                        // kind of request, 5 s after that.
                        await WarmAsync(target);
                    }
                    // The measured seconds are cut into short slices that the targets take in turn (the order turned each
                    // round) at the one rate, so that a noisy stretch of this shared VM falls on all of them alike rather
                    // than on whichever ran then. The first part of each slice is sent but not counted, for any target,
                    // so that no target's sample holds the tail of work the one before left behind (a gateway's recording
                    // of its last calls, its garbage collection).
                    // Only the direct call and Sextant share the slices. A gateway from elsewhere runs after them, for the
                    // same seconds in a block of its own: one that cannot hold the rate keeps working through its backlog
                    // for seconds, and in shared slices that work would land on the others' calls.
                    int Pid(Target t) => t.Name switch { "sextant" => sextant.Id, "portkey" => portkeyProcess!.Id, _ => 0 };
                    double Cpu(Target t) => Pid(t) == 0 ? 0 : ProcStatus.CpuMs(Pid(t));
                    var shared = targets.Where(t => t.Name != "portkey").ToList();
                    var cpuBefore = shared.Select(Cpu).ToList();
                    var results = (await DriveAsync(http, shared, stream, rate, seconds * shared.Count, poisson, SliceSeconds, GuardSeconds)).ToList();
                    var cpuMs = shared.Select((t, i) => Cpu(t) - cpuBefore[i]).ToList();
                    foreach (var alone in targets.Except(shared))
                    {
                        await WarmAsync(alone);
                        var before = Cpu(alone);
                        results.Add((await DriveAsync(http, [alone], stream, rate, seconds, poisson))[0]);
                        cpuMs.Add(Cpu(alone) - before);
                        // Its backlog, if it fell behind, is still being worked through after the driver stopped
                        // waiting: the next round starts when it is idle.
                        await IdleAsync(Pid(alone));
                    }
                    var measured = shared.Concat(targets.Except(shared)).ToList();
                    (double P50, double P99)? direct = null;
                    for (var t = 0; t < measured.Count; t++)
                    {
                        var result = results[t];
                        direct ??= (result.P50, result.P99);
                        var name = measured[t].Name;
                        var cpu = Pid(measured[t]) == 0 ? "" : $"{cpuMs[t] / result.Sent:F3}";
                        var added = name == "direct" ? "" : $"{result.P50 - direct.Value.P50,9:F2}  {result.P99 - direct.Value.P99,9:F2}";
                        Console.WriteLine($"  {rate,5}  {name,-8} {result.P50,8:F2} {result.P99,8:F2}  {added,-20} {result.Errors,6} {result.Rate,10:F0}  {cpu}");
                    }
                    if (Breakdown)
                    {
                        await PrintBreakdownAsync(folder, results[measured.FindIndex(t => t.Name == "sextant")]);
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
            await DriveAsync(http, new Target("direct", upstream.BaseUrl + "/chat/completions", "fake-model", r => r.Headers.Authorization = new("Bearer", "sk-bench")), false, rate, 10);
            Console.WriteLine($"soak: {rate} requests/s for {seconds} s through Sextant (non-streaming, every call traced; span commits {(sync ? "synced" : "not synced")}); the bench's side warmed, Sextant cold");
            Console.WriteLine("  minute   p50 ms   p99 ms   errors   RSS MiB   spans stored   sockets");
            for (var minute = 1; minute * 60 <= seconds; minute++)
            {
                var result = await DriveAsync(http, new Target("sextant", url, "bench", _ => { }), false, rate, 60);
                var stored = await admin.GetStringAsync("api/v1/costs?by=model");
                var requests = System.Text.Json.JsonDocument.Parse(stored).RootElement.GetProperty("rows").EnumerateArray().Sum(r => r.GetProperty("requests").GetInt64());
                Console.WriteLine($"  {minute,6} {result.P50,8:F2} {result.P99,8:F2} {result.Errors,8} {ProcStatus.Rss(sextant.Id),9:F0} {requests,14:N0} {ProcStatus.Sockets(sextant.Id),9}");
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

    /// <summary>Waits (up to a minute) until the process used under 5% of a core over a second; nothing for pid 0.</summary>
    private static async Task IdleAsync(int pid)
    {
        for (var i = 0; pid != 0 && i < 60; i++)
        {
            var before = ProcStatus.CpuMs(pid);
            await Task.Delay(1000);
            if (ProcStatus.CpuMs(pid) - before < 50)
            {
                return;
            }
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

    /// <summary>Seconds of each slice of a measured round; the targets take turns slice by slice.</summary>
    private const double SliceSeconds = 0.5;

    /// <summary>Seconds at the start of each slice that are sent but not counted.</summary>
    private const double GuardSeconds = 0.05;

    /// <summary>
    /// SEXTANT_BENCH_BREAKDOWN=1: each request carries its number (as x-sextant-user), and after each measured round the
    /// bench prints where Sextant's calls spent their time, from the spans the server stored.
    /// </summary>
    private static readonly bool Breakdown = Environment.GetEnvironmentVariable("SEXTANT_BENCH_BREAKDOWN") is "1";

    /// <summary>
    /// Splits each counted Sextant call's latency (as the driver saw it) by the span the server stored for it: before
    /// the handler (from when the request was due to the span's start: the driver's send, loopback, Kestrel, the
    /// middleware), the upstream call (the attempt's time to the upstream's answer headers), the handler's own work
    /// (the span's duration less the upstream call) and after the handler (the answer's way back to the driver).
    /// </summary>
    private static async Task PrintBreakdownAsync(string folder, Result sextant)
    {
        // The last calls' spans are committed within milliseconds.
        await Task.Delay(1000);
        var position = new Dictionary<int, int>(sextant.Index.Length);
        for (var k = 0; k < sextant.Index.Length; k++)
        {
            position[sextant.Index[k]] = k;
        }
        var startMs = (sextant.Start - DateTimeOffset.UnixEpoch).TotalMilliseconds;
        var parts = new List<(double Latency, double Before, double Upstream, double Own, double After)>(sextant.Index.Length);
        await using (var connection = new SqliteConnection($"Data Source={Path.Combine(folder, "sextant.db")};Mode=ReadOnly"))
        {
            await connection.OpenAsync();
            await using var command = connection.CreateCommand();
            command.CommandText = """SELECT user_id, start_time, end_time, json_extract(data, '$.attributes."sextant.attempt_log"[0]') FROM spans WHERE start_time >= $from""";
            command.Parameters.AddWithValue("$from", (long)(startMs * 1000) - 1_000_000);
            await using var reader = await command.ExecuteReaderAsync();
            while (await reader.ReadAsync())
            {
                if (!int.TryParse(reader.IsDBNull(0) ? null : reader.GetString(0), CultureInfo.InvariantCulture, out var index) || !position.TryGetValue(index, out var k))
                {
                    continue;
                }
                var (due, latency) = (startMs + sextant.Due[k] * 1000, sextant.Latencies[k]);
                var (begin, end) = (reader.GetInt64(1) / 1000.0, reader.GetInt64(2) / 1000.0);
                // Request numbers start again in each drive: a span is this request's only if it began while the request was out.
                if (begin < due - 0.5 || begin > due + latency)
                {
                    continue;
                }
                if (reader.IsDBNull(3))
                {
                    continue;
                }
                // "fake/fake-model ok 200 0.2ms"
                var upstream = double.Parse(reader.GetString(3).Split(' ')[^1].TrimEnd('m', 's'), CultureInfo.InvariantCulture);
                parts.Add((latency, Math.Max(0, begin - due), upstream, Math.Max(0, end - begin - upstream), Math.Max(0, latency - Math.Max(0, begin - due) - (end - begin))));
            }
        }
        if (parts.Count == 0)
        {
            Console.WriteLine("  (no spans matched the calls)");
            return;
        }
        var p99 = Stats.Percentile(parts.Select(p => p.Latency).ToList(), 0.99);
        var slowest = parts.Where(p => p.Latency >= p99).ToList();
        Console.WriteLine($"  where Sextant's calls went, from its spans ({parts.Count:N0} of {sextant.Index.Length:N0} calls matched), ms: p50 and p99 over all, mean over the slowest 1% ({slowest.Count})");
        foreach (var (label, part) in new (string, Func<(double, double Before, double Upstream, double Own, double After), double>)[]
                 {
                     ("before the handler (driver's send, loopback, Kestrel)", p => p.Before),
                     ("the upstream call (to its answer's headers)", p => p.Upstream),
                     ("the handler's own work", p => p.Own),
                     ("after the handler (the answer back to the driver)", p => p.After),
                 })
        {
            var values = parts.Select(part).ToList();
            Console.WriteLine($"    {label,-56} {Stats.Percentile(values, 0.5),6:F2} {Stats.Percentile(values, 0.99),6:F2} {slowest.Average(part),6:F2}");
        }
    }

    private sealed record Target(string Name, string Url, string Model, Action<HttpRequestMessage> Headers);

    /// <summary>One target's share of a drive: latencies of its counted requests in due order, and its errors.</summary>
    /// <param name="Sent">All requests sent to it, counted or not.</param>
    /// <param name="Rate">Requests sent to it per second of its own slices.</param>
    private sealed record Result(double P50, double P99, int Errors, double[] Latencies, double[] Due, int[] Index, DateTimeOffset Start, int Sent, double Rate);

    private static async Task<Result> DriveAsync(HttpClient http, Target target, bool stream, int rate, int seconds) =>
        (await DriveAsync(http, [target], stream, rate, seconds, poisson: false))[0];

    /// <summary>
    /// Sends <paramref name="rate"/> requests a second for <paramref name="seconds"/> seconds, each when it is due (open loop):
    /// a thread of its own sleeps until a request is due and starts it there, so that each request goes out on its own
    /// schedule rather than in bursts the driver makes; latency counts from when the request was due, so a late start
    /// counts too. With several targets, the time is cut into slices of <paramref name="slice"/> seconds that the targets
    /// take in turn (the order turned each round); requests due in the first <paramref name="guard"/> seconds of a slice
    /// are sent but not counted.
    /// </summary>
    /// <param name="poisson">Exponential gaps of mean 1/rate (a fixed seed) instead of even ones.</param>
    private static async Task<Result[]> DriveAsync(HttpClient http, IReadOnlyList<Target> targets, bool stream, int rate, double seconds,
        bool poisson, double slice = double.PositiveInfinity, double guard = 0)
    {
        var bodies = targets.Select(t => Body.Replace("MODEL", t.Model, StringComparison.Ordinal).Replace("STREAM", stream ? "true" : "false", StringComparison.Ordinal)).ToArray();
        var capacity = (int)Math.Ceiling(rate * seconds * 1.2) + 16;
        var latencies = new double[capacity];
        var owner = new int[capacity];
        var counted = new bool[capacity];
        var dues = new double[capacity];
        var errors = new int[targets.Count];
        var tasks = new List<Task>(capacity);
        var (clock, start) = (Stopwatch.StartNew(), DateTimeOffset.UtcNow);
        async Task SendAsync(int index, int t, double due)
        {
            try
            {
                using var request = new HttpRequestMessage(HttpMethod.Post, targets[t].Url) { Content = Json(bodies[t]) };
                targets[t].Headers(request);
                if (Breakdown)
                {
                    // The request's number as its user, so that a dump can set each call beside the span Sextant stored for it.
                    request.Headers.Add("x-sextant-user", index.ToString(CultureInfo.InvariantCulture));
                }
                using var response = await http.SendAsync(request, HttpCompletionOption.ResponseContentRead);
                if (!response.IsSuccessStatusCode)
                {
                    Interlocked.Increment(ref errors[t]);
                }
            }
            catch (Exception)
            {
                Interlocked.Increment(ref errors[t]);
            }
            latencies[index] = (clock.Elapsed.TotalSeconds - due) * 1000;
        }
        var paced = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var pacer = new Thread(() =>
        {
            var gaps = new Random(42);
            var due = 0.0;
            for (var i = 0; i < capacity && due < seconds; i++)
            {
                var sliceIndex = double.IsPositiveInfinity(slice) ? 0 : (long)(due / slice);
                var (round, position) = (sliceIndex / targets.Count, (int)(sliceIndex % targets.Count));
                var t = round % 2 == 0 ? position : targets.Count - 1 - position;
                (owner[i], dues[i], counted[i]) = (t, due, due - sliceIndex * (double.IsPositiveInfinity(slice) ? 0 : slice) >= guard);
                Pace.SleepUntil(clock, due);
                tasks.Add(SendAsync(i, t, due));
                due = poisson ? due - Math.Log(1 - gaps.NextDouble()) / rate : (double)(i + 1) / rate;
            }
            paced.SetResult();
        }) { IsBackground = true, Name = "bench pacer" };
        pacer.Start();
        await paced.Task;
        await Task.WhenAll(tasks);
        var elapsed = clock.Elapsed.TotalSeconds;
        return targets.Select((_, t) =>
        {
            var mine = Enumerable.Range(0, tasks.Count).Where(i => owner[i] == t).ToArray();
            var own = mine.Where(i => counted[i]).ToArray();
            var sorted = own.Select(i => latencies[i]).Order().ToList();
            return new Result(Stats.Percentile(sorted, 0.50), Stats.Percentile(sorted, 0.99), errors[t], own.Select(i => latencies[i]).ToArray(),
                own.Select(i => dues[i]).ToArray(), own, start, mine.Length, mine.Length / (elapsed / targets.Count));
        }).ToArray();
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
