using System.Diagnostics;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.AI.Evaluation;
using Sextant.Client.Evaluation;
using Sextant.Contracts;

namespace Sextant.Client;

// Evaluation: eval datasets, experiments (on the server, or run here with a C# function), comparisons, feedback.
public sealed partial class SextantClient
{
    private static string Q(string value) => Uri.EscapeDataString(value);

    /// <summary>A new version of an eval dataset from items: appended to the latest version's (mode append) or replacing them (mode replace).</summary>
    public Task<EvalDatasetVersion> AddEvalItemsAsync(string dataset, IReadOnlyList<EvalItem> items, string mode = "append", string? message = null,
        CancellationToken cancellationToken = default) =>
        PostJsonAsync($"api/v1/eval/datasets/items?name={Q(dataset)}", new AddEvalItemsRequest([.. items], mode, message), SextantJsonContext.Default.AddEvalItemsRequest,
            SextantJsonContext.Default.EvalDatasetVersion, cancellationToken);

    /// <summary>A new version of an eval dataset from a JSONL or CSV file (by its extension); a broken line fails the whole import.</summary>
    public async Task<EvalDatasetVersion> ImportEvalDatasetAsync(string dataset, string path, string mode = "append", string? message = null, CancellationToken cancellationToken = default)
    {
        var format = Path.GetExtension(path).Equals(".csv", StringComparison.OrdinalIgnoreCase) ? "csv" : "jsonl";
        await using var file = File.OpenRead(path);
        using var content = new StreamContent(file);
        content.Headers.ContentType = new MediaTypeHeaderValue(format == "csv" ? "text/csv" : "application/x-ndjson");
        return await SendJsonAsync(HttpMethod.Post, $"api/v1/eval/datasets/import?name={Q(dataset)}&format={format}&mode={Q(mode)}{(message is null ? "" : "&message=" + Q(message))}",
            content, null, SextantJsonContext.Default.EvalDatasetVersion, cancellationToken).ConfigureAwait(false);
    }

    public Task<EvalDatasetsResponse> ListEvalDatasetsAsync(CancellationToken cancellationToken = default) =>
        GetJsonAsync("api/v1/eval/datasets?max_results=1000", SextantJsonContext.Default.EvalDatasetsResponse, cancellationToken);

    /// <summary>Every item of a dataset version (the latest by default), in order.</summary>
    public async Task<List<IndexedEvalItem>> GetEvalItemsAsync(string dataset, int? version = null, CancellationToken cancellationToken = default)
    {
        var items = new List<IndexedEvalItem>();
        string? page = null;
        do
        {
            var response = await GetJsonAsync($"api/v1/eval/datasets/items?name={Q(dataset)}&max_results=1000{(version is null ? "" : $"&version={version}")}{(page is null ? "" : "&page_token=" + Q(page))}",
                SextantJsonContext.Default.EvalItemsResponse, cancellationToken).ConfigureAwait(false);
            items.AddRange(response.Items);
            page = response.NextPageToken;
        }
        while (page is not null);
        return items;
    }

    /// <summary>Starts an experiment that the server runs (target prompt, model or http); see <see cref="WaitForEvalExperimentAsync"/>.</summary>
    public Task<EvalExperiment> CreateEvalExperimentAsync(CreateEvalExperimentRequest request, CancellationToken cancellationToken = default) =>
        PostJsonAsync("api/v1/eval/experiments", request, SextantJsonContext.Default.CreateEvalExperimentRequest, SextantJsonContext.Default.EvalExperiment, cancellationToken);

    /// <summary>Experiments, newest first (optionally of one dataset).</summary>
    public Task<EvalExperimentsResponse> ListEvalExperimentsAsync(string? dataset = null, CancellationToken cancellationToken = default) =>
        GetJsonAsync($"api/v1/eval/experiments?max_results=1000{(dataset is null ? "" : "&dataset=" + Q(dataset))}", SextantJsonContext.Default.EvalExperimentsResponse, cancellationToken);

    public Task<EvalExperiment> GetEvalExperimentAsync(string id, CancellationToken cancellationToken = default) =>
        GetJsonAsync($"api/v1/eval/experiments/{Q(id)}", SextantJsonContext.Default.EvalExperiment, cancellationToken);

