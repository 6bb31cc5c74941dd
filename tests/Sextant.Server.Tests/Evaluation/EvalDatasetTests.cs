using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using Sextant.Server.Tests.Gateway;

namespace Sextant.Server.Tests.Evaluation;

/// <summary>Eval datasets: versions, appends and replacements, JSONL and CSV files (a broken line imports nothing), items from traces.</summary>
public abstract class EvalDatasetTests(EvalFixture fixture)
{
    private HttpClient Http => fixture.Http;

    private async Task<ApiAnswer> ImportAsync(string name, string format, string text, string mode = "append")
    {
        using var content = new StringContent(text, Encoding.UTF8);
        content.Headers.ContentType = new MediaTypeHeaderValue(format == "csv" ? "text/csv" : "application/x-ndjson");
        var response = await Http.PostAsync($"/api/v1/eval/datasets/import?name={name}&format={format}&mode={mode}&message=import", content);
        var body = await response.Content.ReadAsStringAsync();
        return new ApiAnswer((int)response.StatusCode, JsonNode.Parse(body), body, response);
    }

    private async Task<JsonArray> ItemsAsync(string name, int? version = null) =>
        (await Http.GetJsonAsync($"/api/v1/eval/datasets/items?name={name}{(version is null ? "" : $"&version={version}")}")).Json!["items"]!.AsArray();

    [Fact]
    public async Task Versions_append_replace_and_keep_old_versions_unchanged()
    {
        var first = await Http.PostAsync("/api/v1/eval/datasets/items?name=qa/versions", new
        {
            items = new object[]
            {
                new { id = "fr", input = new { question = "Capital of France?" }, expected = "Paris" },
                new { id = "es", input = new { question = "Capital of Spain?" }, expected = "Madrid", metadata = new { topic = "geo" } },
            },
            message = "first two",
            description = "capitals",
        });
        Assert.Equal(200, first.Status);
        Assert.Equal((1, 2), (first.Json!["version"]!.GetValue<int>(), first.Json["item_count"]!.GetValue<int>()));

        // An id already there replaces that item in place; a new one is appended.
        var second = await Http.PostAsync("/api/v1/eval/datasets/items?name=qa/versions", new
        {
            items = new object[]
            {
                new { id = "es", input = new { question = "Capital of Spain?" }, expected = "Madrid, Spain" },
                new { input = new { question = "Capital of Italy?" }, expected = "Rome" },
            },
        });
        Assert.Equal((2, 3, 2), (second.Json!["version"]!.GetValue<int>(), second.Json["item_count"]!.GetValue<int>(), second.Json["added"]!.GetValue<int>()));
        var v2 = await ItemsAsync("qa/versions");
        Assert.Equal(["fr", "es", "item-3"], v2.Select(i => i!["item"]!["id"]!.GetValue<string>()));
        Assert.Equal("Madrid, Spain", v2[1]!["item"]!["expected"]!.GetValue<string>());
        // Version 1 is as it was.
        Assert.Equal("Madrid", (await ItemsAsync("qa/versions", 1))[1]!["item"]!["expected"]!.GetValue<string>());

        var replaced = await ImportAsync("qa/versions", "jsonl", """
            {"id": "de", "input": {"question": "Capital of Germany?"}, "expected": "Berlin"}

            {"question": "Capital of Japan?", "expected": "Tokyo", "metadata": {"topic": "geo"}}
            """, mode: "replace");
        Assert.Equal(200, replaced.Status);
        var v3 = await ItemsAsync("qa/versions");
        Assert.Equal(2, v3.Count);
        // A line without "input" has its other fields as variables.
        Assert.Equal("Capital of Japan?", v3[1]!["item"]!["input"]!["question"]!.GetValue<string>());
        Assert.Equal("geo", v3[1]!["item"]!["metadata"]!["topic"]!.GetValue<string>());

        var list = (await Http.GetJsonAsync("/api/v1/eval/datasets")).Json!["datasets"]!.AsArray().Single(d => d!["name"]!.GetValue<string>() == "qa/versions")!;
        Assert.Equal((3, 2, "capitals"), (list["latest_version"]!.GetValue<int>(), list["item_count"]!.GetValue<int>(), list["description"]!.GetValue<string>()));
        var versions = (await Http.GetJsonAsync("/api/v1/eval/datasets/versions?name=qa/versions")).Json!["versions"]!.AsArray();
        Assert.Equal([3, 2, 1], versions.Select(v => v!["version"]!.GetValue<int>()));
    }

