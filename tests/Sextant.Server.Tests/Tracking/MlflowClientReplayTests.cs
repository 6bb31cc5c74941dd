using System.Globalization;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Sextant.Contracts;

namespace Sextant.Server.Tests.Tracking;

/// <summary>
/// Replays the HTTP requests the MLflow 2.x Python client (2.9–2.22) sends, byte-shape for byte-shape, and checks
/// the answers against what that client parses. References are to github.com/mlflow/mlflow (2.x branches):
/// <list type="bullet">
/// <item>Bodies come from <c>mlflow/utils/proto_json_utils.py</c> <c>message_to_json</c>: proto2 snake_case JSON,
/// unset fields (None, empty repeated) left out, int64 fields (timestamp, step, start_time, end_time) as JSON
/// numbers, doubles as numbers or "NaN"/"Infinity", enums by name.</item>
/// <item><c>mlflow/utils/rest_utils.py</c> <c>call_endpoint</c>: GET endpoints send that dict as <c>requests</c>
/// query params (urlencode/quote_plus: '/' is %2F, ' ' is '+'); others send it as <c>json=</c>
/// (<c>json.dumps</c>, ensure_ascii). <c>verify_rest_response</c> accepts only status 200 with a JSON object body;
/// anything else raises <c>RestException(json)</c>, which reads <c>error_code</c> (must be an
/// <c>ErrorCode</c> name) and <c>message</c>. 408/429/500/502/503/504 are retried
/// (<c>request_utils._TRANSIENT_FAILURE_RESPONSE_CODES</c>).</item>
/// <item>Answers are read with <c>parse_dict</c> (protobuf <c>ParseDict</c>, unknown fields ignored): string
/// fields must be JSON strings, int64 numbers or numeric strings, enums known names.</item>
/// </list>
/// </summary>
public abstract class MlflowClientReplayTests(ServerFixture fixture)
{
    private const string Api = "/api/2.0/mlflow";
    private const string ProxyBase = "/api/2.0/mlflow-artifacts/artifacts";

    // mlflow/protos/databricks.proto ErrorCode names the client can turn into an MlflowException.
    private static readonly HashSet<string> KnownErrorCodes =
    [
        "INTERNAL_ERROR", "TEMPORARILY_UNAVAILABLE", "IO_ERROR", "BAD_REQUEST", "SERVICE_UNDER_MAINTENANCE",
        "WORKSPACE_TEMPORARILY_UNAVAILABLE", "DEADLINE_EXCEEDED", "CANCELLED", "RESOURCE_EXHAUSTED", "ABORTED",
        "NOT_FOUND", "ALREADY_EXISTS", "UNAUTHENTICATED", "INVALID_PARAMETER_VALUE", "ENDPOINT_NOT_FOUND",
        "MALFORMED_REQUEST", "INVALID_STATE", "PERMISSION_DENIED", "FEATURE_DISABLED", "CUSTOMER_UNAUTHORIZED",
        "REQUEST_LIMIT_EXCEEDED", "RESOURCE_CONFLICT", "UNPARSEABLE_HTTP_ERROR", "NOT_IMPLEMENTED", "DATA_LOSS",
        "INVALID_STATE_TRANSITION", "COULD_NOT_ACQUIRE_LOCK", "RESOURCE_ALREADY_EXISTS", "RESOURCE_DOES_NOT_EXIST",
        "QUOTA_EXCEEDED", "MAX_BLOCK_SIZE_EXCEEDED", "MAX_READ_SIZE_EXCEEDED", "PARTIAL_DELETE", "MAX_LIST_SIZE_EXCEEDED",
        "DRY_RUN_FAILED", "RESOURCE_LIMIT_EXCEEDED", "DIRECTORY_NOT_EMPTY", "DIRECTORY_PROTECTED",
    ];

    private static readonly int[] RetriedStatuses = [408, 429, 500, 502, 503, 504];

    private static readonly string[] RunStatuses = ["RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED"];

    private static readonly string[] NonFinite = ["NaN", "Infinity", "-Infinity"];

    private static readonly string[] RunInfoStrings = ["run_id", "run_uuid", "experiment_id", "user_id", "artifact_uri", "lifecycle_stage"];

    private static readonly string[] DatasetStrings = ["name", "digest", "source_type", "source"];

    private HttpClient Http => fixture.Http;

