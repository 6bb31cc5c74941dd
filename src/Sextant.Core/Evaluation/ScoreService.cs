using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Dapper;
using Microsoft.Extensions.Logging;
using Sextant.Contracts;
using Sextant.Core.Projects;
using Sextant.Core.Storage;
using Sextant.Core.Tracing;
using Sextant.Core.Tracking;

namespace Sextant.Core.Evaluation;

/// <summary>
/// Scores on traces: human feedback (thumbs, numbers, categories, comments) through the API and SDK, and the
/// scores of online evaluation, whose rules sample production generations and score them in the background.
/// </summary>
public sealed partial class ScoreService(SextantDatabase database, TraceService traces, IGatewayCaller gateway, ILogger<ScoreService> logger)
{
    public const int MaxCommentLength = 4000;

    /// <summary>This server's name in the rule leases it takes.</summary>
    private readonly string _owner = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6));
    public const int MaxSpansPerTick = 5000;

    /// <summary>Generations a rule scores at once.</summary>
    public const int Concurrency = 8;

    /// <summary>Generations of experiments and judges are never sampled by online rules (a judge would judge itself).</summary>
    public static readonly string[] InternalTags = ["sextant:experiment", "sextant:judge"];

    [GeneratedRegex(@"^[A-Za-z0-9][A-Za-z0-9_.\-:/ ]{0,99}\z")]
    private static partial Regex ScoreNamePattern();

    public async Task<TraceScore> CreateAsync(Caller caller, CreateScoreRequest request, CancellationToken cancellationToken = default)
    {
        caller.Require(Role.Editor);
        if (string.IsNullOrEmpty(request.TraceId))
        {
            throw SextantException.Missing("trace_id");
        }
        if (request.TraceId.Length > 128)
        {
            throw SextantException.Invalid("trace_id", "'trace_id' is at most 128 characters.");
        }
        if (string.IsNullOrEmpty(request.Name))
        {
            throw SextantException.Missing("name");
        }
        if (!ScoreNamePattern().IsMatch(request.Name))
        {
            throw SextantException.Invalid("name", "A score's 'name' is 1-100 letters, digits, spaces and . _ - : /, starting with a letter or digit.");
        }
        var source = request.Source ?? "human";
        if (source is not ("human" or "api"))
        {
            throw SextantException.Invalid("source", $"'source' must be human or api; got '{source}'.");
        }
        EvalText.Check(request.TraceId, "trace_id", 128);
        EvalText.Check(request.SpanId, "span_id", 128);
        EvalText.Check(request.Comment, "comment", MaxCommentLength);
        var (type, value, text) = request.Value switch
        {
            null or { ValueKind: JsonValueKind.Null } when request.Comment is not null => ("comment", (double?)null, (string?)null),
            { ValueKind: JsonValueKind.Number } n when double.IsFinite(n.GetDouble()) => ("numeric", n.GetDouble(), null),
            { ValueKind: JsonValueKind.True } => ("boolean", 1, null),
            { ValueKind: JsonValueKind.False } => ("boolean", 0, null),
            { ValueKind: JsonValueKind.String } s when s.GetString()!.Length is > 0 and <= 200 && !s.GetString()!.Contains('\0', StringComparison.Ordinal) => ("categorical", null, s.GetString()),
            _ => throw SextantException.Invalid("value", "'value' must be a number, true or false (thumbs up or down), or a category (a string of 1-200 characters); or give only a 'comment'."),
        };
        // The generation's prompt and A/B arm, when the trace is already stored, so feedback compares arms too.
        string? prompt = null, arm = null;
        try
        {
            var trace = await traces.GetTraceAsync(caller, request.TraceId, cancellationToken);
            var generation = trace.Spans.Where(s => s.Kind == "generation" && (request.SpanId is null || s.SpanId == request.SpanId)).OrderBy(s => s.StartTime).FirstOrDefault();
            (prompt, arm) = generation is null ? (null, null) : PromptOf(generation);
        }
        catch (SextantException e) when (e.StatusCode is 400 or 404)
        {
        }
        return await InsertAsync(caller.ProjectId, request.TraceId, request.SpanId, request.Name, source, type, value, text, request.Comment, null, caller.KeyId ?? "anonymous",
            prompt, arm, cancellationToken);
    }

    /// <summary>A generation's prompt (name@version) and A/B arm, from the gateway's span attributes.</summary>
    private static (string? Prompt, string? Arm) PromptOf(Span span)
    {
        string? Text(string key) => span.Attributes?.TryGetValue(key, out var value) == true ? value.ToString() : null;
        var name = Text("sextant.prompt.name");
        return (name is null ? null : $"{name}@{Text("sextant.prompt.version")}", Text("sextant.prompt.arm"));
    }

    private async Task<TraceScore> InsertAsync(long project, string traceId, string? spanId, string name, string source, string type, double? value, string? text, string? comment,
        string? status, string? author, string? prompt, string? arm, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        var now = Clock.NowMs();
        var id = await connection.ExecuteScalarAsync<long>(
            """
            INSERT INTO trace_scores (project_id, trace_id, span_id, name, source, data_type, value, string_value, comment, status, author, prompt, arm, created_time)
            VALUES (@project, @traceId, @spanId, @name, @source, @type, @value, @text, @comment, @status, @author, @prompt, @arm, @now) RETURNING id
            """,
            new { project, traceId, spanId, name, source, type, value, text, comment, status, author, prompt, arm, now });
        return new TraceScore(id, traceId, spanId, name, source, type, value, text, comment, author, now, status, prompt, arm);
    }

    public async Task<TraceScoresResponse> ListAsync(Caller caller, string? traceId, string? name, int? maxResults, string? pageToken, CancellationToken cancellationToken = default)
    {
        caller.Require(Role.Viewer);
        var size = maxResults is null ? 100 : maxResults is >= 1 and <= 1000 ? maxResults.Value : throw SextantException.Invalid("max_results", "'max_results' must be 1-1000.");
        var before = long.MaxValue;
        if (pageToken is not null && !long.TryParse(PageToken.Decode(pageToken, 1)[0], NumberStyles.None, CultureInfo.InvariantCulture, out before))
        {
            throw SextantException.Invalid("page_token", "Invalid page_token: pass back the next_page_token of the previous page unchanged.");
        }
        await using var connection = await database.OpenAsync(cancellationToken);
        var rows = (await connection.QueryAsync<TraceScore>(
            "SELECT id, trace_id AS TraceId, span_id AS SpanId, name, source, data_type AS DataType, value, string_value AS StringValue, comment, author, created_time AS CreatedTime, status, prompt, arm FROM trace_scores"
            + " WHERE project_id = @project AND id < @before" + (traceId is null ? "" : " AND trace_id = @traceId") + (name is null ? "" : " AND name = @name") + " ORDER BY id DESC LIMIT @limit",
            new { project = caller.ProjectId, before, traceId, name, limit = size + 1 })).ToList();
        return new TraceScoresResponse([.. rows.Take(size)], rows.Count > size ? PageToken.Encode([rows[size - 1].Id.ToString(CultureInfo.InvariantCulture)]) : null);
    }

    /// <summary>
    /// Each score's mean (and pass rate, for evaluator scores) since a time (Unix milliseconds): per day, or with
    /// by=arm per prompt version and A/B arm over the whole period (an A/B test's result).
    /// </summary>
    public async Task<ScoreTrendsResponse> TrendsAsync(Caller caller, string? name, long? since, string? by = null, CancellationToken cancellationToken = default)
    {
        caller.Require(Role.Viewer);
        if (by is not (null or "day" or "arm"))
        {
            throw SextantException.Invalid("by", $"'by' must be day or arm; got '{by}'.");
        }
        var from = since ?? Clock.NowMs() - 30L * 86_400_000;
        await using var connection = await database.OpenAsync(cancellationToken);
        var rows = await connection.QueryAsync<(string Name, long Time, double? Value, string? Status, string? Prompt, string? Arm)>(
            "SELECT name, created_time, value, status, prompt, arm FROM trace_scores WHERE project_id = @project AND created_time >= @from" + (name is null ? "" : " AND name = @name"),
            new { project = caller.ProjectId, from, name });
        var byArm = by == "arm";
        var points = rows.Where(r => !byArm || r.Prompt is not null)
            .GroupBy(r => (r.Name, Day: byArm ? "" : DateTimeOffset.FromUnixTimeMilliseconds(r.Time).UtcDateTime.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture),
                Prompt: byArm ? r.Prompt : null, Arm: byArm ? r.Arm : null))
            .Select(g =>
            {
                var values = g.Where(r => r.Value is not null).Select(r => r.Value!.Value).ToList();
                var judged = g.Where(r => r.Status is EvalStatus.Pass or EvalStatus.Fail).ToList();
                return new ScoreTrendPoint(g.Key.Name, g.Key.Day, g.Count(), values.Count == 0 ? null : Math.Round(values.Average(), 6),
                    judged.Count == 0 ? null : Math.Round((double)judged.Count(r => r.Status == EvalStatus.Pass) / judged.Count, 6), g.Key.Prompt, g.Key.Arm);
            })
            .OrderBy(p => p.Name, StringComparer.Ordinal).ThenBy(p => p.Day, StringComparer.Ordinal).ThenBy(p => p.Prompt, StringComparer.Ordinal).ThenBy(p => p.Arm, StringComparer.Ordinal)
            .ToList();
        return new ScoreTrendsResponse(points);
    }

    // ---- Online evaluation ----

    public async Task<OnlineEvalRule> SetRuleAsync(Caller caller, string? name, OnlineEvalRule rule, CancellationToken cancellationToken = default)
    {
        caller.Require(Role.Editor);
        var ruleName = name ?? rule.Name ?? throw SextantException.Missing("name");
        if (!ScoreNamePattern().IsMatch(ruleName) || ruleName.Contains(' ', StringComparison.Ordinal))
        {
            throw SextantException.Invalid("name", "A rule's 'name' is 1-100 letters, digits and . _ - : /.");
        }
        var rate = rule.SampleRate ?? 1;
        if (rate is < 0 or > 1 || double.IsNaN(rate))
        {
            throw SextantException.Invalid("sample_rate", $"'sample_rate' must be from 0 to 1 (the share of matching generations scored); got {rate}.");
        }
        if (rule.Evaluators is not { Count: > 0 })
        {
            throw SextantException.Missing("evaluators");
        }
        Graders.Parse(rule.Evaluators, "evaluators", new GraderServices(gateway, caller));
        var filter = rule.Filter ?? new OnlineEvalFilter();
        var enabled = rule.Enabled ?? true;
        await using var connection = await database.OpenAsync(cancellationToken);
        // A new rule looks at generations from now on; an updated one keeps its place.
        await connection.ExecuteAsync(
            """
            INSERT INTO online_eval_rules (project_id, name, filter, sample_rate, evaluators, enabled, watermark, created_time) VALUES (@project, @ruleName, @filter, @rate, @evaluators, @enabled, @watermark, @now)
            ON CONFLICT (project_id, name) DO UPDATE SET filter = excluded.filter, sample_rate = excluded.sample_rate, evaluators = excluded.evaluators, enabled = excluded.enabled
            """,
            new
            {
                project = caller.ProjectId, ruleName, rate, enabled = enabled ? 1 : 0, now = Clock.NowMs(), watermark = Clock.NowMs() * 1000,
                filter = JsonSerializer.Serialize(filter, SextantJsonContext.Default.OnlineEvalFilter),
                evaluators = JsonSerializer.Serialize(Graders.WithStoredDefaults(rule.Evaluators), CoreJsonContext.Default.ListJsonElement),
            });
        return new OnlineEvalRule(ruleName, filter, rate, Graders.WithStoredDefaults(rule.Evaluators), enabled);
    }

    public async Task<OnlineEvalRulesResponse> ListRulesAsync(Caller caller, CancellationToken cancellationToken = default)
    {
        caller.Require(Role.Viewer);
        await using var connection = await database.OpenAsync(cancellationToken);
        var rows = await connection.QueryAsync<RuleRow>(RuleSelect + " WHERE project_id = @project ORDER BY name", new { project = caller.ProjectId });
        return new OnlineEvalRulesResponse([.. rows.Select(r => r.ToRule())]);
    }

    public async Task DeleteRuleAsync(Caller caller, string? name, CancellationToken cancellationToken = default)
    {
        caller.Require(Role.Editor);
        await using var connection = await database.OpenAsync(cancellationToken);
        if (await connection.ExecuteAsync("DELETE FROM online_eval_rules WHERE project_id = @project AND name = @name", new { project = caller.ProjectId, name }) == 0)
        {
            throw SextantException.NotFound($"No online evaluation rule '{name}' in this project.");
        }
    }

    private sealed record RuleRow(long Id, long ProjectId, string Name, string Filter, double SampleRate, string Evaluators, long Enabled, long Watermark, long CreatedTime)
    {
        public OnlineEvalRule ToRule() => new(Name, JsonSerializer.Deserialize(Filter, SextantJsonContext.Default.OnlineEvalFilter), SampleRate,
            JsonSerializer.Deserialize(Evaluators, CoreJsonContext.Default.ListJsonElement), Enabled != 0);
    }

    private const string RuleSelect = "SELECT id, project_id AS ProjectId, name, filter, sample_rate AS SampleRate, evaluators, enabled, watermark, created_time AS CreatedTime FROM online_eval_rules";

    /// <summary>
    /// One pass of online evaluation: for every enabled rule, the generations that started since its watermark (up
    /// to a few seconds ago, and looking back a while for spans stored late), not yet scored by the rule, sampled by
    /// a hash of the trace id (the same trace is in or out whatever the order), scored, the scores attached to the traces.
    /// </summary>
    public async Task<int> EvaluateOnlineAsync(TimeSpan settle, CancellationToken cancellationToken) => await EvaluateOnlineAsync(settle, TimeSpan.FromMinutes(5), cancellationToken);

    /// <param name="lookback">How far before its watermark a rule looks again for spans that were stored late (a busy
    /// writer, an exporter's batch delay); the ones it already scored are skipped.</param>
    public async Task<int> EvaluateOnlineAsync(TimeSpan settle, TimeSpan lookback, CancellationToken cancellationToken)
    {
        List<RuleRow> rules;
        await using (var connection = await database.OpenAsync(cancellationToken))
        {
            rules = [.. await connection.QueryAsync<RuleRow>(RuleSelect + " WHERE enabled = 1 ORDER BY id")];
        }
        var scored = 0;
        foreach (var rule in rules)
        {
            try
            {
                scored += await EvaluateRuleAsync(rule, settle, lookback, cancellationToken);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                logger.LogWarning(e, "Online evaluation rule {Rule} failed", rule.Name);
            }
        }
        return scored;
    }

    private async Task<int> EvaluateRuleAsync(RuleRow rule, TimeSpan settle, TimeSpan lookback, CancellationToken cancellationToken)
    {
        string project;
        await using (var connection = await database.OpenAsync(cancellationToken))
        {
            project = await connection.QuerySingleAsync<string>("SELECT name FROM projects WHERE id = @ProjectId", new { rule.ProjectId });
        }
        var caller = new Caller(rule.ProjectId, project, Role.Editor, Anonymous: false, KeyId: "online:" + rule.Name);
        var upTo = Clock.NowMs() * 1000 - (long)settle.TotalMicroseconds;
        if (upTo <= rule.Watermark)
        {
            return 0;
        }
        var filter = JsonSerializer.Deserialize(rule.Filter, SextantJsonContext.Default.OnlineEvalFilter) ?? new OnlineEvalFilter();
        var graders = Graders.Parse(JsonSerializer.Deserialize(rule.Evaluators, CoreJsonContext.Default.ListJsonElement), "evaluators", new GraderServices(gateway, caller));
        // Never before the rule was made: a new rule scores what comes after it.
        var from = Math.Max(rule.Watermark - (long)lookback.TotalMicroseconds, rule.CreatedTime * 1000);
        // One replica at a time scores a rule: the lease is taken for a minute and given back when the pass ends.
        await using (var connection = await database.OpenAsync(cancellationToken))
        {
            var now = Clock.NowMs();
            if (await connection.ExecuteAsync(
                    "UPDATE online_eval_rules SET lease_owner = @owner, lease_until = @until WHERE id = @Id AND (lease_owner IS NULL OR lease_owner = @owner OR lease_until < @now)",
                    new { rule.Id, owner = _owner, until = now + 60_000, now }) == 0)
            {
                return 0;
            }
        }
        // Oldest first from the window's start, so that a pass that stops at its limit goes on from there next time.
        var spans = await traces.GenerationsAsync(rule.ProjectId, from, upTo, filter.Model, MaxSpansPerTick, cancellationToken);
        var capped = spans.Count >= MaxSpansPerTick;
        var source = "online:" + rule.Name;
        HashSet<(string, string?)> done;
        await using (var connection = await database.OpenAsync(cancellationToken))
        {
            // Scores are made after their span started: the rule's scores since the window opened are all there can be.
            done = [.. await connection.QueryAsync<(string, string?)>(
                "SELECT trace_id, span_id FROM trace_scores WHERE project_id = @ProjectId AND source = @source AND created_time >= @since",
                new { rule.ProjectId, source, since = from / 1000 })];
        }
        var scored = 0;
        var sampled = spans.Where(s => s.Output is not null && !done.Contains((s.TraceId, s.SpanId)) && Matches(s, filter) && Sampled(rule.Name, s.TraceId, rule.SampleRate));
        // Several generations at once: a judge takes seconds, and a busy rule must keep up with its traffic.
        await Parallel.ForEachAsync(sampled, new ParallelOptions { MaxDegreeOfParallelism = Concurrency, CancellationToken = cancellationToken }, async (span, token) =>
        {
            var input = new EvalInput(EvalDatasetService.OutputText(span.Output!.Value), null, (span.EndTime - span.StartTime) / 1000.0, span.Cost, span.Input, null, null);
            var (prompt, arm) = PromptOf(span);
            foreach (var grader in graders)
            {
                var score = await grader.ScoreSafelyAsync(input, token);
                await InsertAsync(rule.ProjectId, span.TraceId, span.SpanId, score.Name, source, "numeric", score.Score, null, EvalText.Clean(score.Reason), score.Status, source, prompt, arm,
                    token);
            }
            Interlocked.Increment(ref scored);
        });
        // When the pass stopped at its limit, the watermark moves only to the last span it looked at.
        var watermark = capped ? spans[^1].StartTime : upTo;
        await using (var connection = await database.OpenAsync(CancellationToken.None))
        {
            await connection.ExecuteAsync(
                "UPDATE online_eval_rules SET watermark = CASE WHEN watermark < @watermark THEN @watermark ELSE watermark END, lease_owner = NULL, lease_until = NULL WHERE id = @Id AND lease_owner = @owner",
                new { rule.Id, watermark, owner = _owner });
        }
        return scored;
    }

    private static bool Matches(Span span, OnlineEvalFilter filter)
    {
        if (span.Tags?.Any(InternalTags.Contains) == true)
        {
            return false;
        }
        if (filter.SpanName is { } name && span.Name != name)
        {
            return false;
        }
        if (filter.Tag is { } tag && span.Tags?.Contains(tag) != true)
        {
            return false;
        }
        return filter.Prompt is not { } prompt
            || (span.Attributes?.TryGetValue("sextant.prompt.name", out var p) == true && p.ValueKind == JsonValueKind.String && p.GetString() == prompt);
    }

    /// <summary>Whether a trace falls in a rule's sample: a hash of rule and trace id, so the decision is stable.</summary>
    public static bool Sampled(string rule, string traceId, double rate)
    {
        if (rate >= 1)
        {
            return true;
        }
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes(rule + "\n" + traceId));
        return BitConverter.ToUInt64(hash, 0) / (double)ulong.MaxValue < rate;
    }
}
