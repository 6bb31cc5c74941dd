using Sextant.Contracts;
using Sextant.Core.Projects;
using Sextant.Core.Registry;
using Sextant.Core.Storage;
using Sextant.Core.Tests.Storage;

namespace Sextant.Core.Tests.Registry;

/// <summary>The model registry's behaviour, written once and run against every database engine.</summary>
public abstract class RegistryContractTests(DatabaseEngine engine) : IAsyncLifetime
{
    private TestDatabase _db = null!;
    private static readonly Caller Admin = TestDatabase.Admin;

    private RegistryService Registry => _db.Registry;

    public async Task InitializeAsync() => _db = await TestDatabase.CreateAsync(engine);

    public async Task DisposeAsync() => await _db.DisposeAsync();

    private Task<ModelVersion> VersionAsync(string model, string source = "s3://bucket/model") =>
        Registry.CreateVersionAsync(Admin, new CreateModelVersionRequest(model, source));

    [Fact]
    public async Task Models_are_created_renamed_described_tagged_and_deleted()
    {
        var created = await Registry.CreateModelAsync(Admin, new CreateRegisteredModelRequest("churn", [new KeyValue("team", "risk")], "first"));
        Assert.Equal(("churn", "first", "risk"), (created.Name, created.Description, created.Tags.Single().Value));
        var e = await Assert.ThrowsAsync<SextantException>(() => Registry.CreateModelAsync(Admin, new CreateRegisteredModelRequest("churn")));
        Assert.Equal(ErrorCodes.ResourceAlreadyExists, e.ErrorCode);

        await Registry.RenameModelAsync(Admin, "churn", "churn-v2");
        await Registry.UpdateModelAsync(Admin, "churn-v2", "second");
        await Registry.SetModelTagAsync(Admin, "churn-v2", "stage", "prod");
        await Registry.DeleteModelTagAsync(Admin, "churn-v2", "team");
        var model = await Registry.GetModelAsync(Admin, "churn-v2");
        Assert.Equal("second", model.Description);
        Assert.Equal([new KeyValue("stage", "prod")], model.Tags);
        Assert.Equal(404, (await Assert.ThrowsAsync<SextantException>(() => Registry.GetModelAsync(Admin, "churn"))).StatusCode);

        await VersionAsync("churn-v2");
        await Registry.DeleteModelAsync(Admin, "churn-v2");
        Assert.Equal(404, (await Assert.ThrowsAsync<SextantException>(() => Registry.GetModelAsync(Admin, "churn-v2"))).StatusCode);
        Assert.Empty((await Registry.SearchVersionsAsync(Admin, new SearchRegistryRequest("name = 'churn-v2'"))).ModelVersions);
    }

    [Fact]
    public async Task Versions_are_numbered_from_one_never_reused_and_ready_at_once()
    {
        await Registry.CreateModelAsync(Admin, new CreateRegisteredModelRequest("m"));
        Assert.Equal(["1", "2", "3"], [(await VersionAsync("m")).Version, (await VersionAsync("m")).Version, (await VersionAsync("m")).Version]);
        await Registry.DeleteVersionAsync(Admin, "m", "3");
        var next = await VersionAsync("m");
        Assert.Equal(("4", "READY", "None"), (next.Version, next.Status, next.CurrentStage));
        Assert.Equal("4", (await Registry.GetModelAsync(Admin, "m")).LatestVersions.Single().Version);
        var updated = await Registry.UpdateVersionAsync(Admin, "m", "2", "better");
        Assert.Equal("better", updated.Description);
        Assert.Equal(404, (await Assert.ThrowsAsync<SextantException>(() => Registry.GetVersionAsync(Admin, "m", "3"))).StatusCode);
        Assert.Equal(404, (await Assert.ThrowsAsync<SextantException>(() => VersionAsync("no-such-model"))).StatusCode);
    }