    [Fact]
    public async Task A_typical_script_replays_from_set_experiment_to_delete_run_as_the_client_sends_it()
    {
        var name = "replay " + Guid.NewGuid().ToString("N")[..8];
        var t0 = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();

        // mlflow.set_experiment(name): fluent.set_experiment -> RestStore.get_experiment_by_name, which maps
        // error_code RESOURCE_DOES_NOT_EXIST (and only that) to None.
        var missing = await Http.GetJsonAsync($"{Api}/experiments/get-by-name?{Query(("experiment_name", name))}");
        AssertClientError(missing, "RESOURCE_DOES_NOT_EXIST");
        // ... then RestStore.create_experiment: CreateExperiment(name, artifact_location=None, tags=[]).
        var created = await CallAsync(HttpMethod.Post, $"{Api}/experiments/create", $$"""{"name": {{Str(name)}}}""");
        var experimentId = AssertString(created["experiment_id"]);
        // ... then RestStore.get_experiment: GetExperiment(experiment_id=str(id)); set_experiment reads lifecycle_stage.
        var experiment = (await CallAsync(HttpMethod.Get, $"{Api}/experiments/get?{Query(("experiment_id", experimentId))}"))["experiment"]!;
        Assert.Equal(experimentId, AssertString(experiment["experiment_id"]));
        Assert.Equal(name, AssertString(experiment["name"]));
        Assert.Equal("active", AssertString(experiment["lifecycle_stage"]));

        // mlflow.start_run(run_name="replay-run"): fluent.start_run resolves context tags (DefaultRunContext:
        // mlflow.user, mlflow.source.name, mlflow.source.type; GitRunContext: mlflow.source.git.commit) then the
        // user's (mlflow.runName); TrackingServiceClient.create_run sends user_id = tags["mlflow.user"].
        var runBody = $$"""
            {"experiment_id": "{{experimentId}}", "user_id": "alice", "start_time": {{t0}}, "tags": [{"key": "mlflow.user", "value": "alice"}, {"key": "mlflow.source.name", "value": "train.py"}, {"key": "mlflow.source.type", "value": "LOCAL"}, {"key": "mlflow.source.git.commit", "value": "3f2a9c1d8e7b6a5f4e3d2c1b0a9f8e7d6c5b4a39"}, {"key": "mlflow.runName", "value": "replay-run"}], "run_name": "replay-run"}
            """;
        var run = (await CallAsync(HttpMethod.Post, $"{Api}/runs/create", runBody))["run"]!;
        AssertRunParses(run);
        var runId = AssertString(run["info"]!["run_id"]);
        Assert.Matches(@"^[a-zA-Z0-9][\w\-]{0,255}$", runId); // utils/validation.py _validate_run_id
        Assert.Equal(runId, AssertString(run["info"]!["run_uuid"]));
        Assert.Equal(experimentId, AssertString(run["info"]!["experiment_id"]));
        Assert.Equal("RUNNING", AssertString(run["info"]!["status"]));
        Assert.Equal("alice", AssertString(run["info"]!["user_id"]));
        Assert.Equal("replay-run", AssertString(run["info"]!["run_name"]));
        Assert.Equal(t0, run["info"]!["start_time"]!.GetValue<long>());
        Assert.Equal("active", AssertString(run["info"]!["lifecycle_stage"]));
        var tags = TagMap(run["data"]!["tags"]);
        Assert.Equal("alice", tags["mlflow.user"]);
        Assert.Equal("train.py", tags["mlflow.source.name"]);
        Assert.Equal("LOCAL", tags["mlflow.source.type"]);
        Assert.Equal("replay-run", tags["mlflow.runName"]);

        // mlflow.log_param("lr", 0.01): RestStore.log_param -> LogParam(run_uuid, run_id, key, value=str(value)).
        await CallAsync(HttpMethod.Post, $"{Api}/runs/log-parameter", $$"""{"run_uuid": "{{runId}}", "key": "lr", "value": "0.01", "run_id": "{{runId}}"}""");

        // mlflow.log_metric("loss", v, step=s): TrackingServiceClient.log_metric fills timestamp (ms) and step,
        // RestStore.log_metric -> LogMetric(run_uuid, run_id, key, value, timestamp, step); int64 as JSON numbers.
        double[] losses = [1.0, 0.5, 0.25, 0.4, 0.2];
        for (var step = 0; step < losses.Length; step++)
        {
            await CallAsync(HttpMethod.Post, $"{Api}/runs/log-metric",
                $$"""{"run_uuid": "{{runId}}", "key": "loss", "value": {{PyFloat(losses[step])}}, "timestamp": {{t0 + step}}, "step": {{step}}, "run_id": "{{runId}}"}""");
        }

        // mlflow.set_tag("stage", "dev"): RestStore.set_tag -> SetTag(run_uuid, run_id, key, value).
        await CallAsync(HttpMethod.Post, $"{Api}/runs/set-tag", $$"""{"run_uuid": "{{runId}}", "key": "stage", "value": "dev", "run_id": "{{runId}}"}""");

        // MlflowClient.log_batch: RestStore.log_batch -> LogBatch(run_id, metrics, params, tags).
        await CallAsync(HttpMethod.Post, $"{Api}/runs/log-batch",
            $$"""{"run_id": "{{runId}}", "metrics": [{"key": "acc", "value": 0.9, "timestamp": {{t0 + 10}}, "step": 4}], "params": [{"key": "epochs", "value": "5"}], "tags": [{"key": "team", "value": "vision"}]}""");
        // mlflow.log_metrics({...}, step=5) goes through the same route with the empty lists left out entirely.
        await CallAsync(HttpMethod.Post, $"{Api}/runs/log-batch",
            $$"""{"run_id": "{{runId}}", "metrics": [{"key": "acc", "value": 0.95, "timestamp": {{t0 + 11}}, "step": 5}]}""");

        // mlflow.log_input(mlflow.data.from_pandas(df, source="/data/iris.csv"), context="training"):
        // fluent.log_input -> DatasetInput(dataset._to_mlflow_entity(), [InputTag("mlflow.data.context", ...)]),
        // RestStore.log_inputs -> LogInputs(run_id, datasets); source/schema/profile are JSON-in-a-string.
        await CallAsync(HttpMethod.Post, $"{Api}/runs/log-inputs", $$$"""
            {"run_id": "{{{runId}}}", "datasets": [{"tags": [{"key": "mlflow.data.context", "value": "training"}], "dataset": {"name": "iris", "digest": "5ab2d1c7", "source_type": "local", "source": "{\"uri\": \"/data/iris.csv\"}", "schema": "{\"mlflow_colspec\": [{\"type\": \"double\", \"name\": \"sepal_length\", \"required\": true}]}", "profile": "{\"num_rows\": 150, \"num_elements\": 750}"}}]}
            """);

        // Every artifact call starts with TrackingServiceClient._get_artifact_repo -> RestStore.get_run:
        // GET runs/get with GetRun(run_uuid, run_id) as query params; the client reads info.artifact_uri.
        var fetched = (await CallAsync(HttpMethod.Get, $"{Api}/runs/get?{Query(("run_uuid", runId), ("run_id", runId))}"))["run"]!;
        AssertRunParses(fetched);
        var artifactUri = AssertString(fetched["info"]!["artifact_uri"]);
        var repo = ResolveMlflowArtifactsUri(artifactUri);
        var root = repo[(ProxyBase.Length + 1)..];

        // mlflow.log_text("hello", "notes/hello.txt") -> MlflowClient._log_artifact_helper -> log_artifact(tmp, "notes");
        // http_artifact_repo.HttpArtifactRepository.log_artifact: PUT <repo>/notes/hello.txt with the raw bytes and
        // Content-Type from mime_type_utils._guess_mime_type; only raise_for_status is checked.
        var put = await PutArtifactAsync($"{repo}/notes/hello.txt", "hello"u8.ToArray(), "text/plain");
        Assert.InRange(put, 200, 299);
        // mlflow.log_artifact("model.pkl"): no known extension -> application/octet-stream.
        byte[] model = [0x80, 0x04, 0x95, 0x00, 0xFF, 0x2E];
        Assert.InRange(await PutArtifactAsync($"{repo}/model.pkl", model, "application/octet-stream"), 200, 299);

        // MlflowClient.list_artifacts(run_id) -> HttpArtifactRepository.list_artifacts: GET
        // /api/2.0/mlflow-artifacts/artifacts?path=<exp>/<run>/artifacts; reads files[].path (a basename that it joins
        // to the listed path), files[].is_dir (indexed: must be present) and files[].file_size (optional, int()).
        var top = await ProxyListAsync(root);
        Assert.Equal(["model.pkl", "notes"], top.Select(f => AssertString(f["path"])).Order(StringComparer.Ordinal));
        Assert.All(top, f => Assert.True(f["is_dir"]!.GetValueKind() is JsonValueKind.True or JsonValueKind.False));
        var pkl = top.Single(f => f["path"]!.GetValue<string>() == "model.pkl");
        Assert.False(pkl["is_dir"]!.GetValue<bool>());
        Assert.Equal(model.Length, long.Parse(pkl["file_size"]!.ToString(), CultureInfo.InvariantCulture));
        Assert.True(top.Single(f => f["path"]!.GetValue<string>() == "notes")["is_dir"]!.GetValue<bool>());
        var notes = await ProxyListAsync(root + "/notes");
        Assert.Equal("hello.txt", AssertString(Assert.Single(notes)["path"]));

        // mlflow.artifacts.download_artifacts(run_id=..., artifact_path="notes/hello.txt"):
        // ArtifactRepository.download_artifacts asks _is_directory (list_artifacts(path) non-empty) first: listing a
        // file must give no files, then HttpArtifactRepository._download_file GETs <repo>/notes/hello.txt.
        Assert.Empty(await ProxyListAsync(root + "/notes/hello.txt"));
        var download = await Http.GetAsync($"{repo}/notes/hello.txt");
        Assert.Equal(200, (int)download.StatusCode);
        Assert.Equal("hello", await download.Content.ReadAsStringAsync());

        // mlflow.end_run() -> MlflowClient.set_terminated -> RestStore.update_run_info:
        // UpdateRun(run_uuid, run_id, status=FINISHED (enum name), end_time); run_name=None is left out.
        var tEnd = t0 + 60_000;
        var updated = await CallAsync(HttpMethod.Post, $"{Api}/runs/update",
            $$"""{"run_uuid": "{{runId}}", "status": "FINISHED", "end_time": {{tEnd}}, "run_id": "{{runId}}"}""");
        var runInfo = updated["run_info"]!;
        Assert.Equal("FINISHED", AssertString(runInfo["status"]));
        Assert.Equal(tEnd, AssertInt64(runInfo["end_time"]));
        Assert.Equal(runId, AssertString(runInfo["run_id"]));

        // A second run so order_by has something to order.
        var other = (await CallAsync(HttpMethod.Post, $"{Api}/runs/create",
            $$"""{"experiment_id": "{{experimentId}}", "user_id": "alice", "start_time": {{t0 + 1}}, "tags": [{"key": "mlflow.user", "value": "alice"}]}"""))["run"]!;
        var otherId = other["info"]!["run_id"]!.GetValue<string>();
        await CallAsync(HttpMethod.Post, $"{Api}/runs/log-batch",
            $$"""{"run_id": "{{otherId}}", "metrics": [{"key": "loss", "value": 0.1, "timestamp": {{t0 + 2}}, "step": 0}], "params": [{"key": "lr", "value": "0.01"}]}""");

        // mlflow.search_runs(filter_string=..., order_by=[...]): fluent._paginate pages of NUM_RUNS_PER_PAGE_PANDAS
        // (10000) -> RestStore._search_runs: SearchRuns(experiment_ids, filter, run_view_type=ACTIVE_ONLY, max_results,
        // order_by, page_token=None). The client reads runs[] and treats a missing/empty next_page_token as the end.
        var search = await CallAsync(HttpMethod.Post, $"{Api}/runs/search",
            $$"""{"experiment_ids": ["{{experimentId}}"], "filter": "metrics.loss < 0.5 and params.lr = '0.01'", "run_view_type": "ACTIVE_ONLY", "max_results": 10000, "order_by": ["metrics.loss ASC"]}""");
        var runs = search["runs"]!.AsArray();
        Assert.All(runs, r => AssertRunParses(r!));
        Assert.Equal([otherId, runId], runs.Select(r => r!["info"]!["run_id"]!.GetValue<string>()));
        Assert.True(search["next_page_token"] is null || search["next_page_token"]!.GetValue<string>().Length == 0);
        var found = runs[1]!;
        Assert.Equal("FINISHED", found["info"]!["status"]!.GetValue<string>());
        Assert.Equal(tEnd, AssertInt64(found["info"]!["end_time"]));
        var lastLoss = found["data"]!["metrics"]!.AsArray().Single(m => m!["key"]!.GetValue<string>() == "loss")!;
        Assert.Equal(0.2, lastLoss["value"]!.GetValue<double>()); // the value at the largest step
        Assert.Equal(4, AssertInt64(lastLoss["step"]));
        Assert.Equal("5", found["data"]!["params"]!.AsArray().Single(p => p!["key"]!.GetValue<string>() == "epochs")!["value"]!.GetValue<string>());
        Assert.Equal("dev", TagMap(found["data"]!["tags"])["stage"]);
        var input = found["inputs"]!["dataset_inputs"]![0]!;
        Assert.Equal("training", TagMap(input["tags"])["mlflow.data.context"]);
        Assert.Equal("{\"num_rows\": 150, \"num_elements\": 750}", AssertString(input["dataset"]!["profile"]));
        Assert.Equal("{\"uri\": \"/data/iris.csv\"}", AssertString(input["dataset"]!["source"]));

        // MlflowClient.get_metric_history -> TrackingServiceClient.get_metric_history pages with
        // GET_METRIC_HISTORY_MAX_RESULTS (25000) until next_page_token is None; RestStore.get_metric_history sends
        // GetMetricHistory(run_uuid, run_id, metric_key, max_results, page_token=None) as query params.
        var history = await CallAsync(HttpMethod.Get,
            $"{Api}/metrics/get-history?{Query(("run_uuid", runId), ("metric_key", "loss"), ("run_id", runId), ("max_results", "25000"))}");
        var points = history["metrics"]!.AsArray();
        Assert.Equal(losses, points.OrderBy(p => AssertInt64(p!["step"])).Select(p => p!["value"]!.GetValue<double>()));
        Assert.All(points, p =>
        {
            Assert.Equal("loss", AssertString(p!["key"]));
            AssertInt64(p["timestamp"]);
        });
        Assert.Equal(Enumerable.Range(0, 5).Select(s => t0 + s), points.Select(p => AssertInt64(p!["timestamp"])).Order());
        Assert.True(history["next_page_token"] is null || history["next_page_token"]!.GetValue<string>().Length == 0);

        // MlflowClient.delete_run -> RestStore.delete_run: DeleteRun(run_id) only.
        await CallAsync(HttpMethod.Post, $"{Api}/runs/delete", $$"""{"run_id": "{{runId}}"}""");
        // fluent.start_run(run_id=...) refuses to resume a run whose info.lifecycle_stage is "deleted".
        var afterDelete = (await CallAsync(HttpMethod.Get, $"{Api}/runs/get?{Query(("run_uuid", runId), ("run_id", runId))}"))["run"]!;
        Assert.Equal("deleted", AssertString(afterDelete["info"]!["lifecycle_stage"]));
        var active = await CallAsync(HttpMethod.Post, $"{Api}/runs/search",
            $$"""{"experiment_ids": ["{{experimentId}}"], "filter": "", "run_view_type": "ACTIVE_ONLY", "max_results": 10000}""");
        Assert.Equal([otherId], active["runs"]!.AsArray().Select(r => r!["info"]!["run_id"]!.GetValue<string>()));
    }

