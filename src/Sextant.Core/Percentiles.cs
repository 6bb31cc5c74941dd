namespace Sextant.Core;

/// <summary>Percentiles of sorted samples.</summary>
internal static class Percentiles
{
    /// <summary>Linear interpolation between the closest ranks (numpy's default); 0 for no samples.</summary>
    public static double Interpolated(double[] sorted, double q)
    {
        if (sorted.Length == 0)
        {
            return 0;
        }
        var position = q * (sorted.Length - 1);
        var below = (int)Math.Floor(position);
        var above = Math.Min(below + 1, sorted.Length - 1);
        return sorted[below] + (sorted[above] - sorted[below]) * (position - below);
    }

    /// <summary>
    /// The same percentile, given as a whole percent, of <paramref name="count"/> samples of which only the ranks it
    /// needs are at hand (<paramref name="at"/>, 0-based, in ascending order): floor(percent x (count - 1) / 100) and the
    /// rank after it, as a database that ranked the samples returns them.
    /// </summary>
    public static double Interpolated(long count, int percent, Func<long, double> at)
    {
        if (count == 0)
        {
            return 0;
        }
        var below = percent * (count - 1) / 100;
        var above = Math.Min(below + 1, count - 1);
        var position = percent * (count - 1) / 100.0;
        return at(below) + (at(above) - at(below)) * (position - below);
    }
}
