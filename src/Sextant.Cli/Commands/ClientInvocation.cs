using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Sextant.Client;
using Spectre.Console;

namespace Sextant.Cli.Commands;

/// <summary>What a client verb works with: its parsed arguments, the client, and where its output goes.</summary>
internal sealed record ClientInvocation(ParseResult Parse, SextantClient Client, bool Json, IAnsiConsole Console)
{
    public T Get<T>(Argument<T> argument) => Parse.GetRequiredValue(argument);

    public T? Get<T>(Option<T> option) => Parse.GetValue(option);

    /// <summary>Writes a wire object as the server's JSON (same source-generated contract), one document per line.</summary>
    public void WriteJson<T>(T value, JsonTypeInfo<T> typeInfo) =>
        System.Console.Out.WriteLine(JsonSerializer.Serialize(value, typeInfo));
}
