using System.Text.Json;

namespace Sextant.Server.Tests.Registry;

/// <summary>
/// The MLflow model registry REST API as the MLflow 2.x Python client speaks it: the same routes, methods
/// (DELETE and PATCH with JSON bodies), JSON shapes and error codes.
/// </summary>
public abstract class MlflowRegistryApiTests(ServerFixture fixture)
{
    private HttpClient Http => fixture.Http;

    private Task<ApiAnswer> SendAsync(HttpMethod method, string path, object body) =>
        Http.SendAsync(method, path, JsonSerializer.Serialize(body));

    [Fact]
    public async Task Register_a_model_from_a_run_set_an_alias_and_load_it_by_alias()
    {
        // What mlflow.register_model(f"runs:/{run_id}/model", "churn") and MlflowClient alias calls send.
        var experiment = await Http.CreateExperimentAsync("registry-flow");
        var runId = await Http.CreateRunAsync(experiment);
        var upload = await Http.PutAsync($"/api/2.0/mlflow-artifacts/artifacts/{experiment}/{runId}/artifacts/model/MLmodel", new StringContent("flavors: {}"));
        Assert.True(upload.IsSuccessStatusCode);

        var model = await Http.PostAsync("/api/2.0/mlflow/registered-models/create", new { name = "churn", tags = new[] { new { key = "team", value = "risk" } } });
        Assert.Equal(200, model.Status);
        Assert.Equal("churn", model.Json!["registered_model"]!["name"]!.GetValue<string>());

        var version = await Http.PostAsync("/api/2.0/mlflow/model-versions/create",
            new { name = "churn", source = $"mlflow-artifacts:/{experiment}/{runId}/artifacts/model", run_id = runId });
        Assert.Equal(200, version.Status);
        var created = version.Json!["model_version"]!;
        Assert.Equal(("1", "READY", "None"), (created["version"]!.GetValue<string>(), created["status"]!.GetValue<string>(), created["current_stage"]!.GetValue<string>()));
        Assert.Equal(runId, created["run_id"]!.GetValue<string>());

        Assert.Equal("{}", (await Http.PostAsync("/api/2.0/mlflow/registered-models/alias", new { name = "churn", alias = "champion", version = "1" })).Body);
        var byAlias = await Http.GetJsonAsync("/api/2.0/mlflow/registered-models/alias?name=churn&alias=champion");
        Assert.Equal("1", byAlias.Json!["model_version"]!["version"]!.GetValue<string>());
        Assert.Equal("champion", byAlias.Json!["model_version"]!["aliases"]![0]!.GetValue<string>());

        // Loading: the client asks where the files are, then lists and downloads them through the artifact proxy.
        var uri = (await Http.GetJsonAsync("/api/2.0/mlflow/model-versions/get-download-uri?name=churn&version=1")).Json!["artifact_uri"]!.GetValue<string>();
        Assert.StartsWith("mlflow-artifacts:/registry/", uri, StringComparison.Ordinal);
        var folder = uri["mlflow-artifacts:/".Length..];
        var listed = await Http.GetJsonAsync($"/api/2.0/mlflow-artifacts/artifacts?path={Uri.EscapeDataString(folder)}");
        Assert.Equal("MLmodel", listed.Json!["files"]![0]!["path"]!.GetValue<string>());
        Assert.Equal("flavors: {}", await Http.GetStringAsync($"/api/2.0/mlflow-artifacts/artifacts/{folder}/MLmodel"));

        var resolved = await Http.GetJsonAsync("/api/v1/models/resolve?uri=" + Uri.EscapeDataString("models:/churn@champion"));
        Assert.Equal("1", resolved.Json!["model_version"]!["version"]!.GetValue<string>());

        var got = await Http.GetJsonAsync("/api/2.0/mlflow/registered-models/get?name=churn");
        Assert.Equal("champion", got.Json!["registered_model"]!["aliases"]![0]!["alias"]!.GetValue<string>());
        Assert.Equal("1", got.Json!["registered_model"]!["latest_versions"]![0]!["version"]!.GetValue<string>());
    }

    [Fact]
    public async Task Update_rename_tags_delete_with_patch_and_delete_bodies()
    {
        await Http.PostAsync("/api/2.0/mlflow/registered-models/create", new { name = "m1" });
        await Http.PostAsync("/api/2.0/mlflow/model-versions/create", new { name = "m1", source = "s3://b/m" });
        Assert.Equal("d", (await SendAsync(HttpMethod.Patch, "/api/2.0/mlflow/registered-models/update", new { name = "m1", description = "d" })).Json!["registered_model"]!["description"]!.GetValue<string>());
        Assert.Equal("vd", (await SendAsync(HttpMethod.Patch, "/api/2.0/mlflow/model-versions/update", new { name = "m1", version = "1", description = "vd" })).Json!["model_version"]!["description"]!.GetValue<string>());
        Assert.Equal("{}", (await Http.PostAsync("/api/2.0/mlflow/model-versions/set-tag", new { name = "m1", version = "1", key = "k", value = "v" })).Body);
        Assert.Equal("{}", (await SendAsync(HttpMethod.Delete, "/api/2.0/mlflow/model-versions/delete-tag", new { name = "m1", version = "1", key = "k" })).Body);
        Assert.Equal("{}", (await Http.PostAsync("/api/2.0/mlflow/registered-models/set-tag", new { name = "m1", key = "k", value = "v" })).Body);
        Assert.Equal("{}", (await SendAsync(HttpMethod.Delete, "/api/2.0/mlflow/registered-models/delete-tag", new { name = "m1", key = "k" })).Body);
        var renamed = await Http.PostAsync("/api/2.0/mlflow/registered-models/rename", new { name = "m1", new_name = "m2" });
        Assert.Equal("m2", renamed.Json!["registered_model"]!["name"]!.GetValue<string>());
        var latest = await Http.PostAsync("/api/2.0/mlflow/registered-models/get-latest-versions", new { name = "m2" });
        Assert.Equal("1", latest.Json!["model_versions"]![0]!["version"]!.GetValue<string>());
        Assert.Equal("{}", (await SendAsync(HttpMethod.Delete, "/api/2.0/mlflow/model-versions/delete", new { name = "m2", version = "1" })).Body);
        Assert.Equal("{}", (await SendAsync(HttpMethod.Delete, "/api/2.0/mlflow/registered-models/delete", new { name = "m2" })).Body);
        var gone = await Http.GetJsonAsync("/api/2.0/mlflow/registered-models/get?name=m2");
        Assert.Equal((404, "RESOURCE_DOES_NOT_EXIST"), (gone.Status, gone.ErrorCode));
    }

