using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Sextant.Contracts;
using Sextant.Core.Artifacts;

namespace Sextant.Core.Registry;

/// <summary>
/// The model flavors Sextant reads itself: ONNX (signature from the graph's inputs and outputs, through ONNX
/// Runtime) and ML.NET model zips (signature from the model's input schema and the schema it outputs). Anything else
/// is opaque. A declared flavor must hold; an undeclared one is detected, falling back to opaque.
/// </summary>
internal static class ModelFlavors
{
    public const string Onnx = "onnx";
    public const string MlNet = "mlnet";
    public const string Opaque = "opaque";
    /// <summary>Models above this size are stored without reading their signature.</summary>
    public const long MaxInspectedBytes = 1L << 30;

    public sealed record ModelFile(string Path, string Sha256, long Size);

    public static string? Declared(string? flavor) => flavor switch
    {
        null or "" => null,
        Onnx or MlNet or Opaque => flavor,
        _ => throw SextantException.Invalid("flavor", $"'flavor' must be onnx, mlnet or opaque (any other files); got '{flavor}'."),
    };

    public static (string Flavor, ModelSignature? Signature) Detect(IReadOnlyList<ModelFile> files, string? declared, IBlobStore blobs)
    {
        if (declared == Opaque)
        {
            return (Opaque, null);
        }
        var onnx = files.Where(f => f.Path.EndsWith(".onnx", StringComparison.OrdinalIgnoreCase)).ToList();
        var zips = files.Where(f => f.Path.EndsWith(".zip", StringComparison.OrdinalIgnoreCase)).ToList();
        if (declared == Onnx)
        {
            var model = Single(onnx, "an .onnx file", files);
            return (Onnx, OnnxSignature(model, blobs) is var (signature, error) && error is null
                ? signature
                : throw SextantException.Invalid("flavor", $"'{Name(model)}' is declared ONNX but ONNX Runtime cannot load it: {error}"));
        }
        if (declared == MlNet)
        {
            var model = Single(zips, "an ML.NET model .zip", files);
            return (MlNet, MlNetSignature(model, blobs) is var (signature, error) && error is null
                ? signature
                : throw SextantException.Invalid("flavor", $"'{Name(model)}' is declared an ML.NET model but ML.NET cannot load it: {error}"));
        }
        // Undeclared: a flavor only when the file proves it.
        if (onnx.Count == 1 && OnnxSignature(onnx[0], blobs) is ({ } onnxSignature, null))
        {
            return (Onnx, onnxSignature);
        }
        if (zips.Count == 1 && MlNetSignature(zips[0], blobs) is ({ } mlnetSignature, null))
        {
            return (MlNet, mlnetSignature);
        }
        return (Opaque, null);
    }

    private static string Name(ModelFile file) => file.Path[(file.Path.LastIndexOf('/') + 1)..];

    private static ModelFile Single(List<ModelFile> candidates, string what, IReadOnlyList<ModelFile> all) => candidates.Count switch
    {
        1 => candidates[0],
        0 => throw SextantException.Invalid("flavor", $"The declared flavor needs {what} among the model's files; found {(all.Count == 0 ? "no files" : string.Join(", ", all.Take(10).Select(Name)))}."),
        _ => throw SextantException.Invalid("flavor", $"The declared flavor needs exactly one model file; found {candidates.Count}: {string.Join(", ", candidates.Take(10).Select(Name))}."),
    };

