using System.Text.Json.Nodes;

namespace Sextant.Server.Tests.Tracking;

/// <summary>The MLflow REST API as the MLflow Python client speaks it: routes, JSON shapes, error codes.</summary>
public abstract class MlflowApiTests(ServerFixture fixture)
{
    private HttpClient Http => fixture.Http;

    [Fact]
    public async Task Experiment_get_has_mlflow_fields_and_string_ids()
    {
        var id = await Http.CreateExperimentAsync("shape");
        var answer = await Http.GetJsonAsync($"/api/2.0/mlflow/experiments/get?experiment_id={id}");
        var experiment = answer.Json!["experiment"]!;
        Assert.Equal(id, experiment["experiment_id"]!.GetValue<string>());
        Assert.Equal("active", experiment["lifecycle_stage"]!.GetValue<string>());
        Assert.Equal($"mlflow-artifacts:/{id}", experiment["artifact_location"]!.GetValue<string>());
        Assert.Equal(System.Text.Json.JsonValueKind.Number, experiment["creation_time"]!.GetValueKind());
        var byName = await Http.GetJsonAsync("/api/2.0/mlflow/experiments/get-by-name?experiment_name=shape");
        Assert.Equal(id, byName.Json!["experiment"]!["experiment_id"]!.GetValue<string>());
    }

    [Fact]
    public async Task Run_lifecycle_through_the_mlflow_routes()
    {
        var experiment = await Http.CreateExperimentAsync("lifecycle");
        var created = await Http.PostAsync("/api/2.0/mlflow/runs/create", """{"experiment_id": "EXP", "run_name": "first", "start_time": 1700000000000, "tags": [{"key": "team", "value": "a"}]}""".Replace("EXP", experiment));
        var info = created.Json!["run"]!["info"]!;
        var runId = info["run_id"]!.GetValue<string>();
        Assert.Equal($"mlflow-artifacts:/{experiment}/{runId}/artifacts", info["artifact_uri"]!.GetValue<string>());
        Assert.Equal("RUNNING", info["status"]!.GetValue<string>());

        Assert.Equal("{}", (await Http.PostAsync("/api/2.0/mlflow/runs/log-metric", new { run_id = runId, key = "loss", value = "NaN", timestamp = 5, step = 0 })).Body);
        Assert.Equal("{}", (await Http.PostAsync("/api/2.0/mlflow/runs/log-metric", """{"run_id": "RUN", "key": "loss", "value": "Infinity", "timestamp": "6", "step": "1"}""".Replace("RUN", runId))).Body);
        Assert.Equal("{}", (await Http.PostAsync("/api/2.0/mlflow/runs/log-parameter", new { run_id = runId, key = "lr", value = "0.01" })).Body);
        Assert.Equal("{}", (await Http.PostAsync("/api/2.0/mlflow/runs/set-tag", new { run_id = runId, key = "note", value = "hi" })).Body);
        Assert.Equal("{}", (await Http.PostAsync("/api/2.0/mlflow/runs/delete-tag", new { run_id = runId, key = "note" })).Body);
        Assert.Equal("{}", (await Http.PostAsync("/api/2.0/mlflow/runs/log-inputs", JsonNode.Parse($$$"""
            {"run_id": "{{{runId}}}", "datasets": [{"tags": [{"key": "mlflow.data.context", "value": "training"}],
             "dataset": {"name": "iris", "digest": "d1", "source_type": "local", "source": "{\"uri\": \"/tmp/iris.csv\"}", "schema": "{}"}}]}
            """)!.ToJsonString())).Body);
        var updated = await Http.PostAsync("/api/2.0/mlflow/runs/update", new { run_id = runId, status = "FINISHED", end_time = 1700000001000 });
        Assert.Equal("FINISHED", updated.Json!["run_info"]!["status"]!.GetValue<string>());

        var run = (await Http.GetJsonAsync($"/api/2.0/mlflow/runs/get?run_id={runId}")).Json!["run"]!;
        Assert.Equal("Infinity", run["data"]!["metrics"]![0]!["value"]!.GetValue<string>());
        Assert.Equal("0.01", run["data"]!["params"]![0]!["value"]!.GetValue<string>());
        Assert.DoesNotContain(run["data"]!["tags"]!.AsArray(), t => t!["key"]!.GetValue<string>() == "note");
        Assert.Contains(run["data"]!["tags"]!.AsArray(), t => t!["key"]!.GetValue<string>() == "mlflow.runName" && t["value"]!.GetValue<string>() == "first");
        Assert.Equal("iris", run["inputs"]!["dataset_inputs"]![0]!["dataset"]!["name"]!.GetValue<string>());

        var history = await Http.GetJsonAsync($"/api/2.0/mlflow/metrics/get-history?run_id={runId}&metric_key=loss");
        Assert.Equal(["NaN", "Infinity"], history.Json!["metrics"]!.AsArray().Select(m => m!["value"]!.GetValue<string>()));

        Assert.Equal("{}", (await Http.PostAsync("/api/2.0/mlflow/runs/delete", new { run_id = runId })).Body);
        var deleted = await Http.PostAsync("/api/2.0/mlflow/runs/search", new { experiment_ids = new[] { experiment }, run_view_type = "DELETED_ONLY" });
        Assert.Equal(runId, deleted.Json!["runs"]![0]!["info"]!["run_id"]!.GetValue<string>());
        Assert.Equal("{}", (await Http.PostAsync("/api/2.0/mlflow/runs/restore", new { run_id = runId })).Body);
    }