    [Fact]
    public async Task A_file_with_a_broken_line_names_the_line_and_imports_nothing()
    {
        Assert.Equal(200, (await ImportAsync("qa/broken", "jsonl", """{"input": {"q": "one"}, "expected": "1"}""")).Status);
        var broken = await ImportAsync("qa/broken", "jsonl", "{\"input\": {\"q\": \"two\"}, \"expected\": \"2\"}\n{\"input\": {\"q\": \"three\"}}\n{\"input\": {\"q\": \"four\"\n");
        Assert.Equal(400, broken.Status);
        Assert.Contains("Line 3", broken.Message);
        Assert.Contains("nothing was imported", broken.Message);
        Assert.Equal("file", broken.Field);
        var notObject = await ImportAsync("qa/broken", "jsonl", "{\"input\": {\"q\": \"two\"}}\n[1, 2]\n");
        Assert.Contains("Line 2", notObject.Message);
        var badCsv = await ImportAsync("qa/broken", "csv", "question,expected\n\"What is 2+2?\",4\n\"What is 3+3?\",6,extra\n");
        Assert.Equal(400, badCsv.Status);
        Assert.Contains("Line 3", badCsv.Message);
        var duplicate = await ImportAsync("qa/broken", "jsonl", "{\"id\": \"a\", \"input\": \"x\"}\n{\"id\": \"a\", \"input\": \"y\"}\n");
        Assert.Equal(400, duplicate.Status);
        Assert.Contains("'a'", duplicate.Message);
        var badMode = await ImportAsync("qa/broken", "jsonl", "{\"input\": \"x\"}", mode: "merge");
        Assert.Equal(("mode", 400), (badMode.Field, badMode.Status));
        // Still one version with one item.
        var versions = (await Http.GetJsonAsync("/api/v1/eval/datasets/versions?name=qa/broken")).Json!["versions"]!.AsArray();
        Assert.Single(versions);
        Assert.Single(await ItemsAsync("qa/broken"));
        // A key made up for an item without an id never takes an id another item names.
        var keys = await Http.PostAsync("/api/v1/eval/datasets/items?name=qa/keys", new { items = new object[] { new { input = "a" }, new { id = "item-1", input = "b" } } });
        Assert.Equal((2, 2), (keys.Json!["item_count"]!.GetValue<int>(), keys.Json["added"]!.GetValue<int>()));
        var badMessage = await Http.PostAsync("/api/v1/eval/datasets/items?name=qa/keys", new { items = new object[] { new { input = "c" } }, message = "bad\u0000" });
        Assert.Equal(("message", 400), (badMessage.Field, badMessage.Status));
        var empty = await Http.PostAsync("/api/v1/eval/datasets/items?name=qa/broken", new { items = new object[] { new { metadata = new { a = 1 } } } });
        Assert.Equal(("items[0]", 400), (empty.Field, empty.Status));
        var badName = await Http.PostAsync("/api/v1/eval/datasets/items?name=../x", new { items = Array.Empty<object>() });
        Assert.Equal(("name", 400), (badName.Field, badName.Status));
        Assert.Equal(404, (await Http.GetJsonAsync("/api/v1/eval/datasets/items?name=qa/none")).Status);
        Assert.Equal(404, (await Http.GetJsonAsync("/api/v1/eval/datasets/items?name=qa/broken&version=7")).Status);
    }

    [Fact]
    public async Task A_csv_file_has_variables_expected_output_and_metadata_columns()
    {
        var imported = await ImportAsync("qa/csv", "csv", "id,question,context,expected,metadata.topic\nq1,\"Refunds, how long?\",Refunds take 5 days.,5 days,billing\nq2,Shipping?,Ships in 2 days.,2 days,shipping\n");
        Assert.True(imported.Status == 200, imported.Body);
        var items = await ItemsAsync("qa/csv");
        Assert.Equal(2, items.Count);
        var first = items[0]!["item"]!;
        Assert.Equal(("q1", "Refunds, how long?", "Refunds take 5 days.", "5 days", "billing"), (first["id"]!.GetValue<string>(), first["input"]!["question"]!.GetValue<string>(),
            first["input"]!["context"]!.GetValue<string>(), first["expected"]!.GetValue<string>(), first["metadata"]!["topic"]!.GetValue<string>()));
    }

    [Fact]
    public async Task Items_come_from_selected_traces()
    {
        var call = await GatewayCalls.SendAsync(Http, "/v1/chat/completions",
            """{"model": "fake/ok-dataset", "messages": [{"role": "user", "content": "What is the refund window?"}]}""");
        Assert.Equal(200, call.Status);
        var traceId = (await GatewayCalls.TraceAsync(Http, call))["trace"]!["trace_id"]!.GetValue<string>();
        var made = await Http.PostAsync("/api/v1/eval/datasets/from-traces?name=qa/traces", new { trace_ids = new[] { traceId } });
        Assert.True(made.Status == 200, made.Body);
        var item = (await ItemsAsync("qa/traces"))[0]!["item"]!;
        Assert.Equal("What is the refund window?", item["input"]![0]!["content"]!.GetValue<string>());
        Assert.Equal("Hello there", item["expected"]!.GetValue<string>());
        Assert.Equal(traceId, item["trace_id"]!.GetValue<string>());
        var missing = await Http.PostAsync("/api/v1/eval/datasets/from-traces?name=qa/traces", new { trace_ids = new[] { "0123456789abcdef0123456789abcdef" } });
        Assert.Equal(("trace_ids[0]", 400), (missing.Field, missing.Status));
    }
}

public sealed class SqliteEvalDatasetTests(EvalFixture fixture) : EvalDatasetTests(fixture), IClassFixture<EvalFixture>;

public sealed class PostgresEvalDatasetTests(PostgresEvalFixture fixture) : EvalDatasetTests(fixture), IClassFixture<PostgresEvalFixture>;
