using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Google.Protobuf;
using Sextant.Contracts;
using Sextant.Core.Tracing.Otlp;
using Span = Sextant.Contracts.Span;

namespace Sextant.Core.Tracing;

/// <summary>
/// Reads OTLP/HTTP trace exports (protobuf, or JSON with hex ids) and maps them onto Sextant's spans, following
/// the OpenTelemetry GenAI semantic conventions: an LLM call (gen_ai.operation.name chat, text_completion,
/// generate_content or embeddings, or any span naming a gen_ai model) becomes a generation with its provider
/// (gen_ai.provider.name, or the older gen_ai.system), model, parameters (gen_ai.request.*), usage
/// (gen_ai.usage.*) and messages (the gen_ai.input.messages / gen_ai.output.messages attributes, or the older
/// gen_ai.*.message and gen_ai.choice events); every other span is kept as a generic span of its trace.
/// </summary>
public static class OtlpMapper
{
    private static readonly HashSet<string> GenerationOperations = ["chat", "text_completion", "generate_content", "embeddings", "completion"];
    private static readonly JsonParser Json = new(JsonParser.Settings.Default.WithIgnoreUnknownFields(true));

    internal static ExportTraceServiceRequest ParseProtobuf(byte[] body) => ExportTraceServiceRequest.Parser.ParseFrom(body);

    /// <summary>OTLP/JSON writes trace and span ids as hex, where protobuf's JSON mapping expects base64: converted first.</summary>
    internal static ExportTraceServiceRequest ParseJson(byte[] body)
    {
        var root = JsonNode.Parse(body) as JsonObject ?? throw new FormatException("the body is not a JSON object");
        foreach (var resource in root["resourceSpans"]?.AsArray() ?? [])
        {
            foreach (var scope in resource?["scopeSpans"]?.AsArray() ?? [])
            {
                foreach (var span in scope?["spans"]?.AsArray() ?? [])
                {
                    if (span is not JsonObject s)
                    {
                        continue;
                    }
                    HexToBase64(s, "traceId");
                    HexToBase64(s, "spanId");
                    HexToBase64(s, "parentSpanId");
                    foreach (var link in s["links"]?.AsArray() ?? [])
                    {
                        if (link is JsonObject l)
                        {
                            HexToBase64(l, "traceId");
                            HexToBase64(l, "spanId");
                        }
                    }
                }
            }
        }
        return Json.Parse<ExportTraceServiceRequest>(root.ToJsonString());
    }

    private static void HexToBase64(JsonObject node, string name)
    {
        if (node[name] is JsonValue value && value.TryGetValue<string>(out var hex) && hex.Length > 0)
        {
            node[name] = Convert.ToBase64String(Convert.FromHexString(hex));
        }
    }

    /// <summary>Each OTLP span as a Sextant span, or the reason it cannot be one.</summary>
    internal static List<(Span? Span, string? Error)> Map(ExportTraceServiceRequest request)
    {
        var result = new List<(Span?, string?)>();
        foreach (var resource in request.ResourceSpans)
        {
            // Made once for all the spans that share them.
            JsonElement? service = resource.Resource?.Attributes.FirstOrDefault(a => a.Key == "service.name")?.Value?.StringValue is { } name
                ? JsonSerializer.SerializeToElement(name, CoreJsonContext.Default.String)
                : null;
            foreach (var scope in resource.ScopeSpans)
            {
                JsonElement? scopeName = scope.Scope?.Name is { Length: > 0 } scopeText ? JsonSerializer.SerializeToElement(scopeText, CoreJsonContext.Default.String) : null;
                foreach (var span in scope.Spans)
                {
                    try
                    {
                        result.Add((MapSpan(span, service, scopeName), null));
                    }
                    catch (Exception e) when (e is not OutOfMemoryException)
                    {
                        // One span that cannot be read is one rejected span, not a failed export.
                        result.Add((null, $"span '{span.Name}' cannot be read: {e.Message}"));
                    }
                }
            }
        }
        return result;
    }

