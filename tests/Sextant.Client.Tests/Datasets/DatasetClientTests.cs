using System.Globalization;
using System.Text;
using Parquet;
using Parquet.Schema;
using Sextant.Client.Tests.Cli;

namespace Sextant.Client.Tests.Datasets;

/// <summary>Dataset versions through the SDK and `sextant data`, against a real server and real folders.</summary>
[Collection(ConsoleCollection.Name)]
public sealed class DatasetClientTests(ServerFixture fixture) : IClassFixture<ServerFixture>, IDisposable
{
    private readonly string _work = Directory.CreateTempSubdirectory("sextant-data-tests-").FullName;

    public void Dispose() => Directory.Delete(_work, recursive: true);

    private string Folder(string name, params (string Path, string Text)[] files)
    {
        var root = Path.Combine(_work, name);
        foreach (var (path, text) in files)
        {
            var full = Path.Combine(root, path);
            Directory.CreateDirectory(Path.GetDirectoryName(full)!);
            File.WriteAllText(full, text);
        }
        return root;
    }

    private static Dictionary<string, string> Read(string root) =>
        Directory.EnumerateFiles(root, "*", SearchOption.AllDirectories)
            .ToDictionary(f => Path.GetRelativePath(root, f).Replace('\\', '/'), File.ReadAllText);

    [Fact]
    public async Task Add_version_re_add_unchanged_change_then_restore_each_version_exactly()
    {
        using var client = fixture.CreateClient();
        var root = Folder("v", ("a.txt", "alpha"), ("sub/b.txt", "beta"), ("sub/deeper/same.txt", "alpha"), ("empty.txt", ""));
        var first = await client.AddDatasetAsync(root, "roundtrip", "first");
        Assert.True(first.Created);
        Assert.Equal((1L, 4L, 3), (first.Version.Version, first.Version.FileCount, first.BlobsUploaded));

        var unchanged = await client.AddDatasetAsync(root, "roundtrip");
        Assert.False(unchanged.Created);
        Assert.Equal((1L, 0), (unchanged.Version.Version, unchanged.BlobsUploaded));

        File.WriteAllText(Path.Combine(root, "sub/b.txt"), "beta 2");
        File.Delete(Path.Combine(root, "a.txt"));
        var second = await client.AddDatasetAsync(root, "roundtrip", "second");
        Assert.Equal((2L, 1), (second.Version.Version, second.BlobsUploaded));

        var out1 = Path.Combine(_work, "out1");
        await client.DownloadDatasetAsync("roundtrip", "1", out1);
        Assert.Equal(new Dictionary<string, string> { ["a.txt"] = "alpha", ["sub/b.txt"] = "beta", ["sub/deeper/same.txt"] = "alpha", ["empty.txt"] = "" }, Read(out1));
        var out2 = Path.Combine(_work, "out2");
        await client.DownloadDatasetAsync("roundtrip", "latest", out2);
        Assert.Equal(new Dictionary<string, string> { ["sub/b.txt"] = "beta 2", ["sub/deeper/same.txt"] = "alpha", ["empty.txt"] = "" }, Read(out2));
        await Assert.ThrowsAsync<IOException>(() => client.DownloadDatasetAsync("roundtrip", "1", out2));

        var diff = await client.DiffDatasetAsync("roundtrip", "1", "2");
        Assert.Equal(["a.txt"], diff.Removed.Select(f => f.Path));
        Assert.Equal(["sub/b.txt"], diff.Changed.Select(f => f.Path));
        Assert.Empty(diff.Added);
        var log = await client.ListDatasetVersionsAsync("roundtrip");
        Assert.Equal([2L, 1L], log.Versions.Select(v => v.Version));
    }

    [Fact]
    public async Task A_single_file_is_a_dataset_of_one_file()
    {
        using var client = fixture.CreateClient();
        var root = Folder("single", ("only.bin", "payload"));
        var added = await client.AddDatasetAsync(Path.Combine(root, "only.bin"), "single-file");
        Assert.Equal(1, added.Version.FileCount);
        var output = Path.Combine(_work, "single-out");
        await client.DownloadDatasetAsync("single-file", "v1", output);
        Assert.Equal("payload", File.ReadAllText(Path.Combine(output, "only.bin")));
    }

