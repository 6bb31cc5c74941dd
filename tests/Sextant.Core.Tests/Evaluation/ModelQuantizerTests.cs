using System.Runtime.InteropServices;
using Google.Protobuf;
using Microsoft.ML.OnnxRuntime;
using Sextant.Core.Evaluation;
using Sextant.Core.Evaluation.Onnx;

namespace Sextant.Core.Tests.Evaluation;

/// <summary>The local embedder's quantiser: the rewrite of the real model, and the arithmetic and layout on small graphs.</summary>
public sealed class ModelQuantizerTests
{
    [Fact]
    public void The_packaged_model_becomes_a_quarter_of_its_size_and_loads_in_onnx_runtime()
    {
        _ = LocalEmbedder.Get(EmbedderPrecision.Float32); // writes the float model file
        var source = Directory.GetFiles(Path.Combine(Path.GetTempPath(), "sextant-models"), "all-MiniLM-L6-v2-*.onnx")
            .Single(p => !p.Contains(".int8-", StringComparison.Ordinal));
        var target = Path.Combine(Path.GetTempPath(), $"sextant-quantizer-test-{Guid.NewGuid():N}.onnx");
        try
        {
            var report = ModelQuantizer.Quantize(source, target);
            // Six layers: four attention projections each (dynamic), two feed-forward products (8-bit blocks), all with a bias.
            Assert.Equal((36, 12, 36, 1), (report.MatMuls, report.Blockwise, report.BiasesFolded, report.Tables));
            Assert.True(report.BytesAfter < report.BytesBefore / 3, $"{report.BytesAfter} of {report.BytesBefore} bytes");
            Assert.True(new FileInfo(target).Length < 30_000_000);

            ModelProto model;
            using (var file = File.OpenRead(target))
            {
                model = ModelProto.Parser.ParseFrom(file);
            }
            // proto2 keeps a field set to zero (axis = 0 of Gather and Concat) on the way through.
            Assert.All(model.Graph.Node.SelectMany(n => n.Attribute).Where(a => a.Type == AttributeProto.Types.AttributeType.Int), a => Assert.True(a.HasI, a.Name));
            Assert.Contains(model.OpsetImport, o => o.Domain == "com.microsoft");
            Assert.DoesNotContain(model.Graph.Node, n => n.OpType == "MatMul" && model.Graph.Initializer.Any(t => t.Name == n.Input[1]));
            using var session = new InferenceSession(target);
            Assert.Contains("last_hidden_state", session.OutputMetadata.Keys);
        }
        finally
        {
            File.Delete(target);
        }
    }

    [Fact]
    public void Blocks_cover_a_depth_not_divisible_by_32_and_dequantise_within_half_a_step()
    {
        // [40, 3]: two blocks per column, the second padded; one column all zero.
        var weights = new float[40 * 3];
        for (var k = 0; k < 40; k++)
        {
            weights[k * 3] = MathF.Sin(k) * 0.5f;
            weights[k * 3 + 1] = 0;
            weights[k * 3 + 2] = k - 20;
        }
        var model = Graph(("w", [40, 3], weights), ("b", [3], [0.1f, 0.2f, 0.3f]));
        model.Graph.Node.Add(Node("MatMul", ["x", "w"], ["xw"]));
        model.Graph.Node.Add(Node("Add", ["xw", "b"], ["y"]));
        model.Graph.Output.Add(new ValueInfoProto { Name = "y" });

        var report = ModelQuantizer.Quantize(model, (_, _) => ModelQuantizer.Mode.Blocks);
        Assert.Equal((1, 1, 1), (report.MatMuls, report.Blockwise, report.BiasesFolded));
        var node = Assert.Single(model.Graph.Node);
        Assert.Equal(("MatMulNBits", "com.microsoft"), (node.OpType, node.Domain));
        Assert.Equal(["x", "w_q8", "w_scales", "", "", "b"], node.Input);
        Assert.Equal("y", node.Output[0]);
        Assert.Equal(40, node.Attribute.Single(a => a.Name == "K").I);
        Assert.DoesNotContain(model.Graph.Initializer, t => t.Name == "w");

        var q = model.Graph.Initializer.Single(t => t.Name == "w_q8");
        var scales = MemoryMarshal.Cast<byte, float>(model.Graph.Initializer.Single(t => t.Name == "w_scales").RawData.Span);
        Assert.Equal([3L, 2, 32], q.Dims);
        for (var n = 0; n < 3; n++)
        {
            for (var k = 0; k < 40; k++)
            {
                var (block, at) = (k / 32, k % 32);
                var scale = scales[n * 2 + block];
                var value = (q.RawData[(n * 2 + block) * 32 + at] - 128) * scale;
                Assert.True(Math.Abs(value - weights[k * 3 + n]) <= scale / 2 + 1e-6, $"column {n}, row {k}: {value} against {weights[k * 3 + n]}");
            }
            // Padding past K is the zero point.
            Assert.Equal(128, q.RawData[(n * 2 + 1) * 32 + 8]);
        }
        Assert.Equal(1f, scales[2]); // the all-zero column's blocks: scale 1, not a division by zero
    }