    [Fact]
    public async Task Search_runs_with_a_filter_and_page_tokens()
    {
        var experiment = await Http.CreateExperimentAsync("paging");
        for (var i = 0; i < 7; i++)
        {
            var run = await Http.CreateRunAsync(experiment);
            await Http.PostAsync("/api/2.0/mlflow/runs/log-batch", new
            {
                run_id = run,
                metrics = new[] { new { key = "acc", value = i / 10.0, timestamp = 1, step = 0 } },
                @params = new[] { new { key = "model", value = i % 2 == 0 ? "x" : "y" } },
            });
        }
        var seen = new List<double>();
        string? token = null;
        do
        {
            var page = await Http.PostAsync("/api/2.0/mlflow/runs/search", new
            {
                experiment_ids = new[] { experiment },
                filter = "metrics.acc > 0.05 and params.model = 'x'",
                order_by = new[] { "metrics.acc DESC" },
                max_results = 2,
                page_token = token,
            });
            Assert.Equal(200, page.Status);
            seen.AddRange(page.Json!["runs"]?.AsArray().Select(r => r!["data"]!["metrics"]![0]!["value"]!.GetValue<double>()) ?? []);
            token = page.Json!["next_page_token"]?.GetValue<string>();
        }
        while (token is not null);
        Assert.Equal([0.6, 0.4, 0.2], seen);
    }

    [Fact]
    public async Task Search_experiments_by_get_and_post()
    {
        await Http.CreateExperimentAsync("findme-1");
        var viaGet = await Http.GetJsonAsync("/api/2.0/mlflow/experiments/search?filter=name%20LIKE%20%27findme%25%27&max_results=10");
        Assert.Equal("findme-1", Assert.Single(viaGet.Json!["experiments"]!.AsArray())!["name"]!.GetValue<string>());
        var viaPost = await Http.PostAsync("/api/2.0/mlflow/experiments/search", new { filter = "name = 'findme-1'", max_results = 5 });
        Assert.Single(viaPost.Json!["experiments"]!.AsArray());
    }