    [Fact]
    public async Task Get_by_name_decodes_the_plus_encoded_spaces_that_requests_sends()
    {
        // requests encodes GET params with urlencode (quote_plus): "Social NLP" -> experiment_name=Social+NLP.
        var name = "Social NLP " + Guid.NewGuid().ToString("N")[..6];
        var id = await Http.CreateExperimentAsync(name);
        var answer = await CallAsync(HttpMethod.Get, $"{Api}/experiments/get-by-name?{Query(("experiment_name", name))}");
        Assert.Equal(id, AssertString(answer["experiment"]!["experiment_id"]));
    }

    [Fact]
    public async Task Start_run_without_set_experiment_creates_the_run_in_the_default_experiment_0()
    {
        // fluent._get_experiment_id falls back to default_experiment registry -> DEFAULT_EXPERIMENT_ID "0".
        var run = (await CallAsync(HttpMethod.Post, $"{Api}/runs/create",
            """{"experiment_id": "0", "user_id": "bob", "start_time": 1700000000000, "tags": [{"key": "mlflow.user", "value": "bob"}, {"key": "mlflow.source.name", "value": "nb.py"}, {"key": "mlflow.source.type", "value": "LOCAL"}]}"""))["run"]!;
        AssertRunParses(run);
        Assert.Equal("0", run["info"]!["experiment_id"]!.GetValue<string>());
        Assert.StartsWith("mlflow-artifacts:/0/", run["info"]!["artifact_uri"]!.GetValue<string>());
    }