    /// <summary>Polls until the experiment is no longer queued or running.</summary>
    public async Task<EvalExperiment> WaitForEvalExperimentAsync(string id, TimeSpan? poll = null, Action<EvalExperiment>? progress = null, CancellationToken cancellationToken = default)
    {
        while (true)
        {
            var experiment = await GetEvalExperimentAsync(id, cancellationToken).ConfigureAwait(false);
            progress?.Invoke(experiment);
            if (experiment.Status is not ("queued" or "running"))
            {
                return experiment;
            }
            await Task.Delay(poll ?? TimeSpan.FromMilliseconds(500), cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Every result of an experiment (status: pass, fail or error to filter).</summary>
    public async Task<List<ExperimentResult>> GetEvalResultsAsync(string id, string? status = null, CancellationToken cancellationToken = default)
    {
        var results = new List<ExperimentResult>();
        string? page = null;
        do
        {
            var response = await GetJsonAsync($"api/v1/eval/experiments/{Q(id)}/results?max_results=1000{(status is null ? "" : "&status=" + Q(status))}{(page is null ? "" : "&page_token=" + Q(page))}",
                SextantJsonContext.Default.ExperimentResultsResponse, cancellationToken).ConfigureAwait(false);
            results.AddRange(response.Results);
            page = response.NextPageToken;
        }
        while (page is not null);
        return results;
    }

    public Task<ExperimentComparison> CompareEvalExperimentsAsync(string baseline, string candidate, CancellationToken cancellationToken = default) =>
        GetJsonAsync($"api/v1/eval/compare?baseline={Q(baseline)}&candidate={Q(candidate)}", SextantJsonContext.Default.ExperimentComparison, cancellationToken);

    /// <summary>Feedback on a trace: a number, true/false (thumbs), or a category, with an optional comment.</summary>
    public Task<TraceScore> ScoreTraceAsync(string traceId, string name, JsonElement value, string? comment = null, string? spanId = null, CancellationToken cancellationToken = default) =>
        PostJsonAsync("api/v1/scores", new CreateScoreRequest(traceId, name, value, spanId, comment), SextantJsonContext.Default.CreateScoreRequest, SextantJsonContext.Default.TraceScore,
            cancellationToken);

    /// <summary>Thumbs up (true) or down (false) on a trace.</summary>
    public Task<TraceScore> ScoreTraceAsync(string traceId, string name, bool value, string? comment = null, CancellationToken cancellationToken = default) =>
        ScoreTraceAsync(traceId, name, JsonSerializer.SerializeToElement(value, SextantJsonContext.Default.Boolean), comment, null, cancellationToken);

    /// <summary>A numeric score on a trace.</summary>
    public Task<TraceScore> ScoreTraceAsync(string traceId, string name, double value, string? comment = null, CancellationToken cancellationToken = default) =>
        ScoreTraceAsync(traceId, name, JsonSerializer.SerializeToElement(value, SextantJsonContext.Default.Double), comment, null, cancellationToken);

    /// <summary>
    /// Runs an experiment in this process: <paramref name="target"/> is called for every item (Repeat times, at most
    /// Concurrency at once), the outputs are posted to the server, which scores them with the evaluators given as
    /// JSON; custom Microsoft.Extensions.AI.Evaluation evaluators run here and their metrics are posted beside. A
    /// target that throws gives an error result. With ResumeId, the runs an earlier call finished are skipped.
    /// </summary>
    public async Task<EvalExperiment> RunEvalExperimentAsync(string dataset, Func<IndexedEvalItem, CancellationToken, Task<string>> target, EvalRunOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        options ??= new EvalRunOptions();
        var experiment = options.ResumeId is { } resume
            ? await GetEvalExperimentAsync(resume, cancellationToken).ConfigureAwait(false)
            : await CreateEvalExperimentAsync(new CreateEvalExperimentRequest(options.Name, dataset, options.DatasetVersion, new ExperimentTarget("sdk"), options.Evaluators,
                options.Concurrency, options.Repeat, options.Metadata), cancellationToken).ConfigureAwait(false);
        if (experiment.Status != "running")
        {
            throw new InvalidOperationException($"Experiment {experiment.Id} is {experiment.Status}; only a running sdk experiment can be resumed.");
        }
        var done = options.ResumeId is null ? [] : (await GetEvalResultsAsync(experiment.Id, null, cancellationToken).ConfigureAwait(false)).Select(r => (r.Item, r.Repetition)).ToHashSet();
        var items = await GetEvalItemsAsync(experiment.Dataset, experiment.DatasetVersion, cancellationToken).ConfigureAwait(false);
        var work = items.SelectMany(item => Enumerable.Range(0, experiment.Repeat).Select(r => (Item: item, Repetition: r))).Where(w => !done.Contains((w.Item.Index, w.Repetition))).ToList();
        var pending = new List<ExperimentOutput>();
        using var gate = new SemaphoreSlim(1);
        async Task FlushAsync(bool complete, CancellationToken token)
        {
            List<ExperimentOutput> batch;
            await gate.WaitAsync(token).ConfigureAwait(false);
            try
            {
                batch = [.. pending];
                pending.Clear();
            }
            finally
            {
                gate.Release();
            }
            if (batch.Count > 0 || complete)
            {
                await PostJsonAsync($"api/v1/eval/experiments/{Q(experiment.Id)}/results", new PostExperimentResultsRequest([.. batch], complete),
                    SextantJsonContext.Default.PostExperimentResultsRequest, SextantJsonContext.Default.PostExperimentResultsResponse, token).ConfigureAwait(false);
            }
        }
        try
        {
            await RunItemsAsync().ConfigureAwait(false);
        }
        catch (Exception)
        {
            // Cancelled, or a post failed: what finished and was not posted yet is posted (best effort), so that a
            // run with ResumeId goes on from there.
            try
            {
                await FlushAsync(false, CancellationToken.None).ConfigureAwait(false);
            }
            catch (Exception e) when (e is HttpRequestException or SextantApiException or TimeoutException)
            {
            }
            throw;
        }
        await FlushAsync(complete: true, cancellationToken).ConfigureAwait(false);
        return await GetEvalExperimentAsync(experiment.Id, cancellationToken).ConfigureAwait(false);

        Task RunItemsAsync() => Parallel.ForEachAsync(work, new ParallelOptions { MaxDegreeOfParallelism = experiment.Concurrency, CancellationToken = cancellationToken }, async (w, token) =>
        {
            var started = Stopwatch.GetTimestamp();
            string? output = null, error = null;
            try
            {
                output = await target(w.Item, token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OperationCanceledException || !token.IsCancellationRequested)
            {
                error = $"{e.GetType().Name}: {e.Message}";
            }
            var latency = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
            var scores = output is null ? null : await CustomScoresAsync(options.CustomEvaluators, w.Item, output, options.ChatConfiguration, token).ConfigureAwait(false);
            bool full;
            await gate.WaitAsync(token).ConfigureAwait(false);
            try
            {
                pending.Add(new ExperimentOutput(w.Item.Index, w.Repetition, output, error, Math.Round(latency, 3), Scores: scores));
                // Small posts: the server scores each with the experiment's evaluators, judges included, before it answers.
                full = pending.Count >= 25;
            }
            finally
            {
                gate.Release();
            }
            if (full)
            {
                await FlushAsync(false, token).ConfigureAwait(false);
            }
        });
    }

    /// <summary>Custom evaluators' metrics as scores: a metric whose interpretation failed is a fail; one with an error diagnostic, an error.</summary>
    private static async Task<List<EvalScore>?> CustomScoresAsync(IReadOnlyList<IEvaluator> evaluators, IndexedEvalItem item, string output, ChatConfiguration? chat,
        CancellationToken cancellationToken)
    {
        if (evaluators.Count == 0)
        {
            return null;
        }
        var messages = EvalMessages.From(item.Item.Input);
        var response = new ChatResponse(new ChatMessage(ChatRole.Assistant, output));
        var scores = new List<EvalScore>();
        foreach (var evaluator in evaluators)
        {
            try
            {
                var result = await evaluator.EvaluateAsync(messages, response, chat, [new ExpectedOutputContext(item.Item.Expected)], cancellationToken).ConfigureAwait(false);
                scores.AddRange(result.Metrics.Values.Select(EvalMessages.ToScore));
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                scores.AddRange(evaluator.EvaluationMetricNames.Select(name => new EvalScore(name, EvalStatus.Error, null, $"the evaluator failed: {e.Message}")));
            }
        }
        return scores;
    }
}
