using System.Runtime.InteropServices;
using Google.Protobuf;
using Sextant.Core.Evaluation.Onnx;

namespace Sextant.Core.Evaluation;

/// <summary>
/// 8-bit quantisation of an ONNX transformer's weights, done once when the local embedder first loads its model.
/// Every MatMul whose right side is a constant 2-D float matrix becomes one of ONNX Runtime's quantised products
/// (DefaultMode says which): DynamicQuantizeMatMul (int8 weights with one scale per output column, activations
/// quantised per call) or MatMulNBits (8-bit weights with one scale per block of 32 inputs, float activations), with
/// a following bias Add folded in. Large embedding tables are stored as int8 with one scale per row and scaled back
/// after the lookup. The weights shrink fourfold and the products run on integer instructions where it is accurate.
/// </summary>
internal static class ModelQuantizer
{
    private const string MicrosoftDomain = "com.microsoft";
    /// <summary>Embedding tables smaller than this (position and token-type tables) stay in float.</summary>
    private const long MinTableElements = 1 << 20;

    internal sealed record Report(int MatMuls, int Blockwise, int BiasesFolded, int Tables, long BytesBefore, long BytesAfter);

    public static Report Quantize(string sourcePath, string targetPath)
    {
        ModelProto model;
        using (var source = File.OpenRead(sourcePath))
        {
            model = ModelProto.Parser.ParseFrom(source);
        }
        var report = Quantize(model);
        var partial = $"{targetPath}.{Guid.NewGuid():N}.part";
        using (var target = File.Create(partial))
        {
            model.WriteTo(target);
            target.Flush(flushToDisk: true);
        }
        File.Move(partial, targetPath, overwrite: true);
        return report;
    }

    internal enum Mode
    {
        None,
        Dynamic,
        Blocks,
    }

