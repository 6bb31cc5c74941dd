using System.Collections.Concurrent;
using System.Globalization;
using System.IO.Pipelines;
using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Anthropic;
using Anthropic.Core;
using Anthropic.Exceptions;
using Microsoft.Extensions.AI;

namespace Sextant.Server.Gateway;

/// <summary>
/// Anthropic's Messages API behind the OpenAI-compatible gateway. An OpenAI chat request is read into
/// Microsoft.Extensions.AI messages and options and sent through the Anthropic SDK's <see cref="IChatClient"/>; its
/// answer is written back as an OpenAI chat completion (or, streamed, as OpenAI chunks), so that the proxy relays,
/// caches and traces it exactly as it does an OpenAI-compatible upstream. The SDK's errors become HTTP answers with
/// the upstream's status, so that fallback and retries treat both kinds of provider alike.
/// </summary>
internal static class AnthropicAdapter
{
    /// <summary>Anthropic requires max_tokens; an OpenAI request need not give it.</summary>
    public const int DefaultMaxTokens = 4096;

    private static readonly ConcurrentDictionary<(string BaseUrl, string? Key), IChatClient> Clients = new();

    private static IChatClient Client(GatewayRegistry.ResolvedProvider provider, HttpClient http)
    {
        // The SDK adds /v1/messages itself: a base URL given as https://api.anthropic.com/v1 is taken without its /v1.
        var baseUrl = provider.BaseUrl.ToString().TrimEnd('/');
        if (baseUrl.EndsWith("/v1", StringComparison.Ordinal))
        {
            baseUrl = baseUrl[..^3];
        }
        if (Clients.Count > 1000)
        {
            Clients.Clear();
        }
        return Clients.GetOrAdd((baseUrl, provider.ApiKey), key => new AnthropicClient(new ClientOptions
        {
            BaseUrl = key.BaseUrl,
            ApiKey = key.Key ?? "",
            HttpClient = http,
            // The gateway's route does the retrying and the timing out.
            MaxRetries = 0,
            Timeout = Timeout.InfiniteTimeSpan,
        }).AsIChatClient(defaultModelId: null, defaultMaxOutputTokens: DefaultMaxTokens));
    }

    /// <summary>
    /// Calls Anthropic with an OpenAI chat request; answers as an OpenAI-compatible upstream would. A stream's
    /// answer is returned when its first event has come, so that a failure before it still falls back.
    /// </summary>
    /// <param name="http">A client whose handlers include <see cref="TraceContextHandler"/>.</param>
    /// <param name="traceContext">The W3C traceparent (and tracestate) Anthropic is sent, as an OpenAI-compatible upstream is.</param>
    public static async Task<HttpResponseMessage> SendAsync(GatewayRegistry.ResolvedProvider provider, HttpClient http, JsonObject request, bool stream,
        (string Parent, string? State) traceContext, CancellationToken cancellationToken)
    {
        // The SDK's request is made within this call (a stream's, before its first event returns), so the context flows to it.
        CurrentTraceContext.Value = traceContext;
        List<ChatMessage> messages;
        ChatOptions options;
        try
        {
            (messages, options) = ReadRequest(request);
        }
        catch (RequestShapeException e)
        {
            return Error(HttpStatusCode.BadRequest, e.Message, "invalid_request_error", e.Param);
        }
        var client = Client(provider, http);
        try
        {
            if (!stream)
            {
                var response = await client.GetResponseAsync(messages, options, cancellationToken);
                return Json(WriteCompletion(response, options.ModelId!));
            }
            var includeUsage = request["stream_options"]?["include_usage"] is JsonValue v && v.TryGetValue<bool>(out var on) && on;
            var updates = client.GetStreamingResponseAsync(messages, options, cancellationToken).GetAsyncEnumerator(cancellationToken);
            bool any;
            try
            {
                any = await updates.MoveNextAsync();
            }
            catch
            {
                await updates.DisposeAsync();
                throw;
            }
            var pipe = new Pipe();
            _ = Task.Run(() => RelayAsync(updates, any, pipe.Writer, options.ModelId!, includeUsage), CancellationToken.None);
            return new HttpResponseMessage(HttpStatusCode.OK)
            {
                Content = new StreamContent(pipe.Reader.AsStream()) { Headers = { ContentType = new("text/event-stream") } },
            };
        }
        catch (AnthropicApiException e)
        {
            return UpstreamError(e);
        }
        catch (AnthropicIOException e)
        {
            throw new HttpRequestException(e.Message, e.InnerException ?? (Exception)e);
        }
        catch (AnthropicException e) when (e is AnthropicInvalidDataException or AnthropicServiceException)
        {
            return Error(HttpStatusCode.BadGateway, $"Anthropic's answer could not be read: {e.Message}", "api_error", null);
        }
    }