    [Fact]
    public async Task Concurrent_version_creation_gives_unique_gap_free_increasing_numbers()
    {
        await Registry.CreateModelAsync(Admin, new CreateRegisteredModelRequest("busy"));
        var versions = await Task.WhenAll(Enumerable.Range(0, 24).Select(_ => Task.Run(() => VersionAsync("busy"))));
        Assert.Equal(Enumerable.Range(1, 24).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)),
            versions.Select(v => v.Version).OrderBy(v => int.Parse(v, System.Globalization.CultureInfo.InvariantCulture)));
    }

    [Fact]
    public async Task Aliases_are_set_moved_resolved_and_deleted_and_model_uris_resolve()
    {
        await Registry.CreateModelAsync(Admin, new CreateRegisteredModelRequest("fraud"));
        await VersionAsync("fraud");
        await VersionAsync("fraud");
        await Registry.SetAliasAsync(Admin, "fraud", "champion", "1");
        Assert.Equal("1", (await Registry.ResolveAsync(Admin, "models:/fraud@champion")).Version);
        await Registry.SetAliasAsync(Admin, "fraud", "champion", "2");
        var champion = await Registry.GetVersionByAliasAsync(Admin, "fraud", "champion");
        Assert.Equal(("2", "champion"), (champion.Version, champion.Aliases.Single()));
        Assert.Equal([new RegisteredModelAlias("champion", "2")], (await Registry.GetModelAsync(Admin, "fraud")).Aliases);
        Assert.Equal("1", (await Registry.ResolveAsync(Admin, "models:/fraud/1")).Version);
        Assert.Equal("2", (await Registry.ResolveAsync(Admin, "models:/fraud/latest")).Version);

        await Registry.DeleteAliasAsync(Admin, "fraud", "champion");
        Assert.Equal(404, (await Assert.ThrowsAsync<SextantException>(() => Registry.ResolveAsync(Admin, "models:/fraud@champion"))).StatusCode);

        // Deleting a version drops the aliases that pointed at it.
        await Registry.SetAliasAsync(Admin, "fraud", "challenger", "1");
        await Registry.DeleteVersionAsync(Admin, "fraud", "1");
        Assert.Empty((await Registry.GetModelAsync(Admin, "fraud")).Aliases);
    }

    [Fact]
    public async Task A_model_name_with_an_at_sign_resolves_by_version_and_by_alias()
    {
        await Registry.CreateModelAsync(Admin, new CreateRegisteredModelRequest("team@fraud"));
        await VersionAsync("team@fraud");
        await Registry.SetAliasAsync(Admin, "team@fraud", "prod", "1");
        Assert.Equal(("team@fraud", "1"), ((await Registry.ResolveAsync(Admin, "models:/team@fraud/1")).Name, "1"));
        Assert.Equal("1", (await Registry.ResolveAsync(Admin, "models:/team@fraud@prod")).Version);
    }

    [Fact]
    public async Task The_registry_folder_itself_is_never_a_source_to_copy()
    {
        await Registry.CreateModelAsync(Admin, new CreateRegisteredModelRequest("greedy"));
        await Registry.CreateVersionAsync(Admin, new CreateModelVersionRequest("greedy", "mlflow-artifacts:/registry"));
        Assert.Equal("mlflow-artifacts:/registry", await Registry.GetDownloadUriAsync(Admin, "greedy", "1"));
    }

    [Theory]
    [InlineData("latest")]
    [InlineData("LATEST")]
    [InlineData("v3")]
    [InlineData("V12")]
    [InlineData("has space")]
    [InlineData("a/b")]
    [InlineData("")]
    public async Task Reserved_and_malformed_aliases_are_refused(string alias)
    {
        await Registry.CreateModelAsync(Admin, new CreateRegisteredModelRequest("x"));
        await VersionAsync("x");
        var e = await Assert.ThrowsAsync<SextantException>(() => Registry.SetAliasAsync(Admin, "x", alias, "1"));
        Assert.Equal((400, "alias"), (e.StatusCode, e.Field));
    }

    [Theory]
    [InlineData("models:/")]
    [InlineData("models:/x")]
    [InlineData("models:/x/")]
    [InlineData("runs:/abc/model")]
    [InlineData("models:/x/zero")]
    [InlineData("models:/x/0")]
    public async Task Malformed_model_uris_are_refused_with_a_400(string uri)
    {
        await Registry.CreateModelAsync(Admin, new CreateRegisteredModelRequest("x"));
        var e = await Assert.ThrowsAsync<SextantException>(() => Registry.ResolveAsync(Admin, uri));
        Assert.Equal(400, e.StatusCode);
    }

    [Fact]
    public async Task Search_matches_models_without_a_tag_on_not_equal_and_pages()
    {
        await Registry.CreateModelAsync(Admin, new CreateRegisteredModelRequest("a-model"));
        await Registry.CreateModelAsync(Admin, new CreateRegisteredModelRequest("b-model", [new KeyValue("mlflow.prompt.is_prompt", "false")]));
        await Registry.CreateModelAsync(Admin, new CreateRegisteredModelRequest("c-prompt", [new KeyValue("mlflow.prompt.is_prompt", "true")]));
        var models = await Registry.SearchModelsAsync(Admin, new SearchRegistryRequest("tags.`mlflow.prompt.is_prompt` != 'true'"));
        Assert.Equal(["a-model", "b-model"], models.RegisteredModels.Select(m => m.Name));
        Assert.Equal(["c-prompt"], (await Registry.SearchModelsAsync(Admin, new SearchRegistryRequest("tag.`mlflow.prompt.is_prompt` = 'true'"))).RegisteredModels.Select(m => m.Name));
        Assert.Equal(["a-model", "b-model"], (await Registry.SearchModelsAsync(Admin, new SearchRegistryRequest("name LIKE '%-model'"))).RegisteredModels.Select(m => m.Name));

        var first = await Registry.SearchModelsAsync(Admin, new SearchRegistryRequest(MaxResults: 2, OrderBy: ["name DESC"]));
        var second = await Registry.SearchModelsAsync(Admin, new SearchRegistryRequest(MaxResults: 2, OrderBy: ["name DESC"], PageToken: first.NextPageToken));
        Assert.Equal(["c-prompt", "b-model", "a-model"], first.RegisteredModels.Concat(second.RegisteredModels).Select(m => m.Name));
        Assert.Null(second.NextPageToken);

        var bad = await Assert.ThrowsAsync<SextantException>(() => Registry.SearchModelsAsync(Admin, new SearchRegistryRequest("metrics.acc > 1")));
        Assert.Equal("filter", bad.Field);
        // The limits of run search hold here too.
        var many = string.Join(" AND ", Enumerable.Range(0, 31).Select(i => $"tags.k{i} = 'v'"));
        Assert.Equal("filter", (await Assert.ThrowsAsync<SextantException>(() => Registry.SearchModelsAsync(Admin, new SearchRegistryRequest(many)))).Field);
    }

    [Fact]
    public async Task Version_search_filters_by_model_run_and_tags()
    {
        var experiment = await _db.Tracking.CreateExperimentAsync(Admin, new CreateExperimentRequest("e"));
        var run = (await _db.Tracking.CreateRunAsync(Admin, new CreateRunRequest(experiment))).Info.RunId;
        await Registry.CreateModelAsync(Admin, new CreateRegisteredModelRequest("one"));
        await Registry.CreateModelAsync(Admin, new CreateRegisteredModelRequest("two"));
        await Registry.CreateVersionAsync(Admin, new CreateModelVersionRequest("one", $"runs:/{run}/model", run, [new KeyValue("validated", "yes")]));
        await VersionAsync("one");
        await VersionAsync("two");
        Assert.Equal(["2", "1"], (await Registry.SearchVersionsAsync(Admin, new SearchRegistryRequest("name = 'one'"))).ModelVersions.Select(v => v.Version));
        var byRun = (await Registry.SearchVersionsAsync(Admin, new SearchRegistryRequest($"run_id = '{run}'"))).ModelVersions.Single();
        Assert.Equal(("one", "1", "yes"), (byRun.Name, byRun.Version, byRun.Tags.Single().Value));
        Assert.Equal(2, (await Registry.SearchVersionsAsync(Admin, new SearchRegistryRequest("tags.validated != 'yes'"))).ModelVersions.Count);
    }

    [Fact]
    public async Task A_version_keeps_its_own_copy_of_the_run_files_which_nobody_can_overwrite()
    {
        var experiment = await _db.Tracking.CreateExperimentAsync(Admin, new CreateExperimentRequest("e"));
        var run = (await _db.Tracking.CreateRunAsync(Admin, new CreateRunRequest(experiment))).Info.RunId;
        var root = await _db.Tracking.RunArtifactRootAsync(Admin, run);
        await _db.Artifacts.PutAsync(Admin, root + "/model/model.onnx", new MemoryStream([1, 2, 3]));
        await _db.Artifacts.PutAsync(Admin, root + "/model/sub/conda.yaml", new MemoryStream([4]));
        await _db.Artifacts.PutAsync(Admin, root + "/model-card.md", new MemoryStream([9]));
        await Registry.CreateModelAsync(Admin, new CreateRegisteredModelRequest("copied"));
        await Registry.CreateVersionAsync(Admin, new CreateModelVersionRequest("copied", $"runs:/{run}/model", run));

        var uri = await Registry.GetDownloadUriAsync(Admin, "copied", "1");
        Assert.StartsWith("mlflow-artifacts:/registry/", uri, StringComparison.Ordinal);
        var folder = uri["mlflow-artifacts:/".Length..];
        var files = await _db.Artifacts.ListAsync(Admin, folder, null);
        Assert.Equal(["model.onnx", "sub"], files.Select(f => f.Path));

        // The run's files may go; the version's stay, and they cannot be written or deleted through artifacts.
        await _db.Artifacts.DeleteAsync(Admin, root + "/model");
        var (content, size) = await _db.Artifacts.OpenAsync(Admin, folder + "/model.onnx");
        await content.DisposeAsync();
        Assert.Equal(3, size);
        Assert.Equal(403, (await Assert.ThrowsAsync<SextantException>(() => _db.Artifacts.PutAsync(Admin, folder + "/model.onnx", new MemoryStream([7])))).StatusCode);
        Assert.Equal(403, (await Assert.ThrowsAsync<SextantException>(() => _db.Artifacts.DeleteAsync(Admin, folder))).StatusCode);

        // A source outside this server is kept as given.
        await Registry.CreateVersionAsync(Admin, new CreateModelVersionRequest("copied", "s3://bucket/elsewhere"));
        Assert.Equal("s3://bucket/elsewhere", await Registry.GetDownloadUriAsync(Admin, "copied", "2"));
    }

    [Fact]
    public async Task Viewers_cannot_change_the_registry_and_projects_do_not_see_each_other()
    {
        await Registry.CreateModelAsync(Admin, new CreateRegisteredModelRequest("shared"));
        var viewer = Admin with { Role = Role.Viewer };
        Assert.Equal(403, (await Assert.ThrowsAsync<SextantException>(() => Registry.CreateModelAsync(viewer, new CreateRegisteredModelRequest("v")))).StatusCode);
        Assert.Equal(403, (await Assert.ThrowsAsync<SextantException>(() => Registry.CreateVersionAsync(viewer, new CreateModelVersionRequest("shared", "s3://x")))).StatusCode);
        Assert.Equal("shared", (await Registry.GetModelAsync(viewer, "shared")).Name);

        var other = await _db.CallerInNewProjectAsync("other");
        Assert.Equal(404, (await Assert.ThrowsAsync<SextantException>(() => Registry.GetModelAsync(other, "shared"))).StatusCode);
        Assert.Empty((await Registry.SearchModelsAsync(other, new SearchRegistryRequest())).RegisteredModels);
        await Registry.CreateModelAsync(other, new CreateRegisteredModelRequest("shared"));
    }

    [Fact]
    public async Task A_version_cannot_name_a_run_of_another_project()
    {
        var experiment = await _db.Tracking.CreateExperimentAsync(Admin, new CreateExperimentRequest("e"));
        var run = (await _db.Tracking.CreateRunAsync(Admin, new CreateRunRequest(experiment))).Info.RunId;
        var other = await _db.CallerInNewProjectAsync("other");
        await Registry.CreateModelAsync(other, new CreateRegisteredModelRequest("theirs"));
        var e = await Assert.ThrowsAsync<SextantException>(() => Registry.CreateVersionAsync(other, new CreateModelVersionRequest("theirs", $"runs:/{run}/model", run)));
        Assert.Equal(404, e.StatusCode);
    }
}

public sealed class SqliteRegistryContractTests() : RegistryContractTests(DatabaseEngine.Sqlite);

public sealed class PostgresRegistryContractTests() : RegistryContractTests(DatabaseEngine.Postgres);
