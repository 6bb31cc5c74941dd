using System.IO.Compression;
using System.Text.Json.Nodes;
using Google.Protobuf;
using Sextant.Contracts;
using Sextant.Core;
using Sextant.Core.Tracing;
using Sextant.Core.Tracing.Otlp;
using Sextant.Server.Http;

namespace Sextant.Server.Tracing;

/// <summary>OTLP/HTTP trace ingestion at /v1/traces: protobuf or JSON, plain or gzip, as OpenTelemetry exporters send it.</summary>
internal static class OtlpEndpoints
{
    public const int MaxBodyBytes = 16 * 1024 * 1024;
    public const int MaxDecompressedBytes = 64 * 1024 * 1024;

    public static void MapOtlpEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapPost("/v1/traces", async Task<IResult> (HttpContext ctx) =>
            {
                var type = ctx.Request.ContentType?.Split(';')[0].Trim().ToLowerInvariant();
                var json = type == "application/json";
                if (!json && type != "application/x-protobuf")
                {
                    throw new SextantException(ErrorCodes.InvalidParameterValue, $"OTLP/HTTP bodies are application/x-protobuf or application/json; got '{ctx.Request.ContentType}'.", 415, "Content-Type");
                }
                var body = await ReadAsync(ctx);
                var (_, rejected, error) = await ctx.RequestServices.GetRequiredService<TraceService>().IngestOtlpAsync(ctx.Caller(), body, json, ctx.RequestAborted);
                var response = new ExportTraceServiceResponse();
                if (rejected > 0)
                {
                    response.PartialSuccess = new ExportTracePartialSuccess { RejectedSpans = rejected, ErrorMessage = error ?? "" };
                }
                if (json)
                {
                    var answer = rejected > 0
                        ? new JsonObject { ["partialSuccess"] = new JsonObject { ["rejectedSpans"] = rejected.ToString(System.Globalization.CultureInfo.InvariantCulture), ["errorMessage"] = error } }
                        : new JsonObject();
                    return Results.Text(answer.ToJsonString(), "application/json");
                }
                return Results.Bytes(response.ToByteArray(), "application/x-protobuf");
            })
            .Describe("OtlpTraces", "OTLP/HTTP trace export (protobuf or JSON, gzip allowed), mapped with the GenAI semantic conventions", "Traces");
    }

    /// <summary>The body, gunzipped when it says so, within both size limits (413 beyond them).</summary>
    private static async Task<byte[]> ReadAsync(HttpContext ctx)
    {
        if (ctx.Request.ContentLength > MaxBodyBytes)
        {
            throw new SextantException(ErrorCodes.RequestTooLarge, $"The export is {ctx.Request.ContentLength} bytes; at most {MaxBodyBytes} are accepted (send smaller batches).", 413, "body");
        }
        var gzip = ctx.Request.Headers.ContentEncoding.ToString() switch
        {
            "" or "identity" => false,
            "gzip" => true,
            var other => throw new SextantException(ErrorCodes.InvalidParameterValue, $"Content-Encoding '{other}' is not supported; send gzip or none.", 415, "Content-Encoding"),
        };
        var raw = await CopyAsync(ctx.Request.Body, MaxBodyBytes, "export", ctx.RequestAborted, ctx.Request.ContentLength);
        if (!gzip)
        {
            return raw;
        }
        try
        {
            await using var unzip = new GZipStream(new MemoryStream(raw), CompressionMode.Decompress);
            return await CopyAsync(unzip, MaxDecompressedBytes, "decompressed export", ctx.RequestAborted);
        }
        catch (InvalidDataException e)
        {
            throw SextantException.Invalid("body", $"The body says gzip but is not: {e.Message}");
        }
    }

    private static async Task<byte[]> CopyAsync(Stream source, int limit, string what, CancellationToken cancellationToken, long? declaredLength = null) =>
        await BoundedBody.ReadAsync(source, limit, cancellationToken, declaredLength)
        ?? throw new SextantException(ErrorCodes.RequestTooLarge, $"The {what} is larger than {limit} bytes (send smaller batches).", 413, "body");
}
