namespace Sextant.Server.Tests.Http;

/// <summary>Every kind of bad input gets its specific 4xx, names the field, and writes nothing.</summary>
public abstract class BadInputTests(ServerFixture fixture)
{
    private HttpClient Http => fixture.Http;

    private async Task<string> RunAsync()
    {
        var experiment = await Http.CreateExperimentAsync("bad-" + Guid.NewGuid().ToString("N")[..8]);
        return await Http.CreateRunAsync(experiment);
    }

    private async Task<int> MetricCountAsync(string run)
    {
        var answer = await Http.GetJsonAsync($"/api/2.0/mlflow/runs/get?run_id={run}");
        return answer.Json!["run"]!["data"]!["metrics"]?.AsArray().Count ?? 0;
    }

    private static void AssertError(ApiAnswer answer, int status, string code, string? field = null)
    {
        Assert.Equal(status, answer.Status);
        Assert.Equal(code, answer.ErrorCode);
        Assert.False(string.IsNullOrEmpty(answer.Message));
        if (field is not null)
        {
            Assert.Equal(field, answer.Field);
        }
    }

    [Fact]
    public async Task Malformed_json_is_a_400_with_the_position()
    {
        var answer = await Http.PostAsync("/api/2.0/mlflow/runs/log-batch", """{"run_id": "x", "metrics": [""");
        AssertError(answer, 400, "INVALID_PARAMETER_VALUE", "body");
        Assert.Contains("Malformed JSON", answer.Message);
    }

    [Fact]
    public async Task A_json_array_body_is_a_400()
    {
        AssertError(await Http.PostAsync("/api/2.0/mlflow/experiments/create", "[]"), 400, "INVALID_PARAMETER_VALUE", "body");
    }

    [Fact]
    public async Task A_wrong_type_names_the_field()
    {
        var run = await RunAsync();
        var answer = await Http.PostAsync("/api/2.0/mlflow/runs/log-batch", $$"""{"run_id": "{{run}}", "metrics": [{"key": "a", "value": {"x": 1}, "timestamp": 1}]}""");
        AssertError(answer, 400, "INVALID_PARAMETER_VALUE", "metrics[0].value");
    }

    [Fact]
    public async Task Missing_required_fields_are_named()
    {
        AssertError(await Http.PostAsync("/api/2.0/mlflow/experiments/create", "{}"), 400, "INVALID_PARAMETER_VALUE", "name");
        AssertError(await Http.PostAsync("/api/2.0/mlflow/runs/log-batch", "{}"), 400, "INVALID_PARAMETER_VALUE", "run_id");
        var run = await RunAsync();
        AssertError(await Http.PostAsync("/api/2.0/mlflow/runs/log-metric", new { run_id = run, key = "k", value = 1.0 }), 400, "INVALID_PARAMETER_VALUE", "metrics[0].timestamp");
    }

    [Fact]
    public async Task Too_long_keys_and_values_are_rejected()
    {
        var run = await RunAsync();
        AssertError(await Http.PostAsync("/api/2.0/mlflow/runs/log-parameter", new { run_id = run, key = new string('k', 251), value = "v" }), 400, "INVALID_PARAMETER_VALUE", "params[0].key");
        AssertError(await Http.PostAsync("/api/2.0/mlflow/runs/log-parameter", new { run_id = run, key = "k", value = new string('v', 6001) }), 400, "INVALID_PARAMETER_VALUE", "params[0].value");
        AssertError(await Http.PostAsync("/api/2.0/mlflow/runs/set-tag", new { run_id = run, key = "k", value = new string('v', 5001) }), 400, "INVALID_PARAMETER_VALUE", "tags[0].value");
        AssertError(await Http.PostAsync("/api/2.0/mlflow/experiments/create", new { name = new string('e', 501) }), 400, "INVALID_PARAMETER_VALUE", "name");
    }

    [Theory]
    [InlineData("../escape")]
    [InlineData("/absolute")]
    [InlineData("a/./b")]
    [InlineData("bad*chars")]
    [InlineData("trailing\n")]
    public async Task Unsafe_metric_keys_are_rejected(string key)
    {
        var run = await RunAsync();
        AssertError(await Http.PostAsync("/api/2.0/mlflow/runs/log-metric", new { run_id = run, key, value = 1.0, timestamp = 1 }), 400, "INVALID_PARAMETER_VALUE", "metrics[0].key");
    }