    [Fact]
    public async Task Start_run_without_a_run_name_gets_a_generated_name_and_the_matching_mlflow_runName_tag()
    {
        // fluent.start_run() with no run_name sends neither run_name nor mlflow.runName; MLflow's server generates a
        // name and tags it, and the client prints info.run_name (TrackingServiceClient._log_url).
        var experiment = await Http.CreateExperimentAsync("unnamed-" + Guid.NewGuid().ToString("N")[..8]);
        var run = (await CallAsync(HttpMethod.Post, $"{Api}/runs/create",
            $$"""{"experiment_id": "{{experiment}}", "user_id": "alice", "start_time": 1700000000000, "tags": [{"key": "mlflow.user", "value": "alice"}]}"""))["run"]!;
        var runName = AssertString(run["info"]!["run_name"]);
        Assert.NotEmpty(runName);
        Assert.Equal(runName, TagMap(run["data"]!["tags"])["mlflow.runName"]);
    }

    [Fact]
    public async Task Ensure_ascii_unicode_escapes_in_bodies_round_trip_to_the_original_text()
    {
        // requests' json= uses json.dumps(ensure_ascii=True): "café 🚀" arrives as "caf\u00e9 \ud83d\ude80".
        var experiment = await Http.CreateExperimentAsync("unicode-" + Guid.NewGuid().ToString("N")[..8]);
        var runId = await Http.CreateRunAsync(experiment);
        await CallAsync(HttpMethod.Post, $"{Api}/runs/set-tag",
            $$"""{"run_uuid": "{{runId}}", "key": "note", "value": "caf\u00e9 \ud83d\ude80", "run_id": "{{runId}}"}""");
        var run = (await CallAsync(HttpMethod.Get, $"{Api}/runs/get?{Query(("run_uuid", runId), ("run_id", runId))}"))["run"]!;
        Assert.Equal("café 🚀", TagMap(run["data"]!["tags"])["note"]);
    }