    internal static Report Quantize(ModelProto model, Func<NodeProto, TensorProto, Mode>? choose = null)
    {
        choose ??= DefaultMode;
        var graph = model.Graph ?? throw new InvalidDataException("The model has no graph.");
        var initializers = graph.Initializer.ToDictionary(t => t.Name, StringComparer.Ordinal);
        var bytesBefore = graph.Initializer.Sum(t => (long)t.RawData.Length + t.FloatData.Count * 4L);
        var consumers = new Dictionary<string, List<NodeProto>>(StringComparer.Ordinal);
        foreach (var node in graph.Node)
        {
            foreach (var input in node.Input)
            {
                if (!consumers.TryGetValue(input, out var list))
                {
                    consumers[input] = list = [];
                }
                list.Add(node);
            }
        }

        var replaced = new HashSet<string>(StringComparer.Ordinal);
        var quantizedWeights = new Dictionary<string, (TensorProto, TensorProto, TensorProto?)>(StringComparer.Ordinal);
        var removedNodes = new HashSet<NodeProto>();
        var added = new List<(NodeProto After, NodeProto[] Nodes)>();
        int matMuls = 0, blockwise = 0, biases = 0, tables = 0;
        foreach (var node in graph.Node.ToList())
        {
            if (node.Domain.Length == 0 && node.OpType == "MatMul" && node.Input.Count == 2
                && initializers.TryGetValue(node.Input[1], out var weight) && IsFloatMatrix(weight) && choose(node, weight) is var mode and not Mode.None)
            {
                var output = node.Output[0];
                var inBlocks = mode == Mode.Blocks;
                blockwise += inBlocks ? 1 : 0;
                if (inBlocks)
                {
                    if (!quantizedWeights.TryGetValue(weight.Name, out var parts))
                    {
                        quantizedWeights[weight.Name] = parts = QuantizeBlocks(weight);
                        graph.Initializer.Add(parts.Item1);
                        graph.Initializer.Add(parts.Item2);
                        replaced.Add(weight.Name);
                    }
                    node.OpType = "MatMulNBits";
                    node.Domain = MicrosoftDomain;
                    node.Input[1] = parts.Item1.Name;
                    node.Input.Add(parts.Item2.Name);
                    node.Attribute.Add(IntAttribute("K", weight.Dims[0]));
                    node.Attribute.Add(IntAttribute("N", weight.Dims[1]));
                    node.Attribute.Add(IntAttribute("bits", 8));
                    node.Attribute.Add(IntAttribute("block_size", BlockSize));
                    node.Attribute.Add(IntAttribute("accuracy_level", 4));
                }
                else
                {
                    if (!quantizedWeights.TryGetValue(weight.Name, out var parts))
                    {
                        // A weight two products share is quantised once.
                        quantizedWeights[weight.Name] = parts = QuantizeColumns(weight);
                        graph.Initializer.Add(parts.Item1);
                        graph.Initializer.Add(parts.Item2);
                        graph.Initializer.Add(parts.Item3!);
                        replaced.Add(weight.Name);
                    }
                    node.OpType = "DynamicQuantizeMatMul";
                    node.Domain = MicrosoftDomain;
                    node.Input[1] = parts.Item1.Name;
                    node.Input.Add(parts.Item2.Name);
                    node.Input.Add(parts.Item3!.Name);
                }
                matMuls++;
                // MatMul then Add of a constant bias of one value per column: the bias goes into the quantised product.
                if (consumers.TryGetValue(output, out var next) && next.Count == 1 && next[0] is { OpType: "Add", Domain: "" } add
                    && add.Input.Count == 2 && add.Input.IndexOf(output) is var at and >= 0
                    && initializers.TryGetValue(add.Input[1 - at], out var bias) && bias.DataType == (int)TensorProto.Types.DataType.Float
                    && bias.Dims.Count == 1 && bias.Dims[0] == weight.Dims[1] && !IsGraphOutput(model, output))
                {
                    if (inBlocks)
                    {
                        // MatMulNBits: A, B, scales, zero points, group index, bias.
                        node.Input.Add("");
                        node.Input.Add("");
                    }
                    node.Input.Add(bias.Name);
                    node.Output[0] = add.Output[0];
                    removedNodes.Add(add);
                    biases++;
                }
            }
            else if (node.Domain.Length == 0 && node.OpType == "Gather" && node.Input.Count == 2
                && initializers.TryGetValue(node.Input[0], out var table) && IsFloatMatrix(table) && !replaced.Contains(table.Name) && choose(node, table) != Mode.None
                && table.Dims[0] * table.Dims[1] >= MinTableElements && node.Attribute.All(a => a.Name != "axis" || a.I == 0))
            {
                var (quantized, scales) = QuantizeRows(table);
                graph.Initializer.Add(quantized);
                graph.Initializer.Add(scales);
                replaced.Add(table.Name);
                var output = node.Output[0];
                var prefix = string.IsNullOrEmpty(node.Name) ? output : node.Name;
                node.Input[0] = quantized.Name;
                node.Output[0] = prefix + "_int8";
                var scaleLookup = new NodeProto { Name = prefix + "_scale_gather", OpType = "Gather", Input = { scales.Name, node.Input[1] }, Output = { prefix + "_scale" } };
                var cast = new NodeProto
                {
                    Name = prefix + "_cast",
                    OpType = "Cast",
                    Input = { prefix + "_int8" },
                    Output = { prefix + "_float" },
                    Attribute = { new AttributeProto { Name = "to", Type = AttributeProto.Types.AttributeType.Int, I = (long)TensorProto.Types.DataType.Float } },
                };
                var scaleBack = new NodeProto { Name = prefix + "_dequantize", OpType = "Mul", Input = { prefix + "_float", prefix + "_scale" }, Output = { output } };
                added.Add((node, [scaleLookup, cast, scaleBack]));
                tables++;
            }
        }

        foreach (var (after, nodes) in added)
        {
            var index = graph.Node.IndexOf(after);
            for (var i = 0; i < nodes.Length; i++)
            {
                graph.Node.Insert(index + 1 + i, nodes[i]);
            }
        }
        foreach (var node in removedNodes)
        {
            graph.Node.Remove(node);
        }
        // A float weight goes only once nothing reads it any more.
        var stillRead = graph.Node.SelectMany(n => n.Input).ToHashSet(StringComparer.Ordinal);
        foreach (var name in replaced.Where(n => !stillRead.Contains(n)))
        {
            graph.Initializer.Remove(initializers[name]);
        }
        if (matMuls > 0 && model.OpsetImport.All(o => o.Domain != MicrosoftDomain))
        {
            model.OpsetImport.Add(new OperatorSetIdProto { Domain = MicrosoftDomain, Version = 1 });
        }
        var bytesAfter = graph.Initializer.Sum(t => (long)t.RawData.Length + t.FloatData.Count * 4L);
        return new Report(matMuls, blockwise, biases, tables, bytesBefore, bytesAfter);
    }

    private static bool IsGraphOutput(ModelProto model, string name) => model.Graph.Output.Any(o => o.Name == name);

    private static bool IsFloatMatrix(TensorProto tensor) =>
        tensor.DataType == (int)TensorProto.Types.DataType.Float && tensor.Dims.Count == 2 && tensor.Dims[0] > 0 && tensor.Dims[1] > 0
        && (tensor.RawData.Length == tensor.Dims[0] * tensor.Dims[1] * 4 || tensor.FloatData.Count == tensor.Dims[0] * tensor.Dims[1]);

    private static ReadOnlySpan<float> Floats(TensorProto tensor) =>
        tensor.RawData.Length > 0 ? MemoryMarshal.Cast<byte, float>(tensor.RawData.Span) : tensor.FloatData.ToArray();

    private const int BlockSize = 32;

    /// <summary>
    /// Chosen by measurement on all-MiniLM-L6-v2 (bench/RESULTS.md §15b): the attention's square projections take
    /// activations quantised per call (the fast path); the feed-forward layers' inputs have outlier channels that one
    /// 8-bit range per tensor cannot hold (the sentence vectors drifted to a cosine of 0.967), so those keep float
    /// activations against 8-bit weights in blocks of 32 (MatMulNBits). Embedding tables go to 8 bits per row.
    /// </summary>
    internal static Mode DefaultMode(NodeProto node, TensorProto weight) =>
        node.OpType == "Gather" || weight.Dims[0] == weight.Dims[1] ? Mode.Dynamic : Mode.Blocks;