    private static (ModelSignature? Signature, string? Error) OnnxSignature(ModelFile file, IBlobStore blobs)
    {
        if (file.Size > MaxInspectedBytes)
        {
            return (null, $"larger than {MaxInspectedBytes >> 20} MiB");
        }
        try
        {
            using var stream = blobs.OpenRead(file.Sha256) ?? throw new IOException("its blob is missing");
            using var buffer = new MemoryStream((int)file.Size);
            stream.CopyTo(buffer);
            using var options = new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_DISABLE_ALL, LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_FATAL };
            using var session = new InferenceSession(buffer.ToArray(), options);
            return (new ModelSignature(Specs(session.InputMetadata), Specs(session.OutputMetadata)), null);
        }
        catch (Exception e) when (e is not OutOfMemoryException and not OperationCanceledException)
        {
            // Also where ONNX Runtime itself cannot start (no native library for this platform): an undeclared
            // model is then opaque, and a declared one is refused with the reason.
            return (null, OneLine(e is TypeInitializationException { InnerException: { } inner } ? inner.Message : e.Message));
        }
    }

    private static List<TensorSpec> Specs(IReadOnlyDictionary<string, NodeMetadata> metadata) =>
        [.. metadata.Select(m => new TensorSpec(m.Key, m.Value.IsTensor ? OnnxType(m.Value.ElementDataType) : m.Value.OnnxValueType.ToString().Replace("ONNX_TYPE_", "", StringComparison.Ordinal).ToLowerInvariant(),
            m.Value.IsTensor ? [.. m.Value.Dimensions.Select(d => (long)d)] : []))];

    private static string OnnxType(TensorElementType type) => type switch
    {
        TensorElementType.Float => "float32",
        TensorElementType.Double => "float64",
        TensorElementType.Float16 => "float16",
        TensorElementType.BFloat16 => "bfloat16",
        TensorElementType.String => "string",
        TensorElementType.Bool => "bool",
        _ => type.ToString().ToLowerInvariant(),
    };

    private static (ModelSignature? Signature, string? Error) MlNetSignature(ModelFile file, IBlobStore blobs)
    {
        if (file.Size > MaxInspectedBytes)
        {
            return (null, $"larger than {MaxInspectedBytes >> 20} MiB");
        }
        try
        {
            // Only to read the schema: ML.NET's zip reader needs to seek.
            using var stream = blobs.OpenSeekable(file.Sha256) ?? throw new IOException("its blob is missing");
            var context = new MLContext(seed: 0);
            var model = context.Model.Load(stream, out var input);
            if (input is null)
            {
                return (null, "the model holds no input schema");
            }
            var output = model.GetOutputSchema(input);
            var inputs = Columns(input);
            var inputNames = inputs.Select(c => c.Name).ToHashSet(StringComparer.Ordinal);
            // The outputs are what the model adds or changes, not the inputs passed through.
            var outputs = Columns(output).Where(c => !inputNames.Contains(c.Name) || !inputs.Contains(c)).ToList();
            return (new ModelSignature(inputs, outputs), null);
        }
        catch (Exception e) when (e is not OutOfMemoryException and not OperationCanceledException)
        {
            return (null, OneLine(e.Message));
        }
    }

    private static List<TensorSpec> Columns(DataViewSchema schema) =>
        [.. schema.Where(c => !c.IsHidden).Select(c => c.Type is VectorDataViewType vector
            ? new TensorSpec(c.Name, ColumnType(vector.ItemType), vector.Dimensions.Length == 0 ? [-1] : [.. vector.Dimensions.Select(d => d == 0 ? -1L : d)])
            : new TensorSpec(c.Name, ColumnType(c.Type), []))];

    private static string ColumnType(DataViewType type) => type.RawType switch
    {
        var t when t == typeof(float) => "float32",
        var t when t == typeof(double) => "float64",
        var t when t == typeof(bool) => "bool",
        var t when t == typeof(ReadOnlyMemory<char>) => "string",
        var t when t == typeof(int) => "int32",
        var t when t == typeof(long) => "int64",
        var t when t == typeof(uint) => type is KeyDataViewType ? "key" : "uint32",
        _ => type.ToString() ?? "unknown",
    };

    private static string OneLine(string message) => string.Join(' ', message.Split(['\r', '\n'], StringSplitOptions.RemoveEmptyEntries));
}
