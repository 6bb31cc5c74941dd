using System.Text.Json.Serialization;
using Sextant.Contracts;

namespace Sextant.Core;

[JsonSerializable(typeof(string[]))]
[JsonSerializable(typeof(List<KeyValue>))]
[JsonSerializable(typeof(List<TableSummary>))]
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower)]
internal sealed partial class CoreJsonContext : JsonSerializerContext;