    private static AttributeProto IntAttribute(string name, long value) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = value };

    /// <summary>
    /// MatMulNBits' layout for 8 bits: for each output column, blocks of 32 inputs, each with its own scale, stored as
    /// unsigned bytes around the default zero point 128; B is [N, blocks, 32], the scales [N * blocks].
    /// </summary>
    private static (TensorProto Quantized, TensorProto Scales, TensorProto? None) QuantizeBlocks(TensorProto weight)
    {
        var values = Floats(weight);
        int rows = (int)weight.Dims[0], columns = (int)weight.Dims[1];
        var blocks = (rows + BlockSize - 1) / BlockSize;
        var quantized = new byte[columns * blocks * BlockSize];
        var scales = new float[columns * blocks];
        for (var c = 0; c < columns; c++)
        {
            for (var b = 0; b < blocks; b++)
            {
                var max = 0f;
                for (var k = b * BlockSize; k < Math.Min(rows, (b + 1) * BlockSize); k++)
                {
                    max = Math.Max(max, Math.Abs(values[k * columns + c]));
                }
                var scale = max == 0 ? 1 : max / 127f;
                scales[c * blocks + b] = scale;
                for (var j = 0; j < BlockSize; j++)
                {
                    var k = b * BlockSize + j;
                    var q = k < rows ? Math.Clamp(MathF.Round(values[k * columns + c] / scale), -127, 127) : 0;
                    quantized[(c * blocks + b) * BlockSize + j] = (byte)(q + 128);
                }
            }
        }
        return (
            Tensor(weight.Name + "_q8", TensorProto.Types.DataType.Uint8, quantized, columns, blocks, BlockSize),
            Tensor(weight.Name + "_scales", TensorProto.Types.DataType.Float, MemoryMarshal.AsBytes(scales.AsSpan()), columns * blocks),
            null);
    }

    /// <summary>Symmetric int8 with one scale per column of a [K, N] matrix.</summary>
    private static (TensorProto Quantized, TensorProto Scale, TensorProto? ZeroPoint) QuantizeColumns(TensorProto weight)
    {
        var values = Floats(weight);
        int rows = (int)weight.Dims[0], columns = (int)weight.Dims[1];
        var scales = new float[columns];
        for (var r = 0; r < rows; r++)
        {
            for (var c = 0; c < columns; c++)
            {
                scales[c] = Math.Max(scales[c], Math.Abs(values[r * columns + c]));
            }
        }
        for (var c = 0; c < columns; c++)
        {
            scales[c] = scales[c] == 0 ? 1 : scales[c] / 127f;
        }
        var quantized = new sbyte[rows * columns];
        for (var r = 0; r < rows; r++)
        {
            for (var c = 0; c < columns; c++)
            {
                quantized[r * columns + c] = (sbyte)Math.Clamp(MathF.Round(values[r * columns + c] / scales[c]), -127, 127);
            }
        }
        return (
            Tensor(weight.Name + "_quantized", TensorProto.Types.DataType.Int8, MemoryMarshal.AsBytes(quantized.AsSpan()), rows, columns),
            Tensor(weight.Name + "_scale", TensorProto.Types.DataType.Float, MemoryMarshal.AsBytes(scales.AsSpan()), columns),
            Tensor(weight.Name + "_zero_point", TensorProto.Types.DataType.Int8, new byte[columns], columns));
    }

    /// <summary>Symmetric int8 with one scale per row of a [V, D] table; the scales as a [V, 1] table looked up beside it.</summary>
    private static (TensorProto Quantized, TensorProto Scales) QuantizeRows(TensorProto table)
    {
        var values = Floats(table);
        int rows = (int)table.Dims[0], columns = (int)table.Dims[1];
        var scales = new float[rows];
        var quantized = new sbyte[rows * columns];
        for (var r = 0; r < rows; r++)
        {
            var row = values.Slice(r * columns, columns);
            var max = 0f;
            foreach (var v in row)
            {
                max = Math.Max(max, Math.Abs(v));
            }
            var scale = max == 0 ? 1 : max / 127f;
            scales[r] = scale;
            for (var c = 0; c < columns; c++)
            {
                quantized[r * columns + c] = (sbyte)Math.Clamp(MathF.Round(row[c] / scale), -127, 127);
            }
        }
        return (
            Tensor(table.Name + "_quantized", TensorProto.Types.DataType.Int8, MemoryMarshal.AsBytes(quantized.AsSpan()), rows, columns),
            Tensor(table.Name + "_row_scale", TensorProto.Types.DataType.Float, MemoryMarshal.AsBytes(scales.AsSpan()), rows, 1));
    }

    private static TensorProto Tensor(string name, TensorProto.Types.DataType type, ReadOnlySpan<byte> data, params long[] dims)
    {
        var tensor = new TensorProto { Name = name, DataType = (int)type, RawData = ByteString.CopyFrom(data) };
        tensor.Dims.Add(dims);
        return tensor;
    }
}