    [Fact]
    public async Task A_file_that_changes_while_being_added_fails_the_add_and_names_the_file()
    {
        using var client = fixture.CreateClient();
        var root = Folder("moving", ("stable.txt", "stable"), ("moving.txt", "before"));
        client.AfterHashingForTests = () => File.WriteAllTextAsync(Path.Combine(root, "moving.txt"), "after!");
        var error = await Assert.ThrowsAsync<IOException>(() => client.AddDatasetAsync(root, "moving"));
        Assert.Contains("moving.txt", error.Message);
        Assert.Contains("changed while being added", error.Message);
        client.AfterHashingForTests = null;
        Assert.Null(await GetOrNullAsync(client, "moving"));
        // Shorter than when it was hashed: caught while it is read for the upload.
        File.WriteAllText(Path.Combine(root, "moving.txt"), "a much longer content than before");
        client.AfterHashingForTests = () => File.WriteAllTextAsync(Path.Combine(root, "moving.txt"), "x");
        error = await Assert.ThrowsAsync<IOException>(() => client.AddDatasetAsync(root, "moving"));
        Assert.Contains("moving.txt", error.Message);
    }

    private static async Task<Sextant.Contracts.DatasetInfo?> GetOrNullAsync(SextantClient client, string name)
    {
        try
        {
            return await client.GetDatasetAsync(name);
        }
        catch (SextantApiException e) when (e.StatusCode == System.Net.HttpStatusCode.NotFound)
        {
            return null;
        }
    }

    [Fact]
    public async Task Links_out_of_the_folder_are_refused()
    {
        using var client = fixture.CreateClient();
        var outside = Folder("outside", ("secret.txt", "s"));
        var root = Folder("linked", ("in.txt", "i"));
        File.CreateSymbolicLink(Path.Combine(root, "escape.txt"), Path.Combine(outside, "secret.txt"));
        var error = await Assert.ThrowsAsync<IOException>(() => client.AddDatasetAsync(root, "linked"));
        Assert.Contains("escape.txt", error.Message);
        Assert.Contains("outside the folder", error.Message);
    }

    [Fact]
    public async Task A_pipe_in_the_folder_is_refused_instead_of_blocking_the_add()
    {
        using var client = fixture.CreateClient();
        var root = Folder("fifo", ("in.txt", "i"));
        using (var mkfifo = System.Diagnostics.Process.Start("mkfifo", Path.Combine(root, "pipe")))
        {
            await mkfifo.WaitForExitAsync();
        }
        var error = await Assert.ThrowsAsync<IOException>(() => client.AddDatasetAsync(root, "fifo"));
        Assert.Contains("'pipe' is not a regular file", error.Message);
    }