    [Fact]
    public async Task Relogging_a_param_with_the_same_value_succeeds_and_a_different_value_is_invalid_parameter_value()
    {
        // TrackingServiceClient.log_param re-raises INVALID_PARAMETER_VALUE with PARAM_VALIDATION_MSG appended;
        // MLflow's stores accept an identical re-log (autologging and retries do it).
        var experiment = await Http.CreateExperimentAsync("params-" + Guid.NewGuid().ToString("N")[..8]);
        var runId = await Http.CreateRunAsync(experiment);
        var body = $$"""{"run_uuid": "{{runId}}", "key": "lr", "value": "0.01", "run_id": "{{runId}}"}""";
        await CallAsync(HttpMethod.Post, $"{Api}/runs/log-parameter", body);
        await CallAsync(HttpMethod.Post, $"{Api}/runs/log-parameter", body);
        var changed = await Http.PostAsync($"{Api}/runs/log-parameter", body.Replace("0.01", "0.02"));
        AssertClientError(changed, "INVALID_PARAMETER_VALUE");
    }

    [Fact]
    public async Task Log_batch_answers_the_largest_chunk_the_client_sends_as_mlflow_does()
    {
        // TrackingServiceClient.log_batch chunks params and tags by MAX_PARAMS_TAGS_PER_BATCH (100) and fills each
        // request with metrics up to MAX_ENTITIES_PER_BATCH (1000), then sends the rest by MAX_METRICS_PER_BATCH (1000).
        // With values at MLflow's length limits (params 6000, tags 5000: utils/validation.py) the first request is
        // about 1.2 MB of JSON. MLflow's own server refuses it (handlers._validate_batch_log_api_req:
        // MAX_BATCH_LOG_REQUEST_SIZE = 1e6 bytes, INVALID_PARAMETER_VALUE), and so do we, in the same words the
        // client shows; a chunk of ordinary values is accepted.
        var experiment = await Http.CreateExperimentAsync("chunks-" + Guid.NewGuid().ToString("N")[..8]);
        var runId = await Http.CreateRunAsync(experiment);
        var body = new StringBuilder($$"""{"run_id": "{{runId}}", "metrics": [""");
        body.AppendJoin(", ", Enumerable.Range(0, 800).Select(i => $$"""{"key": "m", "value": 0.5, "timestamp": 1700000000000, "step": {{i}}}"""));
        body.Append("""], "params": [""");
        body.AppendJoin(", ", Enumerable.Range(0, 100).Select(i => $$"""{"key": "p{{i}}", "value": "{{new string('x', 6000)}}"}"""));
        body.Append("""], "tags": [""");
        body.AppendJoin(", ", Enumerable.Range(0, 100).Select(i => $$"""{"key": "t{{i}}", "value": "{{new string('y', 5000)}}"}"""));
        body.Append("]}");
        var first = await Http.PostAsync($"{Api}/runs/log-batch", body.ToString());
        AssertClientError(first, "INVALID_PARAMETER_VALUE");
        var ordinary = body.ToString().Replace(new string('x', 6000), "0.01", StringComparison.Ordinal).Replace(new string('y', 5000), "v", StringComparison.Ordinal);
        AssertClientAccepts(await Http.PostAsync($"{Api}/runs/log-batch", ordinary));

        var rest = $$"""{"run_id": "{{runId}}", "metrics": [{{string.Join(", ", Enumerable.Range(800, 1000).Select(i => $$"""{"key": "m", "value": 0.5, "timestamp": 1700000000000, "step": {{i}}}"""))}}]}""";
        AssertClientAccepts(await Http.PostAsync($"{Api}/runs/log-batch", rest));
    }

