using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Sextant.Contracts;
using Spectre.Console;

namespace Sextant.Cli.Commands;

/// <summary>`sextant traces list|show`, `sextant costs`, `sextant prices list|set`, `sextant gateway routes|providers`.</summary>
internal static class TracesCommand
{
    public static Command Traces()
    {
        var options = new ClientOptions();
        var command = options.CreateGroup("traces", "LLM traces: gateway calls, SDK and OTLP spans");
        command.Subcommands.Add(List(options));
        command.Subcommands.Add(Show(options));
        return command;
    }

    /// <summary>"7d", "24h", "30m": that long before now, in Unix milliseconds.</summary>
    internal static long? Since(string? text)
    {
        if (string.IsNullOrEmpty(text))
        {
            return null;
        }
        var unit = text[^1];
        if (!long.TryParse(text[..^1], NumberStyles.None, CultureInfo.InvariantCulture, out var amount) || unit is not ('d' or 'h' or 'm'))
        {
            throw new CliException($"--since takes an amount and a unit, e.g. 7d, 24h or 30m; got '{text}'.");
        }
        var span = unit switch { 'd' => TimeSpan.FromDays(amount), 'h' => TimeSpan.FromHours(amount), _ => TimeSpan.FromMinutes(amount) };
        return DateTimeOffset.UtcNow.Add(-span).ToUnixTimeMilliseconds();
    }

    private static string Cost(double? cost) => cost is { } c ? "$" + c.ToString(c < 0.01 ? "0.000000" : "0.0000", CultureInfo.InvariantCulture) : "price unknown";

    private static string Micros(long micros) => CliOutput.Time(micros / 1000);

    private static Command List(ClientOptions options)
    {
        var since = new Option<string?>("--since") { Description = "Only traces that started this long ago or later: 7d, 24h, 30m" };
        var user = new Option<string?>("--user") { Description = "Only this user's traces" };
        var session = new Option<string?>("--session") { Description = "Only this session's traces" };
        var model = new Option<string?>("--model") { Description = "Only traces that called this model" };
        var status = new Option<string?>("--status") { Description = "ok or error" };
        var max = new Option<int?>("--max") { Description = "At most this many traces (newest first)" };
        var command = new Command("list", "List traces, newest first") { since, user, session, model, status, max };
        command.SetClientAction(options, async (cli, ct) =>
        {
            var response = await cli.Client.ListTracesAsync(Since(cli.Get(since)), null, cli.Get(user), cli.Get(session), cli.Get(model), cli.Get(status), null, cli.Get(max), cancellationToken: ct);
            if (cli.Json)
            {
                cli.WriteJson(response, SextantJsonContext.Default.TracesResponse);
                return;
            }
            var table = new Table().AddColumns("Trace", "Name", "Started", "Duration", "Spans", "Tokens in/out", "Cost", "Status", "User", "Models");
            foreach (var t in response.Traces)
            {
                table.AddRow(t.TraceId[..12], Markup.Escape(t.Name), Micros(t.StartTime), $"{(t.EndTime - t.StartTime) / 1000.0:0} ms", t.SpanCount.ToString(CultureInfo.InvariantCulture),
                    $"{t.InputTokens:N0}/{t.OutputTokens:N0}", Cost(t.Cost) + (t.CostUnknown > 0 && t.Cost is not null ? $" (+{t.CostUnknown} unpriced)" : ""),
                    t.Status == "error" ? "[red]error[/]" : "ok", Markup.Escape(t.UserId ?? ""), Markup.Escape(string.Join(", ", t.Models)));
            }
            cli.Console.Write(table);
        });
        return command;
    }