    [Fact]
    public async Task Two_versions_with_the_same_files_stay_two_inputs_and_mlflow_dataset_uris_are_left_alone()
    {
        using var client = fixture.CreateClient();
        var root = Folder("same", ("a.txt", "A"));
        await client.AddDatasetAsync(root, "same-content");
        File.WriteAllText(Path.Combine(root, "a.txt"), "B");
        await client.AddDatasetAsync(root, "same-content");
        File.WriteAllText(Path.Combine(root, "a.txt"), "A");
        Assert.Equal(3, (await client.AddDatasetAsync(root, "same-content")).Version.Version);

        await using var first = await client.StartRunAsync("same-content-runs", "reads-v1");
        await first.LogDatasetInputAsync("same-content@1");
        await using var third = await client.StartRunAsync("same-content-runs", "reads-v3");
        await third.LogDatasetInputAsync("same-content@3");
        Assert.Equal([$"runs:/{first.RunId}"], (await client.GetLineageAsync("datasets:/same-content@1", "down", 1)).Nodes.Where(n => n.Kind == "run").Select(n => n.Uri));
        Assert.Equal([$"runs:/{third.RunId}"], (await client.GetLineageAsync("datasets:/same-content@3", "down", 1)).Nodes.Where(n => n.Kind == "run").Select(n => n.Uri));

        // MLflow's own dataset URI form (name/digest) is an ordinary source, not a version reference.
        using var http = new HttpClient { BaseAddress = fixture.Address };
        var plain = new Sextant.Contracts.LogInputsRequest(first.RunId,
            [new Sextant.Contracts.DatasetInput(null, new Sextant.Contracts.Dataset("same-content", "abc", "local", "datasets:/same-content/abc"))]);
        Assert.True((await http.PostAsync("api/2.0/mlflow/runs/log-inputs", System.Net.Http.Json.JsonContent.Create(plain, Sextant.Contracts.SextantJsonContext.Default.LogInputsRequest))).IsSuccessStatusCode);
        var inputs = (await client.GetRunAsync(first.RunId)).Inputs.DatasetInputs;
        Assert.Contains(inputs, i => i.Dataset is { SourceType: "local", Source: "datasets:/same-content/abc" });
        var malformed = plain with { Datasets = [new Sextant.Contracts.DatasetInput(null, new Sextant.Contracts.Dataset("x", "abc", "sextant", "datasets:/same-content@1/extra"))] };
        Assert.Equal(System.Net.HttpStatusCode.BadRequest, (await http.PostAsync("api/2.0/mlflow/runs/log-inputs", System.Net.Http.Json.JsonContent.Create(malformed, Sextant.Contracts.SextantJsonContext.Default.LogInputsRequest))).StatusCode);
    }

    [Fact]
    public async Task Csv_profiles_match_a_reference_computation()
    {
        using var client = fixture.CreateClient();
        var random = new Random(7);
        var rows = Enumerable.Range(0, 30_000).Select(i => (Id: i, Score: Math.Round(random.NextDouble() * 100 - 20, 3), City: (i % 7) switch { 0 => "oslo", 1 or 2 => "rome", _ => "lima" }, Age: i % 40 == 0 ? (int?)null : 18 + random.Next(60))).ToList();
        var csv = new StringBuilder("id,score,city,age\n");
        foreach (var r in rows)
        {
            csv.Append(CultureInfo.InvariantCulture, $"{r.Id},{r.Score.ToString(CultureInfo.InvariantCulture)},\"{r.City}\",{r.Age}\n");
        }
        var root = Folder("profile", ("table.csv", csv.ToString()));
        await client.AddDatasetAsync(root, "profiled");
        var table = Assert.Single((await client.GetDatasetProfileAsync("profiled")).Tables);
        Assert.Equal((30_000L, "csv"), (table.Rows, table.Format));
        Assert.Equal(["integer", "float", "string", "integer"], table.Columns.Select(c => c.Type));

        var score = table.Columns[1];
        var scores = rows.Select(r => r.Score).ToArray();
        var mean = scores.Average();
        var std = Math.Sqrt(scores.Sum(s => (s - mean) * (s - mean)) / (scores.Length - 1));
        Assert.Equal(mean, score.Mean!.Value, 6);
        Assert.Equal(std, score.Std!.Value, 6);
        Assert.Equal((scores.Min(), scores.Max()), (score.Min!.Value, score.Max!.Value));
        // Quantiles come from a 20,000-value sample of 30,000: within a few hundredths of the range.
        var sorted = scores.Order().ToArray();
        Assert.InRange(score.Quantiles!.Single(q => q.Q == 0.5).Value, sorted[15_000] - 2, sorted[15_000] + 2);
        Assert.Equal(30_000, score.Histogram!.Counts.Sum(), 30.0);
        Assert.InRange(score.DistinctEstimate, scores.Distinct().Count() * 0.95, scores.Distinct().Count() * 1.05);

        var city = table.Columns[2];
        Assert.Equal(("lima", rows.Count(r => r.City == "lima")), (city.TopCategories![0].Value, (int)city.TopCategories[0].Count));
        Assert.Equal(3, city.DistinctEstimate);
        var age = table.Columns[3];
        Assert.Equal((750L, 29_250L), (age.Nulls, age.Count));
    }

