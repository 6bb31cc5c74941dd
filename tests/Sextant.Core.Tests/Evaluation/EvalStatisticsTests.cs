using Sextant.Core.Evaluation;

namespace Sextant.Core.Tests.Evaluation;

/// <summary>The statistics behind comparisons and online sampling, checked against what they must give.</summary>
public sealed class EvalStatisticsTests
{
    [Fact]
    public void The_paired_bootstrap_interval_covers_the_mean_difference_and_excludes_zero_only_for_a_real_change()
    {
        // Half the items got 0.2 better, half unchanged: mean 0.1, clearly above zero.
        var better = Enumerable.Range(0, 200).Select(i => i % 2 == 0 ? 0.2 : 0.0).ToArray();
        var (low, high) = ExperimentService.Bootstrap(better);
        Assert.InRange(0.1, low, high);
        Assert.True(low > 0.08 && high < 0.12, $"{low} {high}");
        // Noise around zero: the interval holds zero.
        var random = new Random(7);
        var noise = Enumerable.Range(0, 200).Select(_ => random.NextDouble() - 0.5).ToArray();
        var (noiseLow, noiseHigh) = ExperimentService.Bootstrap(noise);
        Assert.True(noiseLow < noise.Average() && noise.Average() < noiseHigh);
        Assert.True(noiseLow < 0 && noiseHigh > 0, $"{noiseLow} {noiseHigh}");
        // The same data gives the same interval.
        Assert.Equal((low, high), ExperimentService.Bootstrap(better));
    }

    [Theory]
    [InlineData(0.1)]
    [InlineData(0.3)]
    [InlineData(0.75)]
    public void Online_sampling_takes_the_rate_of_traces_and_always_decides_the_same_for_one(double rate)
    {
        var ids = Enumerable.Range(0, 20_000).Select(i => Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(BitConverter.GetBytes(i)))[..32]).ToList();
        var share = ids.Count(id => ScoreService.Sampled("rule", id, rate)) / (double)ids.Count;
        // 20,000 draws: a binomial standard error under 0.0035; four of them is far outside chance.
        Assert.InRange(share, rate - 0.015, rate + 0.015);
        Assert.All(ids.Take(100), id => Assert.Equal(ScoreService.Sampled("rule", id, rate), ScoreService.Sampled("rule", id, rate)));
        Assert.False(ScoreService.Sampled("rule", ids[0], 0));
        Assert.True(ScoreService.Sampled("rule", ids[0], 1));
    }

    [Fact]
    public void Answers_split_into_sentences_for_groundedness()
    {
        Assert.Equal(["Refunds take 5 days.", "Really?", "Yes!", "Within 3.5 days."],
            Graders.Sentences("Refunds take 5 days.  Really? Yes! Within 3.5 days."));
        Assert.Empty(Graders.Sentences("   "));
    }

    [Fact]
    public void The_question_comes_from_variables_messages_or_text()
    {
        static System.Text.Json.JsonElement Json(string text) => System.Text.Json.JsonDocument.Parse(text).RootElement.Clone();
        Assert.Equal("Why?", Graders.Question(Json("""{"question": "Why?", "context": "x"}"""), null));
        Assert.Equal("How?", Graders.Question(Json("""{"ask": "How?"}"""), "ask"));
        Assert.Equal("last", Graders.Question(Json("""[{"role": "user", "content": "first"}, {"role": "assistant", "content": "a"}, {"role": "user", "content": "last"}]"""), null));
        Assert.Equal("plain", Graders.Question(Json("\"plain\""), null));
        Assert.Null(Graders.Question(Json("""{"other": 1}"""), null));
    }
}
