using Sextant.Core.Tracking.Search;

namespace Sextant.Core.Tests.Tracking.Search;

public class SearchOrderParserTests
{
    private static OrderTerm Single(string clause, SearchTarget target = SearchTarget.Runs) =>
        Assert.Single(SearchOrderParser.Parse([clause], target));

    private static void AssertFails(string clause, int position, string fragment, SearchTarget target = SearchTarget.Runs)
    {
        var ex = Assert.Throws<SearchSyntaxException>(() => SearchOrderParser.Parse([clause], target));
        Assert.Equal(position, ex.Position);
        Assert.StartsWith($"Invalid order_by clause '{clause}': ", ex.Message, StringComparison.Ordinal);
        Assert.EndsWith($"(at position {position})", ex.Message, StringComparison.Ordinal);
        Assert.Contains(fragment, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_returns_no_terms_for_null_or_empty_order_by()
    {
        Assert.Empty(SearchOrderParser.Parse(null, SearchTarget.Runs));
        Assert.Empty(SearchOrderParser.Parse([], SearchTarget.Experiments));
    }

    [Fact]
    public void Parse_reads_terms_for_every_orderable_run_entity_in_order()
    {
        var terms = SearchOrderParser.Parse(
            ["metrics.acc DESC", "params.lr", "tags.`a b` desc", "attributes.start_time ASC", "end_time"],
            SearchTarget.Runs);

        Assert.Equal(
            [
                new OrderTerm(FilterEntity.Metric, "acc", false),
                new OrderTerm(FilterEntity.Param, "lr", true),
                new OrderTerm(FilterEntity.Tag, "a b", false),
                new OrderTerm(FilterEntity.Attribute, "start_time", true),
                new OrderTerm(FilterEntity.Attribute, "end_time", true),
            ],
            terms);
    }

    [Theory]
    [InlineData("metrics.acc", true)]
    [InlineData("metrics.acc ASC", true)]
    [InlineData("metrics.acc asc", true)]
    [InlineData("metrics.acc DESC", false)]
    [InlineData("metrics.acc Desc", false)]
    [InlineData("  metrics.acc   desc  ", false)]
    public void Parse_defaults_to_ascending_and_reads_direction_case_insensitively(string clause, bool ascending)
    {
        var term = Single(clause);
        Assert.Equal("acc", term.Key);
        Assert.Equal(ascending, term.Ascending);
    }

    [Fact]
    public void Parse_reads_double_quoted_and_dotted_keys()
    {
        Assert.Equal("mlflow.runName", Single("tags.\"mlflow.runName\" DESC").Key);
        Assert.Equal("mlflow.user", Single("tags.mlflow.user").Key);
    }

    [Theory]
    [InlineData("run_id")]
    [InlineData("run_name")]
    [InlineData("status")]
    [InlineData("user_id")]
    [InlineData("artifact_uri")]
    [InlineData("lifecycle_stage")]
    [InlineData("start_time")]
    [InlineData("end_time")]
    public void Parse_accepts_every_run_attribute(string attribute)
    {
        Assert.Equal(new OrderTerm(FilterEntity.Attribute, attribute, true), Single($"attributes.{attribute}"));
        Assert.Equal(new OrderTerm(FilterEntity.Attribute, attribute, false), Single($"{attribute} DESC"));
    }

    [Theory]
    [InlineData("attributes.name", "run_name")]
    [InlineData("created DESC", "start_time")]
    public void Parse_normalizes_run_attribute_aliases(string clause, string key)
    {
        Assert.Equal(key, Single(clause).Key);
    }

    [Theory]
    [InlineData("name")]
    [InlineData("creation_time")]
    [InlineData("last_update_time")]
    [InlineData("experiment_id")]
    public void Parse_accepts_every_experiment_attribute(string attribute)
    {
        var term = Single($"attributes.{attribute} DESC", SearchTarget.Experiments);
        Assert.Equal(new OrderTerm(FilterEntity.Attribute, attribute, false), term);
    }

    [Theory]
    [InlineData("metrics.acc")]
    [InlineData("params.lr")]
    [InlineData("tags.owner")]
    public void Parse_rejects_non_attributes_when_ordering_experiments(string clause)
    {
        AssertFails(clause, 0, "cannot be used to order experiments", SearchTarget.Experiments);
    }

    [Fact]
    public void Parse_rejects_datasets()
    {
        AssertFails("datasets.name DESC", 0, "datasets cannot be used in order_by");
    }

    [Theory]
    [InlineData("attributes.colour", nameof(SearchTarget.Runs), "unknown run attribute 'colour'; expected one of run_id, run_name")]
    [InlineData("experiment_id", nameof(SearchTarget.Runs), "unknown run attribute 'experiment_id'")]
    [InlineData("status", nameof(SearchTarget.Experiments), "expected one of name, creation_time, last_update_time, experiment_id")]
    public void Parse_rejects_unknown_attributes(string clause, string target, string fragment)
    {
        AssertFails(clause, 0, fragment, Enum.Parse<SearchTarget>(target));
    }

    [Fact]
    public void Parse_rejects_an_invalid_direction_at_its_position()
    {
        AssertFails("metrics.acc sideways", 12, "expected ASC, DESC or end of clause but found 'sideways'");
    }

    [Fact]
    public void Parse_rejects_tokens_after_the_direction()
    {
        AssertFails("metrics.acc DESC extra", 17, "expected end of clause but found 'extra'");
    }

    [Theory]
    [InlineData("", 0, "expected an identifier such as metrics.acc")]
    [InlineData("   ", 3, "but found end of clause")]
    [InlineData("DESC", 0, "expected an identifier such as metrics.acc")]
    public void Parse_rejects_a_clause_without_an_identifier(string clause, int position, string fragment)
    {
        AssertFails(clause, position, fragment);
    }

    [Fact]
    public void Parse_rejects_unknown_prefix_and_empty_key()
    {
        AssertFails("metricz.acc", 0, "unknown entity prefix 'metricz'");
        AssertFails("metrics.", 0, "empty key");
    }

    [Fact]
    public void Parse_rejects_an_unterminated_quoted_key_at_its_opening_quote()
    {
        AssertFails("tags.`a b DESC", 5, "unterminated quoted text");
    }
}