    [Fact]
    public async Task A_batch_over_the_item_limits_is_rejected_whole()
    {
        var run = await RunAsync();
        var metrics = Enumerable.Range(0, 1001).Select(i => new { key = "m", value = 1.0, timestamp = 1L, step = (long)i }).ToArray();
        AssertError(await Http.PostAsync("/api/2.0/mlflow/runs/log-batch", new { run_id = run, metrics }), 400, "INVALID_PARAMETER_VALUE", "metrics");
        var parameters = Enumerable.Range(0, 101).Select(i => new { key = $"p{i}", value = "v" }).ToArray();
        AssertError(await Http.PostAsync("/api/2.0/mlflow/runs/log-batch", new { run_id = run, @params = parameters }), 400, "INVALID_PARAMETER_VALUE", "params");
        var mixed = new { run_id = run, metrics = metrics.Take(950).ToArray(), tags = Enumerable.Range(0, 60).Select(i => new { key = $"t{i}", value = "v" }).ToArray() };
        AssertError(await Http.PostAsync("/api/2.0/mlflow/runs/log-batch", mixed), 400, "INVALID_PARAMETER_VALUE");
        Assert.Equal(0, await MetricCountAsync(run));
    }

    [Fact]
    public async Task A_body_over_one_megabyte_is_a_400_and_writes_nothing()
    {
        var run = await RunAsync();
        var metrics = Enumerable.Range(0, 900).Select(i => new { key = new string('k', 240) + i, value = 1.0, timestamp = 1L, step = 0L }).ToArray();
        var answer = await Http.PostAsync("/api/2.0/mlflow/runs/log-batch", new { run_id = run, metrics, tags = new[] { new { key = "pad", value = new string('x', 900_000) } } });
        AssertError(answer, 400, "INVALID_PARAMETER_VALUE", "body");
        Assert.Contains("at most 1048576 bytes", answer.Message);
        Assert.Equal(0, await MetricCountAsync(run));
    }

    [Fact]
    public async Task A_nul_character_in_a_value_is_a_400_not_a_failed_commit()
    {
        var run = await RunAsync();
        var answer = await Http.PostAsync("/api/2.0/mlflow/runs/set-tag", $$"""{"run_id": "{{run}}", "key": "k", "value": "a\u0000b"}""");
        AssertError(answer, 400, "INVALID_PARAMETER_VALUE", "tags[0].value");
        AssertError(await Http.PostAsync("/api/2.0/mlflow/experiments/create", """{"name": "x\u0000"}"""), 400, "INVALID_PARAMETER_VALUE", "name");
        AssertError(await Http.GetJsonAsync("/api/2.0/mlflow/runs/get?run_id=a%00b"), 400, "INVALID_PARAMETER_VALUE", "run_id");
    }

    [Fact]
    public async Task Oversized_searches_are_400()
    {
        var manyClauses = string.Join(" and ", Enumerable.Range(0, 31).Select(i => $"params.p{i} = 'x'"));
        AssertError(await Http.PostAsync("/api/2.0/mlflow/runs/search", new { experiment_ids = new[] { "0" }, filter = manyClauses }), 400, "INVALID_PARAMETER_VALUE", "filter");
        var longList = "params.p IN (" + string.Join(", ", Enumerable.Range(0, 1001).Select(i => $"'{i}'")) + ")";
        AssertError(await Http.PostAsync("/api/2.0/mlflow/runs/search", new { experiment_ids = new[] { "0" }, filter = longList }), 400, "INVALID_PARAMETER_VALUE", "filter");
        var manyOrders = Enumerable.Range(0, 11).Select(i => $"params.p{i}").ToArray();
        AssertError(await Http.PostAsync("/api/2.0/mlflow/runs/search", new { experiment_ids = new[] { "0" }, order_by = manyOrders }), 400, "INVALID_PARAMETER_VALUE", "order_by");
    }

    [Fact]
    public async Task Over_long_filter_values_and_dataset_profiles_are_400()
    {
        var filter = $"tags.x LIKE '{new string('*', 6001)}'";
        AssertError(await Http.PostAsync("/api/2.0/mlflow/runs/search", new { experiment_ids = new[] { "0" }, filter }), 400, "INVALID_PARAMETER_VALUE", "filter");
        var run = await RunAsync();
        var inputs = new { run_id = run, datasets = new[] { new { dataset = new { name = "d", digest = "1", source_type = "local", source = "s", profile = new string('p', 16_385) } } } };
        AssertError(await Http.PostAsync("/api/2.0/mlflow/runs/log-inputs", inputs), 400, "INVALID_PARAMETER_VALUE", "datasets[0].dataset.profile");
    }

    [Fact]
    public async Task An_artifact_path_cannot_be_a_file_and_a_folder()
    {
        var run = await RunAsync();
        var root = $"/api/v1/runs/{run}/artifacts";
        Assert.Equal(200, (int)(await Http.PutAsync($"{root}/a", new StringContent("file"))).StatusCode);
        var below = await Http.PutAsync($"{root}/a/b", new StringContent("child"));
        Assert.Equal(400, (int)below.StatusCode);
        Assert.Equal(200, (int)(await Http.PutAsync($"{root}/c/d", new StringContent("child"))).StatusCode);
        Assert.Equal(400, (int)(await Http.PutAsync($"{root}/c", new StringContent("file"))).StatusCode);
    }