    [Fact]
    public async Task Listing_the_artifacts_of_a_run_that_has_none_answers_200_with_no_files()
    {
        // MlflowClient.list_artifacts(run_id) on a fresh run: HttpArtifactRepository.list_artifacts calls
        // augmented_raise_for_status, then resp.json().get("files", []) -> [].
        var experiment = await Http.CreateExperimentAsync("empty-" + Guid.NewGuid().ToString("N")[..8]);
        var runId = await Http.CreateRunAsync(experiment);
        var root = await ProxyRootAsync(runId);
        Assert.Empty(await ProxyListAsync(root));
        Assert.Empty(await ProxyListAsync(root + "/no/such/folder"));
    }

    [Fact]
    public async Task Artifacts_upload_raw_whatever_the_content_type_and_names_with_spaces_or_no_bytes()
    {
        var experiment = await Http.CreateExperimentAsync("files-" + Guid.NewGuid().ToString("N")[..8]);
        var runId = await Http.CreateRunAsync(experiment);
        var root = await ProxyRootAsync(runId);
        var repo = $"{ProxyBase}/{root}";

        // mlflow.log_dict(d, "cfg/params.json"): Content-Type application/json, body is the file, not a request.
        var json = """{"layers": [64, 32], "dropout": 0.1}"""u8.ToArray();
        Assert.InRange(await PutArtifactAsync($"{repo}/cfg/params.json", json, "application/json"), 200, 299);
        // mlflow.log_text(t, "my notes.txt"): requests requotes the URL path, so the space travels as %20.
        Assert.InRange(await PutArtifactAsync($"{repo}/my%20notes.txt", "spaced"u8.ToArray(), "text/plain"), 200, 299);
        // mlflow.log_text("", "empty.log"): an empty file is a PUT with Content-Length: 0.
        Assert.InRange(await PutArtifactAsync($"{repo}/empty.log", [], "text/plain"), 200, 299);

        Assert.Equal(json, await Http.GetByteArrayAsync($"{repo}/cfg/params.json"));
        Assert.Equal("spaced", await Http.GetStringAsync($"{repo}/my%20notes.txt"));
        Assert.Empty(await Http.GetByteArrayAsync($"{repo}/empty.log"));
        var listed = await ProxyListAsync(root);
        Assert.Equal(["cfg", "empty.log", "my notes.txt"], listed.Select(f => f["path"]!.GetValue<string>()).Order(StringComparer.Ordinal));
        Assert.Equal(0, long.Parse(listed.Single(f => f["path"]!.GetValue<string>() == "empty.log")["file_size"]!.ToString(), CultureInfo.InvariantCulture));
    }

