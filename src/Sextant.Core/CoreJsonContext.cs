using System.Text.Json.Serialization;
using Sextant.Contracts;

namespace Sextant.Core;

[JsonSerializable(typeof(string[]))]
[JsonSerializable(typeof(List<KeyValue>))]
[JsonSerializable(typeof(List<TableSummary>))]
[JsonSerializable(typeof(List<string>))]
[JsonSerializable(typeof(string))]
[JsonSerializable(typeof(Dictionary<string, System.Text.Json.JsonElement>))]
[JsonSerializable(typeof(List<System.Text.Json.JsonElement>))]
[JsonSerializable(typeof(Dictionary<string, string>))]
[JsonSerializable(typeof(double[]))]
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower)]
internal sealed partial class CoreJsonContext : JsonSerializerContext;