    [Fact]
    public async Task Parquet_files_are_profiled_from_their_schema_and_diffed()
    {
        using var client = fixture.CreateClient();
        var root = Path.Combine(_work, "parquet");
        Directory.CreateDirectory(root);
        await WriteParquetAsync(Path.Combine(root, "t.parquet"), 1000, withFlag: false);
        await client.AddDatasetAsync(root, "pq");
        var table = Assert.Single((await client.GetDatasetProfileAsync("pq")).Tables);
        Assert.Equal(1000, table.Rows);
        Assert.Equal(["integer", "float", "string"], table.Columns.Select(c => c.Type));
        Assert.Equal(499.5, table.Columns[0].Mean!.Value, 6);
        Assert.Equal(100, table.Columns[1].Nulls);

        await WriteParquetAsync(Path.Combine(root, "t.parquet"), 1500, withFlag: true);
        await client.AddDatasetAsync(root, "pq");
        var diff = Assert.Single((await client.DiffDatasetAsync("pq", "1", "2")).Tables);
        Assert.Equal((1000L, 1500L), (diff.OldRows, diff.NewRows));
        Assert.Equal(["flag"], diff.AddedColumns);
        Assert.Equal((499.5, 749.5), (diff.Columns[0].OldMean, diff.Columns[0].NewMean));
    }

    private static async Task WriteParquetAsync(string path, int rows, bool withFlag)
    {
        var id = new DataField<int>("id");
        var value = new DataField<double?>("value");
        var name = new DataField<string>("name");
        var flag = new DataField<bool>("flag");
        var schema = withFlag ? new ParquetSchema(id, value, name, flag) : new ParquetSchema(id, value, name);
        await using var stream = File.Create(path);
        await using var writer = await ParquetWriter.CreateAsync(schema, stream);
        using var group = writer.CreateRowGroup();
        await group.WriteAsync(id, new ReadOnlyMemory<int>([.. Enumerable.Range(0, rows)]));
        await group.WriteAsync(value, new ReadOnlyMemory<double?>([.. Enumerable.Range(0, rows).Select(i => i % 10 == 0 ? (double?)null : i * 0.5)]));
        await group.WriteAsync(name, Enumerable.Range(0, rows).Select(i => "n" + (i % 5)).ToArray());
        if (withFlag)
        {
            await group.WriteAsync(flag, new ReadOnlyMemory<bool>([.. Enumerable.Range(0, rows).Select(i => i % 2 == 0)]));
        }
    }

