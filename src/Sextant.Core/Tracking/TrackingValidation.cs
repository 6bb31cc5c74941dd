using Sextant.Contracts;

namespace Sextant.Core.Tracking;

/// <summary>MLflow's rules for keys, values and batch sizes; each failure names the field and the rule.</summary>
internal static class TrackingValidation
{
    public static string Key(string? key, string field, TrackingOptions options)
    {
        if (string.IsNullOrEmpty(key))
        {
            throw SextantException.Missing(field);
        }
        if (key.Length > options.MaxKeyLength)
        {
            throw SextantException.Invalid(field, $"'{field}' is {key.Length} characters long; the limit is {options.MaxKeyLength}.");
        }
        if (!KeyRules.HasAllowedCharacters(key))
        {
            throw SextantException.Invalid(field, $"Invalid {field} '{key}': names may only contain alphanumerics, underscores (_), dashes (-), periods (.), spaces ( ), and slashes (/).");
        }
        if (!KeyRules.IsPathSafe(key))
        {
            throw SextantException.Invalid(field, $"Invalid {field} '{key}': names may not be absolute paths or contain '.' or '..' path segments.");
        }
        return key;
    }

    public static string Value(string? value, string field, int maxLength)
    {
        if (value is null)
        {
            throw SextantException.Missing(field);
        }
        if (value.Length > maxLength)
        {
            throw SextantException.Invalid(field, $"'{field}' is {value.Length} characters long; the limit is {maxLength}.");
        }
        return NoNul(value, field);
    }

    /// <summary>PostgreSQL cannot store U+0000 in text; refuse it on both engines so they behave alike.</summary>
    public static string NoNul(string value, string field) =>
        value.Contains('\0', StringComparison.Ordinal)
            ? throw SextantException.Invalid(field, $"'{field}' contains a NUL character (U+0000), which cannot be stored.")
            : value;

    public static string RunId(string? runId, string? runUuid = null)
    {
        var id = string.IsNullOrEmpty(runId) ? runUuid : runId;
        if (string.IsNullOrEmpty(id))
        {
            throw SextantException.Missing("run_id");
        }
        return NoNul(id, "run_id");
    }

    public static long ExperimentId(string? experimentId, string field = "experiment_id")
    {
        if (string.IsNullOrEmpty(experimentId))
        {
            throw SextantException.Missing(field);
        }
        if (!long.TryParse(experimentId, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var id))
        {
            throw SextantException.NotFound($"No experiment with id={experimentId} exists.");
        }
        return id;
    }

    public static MetricPoint[] Metrics(IReadOnlyList<MetricInput>? metrics, TrackingOptions options)
    {
        if (metrics is null || metrics.Count == 0)
        {
            return [];
        }
        var points = new MetricPoint[metrics.Count];
        for (var i = 0; i < metrics.Count; i++)
        {
            var m = metrics[i] ?? throw SextantException.Invalid($"metrics[{i}]", $"metrics[{i}] must be an object, not null.");
            var key = Key(m.Key, $"metrics[{i}].key", options);
            var value = m.Value ?? throw SextantException.Missing($"metrics[{i}].value");
            var timestamp = m.Timestamp ?? throw SextantException.Missing($"metrics[{i}].timestamp");
            points[i] = new MetricPoint(key, value, timestamp, m.Step ?? 0);
        }
        return points;
    }

    public static KeyValue[] Params(IReadOnlyList<KeyValueInput>? items, TrackingOptions options)
    {
        var result = KeyValues(items, "params", options.MaxParamValueLength, options);
        var seen = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var p in result)
        {
            if (seen.TryGetValue(p.Key, out var other) && other != p.Value)
            {
                throw SextantException.Invalid("params", $"Duplicate parameter key '{p.Key}' was submitted with different values in one batch.");
            }
            seen[p.Key] = p.Value;
        }
        return result;
    }

    public static KeyValue[] KeyValues(IReadOnlyList<KeyValueInput>? items, string field, int maxValueLength, TrackingOptions options)
    {
        if (items is null || items.Count == 0)
        {
            return [];
        }
        var result = new KeyValue[items.Count];
        for (var i = 0; i < items.Count; i++)
        {
            var item = items[i] ?? throw SextantException.Invalid($"{field}[{i}]", $"{field}[{i}] must be an object, not null.");
            result[i] = new KeyValue(Key(item.Key, $"{field}[{i}].key", options), Value(item.Value, $"{field}[{i}].value", maxValueLength));
        }
        return result;
    }

    public static void BatchSize(LogBatchRequest request, TrackingOptions options)
    {
        var metrics = request.Metrics?.Count ?? 0;
        var parameters = request.Params?.Count ?? 0;
        var tags = request.Tags?.Count ?? 0;
        if (metrics > options.MaxMetricsPerBatch)
        {
            throw SextantException.Invalid("metrics", $"A batch may log at most {options.MaxMetricsPerBatch} metrics; this one has {metrics}.");
        }
        if (parameters > options.MaxParamsPerBatch)
        {
            throw SextantException.Invalid("params", $"A batch may log at most {options.MaxParamsPerBatch} params; this one has {parameters}.");
        }
        if (tags > options.MaxTagsPerBatch)
        {
            throw SextantException.Invalid("tags", $"A batch may log at most {options.MaxTagsPerBatch} tags; this one has {tags}.");
        }
        if (metrics + parameters + tags > options.MaxItemsPerBatch)
        {
            throw SextantException.Invalid("metrics", $"A batch may hold at most {options.MaxItemsPerBatch} metrics, params and tags in all; this one has {metrics + parameters + tags}.");
        }
    }
}

/// <summary>A validated metric point.</summary>
internal readonly record struct MetricPoint(string Key, double Value, long Timestamp, long Step);
