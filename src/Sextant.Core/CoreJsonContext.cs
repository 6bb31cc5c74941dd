using System.Text.Json.Serialization;
using Sextant.Contracts;

namespace Sextant.Core;

[JsonSerializable(typeof(string[]))]
[JsonSerializable(typeof(List<KeyValue>))]
[JsonSerializable(typeof(List<TableSummary>))]
[JsonSerializable(typeof(List<string>))]
[JsonSerializable(typeof(string))]
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower)]
internal sealed partial class CoreJsonContext : JsonSerializerContext;
