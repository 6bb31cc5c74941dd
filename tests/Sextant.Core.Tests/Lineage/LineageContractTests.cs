using Sextant.Contracts;
using Sextant.Core.Projects;
using Sextant.Core.Storage;
using Sextant.Core.Tests.Storage;

namespace Sextant.Core.Tests.Lineage;

/// <summary>dataset -(input)-> run -(produced)-> model version, read both ways, on every engine.</summary>
public abstract class LineageContractTests(DatabaseEngine engine) : IAsyncLifetime
{
    private TestDatabase _db = null!;
    private static readonly Caller Admin = TestDatabase.Admin;
    private string _run = "";

    public async Task InitializeAsync()
    {
        _db = await TestDatabase.CreateAsync(engine);
        var experiment = await _db.Tracking.CreateExperimentAsync(Admin, new CreateExperimentRequest("lineage"));
        _run = (await _db.Tracking.CreateRunAsync(Admin, new CreateRunRequest(experiment, RunName: "train"))).Info.RunId;
        await _db.Tracking.LogInputsAsync(Admin, new LogInputsRequest(_run,
        [
            new DatasetInput([new KeyValue("mlflow.data.context", "training")], new Dataset("customers", "d4", "local", "/data/customers.csv")),
            new DatasetInput([new KeyValue("mlflow.data.context", "eval")], new Dataset("holdout", "h1", "local", "/data/holdout.csv")),
        ]));
        await _db.Registry.CreateModelAsync(Admin, new CreateRegisteredModelRequest("churn"));
        await _db.Registry.CreateVersionAsync(Admin, new CreateModelVersionRequest("churn", "s3://x", _run));
        await _db.Registry.SetAliasAsync(Admin, "churn", "champion", "1");
    }

    public async Task DisposeAsync() => await _db.DisposeAsync();

    [Fact]
    public async Task A_model_by_alias_leads_up_to_its_run_and_the_datasets_it_read()
    {
        var graph = await _db.Lineage.GetAsync(Admin, "models:/churn@champion", "up", 5);
        Assert.Equal("models:/churn/1", graph.Root);
        Assert.Equal(["datasets:/customers/d4", "datasets:/holdout/h1", "models:/churn/1", $"runs:/{_run}"], graph.Nodes.Select(n => n.Uri).Order(StringComparer.Ordinal));
        Assert.Contains(new LineageEdge($"runs:/{_run}", "models:/churn/1", "produced"), graph.Edges);
        Assert.Contains(new LineageEdge("datasets:/customers/d4", $"runs:/{_run}", "input"), graph.Edges);
        Assert.Equal(3, graph.Edges.Count);
    }

    [Fact]
    public async Task A_dataset_leads_down_to_the_runs_that_read_it_and_their_models()
    {
        var graph = await _db.Lineage.GetAsync(Admin, "datasets:/customers/d4", "down", 5);
        Assert.Equal(["datasets:/customers/d4", "models:/churn/1", $"runs:/{_run}"], graph.Nodes.Select(n => n.Uri).Order(StringComparer.Ordinal));
        var shallow = await _db.Lineage.GetAsync(Admin, "datasets:/customers/d4", "down", 1);
        Assert.Equal(2, shallow.Nodes.Count);
        var both = await _db.Lineage.GetAsync(Admin, $"runs:/{_run}", "both", 1);
        Assert.Equal(4, both.Nodes.Count);
    }

    [Fact]
    public async Task Both_directions_do_not_wander_through_a_shared_dataset_to_unrelated_runs()
    {
        // Another run read the same dataset: it is not part of the model's lineage either way.
        var experiment = (await _db.Tracking.GetRunAsync(Admin, _run)).Info.ExperimentId;
        var other = (await _db.Tracking.CreateRunAsync(Admin, new CreateRunRequest(experiment, RunName: "unrelated"))).Info.RunId;
        await _db.Tracking.LogInputsAsync(Admin, new LogInputsRequest(other, [new DatasetInput(null, new Dataset("customers", "d4", "local", "/data/customers.csv"))]));
        var graph = await _db.Lineage.GetAsync(Admin, "models:/churn/1", "both", 5);
        Assert.DoesNotContain(graph.Nodes, n => n.Uri == $"runs:/{other}");
        Assert.False(graph.Truncated);
        // From the dataset downwards, it is.
        Assert.Contains((await _db.Lineage.GetAsync(Admin, "datasets:/customers/d4", "down", 1)).Nodes, n => n.Uri == $"runs:/{other}");
        // A run URI with an artifact path names the run.
        Assert.Equal($"runs:/{_run}", (await _db.Lineage.GetAsync(Admin, $"runs:/{_run}/model", "up", 1)).Root);
    }

    [Theory]
    [InlineData("s3://bucket/x", "uri")]
    [InlineData("datasets:/-bad-name@1", "uri")]
    [InlineData("datasets:/customers@zero", "uri")]
    [InlineData("datasets:/customers/", "uri")]
    [InlineData("", "uri")]
    public async Task Bad_lineage_requests_are_refused(string uri, string field)
    {
        var e = await Assert.ThrowsAsync<SextantException>(() => _db.Lineage.GetAsync(Admin, uri, null, null));
        Assert.Equal((400, field), (e.StatusCode, e.Field));
        Assert.Equal("depth", (await Assert.ThrowsAsync<SextantException>(() => _db.Lineage.GetAsync(Admin, "models:/churn/1", "up", 11))).Field);
        Assert.Equal("direction", (await Assert.ThrowsAsync<SextantException>(() => _db.Lineage.GetAsync(Admin, "models:/churn/1", "sideways", 2))).Field);
        Assert.Equal(404, (await Assert.ThrowsAsync<SextantException>(() => _db.Lineage.GetAsync(Admin, "datasets:/customers/zz", null, null))).StatusCode);
        Assert.Equal(404, (await Assert.ThrowsAsync<SextantException>(() => _db.Lineage.GetAsync(Admin, "datasets:/no-such-data@1", null, null))).StatusCode);
    }

    [Fact]
    public async Task Another_project_sees_none_of_it()
    {
        var other = await _db.CallerInNewProjectAsync("other");
        Assert.Equal(404, (await Assert.ThrowsAsync<SextantException>(() => _db.Lineage.GetAsync(other, $"runs:/{_run}", null, null))).StatusCode);
        Assert.Equal(404, (await Assert.ThrowsAsync<SextantException>(() => _db.Lineage.GetAsync(other, "models:/churn@champion", null, null))).StatusCode);
    }
}

public sealed class SqliteLineageContractTests() : LineageContractTests(DatabaseEngine.Sqlite);

public sealed class PostgresLineageContractTests() : LineageContractTests(DatabaseEngine.Postgres);