    [Fact]
    public async Task Search_as_mlflow_clients_send_it_matches_models_without_the_prompt_tag()
    {
        await Http.PostAsync("/api/2.0/mlflow/registered-models/create", new { name = "plain-model" });
        await Http.PostAsync("/api/2.0/mlflow/registered-models/create", new { name = "a-prompt", tags = new[] { new { key = "mlflow.prompt.is_prompt", value = "true" } } });
        var filter = Uri.EscapeDataString("name LIKE '%' AND tags.`mlflow.prompt.is_prompt` != 'true'");
        var found = await Http.GetJsonAsync($"/api/2.0/mlflow/registered-models/search?filter={filter}&max_results=100");
        var names = found.Json!["registered_models"]!.AsArray().Select(m => m!["name"]!.GetValue<string>()).ToList();
        Assert.Contains("plain-model", names);
        Assert.DoesNotContain("a-prompt", names);

        var versions = await Http.GetJsonAsync("/api/2.0/mlflow/model-versions/search?filter=" + Uri.EscapeDataString("name = 'plain-model'"));
        Assert.Equal(200, versions.Status);
        Assert.Empty(versions.Json!["model_versions"]!.AsArray());
    }

    [Theory]
    [InlineData("/api/2.0/mlflow/registered-models/alias", """{"name": "bad-input", "alias": "latest", "version": "1"}""", 400, "INVALID_PARAMETER_VALUE")]
    [InlineData("/api/2.0/mlflow/registered-models/alias", """{"name": "bad-input", "alias": "v2", "version": "1"}""", 400, "INVALID_PARAMETER_VALUE")]
    [InlineData("/api/2.0/mlflow/registered-models/alias", """{"name": "bad-input", "alias": "ok", "version": "999"}""", 404, "RESOURCE_DOES_NOT_EXIST")]
    [InlineData("/api/2.0/mlflow/model-versions/create", """{"name": "no-such-model", "source": "s3://x"}""", 404, "RESOURCE_DOES_NOT_EXIST")]
    [InlineData("/api/2.0/mlflow/model-versions/create", """{"name": "bad-input"}""", 400, "INVALID_PARAMETER_VALUE")]
    [InlineData("/api/2.0/mlflow/registered-models/create", """{"name": ""}""", 400, "INVALID_PARAMETER_VALUE")]
    [InlineData("/api/2.0/mlflow/registered-models/create", """{"name": 5}""", 400, "INVALID_PARAMETER_VALUE")]
    public async Task Bad_registry_input_gets_its_specific_error(string path, string body, int status, string code)
    {
        await Http.PostAsync("/api/2.0/mlflow/registered-models/create", new { name = "bad-input" });
        await Http.PostAsync("/api/2.0/mlflow/model-versions/create", new { name = "bad-input", source = "s3://x" });
        var answer = await Http.SendAsync(HttpMethod.Post, path, body);
        Assert.Equal((status, code), (answer.Status, answer.ErrorCode));
    }

    [Fact]
    public async Task Registered_model_files_cannot_be_overwritten_through_the_artifact_proxy()
    {
        var experiment = await Http.CreateExperimentAsync("immutable");
        var runId = await Http.CreateRunAsync(experiment);
        await Http.PutAsync($"/api/2.0/mlflow-artifacts/artifacts/{experiment}/{runId}/artifacts/model/weights.bin", new ByteArrayContent([1, 2]));
        await Http.PostAsync("/api/2.0/mlflow/registered-models/create", new { name = "immutable" });
        await Http.PostAsync("/api/2.0/mlflow/model-versions/create", new { name = "immutable", source = $"runs:/{runId}/model", run_id = runId });
        var uri = (await Http.GetJsonAsync("/api/2.0/mlflow/model-versions/get-download-uri?name=immutable&version=1")).Json!["artifact_uri"]!.GetValue<string>();
        var put = await Http.PutAsync($"/api/2.0/mlflow-artifacts/artifacts/{uri["mlflow-artifacts:/".Length..]}/weights.bin", new ByteArrayContent([9]));
        Assert.Equal(403, (int)put.StatusCode);
    }
}

public sealed class SqliteMlflowRegistryApiTests(ServerFixture fixture) : MlflowRegistryApiTests(fixture), IClassFixture<ServerFixture>;

public sealed class PostgresMlflowRegistryApiTests(PostgresServerFixture fixture) : MlflowRegistryApiTests(fixture), IClassFixture<PostgresServerFixture>;
