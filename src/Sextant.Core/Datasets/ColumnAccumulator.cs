using System.Globalization;
using System.IO.Hashing;
using System.Numerics;
using System.Runtime.InteropServices;
using Sextant.Contracts;

namespace Sextant.Core.Datasets;

/// <summary>
/// Streams one column's values into a bounded-memory profile: exact counts, nulls, min, max, mean and standard
/// deviation (Welford); a HyperLogLog distinct estimate; quantiles and a histogram from a fixed-size uniform sample
/// (exact while the column fits in it); and the most frequent values among the first <see cref="MaxCategories"/>
/// distinct ones.
/// </summary>
internal sealed class ColumnAccumulator(string name, string? declaredType = null)
{
    public const int SampleSize = 20_000;
    public const int MaxCategories = 5_000;
    public const int HistogramBins = 20;
    public const int TopCategories = 10;
    private static readonly double[] QuantilePoints = [0.05, 0.25, 0.5, 0.75, 0.95];

    private readonly HyperLogLog _distinct = new();
    private readonly Dictionary<string, long> _categories = new(StringComparer.Ordinal);
    private readonly List<double> _sample = [];
    // Seeded per column: the same file always gets the same profile.
    private readonly Random _random = new(name.Length * 7919 + 17);
    private long _count, _nulls, _numbers;
    private double _min = double.PositiveInfinity, _max = double.NegativeInfinity, _mean, _m2;
    private bool _allIntegers = true, _allNumbers = true, _allBooleans = true;

    public string Name => name;

    public void AddNull() => _nulls++;

    /// <summary>A CSV cell: empty is null; the type is inferred from every value seen.</summary>
    public void AddText(string text)
    {
        if (text.Length == 0)
        {
            _nulls++;
            return;
        }
        _count++;
        _distinct.Add(text);
        Categorize(text);
        if (_allBooleans && !bool.TryParse(text, out _))
        {
            _allBooleans = false;
        }
        if (_allNumbers)
        {
            if (long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var integer))
            {
                Number(integer);
            }
            else if (double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var real) && double.IsFinite(real))
            {
                _allIntegers = false;
                Number(real);
            }
            else
            {
                _allNumbers = false;
            }
        }
    }

    /// <summary>A typed number; NaN and the infinities are counted as nulls (they have no place in the statistics).</summary>
    public void AddNumber(double value, bool integer)
    {
        if (!double.IsFinite(value))
        {
            _nulls++;
            return;
        }
        _count++;
        _distinct.Add(BitConverter.DoubleToInt64Bits(value));
        _allIntegers &= integer;
        _allBooleans = false;
        Number(value);
    }

    public void AddBoolean(bool value)
    {
        _count++;
        var text = value ? "true" : "false";
        _distinct.Add(text);
        Categorize(text);
        _allNumbers = false;
        Number(value ? 1 : 0);
    }

    public void AddString(string value)
    {
        _count++;
        _distinct.Add(value);
        Categorize(value);
        _allNumbers = _allBooleans = false;
    }

    private void Categorize(string value)
    {
        if (_categories.TryGetValue(value, out var n))
        {
            _categories[value] = n + 1;
        }
        else if (_categories.Count < MaxCategories)
        {
            _categories[value] = 1;
        }
    }

    private void Number(double value)
    {
        _numbers++;
        _min = Math.Min(_min, value);
        _max = Math.Max(_max, value);
        var delta = value - _mean;
        _mean += delta / _numbers;
        _m2 += delta * (value - _mean);
        // Reservoir sampling (Algorithm R): every value has the same chance to be in the sample.
        if (_sample.Count < SampleSize)
        {
            _sample.Add(value);
        }
        else
        {
            var slot = _random.NextInt64(_numbers);
            if (slot < SampleSize)
            {
                _sample[(int)slot] = value;
            }
        }
    }

    public bool Sampled => _numbers > SampleSize;

    public ColumnProfile Build()
    {
        var type = declaredType ?? (_count == 0 ? "string"
            : _allBooleans ? "boolean"
            : _allNumbers ? (_allIntegers ? "integer" : "float")
            : "string");
        var numeric = type is "integer" or "float" or "timestamp" && _numbers > 0;
        var top = type is "string" or "boolean"
            ? _categories.OrderByDescending(c => c.Value).ThenBy(c => c.Key, StringComparer.Ordinal).Take(TopCategories).Select(c => new CategoryCount(c.Key, c.Value)).ToList()
            : null;
        if (!numeric)
        {
            return new ColumnProfile(name, type, _count, _nulls, _distinct.Estimate(_count), TopCategories: top,
                Mean: type == "boolean" && _numbers > 0 ? _mean : null);
        }
        var sorted = _sample.ToArray();
        Array.Sort(sorted);
        var quantiles = QuantilePoints.Select(q => new QuantileValue(q, Percentiles.Interpolated(sorted, q))).ToList();
        return new ColumnProfile(name, type, _count, _nulls, _distinct.Estimate(_count), _min, _max, _mean,
            _numbers > 1 ? Math.Sqrt(_m2 / (_numbers - 1)) : 0, quantiles, Histogram(sorted));
    }

    /// <summary>Equal-width bins over [min, max]; from the sample, scaled to the column's count when sampled.</summary>
    private Histogram Histogram(double[] sorted)
    {
        if (_min == _max)
        {
            return new Histogram([_min, _max], [_numbers]);
        }
        var width = (_max - _min) / HistogramBins;
        var edges = Enumerable.Range(0, HistogramBins + 1).Select(i => i == HistogramBins ? _max : _min + i * width).ToList();
        var counts = new long[HistogramBins];
        foreach (var value in sorted)
        {
            counts[Math.Clamp((int)((value - _min) / width), 0, HistogramBins - 1)]++;
        }
        if (sorted.Length < _numbers)
        {
            var scale = (double)_numbers / sorted.Length;
            for (var i = 0; i < counts.Length; i++)
            {
                counts[i] = (long)Math.Round(counts[i] * scale);
            }
        }
        return new Histogram(edges, counts);
    }
}

/// <summary>HyperLogLog with 2^12 registers (about 1.6% standard error) over 64-bit XxHash3 hashes.</summary>
internal sealed class HyperLogLog
{
    private const int Precision = 12;
    private const int Registers = 1 << Precision;
    private readonly byte[] _registers = new byte[Registers];

    public void Add(string value) => Add(XxHash3.HashToUInt64(MemoryMarshal.AsBytes(value.AsSpan())));

    public void Add(long value) => Add(XxHash3.HashToUInt64(MemoryMarshal.AsBytes(new ReadOnlySpan<long>(ref value))));

    private void Add(ulong hash)
    {
        var index = (int)(hash >> (64 - Precision));
        var rank = (byte)(BitOperations.LeadingZeroCount((hash << Precision) | (1UL << (Precision - 1))) + 1);
        if (rank > _registers[index])
        {
            _registers[index] = rank;
        }
    }

    /// <summary>The estimate, never above <paramref name="count"/> (the number of values added).</summary>
    public long Estimate(long count)
    {
        double sum = 0;
        var zeros = 0;
        foreach (var register in _registers)
        {
            sum += Math.Pow(2, -register);
            zeros += register == 0 ? 1 : 0;
        }
        var alpha = 0.7213 / (1 + 1.079 / Registers);
        var estimate = alpha * Registers * Registers / sum;
        if (estimate <= 2.5 * Registers && zeros > 0)
        {
            // Small ranges: linear counting is far more accurate.
            estimate = Registers * Math.Log((double)Registers / zeros);
        }
        return Math.Min(count, (long)Math.Round(estimate));
    }
}
