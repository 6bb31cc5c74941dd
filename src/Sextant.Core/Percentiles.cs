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
}