    private static Command Show(ClientOptions options)
    {
        var traceId = new Argument<string>("trace-id") { Description = "The trace (32 hex digits)" };
        var command = new Command("show", "Show a trace as a tree of spans, with messages, tokens and cost") { traceId };
        command.SetClientAction(options, async (cli, ct) =>
        {
            var trace = await cli.Client.GetTraceAsync(cli.Get(traceId), ct);
            if (cli.Json)
            {
                cli.WriteJson(trace, SextantJsonContext.Default.TraceResponse);
                return;
            }
            var t = trace.Trace;
            var tree = new Tree($"[bold]{Markup.Escape(t.Name)}[/] {t.TraceId} · {(t.EndTime - t.StartTime) / 1000.0:0} ms · {t.InputTokens:N0}/{t.OutputTokens:N0} tokens · {Cost(t.Cost)}");
            var children = trace.Spans.ToLookup(s => s.ParentSpanId ?? "");
            var ids = trace.Spans.Select(s => s.SpanId).ToHashSet();
            void Add(Func<string, TreeNode> add, Span span, HashSet<string> seen)
            {
                var line = $"{(span.Status == "error" ? "[red]" : "")}{Markup.Escape(span.Name)}{(span.Status == "error" ? "[/]" : "")} [dim]{span.Kind} +{(span.StartTime - t.StartTime) / 1000.0:0} ms, {(span.EndTime - span.StartTime) / 1000.0:0} ms[/]";
                if (span.Kind == "generation")
                {
                    line += $" · {Markup.Escape(span.Model ?? "?")} · {span.InputTokens ?? 0:N0}/{span.OutputTokens ?? 0:N0} tokens{(span.CachedInputTokens > 0 ? $" ({span.CachedInputTokens:N0} cached)" : "")} · {Cost(span.Cost)}";
                }
                var node = add(line);
                if (span.StatusMessage is { } message)
                {
                    node.AddNode($"[red]{Markup.Escape(message)}[/]");
                }
                foreach (var (label, value) in new[] { ("in", span.Input), ("out", span.Output) })
                {
                    if (value is { } v)
                    {
                        var text = v.ValueKind == JsonValueKind.Array ? string.Join(" | ", v.EnumerateArray().Select(Message)) : Message(v);
                        node.AddNode($"[dim]{label}:[/] {Markup.Escape(text.Length > 300 ? text[..300] + "..." : text)}");
                    }
                }
                if (seen.Add(span.SpanId))
                {
                    foreach (var child in children[span.SpanId])
                    {
                        Add(node.AddNode, child, seen);
                    }
                }
            }
            var seenSpans = new HashSet<string>();
            foreach (var root in trace.Spans.Where(s => s.ParentSpanId is null || !ids.Contains(s.ParentSpanId)))
            {
                Add(tree.AddNode, root, seenSpans);
            }
            cli.Console.Write(tree);
        });
        return command;
    }

    private static string Message(JsonElement message) =>
        message.ValueKind == JsonValueKind.Object && message.TryGetProperty("content", out var content)
            ? $"{(message.TryGetProperty("role", out var role) ? role.ToString() + ": " : "")}{(content.ValueKind == JsonValueKind.String ? content.GetString() : content.GetRawText())}"
            : message.ValueKind == JsonValueKind.String ? message.GetString() ?? "" : message.GetRawText();

    public static Command Costs()
    {
        var options = new ClientOptions();
        var by = new Option<string>("--by") { Description = "model, user, provider, day or project", DefaultValueFactory = _ => "model" };
        by.AcceptOnlyFromAmong("model", "user", "provider", "day", "project");
        var since = new Option<string>("--since") { Description = "How far back: 7d, 24h, 30m", DefaultValueFactory = _ => "7d" };
        var command = new Command("costs", "Requests, tokens, cost and latency of LLM calls, grouped") { by, since };
        options.AddTo(command);
        command.SetClientAction(options, async (cli, ct) =>
        {
            var costs = await cli.Client.GetCostsAsync(cli.Get(by)!, Since(cli.Get(since)), cancellationToken: ct);
            if (cli.Json)
            {
                cli.WriteJson(costs, SextantJsonContext.Default.CostsResponse);
                return;
            }
            var table = new Table().AddColumns(costs.By, "Requests", "Errors", "Tokens in", "Tokens out", "Cached in", "Cost", "Saved", "p50", "p95", "p99");
            foreach (var r in costs.Rows)
            {
                table.AddRow(Markup.Escape(r.Key), r.Requests.ToString("N0", CultureInfo.InvariantCulture), r.Errors.ToString("N0", CultureInfo.InvariantCulture),
                    r.InputTokens.ToString("N0", CultureInfo.InvariantCulture), r.OutputTokens.ToString("N0", CultureInfo.InvariantCulture), r.CachedInputTokens.ToString("N0", CultureInfo.InvariantCulture),
                    Cost(r.Cost) + (r.CostUnknown > 0 ? $" (+{r.CostUnknown:N0} unpriced)" : ""), Cost(r.CostSaved), $"{r.LatencyP50Ms:0} ms", $"{r.LatencyP95Ms:0} ms", $"{r.LatencyP99Ms:0} ms");
            }
            cli.Console.Write(table);
            if (costs.Rows.Count == 0)
            {
                cli.Console.MarkupLine("[dim]No LLM calls in this period.[/]");
            }
        });
        return command;
    }