    [Fact]
    public void Dynamic_products_share_a_weight_keep_graph_outputs_and_leave_an_unfoldable_add()
    {
        var weights = Enumerable.Range(0, 16).Select(i => (float)(i - 8) / 4).ToArray();
        var model = Graph(("w", [4, 4], weights), ("b", [4], [1f, 2f, 3f, 4f]));
        // Two products of one weight; the first's output is also a graph output, so its Add stays.
        model.Graph.Node.Add(Node("MatMul", ["x", "w"], ["a"]));
        model.Graph.Node.Add(Node("Add", ["a", "b"], ["a_biased"]));
        model.Graph.Node.Add(Node("MatMul", ["a_biased", "w"], ["c"]));
        model.Graph.Node.Add(Node("Add", ["b", "c"], ["y"]));
        model.Graph.Output.Add(new ValueInfoProto { Name = "a" });
        model.Graph.Output.Add(new ValueInfoProto { Name = "y" });

        var report = ModelQuantizer.Quantize(model, (_, _) => ModelQuantizer.Mode.Dynamic);
        Assert.Equal((2, 0, 1), (report.MatMuls, report.Blockwise, report.BiasesFolded));
        Assert.Equal(["DynamicQuantizeMatMul", "Add", "DynamicQuantizeMatMul"], model.Graph.Node.Select(n => n.OpType));
        Assert.Equal(["x", "w_quantized", "w_scale", "w_zero_point"], model.Graph.Node[0].Input);
        // The bias on the Add's left side is folded as well.
        Assert.Equal(["a_biased", "w_quantized", "w_scale", "w_zero_point", "b"], model.Graph.Node[2].Input);
        Assert.Equal("y", model.Graph.Node[2].Output[0]);
        Assert.Single(model.Graph.Initializer, t => t.Name == "w_quantized");
        var q = MemoryMarshal.Cast<byte, sbyte>(model.Graph.Initializer.Single(t => t.Name == "w_quantized").RawData.Span);
        var scales = MemoryMarshal.Cast<byte, float>(model.Graph.Initializer.Single(t => t.Name == "w_scale").RawData.Span);
        for (var i = 0; i < 16; i++)
        {
            Assert.True(Math.Abs(q[i] * scales[i % 4] - weights[i]) <= scales[i % 4] / 2 + 1e-6);
        }
    }

    private static ModelProto Graph(params (string Name, long[] Dims, float[] Values)[] initializers)
    {
        var model = new ModelProto { IrVersion = 8, Graph = new GraphProto { Name = "test" } };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = 17 });
        foreach (var (name, dims, values) in initializers)
        {
            var tensor = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Float, RawData = ByteString.CopyFrom(MemoryMarshal.AsBytes(values.AsSpan())) };
            tensor.Dims.Add(dims);
            model.Graph.Initializer.Add(tensor);
        }
        return model;
    }

    private static NodeProto Node(string op, string[] inputs, string[] outputs)
    {
        var node = new NodeProto { OpType = op, Name = op + "_" + outputs[0] };
        node.Input.Add(inputs);
        node.Output.Add(outputs);
        return node;
    }
}