    [Fact]
    public async Task Unknown_ids_are_404()
    {
        AssertError(await Http.GetJsonAsync("/api/2.0/mlflow/runs/get?run_id=0123456789abcdef0123456789abcdef"), 404, "RESOURCE_DOES_NOT_EXIST");
        AssertError(await Http.GetJsonAsync("/api/2.0/mlflow/experiments/get?experiment_id=987654"), 404, "RESOURCE_DOES_NOT_EXIST");
        AssertError(await Http.GetJsonAsync("/api/2.0/mlflow/experiments/get?experiment_id=not-a-number"), 404, "RESOURCE_DOES_NOT_EXIST");
        AssertError(await Http.GetJsonAsync("/api/2.0/mlflow/experiments/get-by-name?experiment_name=nope"), 404, "RESOURCE_DOES_NOT_EXIST");
        AssertError(await Http.PostAsync("/api/2.0/mlflow/runs/log-metric", new { run_id = "missing", key = "k", value = 1.0, timestamp = 1 }), 404, "RESOURCE_DOES_NOT_EXIST");
    }

    [Fact]
    public async Task Overwriting_a_param_is_a_400_and_keeps_the_first_value()
    {
        var run = await RunAsync();
        await Http.PostAsync("/api/2.0/mlflow/runs/log-parameter", new { run_id = run, key = "lr", value = "0.1" });
        AssertError(await Http.PostAsync("/api/2.0/mlflow/runs/log-parameter", new { run_id = run, key = "lr", value = "0.2" }), 400, "INVALID_PARAMETER_VALUE", "params");
        var answer = await Http.GetJsonAsync($"/api/2.0/mlflow/runs/get?run_id={run}");
        Assert.Equal("0.1", answer.Json!["run"]!["data"]!["params"]![0]!["value"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_bad_filter_is_a_400_pointing_at_the_position()
    {
        var answer = await Http.PostAsync("/api/2.0/mlflow/runs/search", new { experiment_ids = new[] { "0" }, filter = "metrics.acc > 0.9 or params.x = 'y'" });
        AssertError(answer, 400, "INVALID_PARAMETER_VALUE", "filter");
        Assert.Contains("position 18", answer.Message);
        var order = await Http.PostAsync("/api/2.0/mlflow/runs/search", new { experiment_ids = new[] { "0" }, order_by = new[] { "metrics.acc SIDEWAYS" } });
        AssertError(order, 400, "INVALID_PARAMETER_VALUE", "order_by");
    }

    [Theory]
    [InlineData("../..")]
    [InlineData("/etc")]
    [InlineData("a/../../b")]
    public async Task Artifact_paths_with_dot_dot_or_absolute_are_rejected(string path)
    {
        var run = await RunAsync();
        AssertError(await Http.GetJsonAsync($"/api/2.0/mlflow/artifacts/list?run_id={run}&path={Uri.EscapeDataString(path)}"), 400, "INVALID_PARAMETER_VALUE", "path");
    }

    [Fact]
    public async Task An_unknown_route_is_a_json_404()
    {
        AssertError(await Http.GetJsonAsync("/api/2.0/mlflow/no-such-thing"), 404, "ENDPOINT_NOT_FOUND");
        AssertError(await Http.PostAsync("/api/v1/nothing/here", "{}"), 404, "ENDPOINT_NOT_FOUND");
    }

    [Fact]
    public async Task Bad_max_results_and_view_types_are_400()
    {
        AssertError(await Http.PostAsync("/api/2.0/mlflow/runs/search", new { experiment_ids = new[] { "0" }, max_results = 50_001 }), 400, "INVALID_PARAMETER_VALUE", "max_results");
        AssertError(await Http.PostAsync("/api/2.0/mlflow/runs/search", new { experiment_ids = new[] { "0" }, run_view_type = "SOME" }), 400, "INVALID_PARAMETER_VALUE", "run_view_type");
        AssertError(await Http.GetJsonAsync("/api/2.0/mlflow/experiments/search?max_results=abc"), 400, "INVALID_PARAMETER_VALUE", "max_results");
    }
}

public sealed class SqliteBadInputTests(ServerFixture fixture) : BadInputTests(fixture), IClassFixture<ServerFixture>;

public sealed class PostgresBadInputTests(PostgresServerFixture fixture) : BadInputTests(fixture), IClassFixture<PostgresServerFixture>;
