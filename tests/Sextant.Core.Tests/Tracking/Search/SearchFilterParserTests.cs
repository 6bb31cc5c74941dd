using Sextant.Core.Tracking.Search;

namespace Sextant.Core.Tests.Tracking.Search;

public class SearchFilterParserTests
{
    private static FilterComparison Single(string filter, SearchTarget target = SearchTarget.Runs) =>
        Assert.Single(SearchFilterParser.Parse(filter, target));

    private static void AssertFails(string filter, int position, string fragment, SearchTarget target = SearchTarget.Runs)
    {
        var ex = Assert.Throws<SearchSyntaxException>(() => SearchFilterParser.Parse(filter, target));
        Assert.Equal(position, ex.Position);
        Assert.StartsWith($"Invalid filter at position {position}: ", ex.Message, StringComparison.Ordinal);
        Assert.Contains(fragment, ex.Message, StringComparison.Ordinal);
    }

    // ---- happy paths ----

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("   \t ")]
    public void Parse_returns_no_comparisons_for_null_empty_or_blank_filter(string? filter)
    {
        Assert.Empty(SearchFilterParser.Parse(filter, SearchTarget.Runs));
    }

    [Fact]
    public void Parse_reads_metric_comparison_with_number_value()
    {
        var c = Single("metrics.acc > 0.9");
        Assert.Equal(FilterEntity.Metric, c.Entity);
        Assert.Equal("acc", c.Key);
        Assert.Equal(FilterOp.Gt, c.Op);
        Assert.Equal(0.9, c.Value.Number);
        Assert.Null(c.Value.Text);
        Assert.Null(c.Value.List);
        Assert.Equal(0, c.Position);
    }

    [Theory]
    [InlineData("=", nameof(FilterOp.Eq))]
    [InlineData("!=", nameof(FilterOp.NotEq))]
    [InlineData("<>", nameof(FilterOp.NotEq))]
    [InlineData("<", nameof(FilterOp.Lt))]
    [InlineData("<=", nameof(FilterOp.Le))]
    [InlineData(">", nameof(FilterOp.Gt))]
    [InlineData(">=", nameof(FilterOp.Ge))]
    public void Parse_reads_every_numeric_operator_for_metrics(string op, string expected)
    {
        Assert.Equal(Enum.Parse<FilterOp>(expected), Single($"metrics.loss {op} 1").Op);
    }

    [Theory]
    [InlineData("=", nameof(FilterOp.Eq))]
    [InlineData("!=", nameof(FilterOp.NotEq))]
    [InlineData("<>", nameof(FilterOp.NotEq))]
    [InlineData("LIKE", nameof(FilterOp.Like))]
    [InlineData("ILIKE", nameof(FilterOp.ILike))]
    public void Parse_reads_every_string_operator_for_params(string op, string expected)
    {
        var c = Single($"params.optimizer {op} 'adam%'");
        Assert.Equal(FilterEntity.Param, c.Entity);
        Assert.Equal(Enum.Parse<FilterOp>(expected), c.Op);
        Assert.Equal("adam%", c.Value.Text);
    }

    [Fact]
    public void Parse_reads_operators_without_surrounding_whitespace()
    {
        var c = Single("metrics.acc>=-0.5");
        Assert.Equal(FilterOp.Ge, c.Op);
        Assert.Equal(-0.5, c.Value.Number);
    }

    [Theory]
    [InlineData("42", 42.0)]
    [InlineData("-1", -1.0)]
    [InlineData("+2.5", 2.5)]
    [InlineData(".5", 0.5)]
    [InlineData("1e3", 1000.0)]
    [InlineData("1.5E-2", 0.015)]
    [InlineData("-3.25e+2", -325.0)]
    public void Parse_reads_numbers_with_sign_decimals_and_exponent(string literal, double expected)
    {
        Assert.Equal(expected, Single($"metrics.x = {literal}").Value.Number);
    }

    [Theory]
    [InlineData("tags.team = 'core'", "core")]
    [InlineData("tags.team = \"core\"", "core")]
    [InlineData("tags.team = 'it''s'", "it's")]
    [InlineData("tags.team = \"say \"\"hi\"\"\"", "say \"hi\"")]
    [InlineData("tags.team = ''", "")]
    [InlineData("tags.team = 'a = b AND c'", "a = b AND c")]
    public void Parse_reads_single_and_double_quoted_strings_with_doubled_quote_escapes(string filter, string expected)
    {
        var c = Single(filter);
        Assert.Equal(FilterEntity.Tag, c.Entity);
        Assert.Equal(expected, c.Value.Text);
        Assert.Null(c.Value.Number);
    }

    [Fact]
    public void Parse_reads_backtick_quoted_metric_key_with_spaces()
    {
        var c = Single("metrics.`my acc` > 1");
        Assert.Equal(FilterEntity.Metric, c.Entity);
        Assert.Equal("my acc", c.Key);
    }

    [Fact]
    public void Parse_reads_double_quoted_tag_key_with_dots()
    {
        var c = Single("tags.\"mlflow.runName\" = 'x'");
        Assert.Equal("mlflow.runName", c.Key);
        Assert.Equal("x", c.Value.Text);
    }

    [Theory]
    [InlineData("tags.mlflow.runName = 'x'", "mlflow.runName")]
    [InlineData("params.a-b/c:d_1.2 = 'x'", "a-b/c:d_1.2")]
    [InlineData("params.1st = 'x'", "1st")]
    public void Parse_reads_unquoted_keys_with_dots_and_punctuation(string filter, string key)
    {
        Assert.Equal(key, Single(filter).Key);
    }

    [Theory]
    [InlineData("metric.a = 1", nameof(FilterEntity.Metric))]
    [InlineData("METRICS.a = 1", nameof(FilterEntity.Metric))]
    [InlineData("param.a = 'x'", nameof(FilterEntity.Param))]
    [InlineData("Parameters.a = 'x'", nameof(FilterEntity.Param))]
    [InlineData("parameter.a = 'x'", nameof(FilterEntity.Param))]
    [InlineData("tag.a = 'x'", nameof(FilterEntity.Tag))]
    [InlineData("attribute.status = 'x'", nameof(FilterEntity.Attribute))]
    [InlineData("attr.status = 'x'", nameof(FilterEntity.Attribute))]
    [InlineData("run.status = 'x'", nameof(FilterEntity.Attribute))]
    [InlineData("dataset.name = 'x'", nameof(FilterEntity.Dataset))]
    [InlineData("DATASETS.name = 'x'", nameof(FilterEntity.Dataset))]
    public void Parse_accepts_every_entity_prefix_alias_case_insensitively(string filter, string entity)
    {
        Assert.Equal(Enum.Parse<FilterEntity>(entity), Single(filter).Entity);
    }

    [Fact]
    public void Parse_treats_bare_identifier_as_attribute()
    {
        var c = Single("status = 'RUNNING'");
        Assert.Equal(FilterEntity.Attribute, c.Entity);
        Assert.Equal("status", c.Key);
        Assert.Equal("RUNNING", c.Value.Text);
    }

    [Fact]
    public void Parse_reads_in_list_of_single_quoted_strings()
    {
        var c = Single("attributes.status IN ('RUNNING', 'FINISHED')");
        Assert.Equal(FilterOp.In, c.Op);
        Assert.Equal(["RUNNING", "FINISHED"], c.Value.List!);
        Assert.Null(c.Value.Text);
        Assert.Null(c.Value.Number);
    }

    [Fact]
    public void Parse_reads_not_in_list_of_double_quoted_strings()
    {
        var c = Single("tags.env NOT IN (\"dev\",\"it's\")");
        Assert.Equal(FilterOp.NotIn, c.Op);
        Assert.Equal(["dev", "it's"], c.Value.List!);
    }

    [Fact]
    public void Parse_reads_keywords_case_insensitively()
    {
        var result = SearchFilterParser.Parse(
            "params.a like 'x%' and tags.b not in ('y') And tags.c iLiKe 'z' AND run_id in ('r1')",
            SearchTarget.Runs);
        Assert.Equal([FilterOp.Like, FilterOp.NotIn, FilterOp.ILike, FilterOp.In], result.Select(c => c.Op));
    }

    [Fact]
    public void Parse_joins_multiple_clauses_with_and_and_records_their_positions()
    {
        var result = SearchFilterParser.Parse(
            "metrics.acc > 0.9 AND params.lr = '0.01' AND tags.`team name` = 'core'", SearchTarget.Runs);
        Assert.Equal(3, result.Count);
        Assert.Equal([FilterEntity.Metric, FilterEntity.Param, FilterEntity.Tag], result.Select(c => c.Entity));
        Assert.Equal(["acc", "lr", "team name"], result.Select(c => c.Key));
        Assert.Equal([0, 22, 45], result.Select(c => c.Position));
    }

    [Theory]
    [InlineData("run_id")]
    [InlineData("run_name")]
    [InlineData("status")]
    [InlineData("user_id")]
    [InlineData("artifact_uri")]
    [InlineData("lifecycle_stage")]
    public void Parse_accepts_string_run_attributes_with_string_operators(string attribute)
    {
        var c = Single($"attributes.{attribute} ILIKE '%a%'");
        Assert.Equal(FilterEntity.Attribute, c.Entity);
        Assert.Equal(attribute, c.Key);
        Assert.Equal(FilterOp.ILike, c.Op);
    }

    [Theory]
    [InlineData("start_time")]
    [InlineData("end_time")]
    public void Parse_accepts_numeric_run_attributes_with_number_values(string attribute)
    {
        var c = Single($"attributes.{attribute} <= 1700000000000");
        Assert.Equal(attribute, c.Key);
        Assert.Equal(1700000000000d, c.Value.Number);
    }

    [Fact]
    public void Parse_normalizes_created_to_start_time()
    {
        Assert.Equal("start_time", Single("created > 5").Key);
    }

    [Theory]
    [InlineData("attributes.name = 'a'")]
    [InlineData("name = 'a'")]
    public void Parse_normalizes_name_to_run_name_when_searching_runs(string filter)
    {
        Assert.Equal("run_name", Single(filter).Key);
    }

    [Fact]
    public void Parse_accepts_experiment_attributes_and_tags_when_searching_experiments()
    {
        var result = SearchFilterParser.Parse(
            "name LIKE 'exp%' AND attributes.creation_time > 10 AND last_update_time <= 20 AND tags.owner = 'me'",
            SearchTarget.Experiments);
        Assert.Equal(["name", "creation_time", "last_update_time", "owner"], result.Select(c => c.Key));
        Assert.Equal(
            [FilterEntity.Attribute, FilterEntity.Attribute, FilterEntity.Attribute, FilterEntity.Tag],
            result.Select(c => c.Entity));
    }

    [Theory]
    [InlineData("datasets.name = 'train'", "name")]
    [InlineData("datasets.digest LIKE 'ab%'", "digest")]
    [InlineData("datasets.context IN ('training', 'eval')", "context")]
    public void Parse_accepts_dataset_fields_when_searching_runs(string filter, string key)
    {
        var c = Single(filter);
        Assert.Equal(FilterEntity.Dataset, c.Entity);
        Assert.Equal(key, c.Key);
    }

    // ---- error paths ----

    [Fact]
    public void Parse_reports_the_exact_message_for_a_missing_comparator()
    {
        var ex = Assert.Throws<SearchSyntaxException>(() =>
            SearchFilterParser.Parse("metrics.accuracy foo 1", SearchTarget.Runs));
        Assert.Equal(17, ex.Position);
        Assert.Equal(
            "Invalid filter at position 17: expected a comparison operator " +
            "(=, !=, <, <=, >, >=, LIKE, ILIKE, IN, NOT IN) but found 'foo'",
            ex.Message);
    }

    [Theory]
    [InlineData("metrics.a = 1 OR metrics.b = 2", 14)]
    [InlineData("metrics.a = 1 or metrics.b = 2", 14)]
    [InlineData("metrics.a = 1 AND tags.t = 'x' Or tags.u = 'y'", 31)]
    public void Parse_rejects_or_at_its_position(string filter, int position)
    {
        AssertFails(filter, position, "OR is not supported; only AND joins clauses");
    }

    [Fact]
    public void Parse_does_not_mistake_or_inside_quotes_or_keys_for_the_keyword()
    {
        var result = SearchFilterParser.Parse("tags.OR = 'a OR b' AND tags.`or` = 'x'", SearchTarget.Runs);
        Assert.Equal(["OR", "or"], result.Select(c => c.Key));
    }

    [Fact]
    public void Parse_rejects_parentheses_used_for_grouping()
    {
        AssertFails("(metrics.a = 1)", 0, "parentheses are only supported around IN lists");
    }

    [Fact]
    public void Parse_rejects_trailing_garbage_after_a_comparison()
    {
        AssertFails("metrics.a = 1 extra", 14, "expected AND or end of filter but found 'extra'");
    }

    [Fact]
    public void Parse_rejects_a_dangling_and()
    {
        AssertFails("metrics.a = 1 AND", 17, "expected an identifier such as metrics.acc");
    }

    [Fact]
    public void Parse_rejects_a_missing_value()
    {
        AssertFails("metrics.a =", 11, "expected a value (a quoted string or a number) but found end of filter");
    }

    [Fact]
    public void Parse_rejects_an_unquoted_word_as_value()
    {
        AssertFails("status = RUNNING", 9, "expected a value (a quoted string or a number) but found 'RUNNING'");
    }

    [Theory]
    [InlineData("params.a = 'abc", 11)]
    [InlineData("params.a = \"it\"\"s", 11)]
    [InlineData("metrics.`my acc > 1", 8)]
    public void Parse_rejects_unterminated_quotes_at_the_opening_quote(string filter, int position)
    {
        AssertFails(filter, position, "unterminated quoted text");
    }

    [Fact]
    public void Parse_rejects_unknown_entity_prefix_and_lists_the_allowed_ones()
    {
        AssertFails("metricz.x = 1", 0, "unknown entity prefix 'metricz'; expected one of metrics, params, tags, attributes, datasets");
    }

    [Theory]
    [InlineData("metrics. = 1", 0)]
    [InlineData("params.`` = 'x'", 0)]
    [InlineData("tags.a = 'x' AND tags. = 'y'", 17)]
    public void Parse_rejects_an_empty_key(string filter, int position)
    {
        AssertFails(filter, position, "empty key");
    }

    [Fact]
    public void Parse_rejects_a_comparator_missing_at_end_of_filter()
    {
        AssertFails("metrics.acc", 11, "expected a comparison operator");
    }

    [Fact]
    public void Parse_rejects_not_without_in()
    {
        AssertFails("tags.a NOT LIKE 'x'", 11, "expected IN after NOT but found 'LIKE'");
    }

    [Fact]
    public void Parse_rejects_a_string_value_for_a_metric()
    {
        AssertFails("metrics.acc = '0.5'", 14, "expected a number for metric 'acc' but found string '0.5'");
    }

    [Theory]
    [InlineData("metrics.acc LIKE 1", 12, "operator LIKE is not supported for metric 'acc'")]
    [InlineData("metrics.acc IN ('1')", 12, "operator IN is not supported for metric 'acc'")]
    [InlineData("metrics.acc NOT IN ('1')", 12, "operator NOT IN is not supported for metric 'acc'")]
    public void Parse_rejects_string_operators_for_metrics(string filter, int position, string fragment)
    {
        AssertFails(filter, position, fragment);
        AssertFails(filter, position, "expected one of =, !=, <, <=, >, >=");
    }

    [Fact]
    public void Parse_rejects_a_number_value_for_a_param()
    {
        AssertFails("params.lr = 0.01", 12, "expected a quoted string for param 'lr' but found number 0.01");
    }

    [Fact]
    public void Parse_rejects_range_operators_for_tags()
    {
        AssertFails("tags.v > 'x'", 7, "operator > is not supported for tag 'v'; expected one of =, !=, LIKE, ILIKE, IN, NOT IN");
    }

    [Fact]
    public void Parse_rejects_unknown_run_attribute_and_lists_the_allowed_ones()
    {
        AssertFails("attributes.colour = 'red'", 0,
            "unknown run attribute 'colour'; expected one of run_id, run_name, status, user_id, artifact_uri, " +
            "lifecycle_stage, start_time, end_time");
    }

    [Fact]
    public void Parse_matches_attribute_names_case_sensitively()
    {
        AssertFails("metrics.a = 1 AND Status = 'RUNNING'", 18, "unknown run attribute 'Status'");
    }

    [Fact]
    public void Parse_rejects_string_value_and_like_for_numeric_attributes()
    {
        AssertFails("start_time = 'yesterday'", 13, "expected a number for attribute 'start_time'");
        AssertFails("attributes.end_time LIKE '1%'", 20, "operator LIKE is not supported for attribute 'end_time'");
    }

    [Theory]
    [InlineData("metrics.acc > 1", "metric 'acc' cannot be used when searching experiments")]
    [InlineData("params.lr = 'x'", "param 'lr' cannot be used when searching experiments")]
    [InlineData("datasets.name = 'x'", "dataset field 'name' cannot be used when searching experiments")]
    public void Parse_rejects_metrics_params_and_datasets_when_searching_experiments(string filter, string fragment)
    {
        AssertFails(filter, 0, fragment, SearchTarget.Experiments);
    }

    [Theory]
    [InlineData("status = 'x'", "unknown experiment attribute 'status'; expected one of name, creation_time, last_update_time")]
    [InlineData("experiment_id = '1'", "unknown experiment attribute 'experiment_id'")]
    public void Parse_rejects_attributes_that_experiments_do_not_filter_on(string filter, string fragment)
    {
        AssertFails(filter, 0, fragment, SearchTarget.Experiments);
    }

    [Fact]
    public void Parse_rejects_unknown_dataset_field()
    {
        AssertFails("datasets.size = 'x'", 0, "unknown dataset field 'size'; expected one of name, digest, context");
    }

    [Fact]
    public void Parse_rejects_an_empty_in_list()
    {
        AssertFails("tags.a IN ()", 11, "an IN list must contain at least one quoted string");
    }

    [Theory]
    [InlineData("tags.a IN ('x', 1)", 16, "expected a quoted string in the IN list but found '1'")]
    [InlineData("tags.a IN ('x',)", 15, "expected a quoted string in the IN list but found ')'")]
    [InlineData("tags.a IN ('x' 'y')", 15, "expected ',' or ')' in the IN list but found 'y'")]
    [InlineData("tags.a IN ('x'", 14, "expected ',' or ')' in the IN list but found end of filter")]
    public void Parse_rejects_malformed_in_lists(string filter, int position, string fragment)
    {
        AssertFails(filter, position, fragment);
    }

    [Fact]
    public void Parse_rejects_in_without_a_list()
    {
        AssertFails("tags.a IN 'x'", 10, "expected a parenthesized list of quoted strings");
    }

    [Fact]
    public void Parse_rejects_a_list_after_a_non_in_operator()
    {
        AssertFails("tags.a = ('x')", 9, "a parenthesized list is only allowed after IN or NOT IN");
    }

    [Theory]
    [InlineData("metrics.a = 1e", 12, "invalid number '1e'")]
    [InlineData("metrics.a = 12abc", 12, "invalid number '12abc'")]
    [InlineData("metrics.a = 1.2.3", 12, "invalid number '1.2.3'")]
    [InlineData("metrics.a = 1e999", 12, "number '1e999' is out of range")]
    public void Parse_rejects_malformed_numbers(string filter, int position, string fragment)
    {
        AssertFails(filter, position, fragment);
    }

    [Theory]
    [InlineData("metrics.a ! 1", 10, "unexpected character '!'")]
    [InlineData("metrics.a = 1 & tags.b = 'x'", 14, "unexpected character '&'")]
    [InlineData("metrics.a == 1", 11, "expected a value (a quoted string or a number) but found '='")]
    public void Parse_rejects_unknown_characters_and_operators(string filter, int position, string fragment)
    {
        AssertFails(filter, position, fragment);
    }
}
