using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using Google.Protobuf;
using Sextant.Core.Tests.Storage;
using Sextant.Core.Tracing.Otlp;

namespace Sextant.Bench;

/// <summary>
/// OTLP/HTTP ingestion into SQLite through the real server (a child process): protobuf exports of 500 spans (one
/// LLM call and its parent per trace, GenAI attributes), sent by several senders for a fixed time; spans per second
/// acknowledged, and how long after an acknowledgement its trace can be read.
/// </summary>
internal static class OtlpBenchmark
{
    public static async Task<int> RunAsync(string[] args)
    {
        var cli = args.FirstOrDefault() ?? throw new ArgumentException("pass the path to sextant.dll");
        var seconds = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 20;
        var senders = args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 4;
        // "sync": the server syncs every span commit (--sync-spans), as before spans committed with synchronous=NORMAL.
        var sync = args.Length > 3 && args[3] == "sync";
        const int perExport = 500;
        var folder = Path.Combine(Path.GetTempPath(), "sextant-otlp-bench-" + Guid.NewGuid().ToString("N")[..8]);
        var (server, url) = await ChildServer.StartAsync(cli, folder, sync ? "--sync-spans" : "");
        try
        {
            using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = 64 }) { BaseAddress = new Uri(url + "/"), Timeout = TimeSpan.FromSeconds(60) };
            Console.WriteLine($"machine: {Environment.ProcessorCount} cores; {senders} senders, {perExport} spans per export, {seconds} s; span commits {(sync ? "synced (--sync-spans)" : "not synced (default)")}");
            // The exports are made before the clock starts: the driver shares the 2 cores with the server.
            var prepared = new System.Collections.Concurrent.ConcurrentQueue<byte[]>();
            var maker = new Random(1);
            for (var i = 0; i < Math.Max(200, seconds * 60); i++)
            {
                prepared.Enqueue(Export(maker, perExport).Body);
            }
            long spans = 0, exports = 0, errors = 0;
            var clock = Stopwatch.StartNew();
            var deadline = TimeSpan.FromSeconds(seconds);
            await Task.WhenAll(Enumerable.Range(0, senders).Select(sender => Task.Run(async () =>
            {
                var random = new Random(sender);
                while (clock.Elapsed < deadline)
                {
                    var body = prepared.TryDequeue(out var ready) ? ready : Export(random, perExport).Body;
                    using var content = new ByteArrayContent(body);
                    content.Headers.ContentType = new MediaTypeHeaderValue("application/x-protobuf");
                    using var response = await http.PostAsync("v1/traces", content);
                    if (response.IsSuccessStatusCode)
                    {
                        Interlocked.Add(ref spans, perExport);
                        Interlocked.Increment(ref exports);
                    }
                    else
                    {
                        Interlocked.Increment(ref errors);
                    }
                }
            })));
            var elapsed = clock.Elapsed.TotalSeconds;
            Console.WriteLine($"ingested: {spans:N0} spans in {elapsed:F1} s = {spans / elapsed:N0} spans/s acknowledged ({exports:N0} exports, {errors} failed)");

            // Freshness: one small export, then poll its trace.
            var delays = new List<double>();
            var probe = new Random(99);
            for (var i = 0; i < 20; i++)
            {
                var (body, traceId) = Export(probe, 2);
                using var content = new ByteArrayContent(body);
                content.Headers.ContentType = new MediaTypeHeaderValue("application/x-protobuf");
                (await http.PostAsync("v1/traces", content)).EnsureSuccessStatusCode();
                var acked = Stopwatch.StartNew();
                var polls = 0;
                while ((await http.GetAsync($"api/v1/traces/{traceId}")).StatusCode != HttpStatusCode.OK)
                {
                    polls++;
                    await Task.Delay(1);
                }
                delays.Add(acked.Elapsed.TotalMilliseconds);
                if (Environment.GetEnvironmentVariable("SEXTANT_BENCH_VERBOSE") is not null)
                {
                    Console.WriteLine($"  probe {i}: {acked.Elapsed.TotalMilliseconds:F1} ms, {polls} polls before it was found");
                }
            }
            Console.WriteLine($"acknowledged to readable: p50 {Stats.Percentile(delays, 0.5):F1} ms, max {delays.Max():F1} ms (20 probes)");
            var count = await http.GetStringAsync("api/v1/traces?max_results=1");
            Console.WriteLine($"server RSS {ProcStatus.Rss(server.Id):F0} MiB; a trace list page: {count.Length} bytes");
            return 0;
        }
        finally
        {
            await ChildServer.StopAsync(server, folder);
        }
    }

    /// <summary>An export of traces of two spans: a request and the LLM call under it.</summary>
    private static (byte[] Body, string FirstTraceId) Export(Random random, int spans)
    {
        var scope = new ScopeSpans { Scope = new InstrumentationScope { Name = "bench" } };
        var now = (ulong)DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() * 1_000_000;
        string? first = null;
        for (var i = 0; i < spans / 2; i++)
        {
            var trace = new byte[16];
            random.NextBytes(trace);
            first ??= Convert.ToHexStringLower(trace);
            var parent = new byte[8];
            random.NextBytes(parent);
            var child = new byte[8];
            random.NextBytes(child);
            scope.Spans.Add(new Span { TraceId = ByteString.CopyFrom(trace), SpanId = ByteString.CopyFrom(parent), Name = "handle request", StartTimeUnixNano = now, EndTimeUnixNano = now + 900_000_000 });
            var llm = new Span
            {
                TraceId = ByteString.CopyFrom(trace), SpanId = ByteString.CopyFrom(child), ParentSpanId = ByteString.CopyFrom(parent), Name = "chat gpt-4o-mini",
                StartTimeUnixNano = now + 100_000_000, EndTimeUnixNano = now + 800_000_000, Kind = Span.Types.SpanKind.Client,
            };
            llm.Attributes.Add(Attribute("gen_ai.operation.name", "chat"));
            llm.Attributes.Add(Attribute("gen_ai.provider.name", "openai"));
            llm.Attributes.Add(Attribute("gen_ai.request.model", "gpt-4o-mini"));
            llm.Attributes.Add(new KeyValue { Key = "gen_ai.usage.input_tokens", Value = new AnyValue { IntValue = 100 + random.Next(1000) } });
            llm.Attributes.Add(new KeyValue { Key = "gen_ai.usage.output_tokens", Value = new AnyValue { IntValue = 10 + random.Next(200) } });
            scope.Spans.Add(llm);
        }
        var request = new ExportTraceServiceRequest();
        var resource = new ResourceSpans { Resource = new Sextant.Core.Tracing.Otlp.Resource() };
        resource.Resource.Attributes.Add(Attribute("service.name", "bench"));
        resource.ScopeSpans.Add(scope);
        request.ResourceSpans.Add(resource);
        return (request.ToByteArray(), first!);
    }

    private static KeyValue Attribute(string key, string value) => new() { Key = key, Value = new AnyValue { StringValue = value } };
}