    [Fact]
    public async Task Native_routes_take_names_and_keys_with_slashes()
    {
        var id = await Http.CreateExperimentAsync("team/mnist");
        var byName = await Http.GetJsonAsync("/api/v1/experiments/by-name/team%2Fmnist");
        Assert.Equal(id, byName.Json!["experiment"]!["experiment_id"]!.GetValue<string>());
        var run = await Http.CreateRunAsync(id);
        await Http.PostAsync("/api/2.0/mlflow/runs/log-metric", new { run_id = run, key = "train/loss", value = 0.5, timestamp = 1 });
        var history = await Http.GetJsonAsync($"/api/v1/runs/{run}/metrics/train%2Floss/history");
        Assert.Single(history.Json!["metrics"]!.AsArray());
        // A name that itself contains "%2F" and "%41" is decoded once, not twice.
        var literal = await Http.CreateExperimentAsync("odd%2Fname%41");
        var byLiteral = await Http.GetJsonAsync("/api/v1/experiments/by-name/odd%252Fname%2541");
        Assert.Equal(literal, byLiteral.Json!["experiment"]!["experiment_id"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_retried_log_batch_with_the_same_idempotency_key_is_applied_once()
    {
        var run = await Http.CreateRunAsync(await Http.CreateExperimentAsync("idempotent"));
        var body = System.Text.Json.JsonSerializer.Serialize(new
        {
            run_id = run,
            metrics = Enumerable.Range(0, 10).Select(i => new { key = "m", value = 1.0, timestamp = 1L, step = (long)i }).ToArray(),
            tags = new[] { new { key = "t", value = "v" } },
        });
        async Task<int> Send(string key)
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "/api/2.0/mlflow/runs/log-batch") { Content = new StringContent(body, System.Text.Encoding.UTF8, "application/json") };
            request.Headers.Add("Idempotency-Key", key);
            return (int)(await Http.SendAsync(request)).StatusCode;
        }
        Assert.Equal(200, await Send("batch-1"));
        Assert.Equal(200, await Send("batch-1"));
        Assert.Equal(200, await Send("batch-2"));
        Assert.Equal(400, await Send("not a valid key!"));
        var history = await Http.GetJsonAsync($"/api/2.0/mlflow/metrics/get-history?run_id={run}&metric_key=m");
        Assert.Equal(20, history.Json!["metrics"]!.AsArray().Count);
    }

    [Fact]
    public async Task Ajax_prefix_serves_the_same_api()
    {
        var id = await Http.CreateExperimentAsync("ajax");
        var answer = await Http.GetJsonAsync($"/ajax-api/2.0/mlflow/experiments/get?experiment_id={id}");
        Assert.Equal("ajax", answer.Json!["experiment"]!["name"]!.GetValue<string>());
    }

    [Fact]
    public async Task Experiment_update_delete_restore_and_tag()
    {
        var id = await Http.CreateExperimentAsync("to-rename");
        Assert.Equal("{}", (await Http.PostAsync("/api/2.0/mlflow/experiments/update", new { experiment_id = id, new_name = "renamed" })).Body);
        Assert.Equal("{}", (await Http.PostAsync("/api/2.0/mlflow/experiments/set-experiment-tag", new { experiment_id = id, key = "k", value = "v" })).Body);
        Assert.Equal("{}", (await Http.PostAsync("/api/2.0/mlflow/experiments/delete", new { experiment_id = id })).Body);
        var get = await Http.GetJsonAsync($"/api/2.0/mlflow/experiments/get?experiment_id={id}");
        Assert.Equal(("renamed", "deleted"), (get.Json!["experiment"]!["name"]!.GetValue<string>(), get.Json!["experiment"]!["lifecycle_stage"]!.GetValue<string>()));
        Assert.Equal("{}", (await Http.PostAsync("/api/2.0/mlflow/experiments/restore", new { experiment_id = id })).Body);
    }

    [Fact]
    public async Task Artifact_proxy_uploads_lists_downloads_and_deletes()
    {
        var experiment = await Http.CreateExperimentAsync("artifacts");
        var run = await Http.CreateRunAsync(experiment);
        var root = $"/api/2.0/mlflow-artifacts/artifacts/{experiment}/{run}/artifacts";
        var content = new byte[300_000];
        Random.Shared.NextBytes(content);
        var put = await Http.PutAsync($"{root}/model/weights.bin", new ByteArrayContent(content));
        Assert.True(put.IsSuccessStatusCode);
        await Http.PutAsync($"{root}/README.md", new StringContent("hello"));

        Assert.Equal(content, await Http.GetByteArrayAsync($"{root}/model/weights.bin"));
        var list = await Http.GetJsonAsync($"/api/2.0/mlflow/artifacts/list?run_id={run}");
        Assert.Equal(["README.md", "model"], list.Json!["files"]!.AsArray().Select(f => f!["path"]!.GetValue<string>()));
        Assert.True(list.Json!["files"]![1]!["is_dir"]!.GetValue<bool>());
        var inner = await Http.GetJsonAsync($"/api/2.0/mlflow/artifacts/list?run_id={run}&path=model");
        Assert.Equal(300_000, inner.Json!["files"]![0]!["file_size"]!.GetValue<long>());
        var proxyList = await Http.GetJsonAsync($"/api/2.0/mlflow-artifacts/artifacts?path={experiment}/{run}/artifacts/model");
        Assert.Equal("weights.bin", proxyList.Json!["files"]![0]!["path"]!.GetValue<string>());

        Assert.Equal("{}", (await Http.SendAsync(HttpMethod.Delete, $"{root}/model")).Body);
        Assert.Equal(404, (await Http.GetJsonAsync($"{root}/model/weights.bin")).Status);
    }

    [Fact]
    public async Task OpenApi_document_names_tags_and_summarises_every_route()
    {
        var doc = await Http.GetJsonAsync("/openapi/v1.json");
        var operations = doc.Json!["paths"]!.AsObject().SelectMany(p => p.Value!.AsObject().Select(o => o.Value!)).ToList();
        Assert.True(operations.Count > 40);
        Assert.All(operations, o =>
        {
            Assert.NotNull(o["operationId"]);
            Assert.NotNull(o["summary"]);
            Assert.NotEmpty(o["tags"]!.AsArray());
        });
        var logBatch = operations.Single(o => o["operationId"]!.GetValue<string>() == "MlflowLogBatch");
        var schema = logBatch["requestBody"]!["content"]!["application/json"]!["schema"]!;
        var reference = schema["$ref"]?.GetValue<string>();
        var properties = reference is null ? schema["properties"] : doc.Json!["components"]!["schemas"]![reference.Split('/')[^1]]!["properties"];
        Assert.NotNull(properties!["run_id"]);
        Assert.NotNull(properties["metrics"]);
    }

    [Fact]
    public async Task Health_and_readiness_answer()
    {
        Assert.Equal(200, (await Http.GetJsonAsync("/healthz")).Status);
        Assert.Equal(200, (await Http.GetJsonAsync("/readyz")).Status);
    }
}

public sealed class SqliteMlflowApiTests(ServerFixture fixture) : MlflowApiTests(fixture), IClassFixture<ServerFixture>;

public sealed class PostgresMlflowApiTests(PostgresServerFixture fixture) : MlflowApiTests(fixture), IClassFixture<PostgresServerFixture>;