    [Fact]
    public async Task Metric_history_for_a_key_with_a_slash_answers_every_point_with_no_next_page_token()
    {
        // Keys like "val/loss" are valid (utils/validation.py); requests sends metric_key=val%2Floss.
        var experiment = await Http.CreateExperimentAsync("slash-" + Guid.NewGuid().ToString("N")[..8]);
        var runId = await Http.CreateRunAsync(experiment);
        await CallAsync(HttpMethod.Post, $"{Api}/runs/log-batch",
            $$"""{"run_id": "{{runId}}", "metrics": [{"key": "val/loss", "value": 2.0, "timestamp": 1700000000000, "step": 0}, {"key": "val/loss", "value": "NaN", "timestamp": 1700000000001, "step": 1}]}""");
        var history = await CallAsync(HttpMethod.Get,
            $"{Api}/metrics/get-history?{Query(("run_uuid", runId), ("metric_key", "val/loss"), ("run_id", runId), ("max_results", "25000"))}");
        Assert.Equal(2, history["metrics"]!.AsArray().Count);
        Assert.True(history["next_page_token"] is null || history["next_page_token"]!.GetValue<string>().Length == 0);
    }

    [Fact]
    public async Task Errors_carry_a_known_error_code_and_a_message_with_a_status_the_client_does_not_retry()
    {
        var experiment = await Http.CreateExperimentAsync("errors-" + Guid.NewGuid().ToString("N")[..8]);
        var runId = await Http.CreateRunAsync(experiment);

        // MlflowClient.get_run on an unknown id: MLflow answers 404 RESOURCE_DOES_NOT_EXIST.
        var unknownRun = new string('a', 32);
        AssertClientError(await Http.GetJsonAsync($"{Api}/runs/get?{Query(("run_uuid", unknownRun), ("run_id", unknownRun))}"), "RESOURCE_DOES_NOT_EXIST");
        // mlflow.create_experiment on a taken name: RESOURCE_ALREADY_EXISTS (fluent.set_experiment's race handling reads it).
        var name = "dupe-" + Guid.NewGuid().ToString("N")[..8];
        await Http.CreateExperimentAsync(name);
        AssertClientError(await Http.PostAsync($"{Api}/experiments/create", $$"""{"name": "{{name}}"}"""), "RESOURCE_ALREADY_EXISTS");
        // A metric without a value: INVALID_PARAMETER_VALUE.
        AssertClientError(await Http.PostAsync($"{Api}/runs/log-metric",
            $$"""{"run_uuid": "{{runId}}", "key": "loss", "timestamp": 1700000000000, "step": 0, "run_id": "{{runId}}"}"""), "INVALID_PARAMETER_VALUE");
    }

    // ---- helpers: what rest_utils / http_artifact_repo / parse_dict do on the client side ----

    /// <summary>call_endpoint + verify_rest_response: status exactly 200 and a JSON object body.</summary>
    private async Task<JsonObject> CallAsync(HttpMethod method, string path, string? body = null)
    {
        var answer = await Http.SendAsync(method, path, body);
        AssertClientAccepts(answer);
        return answer.Json!.AsObject();
    }

    private static void AssertClientAccepts(ApiAnswer answer)
    {
        Assert.True(answer.Status == 200, $"verify_rest_response needs 200; got {answer.Status}: {answer.Body}");
        Assert.True(answer.Json is JsonObject, $"verify_rest_response needs a JSON object body; got '{answer.Body}'");
    }

    /// <summary>RestException(json): error_code must be an ErrorCode name, message a string, status not retried.</summary>
    private static void AssertClientError(ApiAnswer answer, string code)
    {
        Assert.NotEqual(200, answer.Status);
        Assert.DoesNotContain(answer.Status, RetriedStatuses);
        Assert.True(answer.Json is JsonObject, $"RestException needs a JSON object body; got '{answer.Body}'");
        Assert.True(answer.ErrorCode is not null && KnownErrorCodes.Contains(answer.ErrorCode), $"Unknown error_code in {answer.Body}");
        Assert.Equal(code, answer.ErrorCode);
        Assert.False(string.IsNullOrEmpty(answer.Message));
    }

    /// <summary>requests' params encoding (urllib.parse.urlencode, quote_plus).</summary>
    private static string Query(params (string Key, string Value)[] pairs) =>
        string.Join("&", pairs.Select(p => $"{Plus(p.Key)}={Plus(p.Value)}"));

    private static string Plus(string text) => Uri.EscapeDataString(text).Replace("%20", "+", StringComparison.Ordinal);

    /// <summary>A JSON string literal as json.dumps writes it (ensure_ascii).</summary>
    private static string Str(string text)
    {
        var sb = new StringBuilder("\"");
        foreach (var c in text)
        {
            sb.Append(c switch
            {
                '"' => "\\\"",
                '\\' => "\\\\",
                _ when c < 0x20 || c > 0x7E => $"\\u{(int)c:x4}",
                _ => c.ToString(),
            });
        }
        return sb.Append('"').ToString();
    }

    /// <summary>Python's repr of a float, as json.dumps writes it (1.0, not 1).</summary>
    private static string PyFloat(double value)
    {
        var text = value.ToString("R", CultureInfo.InvariantCulture);
        return text.Contains('.') || text.Contains('E') ? text : text + ".0";
    }

