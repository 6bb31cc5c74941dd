using System.Net;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace Sextant.Client.Tests.Registry;

/// <summary>ML.NET and ONNX models registered from a run: flavor and signature read from the models themselves.</summary>
public sealed class ModelFlavorTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private sealed class House
    {
        public float Size { get; set; }
        public float Rooms { get; set; }
        public float Age { get; set; }
        public float Label { get; set; }
    }

    /// <summary>A real ML.NET model (concatenate, then SDCA regression), saved as ML.NET saves it, and its ONNX conversion.</summary>
    private static (byte[] Zip, byte[] Onnx) TrainModel()
    {
        var context = new MLContext(seed: 1);
        var rows = Enumerable.Range(0, 200).Select(i => new House { Size = i, Rooms = i % 5, Age = i % 30, Label = 2 * i + i % 5 }).ToList();
        var data = context.Data.LoadFromEnumerable(rows);
        var pipeline = context.Transforms.Concatenate("Features", nameof(House.Size), nameof(House.Rooms), nameof(House.Age))
            .Append(context.Regression.Trainers.Sdca(maximumNumberOfIterations: 5));
        var model = pipeline.Fit(data);
        using var zip = new MemoryStream();
        context.Model.Save(model, data.Schema, zip);
        using var onnx = new MemoryStream();
        context.Model.ConvertToOnnx(model, data, onnx);
        return (zip.ToArray(), onnx.ToArray());
    }

    [Fact]
    public async Task Ml_net_and_onnx_models_get_their_flavor_and_signature_and_other_files_are_opaque()
    {
        var (zip, onnx) = TrainModel();
        using var client = fixture.CreateClient();
        string runId;
        await using (var run = await client.StartRunAsync("flavors"))
        {
            await run.LogArtifactAsync(new MemoryStream(zip), "mlnet/model.zip");
            await run.LogArtifactAsync(new MemoryStream(onnx), "onnx/model.onnx");
            await run.LogArtifactAsync(new MemoryStream("weights"u8.ToArray()), "other/weights.bin");
            await run.LogArtifactAsync(new MemoryStream([1, 2, 3]), "fake/model.onnx");
            runId = run.RunId;
        }

        var mlnet = await client.RegisterModelAsync("house-mlnet", $"runs:/{runId}/mlnet");
        Assert.Equal("mlnet", mlnet.Flavor);
        Assert.Equal(["Size", "Rooms", "Age", "Label"], mlnet.Signature!.Inputs.Select(i => i.Name));
        Assert.All(mlnet.Signature.Inputs, i => Assert.Equal("float32", i.Type));
        var features = mlnet.Signature.Outputs.Single(o => o.Name == "Features");
        Assert.Equal([3L], features.Shape);
        Assert.Contains(mlnet.Signature.Outputs, o => o.Name == "Score" && o.Type == "float32");

        var fromOnnx = await client.RegisterModelAsync("house-onnx", $"runs:/{runId}/onnx", flavor: "onnx");
        Assert.Equal("onnx", fromOnnx.Flavor);
        Assert.Equal(["Size", "Rooms", "Age", "Label"], fromOnnx.Signature!.Inputs.Select(i => i.Name));
        Assert.Equal([-1L, 1L], fromOnnx.Signature.Inputs[0].Shape);
        Assert.Contains(fromOnnx.Signature.Outputs, o => o.Name.StartsWith("Score", StringComparison.Ordinal) && o.Type == "float32");
        // Read back the same from the registry.
        Assert.Equal("onnx", (await client.GetModelVersionAsync("house-onnx", "1")).Flavor);

        var opaque = await client.RegisterModelAsync("house-other", $"runs:/{runId}/other");
        Assert.Equal(("opaque", null), (opaque.Flavor, opaque.Signature));
        // Bytes that merely end in .onnx, undeclared: opaque, not refused.
        Assert.Equal("opaque", (await client.RegisterModelAsync("house-fake", $"runs:/{runId}/fake")).Flavor);
    }

    [Theory]
    [InlineData("fake", "onnx", "ONNX Runtime cannot load it")]
    [InlineData("other", "onnx", "needs an .onnx file")]
    [InlineData("other", "mlnet", "needs an ML.NET model .zip")]
    [InlineData("fake", "mlnet", "needs an ML.NET model .zip")]
    [InlineData("other", "pytorch", "must be onnx, mlnet or opaque")]
    public async Task Files_declared_as_a_flavor_they_are_not_are_refused(string folder, string flavor, string reason)
    {
        using var client = fixture.CreateClient();
        string runId;
        await using (var run = await client.StartRunAsync("bad-flavors"))
        {
            await run.LogArtifactAsync(new MemoryStream("weights"u8.ToArray()), "other/weights.bin");
            await run.LogArtifactAsync(new MemoryStream([1, 2, 3]), "fake/model.onnx");
            runId = run.RunId;
        }
        var error = await Assert.ThrowsAsync<SextantApiException>(() => client.RegisterModelAsync($"bad-{folder}-{flavor}", $"runs:/{runId}/{folder}", flavor: flavor));
        Assert.Equal((HttpStatusCode.BadRequest, "flavor"), (error.StatusCode, error.Field));
        Assert.Contains(reason, error.Message);
        // Nothing was registered under a number.
        Assert.Empty((await client.SearchModelVersionsAsync($"name = 'bad-{folder}-{flavor}'")).ModelVersions);
    }
}
