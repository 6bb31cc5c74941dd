using System.Text.Json;
using Sextant.Contracts;
using Sextant.Core;

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
        await JsonSerializer.SerializeAsync(context.Response.Body, new ErrorResponse(code, message, field), SextantJsonContext.Default.ErrorResponse);
    }
}