    private static readonly AsyncLocal<(string Parent, string? State)?> CurrentTraceContext = new();

    /// <summary>Adds the trace context of the call in flight (W3C traceparent and tracestate) to the SDK's request.</summary>
    internal sealed class TraceContextHandler : DelegatingHandler
    {
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            if (CurrentTraceContext.Value is { } context && !request.Headers.Contains("traceparent"))
            {
                request.Headers.TryAddWithoutValidation("traceparent", context.Parent);
                if (context.State is { } state)
                {
                    request.Headers.TryAddWithoutValidation("tracestate", state);
                }
            }
            return base.SendAsync(request, cancellationToken);
        }
    }

    /// <summary>Writes the updates as OpenAI chunks (data lines), ending with the usage chunk when it was asked for, then [DONE].</summary>
    private static async Task RelayAsync(IAsyncEnumerator<ChatResponseUpdate> updates, bool any, PipeWriter writer, string model, bool includeUsage)
    {
        var id = "chatcmpl-" + Guid.NewGuid().ToString("N");
        var created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        UsageDetails? usage = null;
        var toolIndex = 0;
        var first = true;
        Exception? failure = null;
        try
        {
            while (any)
            {
                var update = updates.Current;
                id = update.ResponseId is { Length: > 0 } rid ? rid : id;
                model = update.ModelId ?? model;
                var delta = new JsonObject();
                if (first)
                {
                    delta["role"] = "assistant";
                }
                var text = new StringBuilder();
                JsonArray? calls = null;
                foreach (var content in update.Contents)
                {
                    switch (content)
                    {
                        case TextContent t:
                            text.Append(t.Text);
                            break;
                        case FunctionCallContent call:
                            var streamed = ToolCall(call);
                            streamed["index"] = toolIndex++;
                            (calls ??= []).Add(streamed);
                            break;
                        case UsageContent u:
                            usage = Merge(usage, u.Details);
                            break;
                    }
                }
                if (text.Length > 0)
                {
                    delta["content"] = text.ToString();
                }
                if (calls is not null)
                {
                    delta["tool_calls"] = calls;
                }
                var finish = update.FinishReason is { } f ? FinishReason(f) : null;
                if (delta.Count > 0 || finish is not null)
                {
                    await WriteChunkAsync(writer, Chunk(id, created, model, delta, finish));
                    first = false;
                }
                any = await updates.MoveNextAsync();
            }
            if (includeUsage && usage is not null)
            {
                var chunk = new JsonObject
                {
                    ["id"] = id, ["object"] = "chat.completion.chunk", ["created"] = created, ["model"] = model,
                    ["choices"] = new JsonArray(), ["usage"] = Usage(usage),
                };
                await WriteChunkAsync(writer, chunk);
            }
            await writer.WriteAsync("data: [DONE]\n\n"u8.ToArray());
        }
        catch (Exception e)
        {
            // The reader sees the break as an I/O error: the proxy ends the client's stream and records why.
            failure = e is OperationCanceledException ? e : new IOException($"Anthropic's stream broke off: {e.Message}", e);
        }
        finally
        {
            await updates.DisposeAsync();
            await writer.CompleteAsync(failure);
        }
    }

    private static JsonObject Chunk(string id, long created, string model, JsonObject delta, string? finish) => new()
    {
        ["id"] = id, ["object"] = "chat.completion.chunk", ["created"] = created, ["model"] = model,
        ["choices"] = new JsonArray(new JsonObject { ["index"] = 0, ["delta"] = delta, ["finish_reason"] = finish }),
    };

    private static async Task WriteChunkAsync(PipeWriter writer, JsonObject chunk)
    {
        await writer.WriteAsync(Encoding.UTF8.GetBytes($"data: {chunk.ToJsonString()}\n\n"));
    }

    private static UsageDetails Merge(UsageDetails? a, UsageDetails b)
    {
        if (a is null)
        {
            return b;
        }
        a.Add(b);
        return a;
    }

    /// <summary>An OpenAI chat completion from a Microsoft.Extensions.AI response.</summary>
    public static JsonObject WriteCompletion(ChatResponse response, string model)
    {
        var text = new StringBuilder();
        JsonArray? calls = null;
        foreach (var message in response.Messages)
        {
            foreach (var content in message.Contents)
            {
                if (content is TextContent t)
                {
                    text.Append(t.Text);
                }
                else if (content is FunctionCallContent call)
                {
                    (calls ??= []).Add(ToolCall(call));
                }
            }
        }
        var message1 = new JsonObject { ["role"] = "assistant", ["content"] = text.Length > 0 || calls is null ? text.ToString() : null };
        if (calls is not null)
        {
            message1["tool_calls"] = calls;
        }
        var completion = new JsonObject
        {
            ["id"] = response.ResponseId ?? "chatcmpl-" + Guid.NewGuid().ToString("N"),
            ["object"] = "chat.completion",
            ["created"] = (response.CreatedAt ?? DateTimeOffset.UtcNow).ToUnixTimeSeconds(),
            ["model"] = response.ModelId ?? model,
            ["choices"] = new JsonArray(new JsonObject
            {
                ["index"] = 0, ["message"] = message1, ["finish_reason"] = response.FinishReason is { } f ? FinishReason(f) : "stop",
            }),
        };
        if (response.Usage is { } usage)
        {
            completion["usage"] = Usage(usage);
        }
        return completion;
    }

    /// <summary>A tool call in OpenAI's shape: its arguments as a JSON string.</summary>
    private static JsonObject ToolCall(FunctionCallContent call) => new()
    {
        ["id"] = call.CallId, ["type"] = "function",
        ["function"] = new JsonObject
        {
            ["name"] = call.Name,
            ["arguments"] = call.Arguments is null ? "{}" : JsonSerializer.Serialize(call.Arguments, AIJsonUtilities.DefaultOptions),
        },
    };

    private static string FinishReason(ChatFinishReason reason) =>
        reason == ChatFinishReason.Stop ? "stop"
        : reason == ChatFinishReason.Length ? "length"
        : reason == ChatFinishReason.ToolCalls ? "tool_calls"
        : reason == ChatFinishReason.ContentFilter ? "content_filter"
        : reason.Value;

    /// <summary>
    /// OpenAI's usage: prompt tokens include cache reads and writes (Anthropic reports them beside its input tokens),
    /// with the reads as cached_tokens and the writes as cache_write_tokens, so that nothing is counted twice. The
    /// test against a fake Anthropic checks the sum, so a change in the SDK's counting shows.
    /// </summary>
    private static JsonObject Usage(UsageDetails usage)
    {
        long Extra(string name) => usage.AdditionalCounts is { } extra && extra.TryGetValue(name, out var n) ? n : 0;
        var cacheWrite = Extra("CacheCreationInputTokens");
        var cacheRead = usage.CachedInputTokenCount ?? 0;
        // The SDK's client already adds Anthropic's cache reads and writes to its input_tokens, as OpenAI counts them.
        var prompt = usage.InputTokenCount ?? cacheRead + cacheWrite;
        var output = usage.OutputTokenCount ?? 0;
        var result = new JsonObject
        {
            ["prompt_tokens"] = prompt,
            ["completion_tokens"] = output,
            ["total_tokens"] = prompt + output,
            ["prompt_tokens_details"] = new JsonObject { ["cached_tokens"] = cacheRead, ["cache_write_tokens"] = cacheWrite },
        };
        if (usage.ReasoningTokenCount is { } reasoning)
        {
            result["completion_tokens_details"] = new JsonObject { ["reasoning_tokens"] = reasoning };
        }
        return result;
    }

    private sealed class RequestShapeException(string message, string param) : Exception(message)
    {
        public string Param { get; } = param;
    }

    /// <summary>Reads an OpenAI chat request into Microsoft.Extensions.AI messages and options.</summary>
    public static (List<ChatMessage> Messages, ChatOptions Options) ReadRequest(JsonObject request)
    {
        var messages = new List<ChatMessage>();
        var index = 0;
        foreach (var node in request["messages"]!.AsArray())
        {
            var at = $"messages[{index++}]";
            if (node is not JsonObject message || message["role"] is not JsonValue roleValue || !roleValue.TryGetValue<string>(out var role))
            {
                throw new RequestShapeException($"'{at}' must be an object with a 'role'.", at);
            }
            var contents = new List<AIContent>();
            switch (role)
            {
                case "system" or "developer" or "user" or "assistant":
                    ReadContent(message["content"], contents, at);
                    if (role == "assistant" && message["tool_calls"] is JsonArray toolCalls)
                    {
                        foreach (var call in toolCalls)
                        {
                            var name = call?["function"]?["name"]?.GetValue<string>() ?? throw new RequestShapeException($"'{at}.tool_calls' needs function.name.", at);
                            var arguments = call["function"]?["arguments"]?.GetValue<string>() ?? "{}";
                            Dictionary<string, object?>? parsed;
                            try
                            {
                                parsed = JsonSerializer.Deserialize(arguments, GatewayJson.Default.DictionaryStringObject);
                            }
                            catch (JsonException)
                            {
                                throw new RequestShapeException($"'{at}.tool_calls' function.arguments must be a JSON object.", at);
                            }
                            contents.Add(new FunctionCallContent(call["id"]?.GetValue<string>() ?? "", name, parsed));
                        }
                    }
                    messages.Add(new ChatMessage(role switch
                    {
                        "user" => ChatRole.User,
                        "assistant" => ChatRole.Assistant,
                        _ => ChatRole.System,
                    }, contents));
                    break;
                case "tool":
                    var callId = message["tool_call_id"]?.GetValue<string>() ?? throw new RequestShapeException($"'{at}' (a tool message) needs 'tool_call_id'.", at);
                    var parts = new List<AIContent>();
                    ReadContent(message["content"], parts, at);
                    messages.Add(new ChatMessage(ChatRole.Tool, [new FunctionResultContent(callId, string.Concat(parts.OfType<TextContent>().Select(p => p.Text)))]));
                    break;
                default:
                    throw new RequestShapeException($"'{at}.role' must be system, developer, user, assistant or tool; got '{role}'.", at);
            }
        }
        var options = new ChatOptions { ModelId = request["model"]!.GetValue<string>() };
        double? Number(string name) => request[name] is JsonValue n && n.TryGetValue<double>(out var d) ? d : null;
        options.Temperature = (float?)Number("temperature");
        options.TopP = (float?)Number("top_p");
        options.TopK = (int?)Number("top_k");
        options.MaxOutputTokens = (int?)(Number("max_completion_tokens") ?? Number("max_tokens"));
        options.StopSequences = request["stop"] switch
        {
            JsonValue one when one.TryGetValue<string>(out var stop) => [stop],
            JsonArray many => [.. many.Select(s => s?.GetValue<string>() ?? "")],
            _ => null,
        };
        if (request["tools"] is JsonArray tools)
        {
            options.Tools = [];
            foreach (var tool in tools)
            {
                var function = tool?["function"];
                var name = function?["name"]?.GetValue<string>() ?? throw new RequestShapeException("Every entry of 'tools' needs function.name.", "tools");
                var schema = function["parameters"] is JsonObject parameters
                    ? JsonSerializer.SerializeToElement(parameters, GatewayJson.Default.JsonObject)
                    : JsonSerializer.SerializeToElement(new JsonObject { ["type"] = "object", ["properties"] = new JsonObject() }, GatewayJson.Default.JsonObject);
                options.Tools.Add(AIFunctionFactory.CreateDeclaration(name, function["description"]?.GetValue<string>(), schema));
            }
        }
        options.ToolMode = request["tool_choice"] switch
        {
            JsonValue c when c.TryGetValue<string>(out var choice) => choice switch
            {
                "none" => ChatToolMode.None,
                "required" => ChatToolMode.RequireAny,
                _ => ChatToolMode.Auto,
            },
            JsonObject c when c["function"]?["name"]?.GetValue<string>() is { } name => ChatToolMode.RequireSpecific(name),
            _ => null,
        };
        if (request["response_format"] is JsonObject format)
        {
            options.ResponseFormat = format["type"]?.GetValue<string>() switch
            {
                "json_object" => ChatResponseFormat.Json,
                "json_schema" when format["json_schema"]?["schema"] is JsonObject schema => ChatResponseFormat.ForJsonSchema(
                    JsonSerializer.SerializeToElement(schema, GatewayJson.Default.JsonObject),
                    format["json_schema"]?["name"]?.GetValue<string>(), format["json_schema"]?["description"]?.GetValue<string>()),
                _ => null,
            };
        }
        return (messages, options);
    }

    private static void ReadContent(JsonNode? content, List<AIContent> contents, string at)
    {
        switch (content)
        {
            case null:
                return;
            case JsonValue value when value.TryGetValue<string>(out var text):
                contents.Add(new TextContent(text));
                return;
            case JsonArray parts:
                foreach (var part in parts)
                {
                    switch (part?["type"]?.GetValue<string>())
                    {
                        case "text":
                            contents.Add(new TextContent(part["text"]?.GetValue<string>() ?? ""));
                            break;
                        case "image_url":
                            var url = part["image_url"]?["url"]?.GetValue<string>() ?? throw new RequestShapeException($"'{at}.content' image_url needs a url.", at);
                            contents.Add(url.StartsWith("data:", StringComparison.Ordinal) ? new DataContent(url) : new UriContent(url, "image/*"));
                            break;
                        default:
                            throw new RequestShapeException($"'{at}.content' parts must be of type text or image_url; got '{part?["type"]}'.", at);
                    }
                }
                return;
            default:
                throw new RequestShapeException($"'{at}.content' must be a string or an array of parts.", at);
        }
    }

    private static HttpResponseMessage Json(JsonObject body) => new(HttpStatusCode.OK)
    {
        Content = new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json"),
    };

    private static HttpResponseMessage Error(HttpStatusCode status, string message, string type, string? param) => new(status)
    {
        Content = new StringContent(new JsonObject
        {
            ["error"] = new JsonObject { ["message"] = message, ["type"] = type, ["param"] = param, ["code"] = null },
        }.ToJsonString(), Encoding.UTF8, "application/json"),
    };

    /// <summary>Anthropic's own error, with its status and message, in OpenAI's shape (its body is kept beside).</summary>
    private static HttpResponseMessage UpstreamError(AnthropicApiException e)
    {
        string message = e.Message;
        string type = "api_error";
        JsonNode? body = null;
        try
        {
            body = JsonNode.Parse(e.ResponseBody ?? "");
            message = body?["error"]?["message"]?.GetValue<string>() ?? message;
            type = body?["error"]?["type"]?.GetValue<string>() ?? type;
        }
        catch (JsonException)
        {
        }
        var error = new JsonObject
        {
            ["error"] = new JsonObject
            {
                ["message"] = message, ["type"] = type, ["param"] = null, ["code"] = ((int)e.StatusCode).ToString(CultureInfo.InvariantCulture),
                ["upstream"] = body,
            },
        };
        return new HttpResponseMessage(e.StatusCode) { Content = new StringContent(error.ToJsonString(), Encoding.UTF8, "application/json") };
    }
}