    [Fact]
    public async Task Data_verbs_add_log_diff_get_and_report_a_damaged_blob()
    {
        var root = Folder("cli", ("x.csv", "a,b\n1,2\n"), ("notes.txt", "n"));
        var added = await CliRunner.RunAsync(fixture.Address, "data", "add", root, "--name", "cli-ds", "-m", "one");
        Assert.Equal(0, added.ExitCode);
        Assert.Contains("cli-ds@1", added.Out);
        File.WriteAllText(Path.Combine(root, "x.csv"), "a,b\n1,2\n3,4\n");
        Assert.Contains("cli-ds@2", (await CliRunner.RunAsync(fixture.Address, "data", "add", root, "--name", "cli-ds")).Out);
        Assert.Contains("Unchanged", (await CliRunner.RunAsync(fixture.Address, "data", "add", root, "--name", "cli-ds")).Out);
        var log = await CliRunner.RunAsync(fixture.Address, "data", "log", "cli-ds");
        Assert.Contains("one", log.Out);
        var diff = await CliRunner.RunAsync(fixture.Address, "data", "diff", "cli-ds@1", "cli-ds@2");
        Assert.Contains("~ x.csv", diff.Out);
        Assert.Contains("rows 1 -> 2", diff.Out);
        var output = Path.Combine(_work, "cli-out");
        Assert.Equal(0, (await CliRunner.RunAsync(fixture.Address, "data", "get", "cli-ds@1", "-o", output)).ExitCode);
        Assert.Equal("a,b\n1,2\n", File.ReadAllText(Path.Combine(output, "x.csv")));

        // Damage the stored copy of notes.txt: a restore fails and leaves no file with wrong bytes.
        var sha = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData("n"u8));
        var blob = Directory.EnumerateFiles(fixture.DataDirectory, sha, SearchOption.AllDirectories).Single();
        File.WriteAllText(blob, "m");
        var damaged = Path.Combine(_work, "cli-damaged");
        var failed = await CliRunner.RunAsync(fixture.Address, "data", "get", "cli-ds@1", "-o", damaged);
        Assert.Equal(1, failed.ExitCode);
        Assert.False(File.Exists(Path.Combine(damaged, "notes.txt")));
        var bad = await CliRunner.RunAsync(fixture.Address, "data", "get", "cli-ds@", "-o", damaged);
        Assert.Equal(1, bad.ExitCode);
    }

    [Fact]
    public async Task A_run_reading_a_dataset_version_joins_the_lineage_from_data_to_model()
    {
        using var client = fixture.CreateClient();
        var root = Folder("lineage", ("train.csv", "x,y\n1,2\n"), ("labels/l.txt", "l"));
        await client.AddDatasetAsync(root, "lineage-ds");
        string runId;
        await using (var run = await client.StartRunAsync("lineage-data", "trainer"))
        {
            await run.LogDatasetInputAsync("lineage-ds@1", "training");
            await run.LogArtifactAsync(new MemoryStream([1]), "model/weights.bin");
            runId = run.RunId;
        }
        await client.RegisterModelAsync("lineage-model", $"runs:/{runId}/model");

        var down = await client.GetLineageAsync("datasets:/lineage-ds@1", "down", 5);
        Assert.Contains(down.Nodes, n => n.Uri == $"runs:/{runId}");
        Assert.Contains(down.Nodes, n => n.Uri == "models:/lineage-model/1");
        var up = await client.GetLineageAsync("models:/lineage-model/1", "up", 5);
        Assert.Contains(up.Edges, e => e.From == "datasets:/lineage-ds@1" && e.To == $"runs:/{runId}" && e.Kind == "input");
        var inputs = (await client.GetRunAsync(runId)).Inputs.DatasetInputs;
        Assert.Equal(("sextant", "datasets:/lineage-ds@1"), (inputs[0].Dataset.SourceType, inputs[0].Dataset.Source));

        var tree = await CliRunner.RunAsync(fixture.Address, "lineage", "models:/lineage-model/1");
        Assert.Equal(0, tree.ExitCode);
        Assert.Contains("dataset lineage-ds version 1", tree.Out);
        Assert.Contains("whose files were", tree.Out);
        Assert.Contains("labels/l.txt", tree.Out);

        // MLflow clients name the version in their source; an unknown version is refused, naming the field.
        await using var other = await client.StartRunAsync("lineage-data", "mlflow-style");
        var mlflow = new Sextant.Contracts.LogInputsRequest(other.RunId,
            [new Sextant.Contracts.DatasetInput(null, new Sextant.Contracts.Dataset("train", "abc", "http", "{\"url\": \"datasets:/lineage-ds@1\"}"))]);
        using var http = new HttpClient { BaseAddress = fixture.Address };
        var answer = await http.PostAsync("api/2.0/mlflow/runs/log-inputs", System.Net.Http.Json.JsonContent.Create(mlflow, Sextant.Contracts.SextantJsonContext.Default.LogInputsRequest));
        Assert.True(answer.IsSuccessStatusCode);
        Assert.Contains(( await client.GetLineageAsync("datasets:/lineage-ds@1", "down", 1)).Nodes, n => n.Uri == $"runs:/{other.RunId}");
        var unknown = await Assert.ThrowsAsync<SextantApiException>(() => other.LogDatasetInputAsync("lineage-ds@9"));
        Assert.Equal((System.Net.HttpStatusCode.BadRequest, "datasets[0].dataset.source"), (unknown.StatusCode, unknown.Field));
    }
}