    private static Span MapSpan(Otlp.Span span, JsonElement? service, JsonElement? scope)
    {
        if (span.TraceId.Length != 16 || span.SpanId.Length != 8)
        {
            throw new FormatException($"span '{span.Name}' has a trace id of {span.TraceId.Length} bytes and a span id of {span.SpanId.Length} (16 and 8 expected)");
        }
        var attributes = Attributes(span.Attributes);
        string? Text(params ReadOnlySpan<string> keys)
        {
            foreach (var key in keys)
            {
                if (attributes.TryGetValue(key, out var v))
                {
                    return v.ValueKind == JsonValueKind.String ? v.GetString() : v.GetRawText();
                }
            }
            return null;
        }
        long? Number(params ReadOnlySpan<string> keys)
        {
            foreach (var key in keys)
            {
                if (attributes.TryGetValue(key, out var v))
                {
                    if (v.ValueKind == JsonValueKind.Number && v.TryGetInt64(out var n))
                    {
                        return n;
                    }
                    if (v.ValueKind == JsonValueKind.String && long.TryParse(v.GetString(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var parsed))
                    {
                        return parsed;
                    }
                }
            }
            return null;
        }
        var operation = Text("gen_ai.operation.name");
        var model = Text("gen_ai.response.model", "gen_ai.request.model");
        var provider = Text("gen_ai.provider.name", "gen_ai.system");
        var generation = operation is not null ? GenerationOperations.Contains(operation) : model is not null && provider is not null;
        var input = Number("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens");
        var output = Number("gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens");
        var cached = Number("gen_ai.usage.cache_read.input_tokens", "gen_ai.usage.cache_read_input_tokens", "gen_ai.usage.cached_tokens");
        var cacheWrite = Number("gen_ai.usage.cache_write.input_tokens", "gen_ai.usage.cache_creation.input_tokens", "gen_ai.usage.cache_creation_input_tokens");
        var reasoning = Number("gen_ai.usage.reasoning.output_tokens", "gen_ai.usage.reasoning_tokens", "gen_ai.usage.output_tokens.reasoning");
        // The conventions include cache reads and writes in the input tokens; instrumentations that copy Anthropic's
        // usage report them beside it, which shows when they exceed it.
        if (input is not null && (cached ?? 0) + (cacheWrite ?? 0) > input)
        {
            input += (cached ?? 0) + (cacheWrite ?? 0);
        }
        Dictionary<string, JsonElement>? parameters = null;
        foreach (var (key, value) in attributes)
        {
            if (key.StartsWith("gen_ai.request.", StringComparison.Ordinal) && key != "gen_ai.request.model")
            {
                (parameters ??= new(StringComparer.Ordinal))[key["gen_ai.request.".Length..]] = value;
            }
        }
        var (messagesIn, messagesOut) = Messages(span, attributes);
        if (service is { } serviceName)
        {
            attributes["service.name"] = serviceName;
        }
        if (scope is { } scopeName)
        {
            attributes["otel.scope.name"] = scopeName;
        }
        var start = (long)(span.StartTimeUnixNano / 1000);
        var end = Math.Max(start, (long)(span.EndTimeUnixNano / 1000));
        return new Span(
            Convert.ToHexStringLower(span.TraceId.Span),
            Convert.ToHexStringLower(span.SpanId.Span),
            span.ParentSpanId.Length == 8 ? Convert.ToHexStringLower(span.ParentSpanId.Span) : null,
            span.Name.Length == 0 ? operation ?? "span" : span.Name,
            generation ? "generation" : "span",
            start,
            end,
            span.Status?.Code switch { Otlp.Status.Types.StatusCode.Error => "error", Otlp.Status.Types.StatusCode.Ok => "ok", _ => "unset" },
            string.IsNullOrEmpty(span.Status?.Message) ? Text("error.type") : span.Status.Message,
            provider,
            model,
            operation,
            input,
            output,
            cached,
            cacheWrite,
            reasoning,
            UserId: Text("user.id", "enduser.id"),
            SessionId: Text("session.id", "gen_ai.conversation.id"),
            Input: messagesIn,
            Output: messagesOut,
            Parameters: parameters,
            Attributes: attributes);
    }

    /// <summary>The conversation: the newer message attributes (JSON strings or structured values), or the older per-message events.</summary>
    private static (JsonElement? In, JsonElement? Out) Messages(Otlp.Span span, Dictionary<string, JsonElement> attributes)
    {
        JsonElement? Attribute(string key)
        {
            if (!attributes.Remove(key, out var value))
            {
                return null;
            }
            if (value.ValueKind == JsonValueKind.String)
            {
                try
                {
                    return JsonDocument.Parse(value.GetString()!).RootElement.Clone();
                }
                catch (JsonException)
                {
                    return value;
                }
            }
            return value;
        }
        var input = Attribute("gen_ai.input.messages");
        var output = Attribute("gen_ai.output.messages");
        if (Attribute("gen_ai.system_instructions") is { } system && input is { ValueKind: JsonValueKind.Array } messages)
        {
            var list = new JsonArray(JsonNode.Parse(new JsonObject { ["role"] = "system", ["parts"] = JsonNode.Parse(system.GetRawText()) }.ToJsonString()));
            foreach (var m in messages.EnumerateArray())
            {
                list.Add(JsonNode.Parse(m.GetRawText()));
            }
            input = JsonDocument.Parse(list.ToJsonString()).RootElement.Clone();
        }
        if (input is null && output is null && span.Events.Count > 0)
        {
            var inEvents = new JsonArray();
            var outEvents = new JsonArray();
            foreach (var e in span.Events)
            {
                if (!e.Name.StartsWith("gen_ai.", StringComparison.Ordinal))
                {
                    continue;
                }
                var message = new JsonObject();
                foreach (var a in e.Attributes)
                {
                    message[a.Key.Replace("gen_ai.event.", "", StringComparison.Ordinal)] = JsonNode.Parse(ToJson(a.Value).GetRawText());
                }
                if (e.Name == "gen_ai.choice")
                {
                    outEvents.Add(message);
                }
                else if (e.Name.EndsWith(".message", StringComparison.Ordinal) && e.Name.Length > "gen_ai..message".Length)
                {
                    message["role"] ??= e.Name["gen_ai.".Length..^".message".Length];
                    inEvents.Add(message);
                }
            }
            input = inEvents.Count > 0 ? JsonDocument.Parse(inEvents.ToJsonString()).RootElement.Clone() : null;
            output = outEvents.Count > 0 ? JsonDocument.Parse(outEvents.ToJsonString()).RootElement.Clone() : null;
        }
        return (input, output);
    }

    private static readonly JsonDocumentOptions Deep = new() { MaxDepth = 256 };
    private static readonly JsonWriterOptions Writer = new() { MaxDepth = 256, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>All of a span's attributes written as one JSON object and parsed once (not a document per attribute).</summary>
    private static Dictionary<string, JsonElement> Attributes(Google.Protobuf.Collections.RepeatedField<Otlp.KeyValue> attributes)
    {
        var result = new Dictionary<string, JsonElement>(attributes.Count + 2, StringComparer.Ordinal);
        if (attributes.Count == 0)
        {
            return result;
        }
        var buffer = new System.Buffers.ArrayBufferWriter<byte>(256);
        using (var writer = new Utf8JsonWriter(buffer, Writer))
        {
            writer.WriteStartObject();
            // A key given twice is written twice; the dictionary below keeps its last value.
            foreach (var attribute in attributes)
            {
                writer.WritePropertyName(attribute.Key);
                Write(writer, attribute.Value);
            }
            writer.WriteEndObject();
        }
        var root = JsonDocument.Parse(buffer.WrittenMemory, Deep).RootElement.Clone();
        foreach (var property in root.EnumerateObject())
        {
            result[property.Name] = property.Value;
        }
        return result;
    }

    private static void Write(Utf8JsonWriter writer, AnyValue? value)
    {
        switch (value?.ValueCase)
        {
            case AnyValue.ValueOneofCase.StringValue: writer.WriteStringValue(value.StringValue); break;
            case AnyValue.ValueOneofCase.BoolValue: writer.WriteBooleanValue(value.BoolValue); break;
            case AnyValue.ValueOneofCase.IntValue: writer.WriteNumberValue(value.IntValue); break;
            case AnyValue.ValueOneofCase.DoubleValue:
                if (double.IsFinite(value.DoubleValue)) { writer.WriteNumberValue(value.DoubleValue); } else { writer.WriteStringValue(value.DoubleValue.ToString(CultureInfo.InvariantCulture)); }
                break;
            case AnyValue.ValueOneofCase.ArrayValue:
                writer.WriteStartArray();
                foreach (var item in value.ArrayValue.Values)
                {
                    Write(writer, item);
                }
                writer.WriteEndArray();
                break;
            case AnyValue.ValueOneofCase.KvlistValue:
                writer.WriteStartObject();
                foreach (var kv in value.KvlistValue.Values.GroupBy(kv => kv.Key).Select(g => g.Last()))
                {
                    writer.WritePropertyName(kv.Key);
                    Write(writer, kv.Value);
                }
                writer.WriteEndObject();
                break;
            case AnyValue.ValueOneofCase.BytesValue: writer.WriteBase64StringValue(value.BytesValue.Span); break;
            default: writer.WriteNullValue(); break;
        }
    }

    private static JsonElement ToJson(AnyValue? value) => JsonDocument.Parse(ToNode(value)?.ToJsonString() ?? "null", Deep).RootElement.Clone();

    private static JsonNode? ToNode(AnyValue? value) => value?.ValueCase switch
    {
        AnyValue.ValueOneofCase.StringValue => JsonValue.Create(value.StringValue),
        AnyValue.ValueOneofCase.BoolValue => JsonValue.Create(value.BoolValue),
        AnyValue.ValueOneofCase.IntValue => JsonValue.Create(value.IntValue),
        AnyValue.ValueOneofCase.DoubleValue => double.IsFinite(value.DoubleValue) ? JsonValue.Create(value.DoubleValue) : JsonValue.Create(value.DoubleValue.ToString(CultureInfo.InvariantCulture)),
        AnyValue.ValueOneofCase.ArrayValue => new JsonArray([.. value.ArrayValue.Values.Select(ToNode)]),
        AnyValue.ValueOneofCase.KvlistValue => new JsonObject(value.KvlistValue.Values.GroupBy(kv => kv.Key).Select(g => KeyValuePair.Create(g.Key, ToNode(g.Last().Value)))),
        AnyValue.ValueOneofCase.BytesValue => JsonValue.Create(Convert.ToBase64String(value.BytesValue.Span)),
        _ => null,
    };
}
