namespace Sextant.Client.Tests;

/// <summary>Tests that swap Console.Out/Error or environment variables, which are process-wide: they run alone.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ConsoleCollection
{
    public const string Name = "Console and environment";
}
