namespace Sextant.Web.Components.Shared;

/// <summary>One line or point set of a chart: values that are not finite are left as gaps.</summary>
public sealed record ChartSeries(string Name, IList<object?> X, IList<object?> Y)
{
    public static object? Value(double value) => double.IsFinite(value) ? value : null;
}