    /// <summary>mlflow_artifacts_repo.MlflowArtifactsRepository.resolve_uri for an artifact URI without a host.</summary>
    private static string ResolveMlflowArtifactsUri(string artifactUri)
    {
        Assert.StartsWith("mlflow-artifacts:", artifactUri);
        var uri = new Uri(artifactUri);
        Assert.True(string.IsNullOrEmpty(uri.Host), $"Expected no host in {artifactUri}");
        var path = uri.AbsolutePath == "/" ? ProxyBase + "/" : Regex.Replace($"/{ProxyBase}/{uri.AbsolutePath}", "//+", "/");
        return path.TrimEnd('/');
    }

    private async Task<string> ProxyRootAsync(string runId)
    {
        var run = (await CallAsync(HttpMethod.Get, $"{Api}/runs/get?{Query(("run_uuid", runId), ("run_id", runId))}"))["run"]!;
        return ResolveMlflowArtifactsUri(run["info"]!["artifact_uri"]!.GetValue<string>())[(ProxyBase.Length + 1)..];
    }

    /// <summary>HttpArtifactRepository.list_artifacts: GET /api/2.0/mlflow-artifacts/artifacts?path=..., files or none.</summary>
    private async Task<List<JsonNode>> ProxyListAsync(string path)
    {
        var answer = await Http.GetJsonAsync($"{ProxyBase}?{Query(("path", path))}");
        Assert.True(answer.Status is >= 200 and < 400, $"augmented_raise_for_status fails on {answer.Status}: {answer.Body}");
        var files = answer.Json!["files"]?.AsArray().Select(f => f!).ToList() ?? [];
        Assert.All(files, f =>
        {
            AssertString(f["path"]);
            Assert.NotNull(f["is_dir"]); // f["is_dir"] is indexed, not .get()
        });
        return files;
    }

    /// <summary>HttpArtifactRepository.log_artifact: PUT with the file as body and the guessed Content-Type.</summary>
    private async Task<int> PutArtifactAsync(string url, byte[] content, string mimeType)
    {
        using var body = new ByteArrayContent(content);
        body.Headers.ContentType = new MediaTypeHeaderValue(mimeType);
        using var response = await Http.PutAsync(url, body);
        return (int)response.StatusCode;
    }

    private static string AssertString(JsonNode? node)
    {
        Assert.NotNull(node);
        Assert.Equal(JsonValueKind.String, node.GetValueKind());
        return node.GetValue<string>();
    }

    /// <summary>ParseDict takes an int64 as a JSON number or a numeric string.</summary>
    private static long AssertInt64(JsonNode? node)
    {
        Assert.NotNull(node);
        return node.GetValueKind() switch
        {
            JsonValueKind.Number => node.GetValue<long>(),
            JsonValueKind.String => long.Parse(node.GetValue<string>(), CultureInfo.InvariantCulture),
            var kind => throw new Xunit.Sdk.XunitException($"int64 field is a JSON {kind}"),
        };
    }

    private static void AssertDouble(JsonNode? node)
    {
        Assert.NotNull(node);
        if (node.GetValueKind() == JsonValueKind.String)
        {
            Assert.Contains(node.GetValue<string>(), NonFinite);
        }
        else
        {
            Assert.Equal(JsonValueKind.Number, node.GetValueKind());
        }
    }

    /// <summary>Run.from_proto after parse_dict: the field types ParseDict accepts for mlflow.Run.</summary>
    private static void AssertRunParses(JsonNode run)
    {
        var info = run["info"]!;
        foreach (var field in RunInfoStrings)
        {
            AssertString(info[field]);
        }
        if (info["run_name"] is not null)
        {
            AssertString(info["run_name"]);
        }
        Assert.Contains(AssertString(info["status"]), RunStatuses);
        AssertInt64(info["start_time"]);
        if (info["end_time"] is not null)
        {
            AssertInt64(info["end_time"]);
        }
        var data = run["data"];
        foreach (var metric in data?["metrics"]?.AsArray() ?? [])
        {
            AssertString(metric!["key"]);
            AssertDouble(metric["value"]);
            AssertInt64(metric["timestamp"]);
            AssertInt64(metric["step"]);
        }
        foreach (var pair in (data?["params"]?.AsArray() ?? []).Concat(data?["tags"]?.AsArray() ?? []))
        {
            AssertString(pair!["key"]);
            AssertString(pair["value"]);
        }
        foreach (var input in run["inputs"]?["dataset_inputs"]?.AsArray() ?? [])
        {
            foreach (var field in DatasetStrings)
            {
                AssertString(input!["dataset"]![field]);
            }
        }
    }

    private static Dictionary<string, string> TagMap(JsonNode? tags) =>
        (tags?.AsArray() ?? []).ToDictionary(t => t!["key"]!.GetValue<string>(), t => t!["value"]!.GetValue<string>());
}

public sealed class SqliteMlflowClientReplayTests(ServerFixture fixture) : MlflowClientReplayTests(fixture), IClassFixture<ServerFixture>;

public sealed class PostgresMlflowClientReplayTests(PostgresServerFixture fixture) : MlflowClientReplayTests(fixture), IClassFixture<PostgresServerFixture>;