    public static Command Prices()
    {
        var options = new ClientOptions();
        var command = options.CreateGroup("prices", "The price catalog (USD per million tokens)");
        var model = new Option<string?>("--model") { Description = "Only prices that match this model" };
        var list = new Command("list", "List prices: the project's, shared ones, then those shipped with Sextant") { model };
        list.SetClientAction(options, async (cli, ct) =>
        {
            var prices = await cli.Client.ListPricesAsync(cli.Get(model), ct);
            if (cli.Json)
            {
                cli.WriteJson(prices, SextantJsonContext.Default.PricesResponse);
                return;
            }
            var table = new Table().AddColumns("Model", "Provider", "From", "Input", "Output", "Cached input", "Cache write", "Tiers", "Source");
            foreach (var p in prices.Prices)
            {
                table.AddRow(Markup.Escape(p.Model), Markup.Escape(p.Provider ?? ""), CliOutput.Time(p.EffectiveFrom)[..10], Rate(p.Input), Rate(p.Output), Rate(p.CachedInput), Rate(p.CacheWrite),
                    Markup.Escape(string.Join("; ", (p.Tiers ?? []).Select(t => $">{t.AboveInputTokens:N0}: {Rate(t.Input)}/{Rate(t.Output)}"))), p.Source);
            }
            cli.Console.Write(table);
        });
        command.Subcommands.Add(list);

        var name = new Argument<string>("model") { Description = "A model name, or a pattern with * (gpt-4o-2024-*)" };
        var input = new Option<double>("--input") { Description = "USD per million input tokens", Required = true };
        var output = new Option<double>("--output") { Description = "USD per million output tokens", Required = true };
        var cached = new Option<double?>("--cached-input") { Description = "USD per million cached input tokens read" };
        var write = new Option<double?>("--cache-write") { Description = "USD per million tokens written to the cache" };
        var provider = new Option<string?>("--provider") { Description = "Only for this provider" };
        var from = new Option<DateTimeOffset?>("--from") { Description = "Effective from this date (default now)" };
        var shared = new Option<bool>("--shared") { Description = "For every project (server admin)" };
        var set = new Command("set", "Add a price; the most recent effective one applies from its date") { name, input, output, cached, write, provider, from, shared };
        set.SetClientAction(options, async (cli, ct) =>
        {
            var price = await cli.Client.SetPriceAsync(new Price(cli.Get(name), cli.Get(provider), cli.Get(from)?.ToUnixTimeMilliseconds() ?? 0, cli.Get(input), cli.Get(output),
                cli.Get(cached), cli.Get(write)), cli.Get(shared), ct);
            cli.Console.MarkupLine($"Price of [bold]{Markup.Escape(price.Model)}[/] from {CliOutput.Time(price.EffectiveFrom)}: {Rate(price.Input)} in, {Rate(price.Output)} out per million tokens ({price.Source}).");
        });
        command.Subcommands.Add(set);
        return command;
    }

    private static string Rate(double? rate) => rate is { } r ? "$" + r.ToString("0.####", CultureInfo.InvariantCulture) : "";

