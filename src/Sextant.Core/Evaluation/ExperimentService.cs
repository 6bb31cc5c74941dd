using System.Collections.Concurrent;
using System.Data.Common;
using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Threading.Channels;
using Dapper;
using Microsoft.Extensions.Logging;
using Sextant.Contracts;
using Sextant.Core.Projects;
using Sextant.Core.Prompts;
using Sextant.Core.Storage;
using Sextant.Core.Tracking;

namespace Sextant.Core.Evaluation;

/// <summary>
/// Experiments: a dataset version against a target (a prompt version through the gateway, a model, an HTTP
/// endpoint, or a function in the SDK's process), each item run Repeat times at most Concurrency at once, every run
/// scored by the evaluators. A run's result is stored once it is done, so an interrupted experiment resumes with
/// what is missing. A target or grader that fails makes an error result, never a fail.
/// </summary>
public sealed partial class ExperimentService(SextantDatabase database, EvalDatasetService datasets, PromptService prompts, IGatewayCaller gateway,
    ILogger<ExperimentService> logger)
{
    public const int MaxConcurrency = 64;
    public const int MaxRepeat = 20;
    public const int MaxEvaluators = 20;
    public const int DefaultPageSize = 100;
    public const int MaxPageSize = 1000;
    private const int BootstrapSamples = 2000;

    /// <summary>A run whose heartbeat is older than this is taken over by another server (or this one, restarted).</summary>
    public static readonly TimeSpan Stale = TimeSpan.FromSeconds(20);
    private static readonly TimeSpan Heartbeat = TimeSpan.FromSeconds(5);

    // No redirects (a POST answered with a redirect is the target's answer), and never the link-local range, where
    // cloud metadata services answer.
    private static readonly HttpClient Http = new(new SocketsHttpHandler
    {
        AllowAutoRedirect = false,
        ConnectCallback = async (context, cancellationToken) =>
        {
            var addresses = await System.Net.Dns.GetHostAddressesAsync(context.DnsEndPoint.Host, cancellationToken);
            var address = addresses.FirstOrDefault(a => !IsLinkLocal(a))
                ?? throw new HttpRequestException($"{context.DnsEndPoint.Host} is a link-local address, which experiments may not call.");
            var socket = new System.Net.Sockets.Socket(System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp) { NoDelay = true };
            try
            {
                await socket.ConnectAsync(address, context.DnsEndPoint.Port, cancellationToken);
                return new System.Net.Sockets.NetworkStream(socket, ownsSocket: true);
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        },
    }) { Timeout = TimeSpan.FromSeconds(120) };

    private static bool IsLinkLocal(System.Net.IPAddress address) =>
        address.IsIPv6LinkLocal || (address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork && address.GetAddressBytes() is [169, 254, _, _]);

    [System.Text.RegularExpressions.GeneratedRegex(@"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,100}\z")]
    private static partial System.Text.RegularExpressions.Regex HeaderName();

    private static readonly HashSet<string> ContentHeaders = new(StringComparer.OrdinalIgnoreCase) { "Content-Type", "Content-Length", "Content-Encoding", "Host", "Transfer-Encoding" };

    /// <summary>This server's name in the runs it claims.</summary>
    private readonly string _owner = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6));

    private readonly Channel<long> _queued = Channel.CreateUnbounded<long>();
    private readonly ConcurrentDictionary<long, CancellationTokenSource> _running = new();

    private sealed record ExperimentRow(long Id, long ProjectId, string ExperimentId, string Name, string Dataset, long DatasetVersion, string Target, string Evaluators,
        long Concurrency, long Repeats, string Status, string? Error, string? Metadata, string? CreatedBy, long CreatedTime, long? FinishedTime, string? Summary);

    private sealed record ResultRow(long Idx, long Repetition, string Status, string? Output, string? Error, double? LatencyMs, long? InputTokens, long? OutputTokens,
        double? Cost, string? TraceId, string Scores);

    /// <summary>The experiments that were made and wait for the background runner.</summary>
    public ChannelReader<long> Queued => _queued.Reader;

    public async Task<EvalExperiment> CreateAsync(Caller caller, CreateEvalExperimentRequest request, CancellationToken cancellationToken = default)
    {
        caller.Require(Role.Editor);
        var datasetName = EvalDatasetService.Name(request.Dataset is null ? throw SextantException.Missing("dataset") : request.Dataset);
        var name = request.Name ?? $"{datasetName}-{DateTime.UtcNow.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture)}";
        if (name.Length == 0)
        {
            throw SextantException.Invalid("name", "'name' must be 1-200 characters.");
        }
        EvalText.Check(name, "name", 200);
        if (request.Metadata is { } given)
        {
            if (given.Count > 50)
            {
                throw SextantException.Invalid("metadata", "'metadata' may have at most 50 entries.");
            }
            foreach (var (key, value) in given)
            {
                EvalText.Check(key, "metadata", 200);
                EvalText.Check(value, $"metadata.{key}", 2000);
            }
        }
        var concurrency = request.Concurrency ?? 4;
        if (concurrency is < 1 or > MaxConcurrency)
        {
            throw SextantException.Invalid("concurrency", $"'concurrency' must be 1-{MaxConcurrency}; got {concurrency}.");
        }
        var repeat = request.Repeat ?? 1;
        if (repeat is < 1 or > MaxRepeat)
        {
            throw SextantException.Invalid("repeat", $"'repeat' must be 1-{MaxRepeat}; got {repeat}.");
        }
        if (request.Evaluators is { Count: > MaxEvaluators })
        {
            throw SextantException.Invalid("evaluators", $"An experiment may have at most {MaxEvaluators} evaluators.");
        }
        // Checked now, so that a configuration of the wrong shape is a 400 and never an error halfway through.
        Graders.Parse(request.Evaluators, "evaluators", new GraderServices(gateway, caller));
        var target = await TargetAsync(caller, request.Target, cancellationToken);
        var (dataset, version, _) = await datasets.LoadAsync(caller.ProjectId, datasetName, request.DatasetVersion, cancellationToken);
        var id = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8));
        var status = target.Type == "sdk" ? "running" : "queued";
        await using var connection = await database.OpenAsync(cancellationToken);
        var rowId = await connection.ExecuteScalarAsync<long>(
            """
            INSERT INTO eval_experiments (project_id, experiment_id, name, dataset_id, dataset_version, target, prompt, evaluators, concurrency, repeats, status, metadata, created_by, created_time)
            VALUES (@project, @id, @name, @dataset, @version, @target, @prompt, @evaluators, @concurrency, @repeat, @status, @metadata, @by, @now) RETURNING id
            """,
            new
            {
                project = caller.ProjectId, id, name, dataset = dataset.Id, version,
                target = JsonSerializer.Serialize(target, SextantJsonContext.Default.ExperimentTarget),
                prompt = target.PromptVersion is { } promptVersion ? $"{PromptName(target.Prompt!)}@{promptVersion.ToString(CultureInfo.InvariantCulture)}" : null,
                evaluators = JsonSerializer.Serialize(Graders.WithStoredDefaults(request.Evaluators), CoreJsonContext.Default.ListJsonElement),
                concurrency, repeat, status,
                metadata = request.Metadata is null ? null : JsonSerializer.Serialize(request.Metadata.ToDictionary(), CoreJsonContext.Default.DictionaryStringString),
                by = caller.KeyId ?? "anonymous", now = Clock.NowMs(),
            });
        if (status == "queued")
        {
            _queued.Writer.TryWrite(rowId);
        }
        return await GetAsync(caller, id, cancellationToken);
    }

    private async Task<ExperimentTarget> TargetAsync(Caller caller, ExperimentTarget? target, CancellationToken cancellationToken)
    {
        if (target?.Type is null)
        {
            throw SextantException.Missing("target.type");
        }
        switch (target.Type)
        {
            case "prompt":
                var spec = target.Prompt ?? throw SextantException.Missing("target.prompt");
                var at = spec.LastIndexOf('@');
                var promptName = at < 0 ? spec : spec[..at];
                var selector = at < 0 ? null : spec[(at + 1)..];
                int? number = selector is { Length: > 0 } && selector.All(char.IsAsciiDigit) ? int.Parse(selector, CultureInfo.InvariantCulture) : null;
                PromptVersion version;
                try
                {
                    version = await prompts.GetAsync(caller, promptName, number, number is null ? selector : null, cancellationToken);
                }
                catch (SextantException e) when (e.StatusCode is 400 or 404)
                {
                    throw SextantException.Invalid("target.prompt", $"'target.prompt': {e.Message}");
                }
                if (target.Model is null && !(version.Config is { ValueKind: JsonValueKind.Object } config && config.TryGetProperty("model", out _)))
                {
                    throw SextantException.Invalid("target.model", $"Prompt '{version.Name}' version {version.Version} has no model in its config: name one in 'target.model'.");
                }
                return target with { PromptVersion = version.Version, Url = null, Headers = null };
            case "model":
                return target.Model is { Length: > 0 } ? target with { Prompt = null, Url = null, Headers = null, PromptVersion = null } : throw SextantException.Missing("target.model");
            case "http":
                if (!Uri.TryCreate(target.Url, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
                {
                    throw SextantException.Invalid("target.url", $"'target.url' must be an absolute http(s) URL; got '{target.Url}'.");
                }
                foreach (var (header, value) in target.Headers ?? new Dictionary<string, string>())
                {
                    if (!HeaderName().IsMatch(header) || ContentHeaders.Contains(header))
                    {
                        throw SextantException.Invalid("target.headers", $"'target.headers' has '{header}', which is not a request header the target may be sent (a token, not Content-Type, Content-Length or Host).");
                    }
                    if (value is null || value.Any(c => c is '\r' or '\n' or '\0') || value.Length > 8000)
                    {
                        throw SextantException.Invalid("target.headers", $"'target.headers.{header}' must be a single line of at most 8000 characters.");
                    }
                }
                return target with { Prompt = null, Model = null, PromptVersion = null };
            case "sdk":
                return new ExperimentTarget("sdk");
            default:
                throw SextantException.Invalid("target.type", $"'target.type' must be prompt, model, http or sdk; got '{target.Type}'.");
        }
    }

    public async Task<EvalExperiment> GetAsync(Caller caller, string? id, CancellationToken cancellationToken = default)
    {
        caller.Require(Role.Viewer);
        await using var connection = await database.OpenAsync(cancellationToken);
        var row = await RowAsync(connection, caller.ProjectId, id);
        return ToExperiment(row, await SummaryAsync(connection, row));
    }

    public async Task<EvalExperimentsResponse> ListAsync(Caller caller, string? dataset, int? maxResults, string? pageToken, CancellationToken cancellationToken = default)
    {
        caller.Require(Role.Viewer);
        var size = PageSize(maxResults);
        var before = long.MaxValue;
        if (pageToken is not null && !long.TryParse(PageToken.Decode(pageToken, 1)[0], NumberStyles.None, CultureInfo.InvariantCulture, out before))
        {
            throw SextantException.Invalid("page_token", "Invalid page_token: pass back the next_page_token of the previous page unchanged.");
        }
        await using var connection = await database.OpenAsync(cancellationToken);
        var rows = (await connection.QueryAsync<ExperimentRow>(
            Select + " WHERE e.project_id = @project AND e.id < @before" + (dataset is null ? "" : " AND d.name = @dataset") + " ORDER BY e.id DESC LIMIT @limit",
            new { project = caller.ProjectId, before, dataset, limit = size + 1 })).ToList();
        var page = new List<EvalExperiment>();
        foreach (var row in rows.Take(size))
        {
            page.Add(ToExperiment(row, await SummaryAsync(connection, row)));
        }
        return new EvalExperimentsResponse(page, rows.Count > size ? PageToken.Encode([rows[size - 1].Id.ToString(CultureInfo.InvariantCulture)]) : null);
    }

    /// <summary>Results in item order; status filters (pass, fail, error).</summary>
    public async Task<ExperimentResultsResponse> ResultsAsync(Caller caller, string? id, string? status, int? maxResults, string? pageToken, CancellationToken cancellationToken = default)
    {
        caller.Require(Role.Viewer);
        if (status is not (null or EvalStatus.Pass or EvalStatus.Fail or EvalStatus.Error))
        {
            throw SextantException.Invalid("status", $"'status' must be pass, fail or error; got '{status}'.");
        }
        var size = PageSize(maxResults);
        long afterIdx = -1, afterRep = -1;
        if (pageToken is not null)
        {
            var values = PageToken.Decode(pageToken, 2);
            if (!long.TryParse(values[0], NumberStyles.None, CultureInfo.InvariantCulture, out afterIdx) || !long.TryParse(values[1], NumberStyles.None, CultureInfo.InvariantCulture, out afterRep))
            {
                throw SextantException.Invalid("page_token", "Invalid page_token: pass back the next_page_token of the previous page unchanged.");
            }
        }
        await using var connection = await database.OpenAsync(cancellationToken);
        var row = await RowAsync(connection, caller.ProjectId, id);
        var rows = (await connection.QueryAsync<ResultRow>(
            ResultSelect + " WHERE experiment_id = @Id AND (idx > @afterIdx OR (idx = @afterIdx AND repetition > @afterRep))" + (status is null ? "" : " AND status = @status")
            + " ORDER BY idx, repetition LIMIT @limit",
            new { row.Id, afterIdx, afterRep, status, limit = size + 1 })).ToList();
        var items = await ItemsAsync(connection, row, rows.Take(size).Select(r => r.Idx).Distinct().ToList());
        var page = rows.Take(size).Select(r => ToResult(r, items.GetValueOrDefault((int)r.Idx))).ToList();
        return new ExperimentResultsResponse(page, rows.Count > size
            ? PageToken.Encode([rows[size - 1].Idx.ToString(CultureInfo.InvariantCulture), rows[size - 1].Repetition.ToString(CultureInfo.InvariantCulture)]) : null);
    }

    /// <summary>Per item over its repetitions: pass rate and flakiness.</summary>
    public async Task<IReadOnlyList<ExperimentItemSummary>> ItemSummariesAsync(Caller caller, string? id, CancellationToken cancellationToken = default)
    {
        caller.Require(Role.Viewer);
        await using var connection = await database.OpenAsync(cancellationToken);
        var row = await RowAsync(connection, caller.ProjectId, id);
        var results = await SummaryRowsAsync(connection, row.Id);
        var keys = await ItemKeysAsync(connection, row);
        return [.. results.GroupBy(r => r.Idx).OrderBy(g => g.Key).Select(g =>
        {
            var passed = g.Count(r => r.Status == EvalStatus.Pass);
            return new ExperimentItemSummary((int)g.Key, keys.GetValueOrDefault((int)g.Key), g.Count(), passed, g.Count(r => r.Status == EvalStatus.Error),
                (double)passed / g.Count(), passed > 0 && passed < g.Count());
        })];
    }

    public async Task CancelAsync(Caller caller, string? id, CancellationToken cancellationToken = default)
    {
        caller.Require(Role.Editor);
        await using var connection = await database.OpenAsync(cancellationToken);
        var row = await RowAsync(connection, caller.ProjectId, id);
        if (row.Status is "queued" or "running")
        {
            await connection.ExecuteAsync("UPDATE eval_experiments SET status = 'cancelled', finished_time = @now WHERE id = @Id AND status IN ('queued', 'running')",
                new { row.Id, now = Clock.NowMs() });
        }
        if (_running.TryGetValue(row.Id, out var running))
        {
            try
            {
                await running.CancelAsync();
            }
            catch (ObjectDisposedException)
            {
                // It finished meanwhile.
            }
        }
    }

    /// <summary>Outputs of an sdk experiment, scored here by the experiment's evaluators; Complete marks it done.</summary>
    public async Task<PostExperimentResultsResponse> PostResultsAsync(Caller caller, string? id, PostExperimentResultsRequest request, CancellationToken cancellationToken = default)
    {
        caller.Require(Role.Editor);
        ExperimentRow row;
        Dictionary<int, IndexedEvalItem> items;
        await using (var connection = await database.OpenAsync(cancellationToken))
        {
            row = await RowAsync(connection, caller.ProjectId, id);
            if (JsonSerializer.Deserialize(row.Target, SextantJsonContext.Default.ExperimentTarget)!.Type != "sdk")
            {
                throw SextantException.Invalid("id", $"Experiment {row.ExperimentId} runs on the server; only an sdk experiment takes posted results.");
            }
            if (row.Status != "running")
            {
                throw new SextantException(ErrorCodes.InvalidParameterValue, $"Experiment {row.ExperimentId} is {row.Status}; it takes no more results.", 409);
            }
            items = (await datasets.LoadAsync(caller.ProjectId, row.Dataset, (int)row.DatasetVersion, cancellationToken)).Items.ToDictionary(i => i.Index);
        }
        var outputs = request.Results ?? [];
        if (outputs.Count > 1000)
        {
            throw SextantException.Invalid("results", "At most 1000 results a request.");
        }
        var seen = new HashSet<(int, int)>();
        for (var i = 0; i < outputs.Count; i++)
        {
            var output = outputs[i] ?? throw SextantException.Invalid($"results[{i}]", $"'results[{i}]' must be an object.");
            if (output.Item is not { } item)
            {
                throw SextantException.Missing($"results[{i}].item");
            }
            if (!seen.Add((item, output.Repetition)))
            {
                throw SextantException.Invalid($"results[{i}]", $"'results[{i}]' repeats item {item} repetition {output.Repetition}, which this request already has.");
            }
            EvalText.Check(output.Output, $"results[{i}].output", 1 << 20);
            EvalText.Check(output.Error, $"results[{i}].error", 10_000);
            EvalText.Check(output.TraceId, $"results[{i}].trace_id", 128);
            if (!items.ContainsKey(item))
            {
                throw SextantException.Invalid($"results[{i}].item", $"'results[{i}].item' {item} is not an item of {row.Dataset} version {row.DatasetVersion} (0-{items.Count - 1}).");
            }
            if (output.Repetition < 0 || output.Repetition >= row.Repeats)
            {
                throw SextantException.Invalid($"results[{i}].repetition", $"'results[{i}].repetition' must be 0-{row.Repeats - 1}.");
            }
            if (output.Output is null && output.Error is null)
            {
                throw SextantException.Invalid($"results[{i}]", $"'results[{i}]' needs an 'output' or an 'error'.");
            }
            foreach (var score in output.Scores ?? [])
            {
                if (score.Status is not (EvalStatus.Pass or EvalStatus.Fail or EvalStatus.Error) || string.IsNullOrEmpty(score.Name))
                {
                    throw SextantException.Invalid($"results[{i}].scores", $"'results[{i}].scores' entries need a name and a status of pass, fail or error.");
                }
                EvalText.Check(score.Name, $"results[{i}].scores", 100);
                EvalText.Check(score.Reason, $"results[{i}].scores", 10_000);
            }
        }
        var graders = Graders.Parse(Evaluators(row), "evaluators", new GraderServices(gateway, caller));
        // Scored side by side (judges take seconds each), at most the experiment's concurrency at once.
        var stored = new ResultRow[outputs.Count];
        await Parallel.ForAsync(0, outputs.Count, new ParallelOptions { MaxDegreeOfParallelism = (int)row.Concurrency, CancellationToken = cancellationToken }, async (i, token) =>
        {
            var output = outputs[i]!;
            var run = new TargetRun(output.Output, output.Error, output.LatencyMs, output.InputTokens, output.OutputTokens, output.Cost, output.TraceId, null);
            stored[i] = await ScoreAsync(items[output.Item!.Value], output.Repetition, run, graders, output.Scores, token);
        });
        await using (var connection = await database.OpenAsync(cancellationToken))
        {
            await InsertAsync(connection, row.Id, [.. stored], replace: true, cancellationToken);
            if (request.Complete)
            {
                await connection.ExecuteAsync("UPDATE eval_experiments SET status = 'completed', finished_time = @now WHERE id = @Id AND status = 'running'", new { row.Id, now = Clock.NowMs() });
            }
        }
        var experiment = await GetAsync(caller, row.ExperimentId, cancellationToken);
        return new PostExperimentResultsResponse([.. stored.Select(r => ToResult(r, items[(int)r.Idx]))], experiment.Summary);
    }

    /// <summary>
    /// Experiments queued or running that no live server holds (none, or its heartbeat is stale), to run or resume;
    /// sdk experiments resume in their own process.
    /// </summary>
    public async Task<IReadOnlyList<long>> UnfinishedAsync(CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        var rows = await connection.QueryAsync<(long Id, string Target)>(
            "SELECT id, target FROM eval_experiments WHERE status IN ('queued', 'running') AND (owner IS NULL OR owner = @owner OR heartbeat < @stale) ORDER BY id",
            new { owner = _owner, stale = Clock.NowMs() - (long)Stale.TotalMilliseconds });
        return [.. rows.Where(r => JsonSerializer.Deserialize(r.Target, SextantJsonContext.Default.ExperimentTarget)!.Type != "sdk").Select(r => r.Id)];
    }

    /// <summary>
    /// Runs (or resumes) an experiment: every item and repetition without a result, at most Concurrency at once. The
    /// server claims the run and keeps a heartbeat on it, so that among replicas sharing a database one runs it, a
    /// replica takes over a run whose server died, and a cancel made on any replica stops it.
    /// </summary>
    public async Task RunAsync(long id, CancellationToken stopping)
    {
        using var cancel = CancellationTokenSource.CreateLinkedTokenSource(stopping);
        if (!_running.TryAdd(id, cancel))
        {
            return;
        }
        Task? heartbeat = null;
        try
        {
            ExperimentRow row;
            Caller caller;
            HashSet<(long, long)> done;
            await using (var connection = await database.OpenAsync(stopping))
            {
                var now = Clock.NowMs();
                var claimed = await connection.ExecuteAsync(
                    """
                    UPDATE eval_experiments SET owner = @owner, heartbeat = @now, status = 'running'
                    WHERE id = @id AND status IN ('queued', 'running') AND (owner IS NULL OR owner = @owner OR heartbeat < @stale)
                    """,
                    new { id, owner = _owner, now, stale = now - (long)Stale.TotalMilliseconds });
                if (claimed == 0)
                {
                    return;
                }
                row = await connection.QuerySingleAsync<ExperimentRow>(Select + " WHERE e.id = @id", new { id });
                var project = await connection.QuerySingleAsync<string>("SELECT name FROM projects WHERE id = @ProjectId", new { row.ProjectId });
                caller = new Caller(row.ProjectId, project, Role.Editor, Anonymous: row.CreatedBy == "anonymous", KeyId: row.CreatedBy == "anonymous" ? null : row.CreatedBy);
                done = [.. (await connection.QueryAsync<(long, long)>("SELECT idx, repetition FROM eval_results WHERE experiment_id = @id", new { id }))];
            }
            heartbeat = HeartbeatAsync(id, cancel);
            var target = JsonSerializer.Deserialize(row.Target, SextantJsonContext.Default.ExperimentTarget)!;
            var items = (await datasets.LoadAsync(row.ProjectId, row.Dataset, (int)row.DatasetVersion, stopping)).Items;
            var graders = Graders.Parse(Evaluators(row), "evaluators", new GraderServices(gateway, caller));
            var work = items.SelectMany(item => Enumerable.Range(0, (int)row.Repeats).Select(r => (Item: item, Repetition: r)))
                .Where(w => !done.Contains((w.Item.Index, w.Repetition))).ToList();
            var finished = Channel.CreateBounded<ResultRow>(new BoundedChannelOptions(1024) { SingleReader = true });
            // A writer that fails stops the runs (they would wait on a full channel for ever) and fails the experiment.
            var writer = WriteResultsAsync(id, finished.Reader, cancel);
            try
            {
                await Parallel.ForEachAsync(work, new ParallelOptions { MaxDegreeOfParallelism = (int)row.Concurrency, CancellationToken = cancel.Token }, async (w, token) =>
                {
                    TargetRun run;
                    try
                    {
                        run = await RunTargetAsync(caller, target, row, w.Item, token);
                    }
                    catch (Exception e) when (!token.IsCancellationRequested)
                    {
                        // Whatever the target did, it is this run's error, not the experiment's.
                        run = new TargetRun(null, $"the target failed: {e.Message}", null, null, null, null, null, null);
                    }
                    await finished.Writer.WriteAsync(await ScoreAsync(w.Item, w.Repetition, run, graders, null, token), token);
                });
            }
            finally
            {
                finished.Writer.TryComplete();
                await writer;
            }
            await using (var connection = await database.OpenAsync(CancellationToken.None))
            {
                await connection.ExecuteAsync("UPDATE eval_experiments SET status = 'completed', finished_time = @now WHERE id = @id AND status = 'running'", new { id, now = Clock.NowMs() });
            }
        }
        catch (OperationCanceledException) when (cancel.IsCancellationRequested && !_failed.ContainsKey(id))
        {
            // Cancelled by a user (the status says so), or the server is stopping: it resumes at the next start.
        }
        catch (Exception e)
        {
            var error = _failed.TryRemove(id, out var writeError) ? writeError : e;
            logger.LogError(error, "Experiment {Id} failed", id);
            await using var connection = await database.OpenAsync(CancellationToken.None);
            await connection.ExecuteAsync("UPDATE eval_experiments SET status = 'failed', error = @error, finished_time = @now WHERE id = @id AND status IN ('queued', 'running')",
                new { id, error = EvalText.Clean(error.Message), now = Clock.NowMs() });
        }
        finally
        {
            _running.TryRemove(id, out _);
            await cancel.CancelAsync();
            if (heartbeat is not null)
            {
                await heartbeat;
            }
        }
    }

    private readonly ConcurrentDictionary<long, Exception> _failed = new();

    /// <summary>Every few seconds: says this server still runs the experiment, and stops it when it was cancelled (on any replica) or taken over.</summary>
    private async Task HeartbeatAsync(long id, CancellationTokenSource cancel)
    {
        using var timer = new PeriodicTimer(Heartbeat);
        try
        {
            while (await timer.WaitForNextTickAsync(cancel.Token))
            {
                await using var connection = await database.OpenAsync(cancel.Token);
                var status = await connection.ExecuteScalarAsync<string?>(
                    "UPDATE eval_experiments SET heartbeat = @now WHERE id = @id AND owner = @owner RETURNING status", new { id, owner = _owner, now = Clock.NowMs() });
                if (status != "running")
                {
                    await cancel.CancelAsync();
                    return;
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
        catch (Exception e) when (e is System.Data.Common.DbException)
        {
            logger.LogWarning(e, "The heartbeat of experiment {Id} could not be written", id);
        }
    }

    /// <summary>Stores finished runs in batches: one transaction for whatever has finished meanwhile.</summary>
    private async Task WriteResultsAsync(long id, ChannelReader<ResultRow> finished, CancellationTokenSource cancel)
    {
        var batch = new List<ResultRow>();
        try
        {
            while (await finished.WaitToReadAsync())
            {
                batch.Clear();
                while (batch.Count < 500 && finished.TryRead(out var row))
                {
                    batch.Add(row);
                }
                await using var connection = await database.OpenAsync();
                await InsertAsync(connection, id, batch, replace: false, CancellationToken.None);
            }
        }
        catch (Exception e)
        {
            _failed[id] = e;
            await cancel.CancelAsync();
        }
    }

    private static async Task InsertAsync(DbConnection connection, long id, List<ResultRow> rows, bool replace, CancellationToken cancellationToken)
    {
        if (rows.Count == 0)
        {
            return;
        }
        await using var transaction = await SextantDatabase.BeginWriteAsync(connection, cancellationToken);
        var now = Clock.NowMs();
        foreach (var chunk in rows.Chunk(100))
        {
            var sql = new StringBuilder("INSERT INTO eval_results (experiment_id, idx, repetition, status, output, error, latency_ms, input_tokens, output_tokens, cost, trace_id, scores, created_time) VALUES ");
            var parameters = new DynamicParameters(new { id, now });
            for (var i = 0; i < chunk.Length; i++)
            {
                var r = chunk[i];
                sql.Append(i == 0 ? "" : ", ").Append(CultureInfo.InvariantCulture, $"(@id, @x{i}, @r{i}, @s{i}, @o{i}, @e{i}, @l{i}, @it{i}, @ot{i}, @c{i}, @t{i}, @sc{i}, @now)");
                parameters.Add("x" + i, r.Idx);
                parameters.Add("r" + i, r.Repetition);
                parameters.Add("s" + i, r.Status);
                parameters.Add("o" + i, r.Output);
                parameters.Add("e" + i, r.Error);
                parameters.Add("l" + i, r.LatencyMs);
                parameters.Add("it" + i, r.InputTokens);
                parameters.Add("ot" + i, r.OutputTokens);
                parameters.Add("c" + i, r.Cost);
                parameters.Add("t" + i, r.TraceId);
                parameters.Add("sc" + i, r.Scores);
            }
            sql.Append(replace
                ? " ON CONFLICT (experiment_id, idx, repetition) DO UPDATE SET status = excluded.status, output = excluded.output, error = excluded.error, latency_ms = excluded.latency_ms, input_tokens = excluded.input_tokens, output_tokens = excluded.output_tokens, cost = excluded.cost, trace_id = excluded.trace_id, scores = excluded.scores, created_time = excluded.created_time"
                : " ON CONFLICT (experiment_id, idx, repetition) DO NOTHING");
            await connection.ExecuteAsync(sql.ToString(), parameters, transaction);
        }
        await transaction.CommitAsync(cancellationToken);
    }

    private sealed record TargetRun(string? Output, string? Error, double? LatencyMs, long? InputTokens, long? OutputTokens, double? Cost, string? TraceId, string? Context);

    private async Task<TargetRun> RunTargetAsync(Caller caller, ExperimentTarget target, ExperimentRow row, IndexedEvalItem item, CancellationToken cancellationToken)
    {
        var input = item.Item.Input;
        var tags = (IReadOnlyList<string>)["sextant:experiment", "experiment:" + row.ExperimentId];
        switch (target.Type)
        {
            case "prompt":
            {
                var reference = new JsonObject
                {
                    ["name"] = PromptName(target.Prompt!),
                    ["version"] = target.PromptVersion,
                };
                if (target.Model is not null)
                {
                    reference["model"] = target.Model;
                }
                var request = new JsonObject { ["prompt"] = reference };
                switch (input)
                {
                    case { ValueKind: JsonValueKind.Object } variables:
                        reference["variables"] = JsonNode.Parse(variables.GetRawText());
                        break;
                    case { ValueKind: JsonValueKind.String } text:
                        reference["variables"] = new JsonObject { ["input"] = text.GetString() };
                        break;
                    case { ValueKind: JsonValueKind.Array } messages:
                        request["messages"] = JsonNode.Parse(messages.GetRawText());
                        break;
                }
                return FromAnswer(await gateway.ChatAsync(caller, request, tags, cancellationToken));
            }
            case "model":
            {
                JsonNode messages = input switch
                {
                    { ValueKind: JsonValueKind.Array } array => JsonNode.Parse(array.GetRawText())!,
                    { ValueKind: JsonValueKind.String } text => new JsonArray(new JsonObject { ["role"] = "user", ["content"] = text.GetString() }),
                    _ => new JsonArray(new JsonObject { ["role"] = "user", ["content"] = Graders.InputText(input) }),
                };
                return FromAnswer(await gateway.ChatAsync(caller, new JsonObject { ["model"] = target.Model, ["messages"] = messages }, tags, cancellationToken));
            }
            default:
                return await CallHttpAsync(target, row, item, cancellationToken);
        }
    }

    /// <summary>The prompt's name in a target's "name@label" or "name@3".</summary>
    internal static string PromptName(string spec) => spec.LastIndexOf('@') is var at and >= 0 ? spec[..at] : spec;

    private static TargetRun FromAnswer(GatewayAnswer answer) => answer.Ok
        ? new TargetRun(answer.Text, null, answer.LatencyMs, answer.InputTokens, answer.OutputTokens, answer.Cost, answer.TraceId, null)
        : new TargetRun(null, answer.Error, answer.LatencyMs, null, null, null, answer.TraceId, null);

    /// <summary>POSTs {"id", "input", "metadata"} to the target; its "output" (a string or JSON) and "context" are read, or the whole body is the output.</summary>
    private static async Task<TargetRun> CallHttpAsync(ExperimentTarget target, ExperimentRow row, IndexedEvalItem item, CancellationToken cancellationToken)
    {
        var started = Stopwatch.GetTimestamp();
        var body = new JsonObject
        {
            ["id"] = item.Item.Id,
            ["experiment"] = row.ExperimentId,
            ["input"] = item.Item.Input is { } input ? JsonNode.Parse(input.GetRawText()) : null,
            ["metadata"] = item.Item.Metadata is { } metadata ? JsonNode.Parse(JsonSerializer.Serialize(metadata.ToDictionary(), CoreJsonContext.Default.DictionaryStringJsonElement)) : null,
        };
        using var request = new HttpRequestMessage(HttpMethod.Post, target.Url) { Content = new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json") };
        foreach (var (name, value) in target.Headers ?? new Dictionary<string, string>())
        {
            request.Headers.TryAddWithoutValidation(name, value);
        }
        try
        {
            using var response = await Http.SendAsync(request, cancellationToken);
            var text = await response.Content.ReadAsStringAsync(cancellationToken);
            var ms = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
            if (!response.IsSuccessStatusCode)
            {
                return new TargetRun(null, $"HTTP {(int)response.StatusCode}: {Graders.Short(text, 500)}", ms, null, null, null, null, null);
            }
            try
            {
                if (JsonNode.Parse(text) is JsonObject answer && answer["output"] is { } output)
                {
                    var context = answer["context"] switch
                    {
                        null => null,
                        JsonValue v when v.TryGetValue<string>(out var s) => s,
                        JsonArray a => string.Join("\n\n", a.Select(x => x is JsonValue xv && xv.TryGetValue<string>(out var xs) ? xs : x?.ToJsonString())),
                        var other => other.ToJsonString(),
                    };
                    return new TargetRun(output is JsonValue ov && ov.TryGetValue<string>(out var o) ? o : output.ToJsonString(), null, ms, null, null, null, null, context);
                }
            }
            catch (JsonException)
            {
            }
            return new TargetRun(text, null, ms, null, null, null, null, null);
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException && !cancellationToken.IsCancellationRequested)
        {
            return new TargetRun(null, $"the target could not be called: {e.Message}", Stopwatch.GetElapsedTime(started).TotalMilliseconds, null, null, null, null, null);
        }
    }

    private static async Task<ResultRow> ScoreAsync(IndexedEvalItem item, int repetition, TargetRun run, IReadOnlyList<IGrader> graders, IReadOnlyList<EvalScore>? extra,
        CancellationToken cancellationToken)
    {
        var scores = new List<EvalScore>();
        if (run.Output is { } output)
        {
            var input = new EvalInput(output, item.Item.Expected, run.LatencyMs, run.Cost, item.Item.Input, item.Item.Metadata, run.Context);
            foreach (var grader in graders)
            {
                scores.Add(await grader.ScoreSafelyAsync(input, cancellationToken));
            }
        }
        scores.AddRange(extra ?? []);
        var status = run.Output is null ? EvalStatus.Error
            : scores.Any(s => s.Status == EvalStatus.Fail) ? EvalStatus.Fail
            : scores.Any(s => s.Status == EvalStatus.Error) ? EvalStatus.Error
            : EvalStatus.Pass;
        return new ResultRow(item.Index, repetition, status, EvalText.Clean(run.Output), EvalText.Clean(run.Error), run.LatencyMs, run.InputTokens, run.OutputTokens, run.Cost,
            run.TraceId, EvalText.Clean(JsonSerializer.Serialize(scores, SextantJsonContext.Default.ListEvalScore))!);
    }

    /// <summary>
    /// Candidate minus baseline, paired by item id: the pass rate, each evaluator's mean score, latency and cost, with
    /// 95% intervals from a paired bootstrap (items resampled with replacement; a fixed seed, so the same data gives
    /// the same interval). Items: regressions first.
    /// </summary>
    public async Task<ExperimentComparison> CompareAsync(Caller caller, string? baselineId, string? candidateId, CancellationToken cancellationToken = default)
    {
        caller.Require(Role.Viewer);
        await using var connection = await database.OpenAsync(cancellationToken);
        var baseline = await RowAsync(connection, caller.ProjectId, baselineId ?? throw SextantException.Missing("baseline"), "baseline");
        var candidate = await RowAsync(connection, caller.ProjectId, candidateId ?? throw SextantException.Missing("candidate"), "candidate");
        if (baseline.Dataset != candidate.Dataset)
        {
            throw SextantException.Invalid("candidate", $"Experiments compare over one dataset: {baseline.ExperimentId} ran {baseline.Dataset}, {candidate.ExperimentId} ran {candidate.Dataset}.");
        }
        var a = await PerItemAsync(connection, baseline);
        var b = await PerItemAsync(connection, candidate);
        var keys = a.Keys.Intersect(b.Keys, StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
        var metrics = new List<MetricDelta>();
        void Metric(string name, Func<ItemAggregate, double?> value)
        {
            var pairs = keys.Select(k => (A: value(a[k]), B: value(b[k]))).Where(p => p.A is not null && p.B is not null).Select(p => (A: p.A!.Value, B: p.B!.Value)).ToList();
            if (pairs.Count == 0)
            {
                return;
            }
            var (low, high) = Bootstrap([.. pairs.Select(p => p.B - p.A)]);
            var meanA = pairs.Average(p => p.A);
            var meanB = pairs.Average(p => p.B);
            metrics.Add(new MetricDelta(name, Math.Round(meanA, 6), Math.Round(meanB, 6), Math.Round(meanB - meanA, 6), Math.Round(low, 6), Math.Round(high, 6), low > 0 || high < 0));
        }
        Metric("pass_rate", x => x.PassRate);
        foreach (var evaluator in a.Values.SelectMany(x => x.Scores.Keys).Intersect(b.Values.SelectMany(x => x.Scores.Keys)).Distinct().Order(StringComparer.Ordinal))
        {
            Metric("score." + evaluator, x => x.Scores.GetValueOrDefault(evaluator));
        }
        Metric("latency_ms", x => x.LatencyMs);
        Metric("cost", x => x.Cost);
        var items = keys.Select(k =>
        {
            var (x, y) = (a[k], b[k]);
            var change = y.PassRate < x.PassRate ? "regression" : y.PassRate > x.PassRate ? "improvement" : "same";
            var deltas = x.Scores.Keys.Union(y.Scores.Keys).Order(StringComparer.Ordinal)
                .ToDictionary(e => e, e => x.Scores.GetValueOrDefault(e) is { } s1 && y.Scores.GetValueOrDefault(e) is { } s2 ? Math.Round(s2 - s1, 6) : (double?)null);
            return new ItemComparison(y.Index, k, change, x.PassRate, y.PassRate, x.Output, y.Output, deltas);
        })
        .OrderBy(i => i.Change switch { "regression" => 0, "improvement" => 1, _ => 2 })
        .ThenBy(i => i.Change == "regression" ? i.CandidatePassRate - i.BaselinePassRate : i.BaselinePassRate - i.CandidatePassRate)
        .ThenBy(i => i.Item)
        .ToList();
        return new ExperimentComparison(baseline.ExperimentId, candidate.ExperimentId, keys.Count, metrics, items);
    }

    private sealed record ItemAggregate(int Index, double PassRate, Dictionary<string, double?> Scores, double? LatencyMs, double? Cost, string? Output);

    private async Task<Dictionary<string, ItemAggregate>> PerItemAsync(DbConnection connection, ExperimentRow row)
    {
        var results = await ResultRowsAsync(connection, row.Id);
        var keys = await ItemKeysAsync(connection, row);
        return results.GroupBy(r => r.Idx).Where(g => keys.ContainsKey((int)g.Key)).ToDictionary(g => keys[(int)g.Key], g =>
        {
            var scores = g.SelectMany(r => ParseScores(r.Scores)).GroupBy(s => s.Name)
                .ToDictionary(s => s.Key, s => s.Any(x => x.Score is not null) ? s.Where(x => x.Score is not null).Average(x => x.Score!.Value) : (double?)null);
            var latencies = g.Where(r => r.LatencyMs is not null).Select(r => r.LatencyMs!.Value).ToList();
            var costs = g.Where(r => r.Cost is not null).Select(r => r.Cost!.Value).ToList();
            return new ItemAggregate((int)g.Key, (double)g.Count(r => r.Status == EvalStatus.Pass) / g.Count(), scores,
                latencies.Count > 0 ? latencies.Average() : null, costs.Count > 0 ? costs.Average() : null, g.OrderBy(r => r.Repetition).First().Output ?? g.First().Error);
        }, StringComparer.Ordinal);
    }

    /// <summary>The 2.5th and 97.5th percentiles of the mean of resampled differences.</summary>
    internal static (double Low, double High) Bootstrap(double[] differences, int samples = BootstrapSamples, int seed = 20261128)
    {
        var random = new Random(seed);
        var means = new double[samples];
        for (var s = 0; s < samples; s++)
        {
            var sum = 0.0;
            for (var i = 0; i < differences.Length; i++)
            {
                sum += differences[random.Next(differences.Length)];
            }
            means[s] = sum / differences.Length;
        }
        Array.Sort(means);
        return (Percentiles.Interpolated(means, 0.025), Percentiles.Interpolated(means, 0.975));
    }

    /// <summary>
    /// The summary: kept with a completed experiment (made at its first read after it completed), else computed from
    /// its results without their outputs (an experiment polled while it runs reads only what the summary needs).
    /// </summary>
    private static async Task<ExperimentSummary> SummaryAsync(DbConnection connection, ExperimentRow row)
    {
        if (row.Summary is { } kept)
        {
            return JsonSerializer.Deserialize(kept, SextantJsonContext.Default.ExperimentSummary)!;
        }
        var results = await SummaryRowsAsync(connection, row.Id);
        var summary = Summarize(row, await ItemCountAsync(connection, row), results);
        // Only completed: a cancelled or failed experiment may still store the runs that were finishing.
        if (row.Status == "completed")
        {
            await connection.ExecuteAsync("UPDATE eval_experiments SET summary = @json WHERE id = @Id AND summary IS NULL",
                new { row.Id, json = JsonSerializer.Serialize(summary, SextantJsonContext.Default.ExperimentSummary) });
        }
        return summary;
    }

    /// <summary>What a summary needs of a result.</summary>
    private sealed record SummaryRow(long Idx, string Status, double? LatencyMs, long? InputTokens, long? OutputTokens, double? Cost, string Scores);

    /// <summary>An experiment's results without their outputs.</summary>
    private static async Task<List<SummaryRow>> SummaryRowsAsync(DbConnection connection, long id) =>
        [.. await connection.QueryAsync<SummaryRow>(
            "SELECT idx, status, latency_ms AS LatencyMs, input_tokens AS InputTokens, output_tokens AS OutputTokens, cost, scores FROM eval_results WHERE experiment_id = @id",
            new { id })];

    private static ExperimentSummary Summarize(ExperimentRow row, int items, List<SummaryRow> results)
    {
        var passed = results.Count(r => r.Status == EvalStatus.Pass);
        var failed = results.Count(r => r.Status == EvalStatus.Fail);
        var errors = results.Count(r => r.Status == EvalStatus.Error);
        var scores = results.Select(r => ParseScores(r.Scores)).ToList();
        var groundedness = Evaluators(row).Where(e => e.TryGetProperty("type", out var t) && t.ValueEquals("groundedness"))
            .Select(e => e.TryGetProperty("name", out var n) && n.ValueKind == JsonValueKind.String ? n.GetString()! : "groundedness").ToHashSet(StringComparer.Ordinal);
        var judged = scores.SelectMany(s => s).Where(s => groundedness.Contains(s.Name) && s.Status != EvalStatus.Error).ToList();
        var evaluators = scores.SelectMany(s => s).GroupBy(s => s.Name).Select(g =>
        {
            var (p, f, e) = (g.Count(s => s.Status == EvalStatus.Pass), g.Count(s => s.Status == EvalStatus.Fail), g.Count(s => s.Status == EvalStatus.Error));
            return new EvaluatorSummary(g.Key, p, f, e, Rate(p, g.Count()), g.Any(s => s.Score is not null) ? Math.Round(g.Where(s => s.Score is not null).Average(s => s.Score!.Value), 6) : null);
        }).OrderBy(e => e.Name, StringComparer.Ordinal).ToList();
        var latencies = results.Where(r => r.LatencyMs is not null).Select(r => r.LatencyMs!.Value).Order().ToArray();
        var costs = results.Where(r => r.Cost is not null).Select(r => r.Cost!.Value).ToList();
        var flaky = results.GroupBy(r => r.Idx).Count(g => g.Any(r => r.Status == EvalStatus.Pass) && g.Any(r => r.Status != EvalStatus.Pass));
        return new ExperimentSummary(items, items * (int)row.Repeats, results.Count, passed, failed, errors, Rate(passed, results.Count), Rate(errors, results.Count), flaky,
            judged.Count == 0 ? null : Rate(judged.Count(s => s.Status == EvalStatus.Fail), judged.Count),
            latencies.Length == 0 ? null : Math.Round(Percentiles.Interpolated(latencies, 0.5), 3),
            latencies.Length == 0 ? null : Math.Round(Percentiles.Interpolated(latencies, 0.95), 3),
            costs.Count == 0 ? null : Math.Round(costs.Sum(), 8),
            results.Sum(r => r.InputTokens ?? 0), results.Sum(r => r.OutputTokens ?? 0), evaluators);
    }

    private static double Rate(int count, int total) => total == 0 ? 0 : Math.Round((double)count / total, 6);

    private static List<EvalScore> ParseScores(string json) => JsonSerializer.Deserialize(json, SextantJsonContext.Default.ListEvalScore) ?? [];

    private static List<JsonElement> Evaluators(ExperimentRow row) => JsonSerializer.Deserialize(row.Evaluators, CoreJsonContext.Default.ListJsonElement) ?? [];

    private const string Select =
        """
        SELECT e.id, e.project_id AS ProjectId, e.experiment_id AS ExperimentId, e.name, d.name AS Dataset, e.dataset_version AS DatasetVersion, e.target, e.evaluators,
               e.concurrency, e.repeats, e.status, e.error, e.metadata, e.created_by AS CreatedBy, e.created_time AS CreatedTime, e.finished_time AS FinishedTime, e.summary
        FROM eval_experiments e JOIN eval_datasets d ON d.id = e.dataset_id
        """;

    private const string ResultSelect =
        "SELECT idx, repetition, status, output, error, latency_ms AS LatencyMs, input_tokens AS InputTokens, output_tokens AS OutputTokens, cost, trace_id AS TraceId, scores FROM eval_results";

    private static async Task<ExperimentRow> RowAsync(DbConnection connection, long project, string? id, string field = "id")
    {
        if (string.IsNullOrEmpty(id))
        {
            throw SextantException.Missing(field);
        }
        return await connection.QuerySingleOrDefaultAsync<ExperimentRow>(Select + " WHERE e.project_id = @project AND e.experiment_id = @id", new { project, id })
            ?? throw SextantException.NotFound($"No experiment '{id}' in this project.");
    }

    private static async Task<List<ResultRow>> ResultRowsAsync(DbConnection connection, long id) =>
        [.. await connection.QueryAsync<ResultRow>(ResultSelect + " WHERE experiment_id = @id ORDER BY idx, repetition", new { id })];

    private static async Task<int> ItemCountAsync(DbConnection connection, ExperimentRow row) =>
        await connection.ExecuteScalarAsync<int>(
            "SELECT v.item_count FROM eval_dataset_versions v JOIN eval_experiments e ON e.dataset_id = v.dataset_id AND e.dataset_version = v.version WHERE e.id = @Id", new { row.Id });

    private static async Task<Dictionary<int, string>> ItemKeysAsync(DbConnection connection, ExperimentRow row) =>
        (await connection.QueryAsync<(long Idx, string Key)>(
            "SELECT i.idx, i.item_key FROM eval_items i JOIN eval_experiments e ON e.dataset_id = i.dataset_id AND e.dataset_version = i.version WHERE e.id = @Id", new { row.Id }))
        .ToDictionary(r => (int)r.Idx, r => r.Key);

    private static async Task<Dictionary<int, IndexedEvalItem>> ItemsAsync(DbConnection connection, ExperimentRow row, List<long> indexes)
    {
        if (indexes.Count == 0)
        {
            return [];
        }
        var rows = await connection.QueryAsync<(long Idx, string Key, string? Input, string? Expected)>(
            "SELECT i.idx, i.item_key, i.input, i.expected FROM eval_items i JOIN eval_experiments e ON e.dataset_id = i.dataset_id AND e.dataset_version = i.version WHERE e.id = @Id AND i.idx >= @low AND i.idx <= @high",
            new { row.Id, low = indexes.Min(), high = indexes.Max() });
        return rows.ToDictionary(r => (int)r.Idx, r => new IndexedEvalItem((int)r.Idx, new EvalItem(r.Key, Parse(r.Input), Parse(r.Expected))));
    }

    private static JsonElement? Parse(string? json)
    {
        if (json is null)
        {
            return null;
        }
        using var document = JsonDocument.Parse(json);
        return document.RootElement.Clone();
    }

    private static ExperimentResult ToResult(ResultRow r, IndexedEvalItem? item) =>
        new((int)r.Idx, item?.Item.Id, (int)r.Repetition, r.Status, r.Output, r.Error, r.LatencyMs, r.InputTokens, r.OutputTokens, r.Cost, r.TraceId, ParseScores(r.Scores),
            item?.Item.Input, item?.Item.Expected);

    /// <summary>An experiment as the API shows it: an http target's header values (credentials, often) are not shown.</summary>
    private static EvalExperiment ToExperiment(ExperimentRow row, ExperimentSummary summary) => new(
        row.ExperimentId, row.Name, row.Dataset, (int)row.DatasetVersion,
        JsonSerializer.Deserialize(row.Target, SextantJsonContext.Default.ExperimentTarget)! is var target && target.Headers is { Count: > 0 } headers
            ? target with { Headers = headers.ToDictionary(h => h.Key, _ => "(hidden)") }
            : target,
        Evaluators(row), (int)row.Concurrency, (int)row.Repeats, row.Status, row.Error,
        row.Metadata is null ? null : JsonSerializer.Deserialize(row.Metadata, CoreJsonContext.Default.DictionaryStringString),
        row.CreatedBy, row.CreatedTime, row.FinishedTime, summary);

    private static int PageSize(int? maxResults) => maxResults switch
    {
        null => DefaultPageSize,
        >= 1 and <= MaxPageSize => maxResults.Value,
        _ => throw SextantException.Invalid("max_results", $"'max_results' must be 1-{MaxPageSize}."),
    };
}
