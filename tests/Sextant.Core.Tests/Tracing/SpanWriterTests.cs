using Dapper;
using Sextant.Contracts;
using Sextant.Core.Storage;
using Sextant.Core.Tests.Storage;
using Sextant.Core.Tracing;

namespace Sextant.Core.Tests.Tracing;

/// <summary>The span writer under concurrent writes, on every engine.</summary>
public abstract class SpanWriterTests(DatabaseEngine engine) : IAsyncLifetime
{
    private TestDatabase _db = null!;

    public async Task InitializeAsync() => _db = await TestDatabase.CreateAsync(engine);

    public async Task DisposeAsync() => await _db.DisposeAsync();

    private static string Hex(int bytes) => Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(bytes));

    private sealed record Expected(string Name, long SpanCount, long GenerationCount, long InputTokens, long OutputTokens, long StartTime, long EndTime);

    [Fact]
    public async Task Traces_split_across_writes_that_commit_together_add_up_and_a_second_sending_stores_nothing()
    {
        await using var writer = new SpanWriter(_db.Database);
        const long t0 = 1_700_000_000_000_000;
        var traces = Enumerable.Range(0, 40).Select(_ => (Trace: Hex(16), Root: Hex(8))).ToArray();
        // Write k holds part k of every trace: part 0 is the root, parts 1-7 are generations under it. The eight
        // writes are sent at once, so the writer commits several of them together and meets each trace's spans
        // from different writes in one commit (and in later commits, for the writes it had not seen yet).
        var writes = Enumerable.Range(0, 8).Select(part => traces.Select(t => new StoredSpan(1, part == 0
            ? new Span(t.Trace, t.Root, null, "root", "span", t0, t0 + 1_000, "ok")
            : new Span(t.Trace, Hex(8), t.Root, $"step {part}", "generation", t0 + part, t0 + part + 10, part == 3 ? "error" : "ok",
                Model: "m", InputTokens: 10, OutputTokens: 1, Cost: 0.5), "{}")).ToArray()).ToArray();

        var first = await Task.WhenAll(writes.Select(w => writer.WriteAsync(w)));
        Assert.All(first, results => Assert.All(results, Assert.True));
        await using var connection = await _db.Database.OpenAsync();
        async Task<List<Expected>> TracesAsync() => [.. await connection.QueryAsync<Expected>(
            """
            SELECT name, CAST(span_count AS BIGINT) AS span_count, CAST(generation_count AS BIGINT) AS generation_count, CAST(input_tokens AS BIGINT) AS input_tokens,
                CAST(output_tokens AS BIGINT) AS output_tokens, CAST(start_time AS BIGINT) AS start_time, CAST(end_time AS BIGINT) AS end_time
            FROM traces ORDER BY trace_id
            """)];
        var expected = Enumerable.Repeat(new Expected("root", 8, 7, 70, 7, t0, t0 + 1_000), traces.Length).ToList();
        Assert.Equal(expected, await TracesAsync());
        Assert.Equal(traces.Length * 8, await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM spans"));
        Assert.Equal(traces.Length, await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM traces WHERE error_count = 1 AND cost = 3.5 AND models = '[\"m\"]'"));

        // Sent again, all at once: every span is a duplicate, and no summary moves.
        var again = await Task.WhenAll(writes.Select(w => writer.WriteAsync(w)));
        Assert.All(again, results => Assert.All(results, Assert.False));
        Assert.Equal(expected, await TracesAsync());
        Assert.Equal(traces.Length * 8, await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM spans"));
    }

    [Fact]
    public async Task A_trickle_of_single_span_writes_is_gathered_into_commits_and_each_is_acknowledged_as_stored()
    {
        await using var writer = new SpanWriter(_db.Database);
        const long t0 = 1_700_000_000_000_000;
        // One span a write, as the gateway sends them, arriving one after another while earlier ones commit: the
        // writer waits a moment after each small commit to gather the next few into one.
        var pending = new List<Task<bool[]>>();
        for (var i = 0; i < 120; i++)
        {
            pending.Add(writer.WriteAsync([new StoredSpan(1, new Span(Hex(16), Hex(8), null, $"call {i}", "generation", t0 + i, t0 + i + 5, "ok"), "{}")]));
            if (i % 10 == 9)
            {
                await Task.Delay(1);
            }
        }
        var results = await Task.WhenAll(pending);
        Assert.All(results, r => Assert.Equal([true], r));
        await using var connection = await _db.Database.OpenAsync();
        Assert.Equal(120, await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM spans"));
        Assert.Equal(120, await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM traces"));
    }

    [Fact]
    public async Task A_write_that_cannot_be_stored_fails_alone_and_tells_its_callback_when_nobody_waits_for_it()
    {
        await using var writer = new SpanWriter(_db.Database);
        const long t0 = 1_700_000_000_000_000;
        var told = new TaskCompletionSource<Exception>(TaskCreationOptions.RunContinuationsAsynchronously);
        // Queued together: a span of a project that does not exist (its foreign key fails) and one of a project that does.
        var bad = writer.Queue([new StoredSpan(424_242, new Span(Hex(16), Hex(8), null, "orphan", "span", t0, t0 + 1, "ok"), "{}")], e => told.TrySetResult(e));
        var good = writer.WriteAsync([new StoredSpan(1, new Span(Hex(16), Hex(8), null, "kept", "span", t0, t0 + 1, "ok"), "{}")]);

        Assert.Equal(new[] { true }, await good);
        await Assert.ThrowsAnyAsync<Exception>(() => bad);
        Assert.NotNull(await told.Task.WaitAsync(TimeSpan.FromSeconds(10)));
        await using var connection = await _db.Database.OpenAsync();
        Assert.Equal(new[] { "kept" }, await connection.QueryAsync<string>("SELECT name FROM spans"));
    }

    [Fact]
    public async Task Writes_queued_before_the_writer_stops_are_committed_and_a_write_after_it_is_refused_with_503()
    {
        var writer = new SpanWriter(_db.Database);
        const long t0 = 1_700_000_000_000_000;
        var queued = Enumerable.Range(0, 50)
            .Select(i => writer.WriteAsync([new StoredSpan(1, new Span(Hex(16), Hex(8), null, $"call {i}", "span", t0, t0 + 1, "ok"), "{}")])).ToList();
        await writer.DisposeAsync();
        Assert.All(await Task.WhenAll(queued), r => Assert.Equal([true], r));
        var refused = await Assert.ThrowsAsync<SextantException>(() => writer.WriteAsync([new StoredSpan(1, new Span(Hex(16), Hex(8), null, "late", "span", t0, t0 + 1, "ok"), "{}")]));
        Assert.Equal(503, refused.StatusCode);
        await using var connection = await _db.Database.OpenAsync();
        Assert.Equal(50, await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM spans"));
    }
}

public sealed class SqliteSpanWriterTests() : SpanWriterTests(DatabaseEngine.Sqlite);

public sealed class PostgresSpanWriterTests() : SpanWriterTests(DatabaseEngine.Postgres);