    public static Command Gateway()
    {
        var options = new ClientOptions();
        var command = options.CreateGroup("gateway", "The OpenAI-compatible gateway's routes and providers");
        var routes = new Command("routes", "Routes: model names and where they go");
        var list = new Command("list", "List routes");
        list.SetClientAction(options, async (cli, ct) =>
        {
            var response = await cli.Client.ListGatewayRoutesAsync(ct);
            if (cli.Json)
            {
                cli.WriteJson(response, SextantJsonContext.Default.GatewayRoutesResponse);
                return;
            }
            var table = new Table().AddColumns("Model", "Targets", "Fallback on", "Retries", "Time-out", "Source");
            foreach (var r in response.Routes)
            {
                table.AddRow(Markup.Escape(r.Name ?? ""), Markup.Escape(string.Join(", ", (r.Targets ?? []).Select(t => $"{t.Provider}/{t.Model} x{t.Weight:0.##}"))),
                    string.Join(",", r.FallbackOn ?? [429, 500, 502, 503, 504]) + (r.FallbackOnTimeout ? ",timeout" : ""), r.Retries.ToString(CultureInfo.InvariantCulture), $"{r.TimeoutMs} ms", r.Source);
            }
            cli.Console.Write(table);
        });
        routes.Subcommands.Add(list);
        var routeName = new Argument<string>("model") { Description = "The model name applications send" };
        var targets = new Option<string[]>("--target") { Description = "provider/model[=weight]; repeat for several (the order is the fallback order)", Required = true, AllowMultipleArgumentsPerToken = true };
        var retries = new Option<int>("--retries") { Description = "Retries per target on retryable failures", DefaultValueFactory = _ => 1 };
        var timeout = new Option<int>("--timeout-ms") { Description = "Per-attempt time-out", DefaultValueFactory = _ => 60_000 };
        var fallbackOn = new Option<int[]>("--fallback-on") { Description = "Statuses that move on to the next target (default 429 500 502 503 504)", AllowMultipleArgumentsPerToken = true };
        var set = new Command("set", "Create or change a route") { routeName, targets, retries, timeout, fallbackOn };
        set.SetClientAction(options, async (cli, ct) =>
        {
            var parsed = cli.Get(targets)!.Select(t =>
            {
                var (target, weight) = t.Contains('=', StringComparison.Ordinal) ? (t[..t.IndexOf('=', StringComparison.Ordinal)], t[(t.IndexOf('=', StringComparison.Ordinal) + 1)..]) : (t, "1");
                var slash = target.IndexOf('/', StringComparison.Ordinal);
                return slash <= 0 || !double.TryParse(weight, NumberStyles.Float, CultureInfo.InvariantCulture, out var w)
                    ? throw new CliException($"--target takes provider/model or provider/model=weight; got '{t}'.")
                    : new RouteTarget(target[..slash], target[(slash + 1)..], w);
            }).ToList();
            var fallback = cli.Get(fallbackOn);
            var route = await cli.Client.SetGatewayRouteAsync(cli.Get(routeName), new GatewayRoute(cli.Get(routeName), parsed, fallback is { Length: > 0 } ? fallback : null,
                Retries: cli.Get(retries), TimeoutMs: cli.Get(timeout)), ct);
            cli.Console.MarkupLine($"Route [bold]{Markup.Escape(route.Name ?? "")}[/] -> {Markup.Escape(string.Join(", ", (route.Targets ?? []).Select(t => $"{t.Provider}/{t.Model}")))}.");
        });
        routes.Subcommands.Add(set);
        command.Subcommands.Add(routes);

        var providers = new Command("providers", "Upstream providers (keys are write-only)");
        var plist = new Command("list", "List providers");
        plist.SetClientAction(options, async (cli, ct) =>
        {
            var response = await cli.Client.ListGatewayProvidersAsync(ct);
            if (cli.Json)
            {
                cli.WriteJson(response, SextantJsonContext.Default.GatewayProvidersResponse);
                return;
            }
            var table = new Table().AddColumns("Name", "Kind", "Base URL", "Key", "Source");
            foreach (var p in response.Providers)
            {
                table.AddRow(Markup.Escape(p.Name ?? ""), p.Kind ?? "", Markup.Escape(p.BaseUrl ?? ""), p.HasApiKey ? "set" : "none", p.Source);
            }
            cli.Console.Write(table);
        });
        providers.Subcommands.Add(plist);
        var providerName = new Argument<string>("name") { Description = "The provider's name, used in targets (provider/model)" };
        var baseUrl = new Option<string>("--base-url") { Description = "e.g. https://api.openai.com/v1, http://127.0.0.1:11434/v1 or https://api.anthropic.com", Required = true };
        var keyEnv = new Option<string?>("--api-key-env") { Description = "The environment variable holding its API key (read here, sent once, stored encrypted)" };
        var kind = new Option<string>("--kind") { Description = "openai (any OpenAI-compatible endpoint), azure (Azure OpenAI) or anthropic (the Messages API)", DefaultValueFactory = _ => "openai" };
        kind.AcceptOnlyFromAmong("openai", "azure", "anthropic");
        var pset = new Command("set", "Create or change a provider") { providerName, baseUrl, keyEnv, kind };
        pset.SetClientAction(options, async (cli, ct) =>
        {
            var key = cli.Get(keyEnv) is { } env ? Environment.GetEnvironmentVariable(env) ?? throw new CliException($"The environment variable {env} is not set.") : null;
            var provider = await cli.Client.SetGatewayProviderAsync(cli.Get(providerName), new GatewayProvider(cli.Get(providerName), cli.Get(kind), cli.Get(baseUrl), key), ct);
            cli.Console.MarkupLine($"Provider [bold]{Markup.Escape(provider.Name ?? "")}[/] at {Markup.Escape(provider.BaseUrl ?? "")}, key {(provider.HasApiKey ? "set" : "none")}.");
        });
        providers.Subcommands.Add(pset);
        command.Subcommands.Add(providers);
        return command;
    }
}
