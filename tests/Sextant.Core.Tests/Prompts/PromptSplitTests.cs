using Sextant.Contracts;
using Sextant.Core.Prompts;

namespace Sextant.Core.Tests.Prompts;

/// <summary>The A/B arm choice: proportions by weight over many users, and the same arm for the same user.</summary>
public sealed class PromptSplitTests
{
    [Theory]
    [InlineData(1, 1)]
    [InlineData(9, 1)]
    [InlineData(2, 3)]
    public void Arms_get_their_weight_s_share_of_users(double a, double b)
    {
        PromptSplitArm[] arms = [new("a", a), new("b", b)];
        const int users = 20_000;
        var toB = Enumerable.Range(0, users).Count(i => PromptService.Pick(arms, "support/answer", $"user-{i}") == "b");
        var expected = users * b / (a + b);
        var sd = Math.Sqrt(users * (b / (a + b)) * (a / (a + b)));
        // Five standard deviations: a correct split fails this about once in 1.7 million runs.
        Assert.InRange(toB, expected - 5 * sd, expected + 5 * sd);
    }

    [Fact]
    public void A_user_stays_on_one_arm_and_prompts_split_independently()
    {
        PromptSplitArm[] arms = [new("a", 1), new("b", 1), new("c", 1)];
        for (var i = 0; i < 100; i++)
        {
            var first = PromptService.Pick(arms, "p1", $"u{i}");
            Assert.All(Enumerable.Range(0, 5), _ => Assert.Equal(first, PromptService.Pick(arms, "p1", $"u{i}")));
        }
        // The arm depends on the prompt too: users are not on the same arm of every test.
        var same = Enumerable.Range(0, 3000).Count(i => PromptService.Pick(arms, "p1", $"u{i}") == PromptService.Pick(arms, "p2", $"u{i}"));
        Assert.InRange(same, 850, 1150);
    }
}
