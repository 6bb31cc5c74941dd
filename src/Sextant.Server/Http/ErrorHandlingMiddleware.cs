using System.Data.Common;
using System.Text.Json;
using Npgsql;
using Sextant.Contracts;
using Sextant.Core;
using Sextant.Core.Storage;

namespace Sextant.Server.Http;

/// <summary>Turns every failure into the JSON error body: SextantException as it says, anything else as a logged 500.</summary>
internal sealed class ErrorHandlingMiddleware(RequestDelegate next, ILogger<ErrorHandlingMiddleware> logger)
{
    public async Task InvokeAsync(HttpContext context)
    {
        try
        {
            await next(context);
        }
        catch (SextantException e)
        {
            await WriteAsync(context, e.StatusCode, e.ErrorCode, e.Message, e.Field);
        }
        catch (BadHttpRequestException e)
        {
            var code = e.StatusCode == 413 ? ErrorCodes.RequestTooLarge : ErrorCodes.InvalidParameterValue;
            await WriteAsync(context, e.StatusCode, code, e.Message, null);
        }
        catch (DbException e) when (SextantDatabase.IsUniqueViolation(e))
        {
            // A concurrent request created the same thing first.
            await WriteAsync(context, 400, ErrorCodes.ResourceAlreadyExists, "It already exists: a concurrent request created it first.", null);
        }
        catch (PostgresException e) when (e.SqlState is PostgresErrorCodes.CharacterNotInRepertoire or PostgresErrorCodes.UntranslatableCharacter)
        {
            await WriteAsync(context, 400, ErrorCodes.InvalidParameterValue, $"A value cannot be stored: {e.MessageText}", null);
        }
        catch (NpgsqlException e) when (e.InnerException is TimeoutException || e.IsTransient)
        {
            // Connection pool exhausted, server restarting, network blip: worth a retry, not a 500.
            await WriteAsync(context, 503, ErrorCodes.TemporarilyUnavailable, $"The database is busy or unreachable; retry shortly. ({e.Message})", null);
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
            // The client went away; nothing to answer.
        }
        catch (Exception e)
        {
            logger.LogError(e, "Unhandled error on {Method} {Path}", context.Request.Method, context.Request.Path);
            await WriteAsync(context, 500, ErrorCodes.InternalError, "An internal error occurred; it has been logged.", null);
        }
    }

    private static bool IsOpenAiRoute(PathString path) =>
        path.StartsWithSegments("/v1/chat") || path.StartsWithSegments("/v1/embeddings") || path.StartsWithSegments("/v1/models");

    private static async Task WriteAsync(HttpContext context, int status, string code, string message, string? field)
    {
        if (context.Response.HasStarted)
        {
            context.Abort();
            return;
        }
        context.Response.Clear();
        context.Response.StatusCode = status;
        if (status == 503)
        {
            context.Response.Headers.RetryAfter = "1";
        }
        if (status == 401)
        {
            context.Response.Headers.WWWAuthenticate = "Bearer realm=\"sextant\", Basic realm=\"sextant\"";
        }
        if (IsOpenAiRoute(context.Request.Path))
        {
            // OpenAI SDKs read errors of the gateway's routes in OpenAI's shape.
            var type = status switch { 401 => "authentication_error", 403 => "permission_error", 429 => "rate_limit_error", >= 500 => "api_error", _ => "invalid_request_error" };
            await Gateway.GatewayProxy.OpenAiErrorAsync(context, status, message, type, field, code.ToLowerInvariant());
            return;
        }
        await JsonSerializer.SerializeAsync(context.Response.Body, new ErrorResponse(code, message, field), SextantJsonContext.Default.ErrorResponse);
    }
}
