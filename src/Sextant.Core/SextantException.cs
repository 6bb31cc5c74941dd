using Sextant.Contracts;

namespace Sextant.Core;

/// <summary>An error a user caused or can act on; the server turns it into a 4xx/5xx JSON body.</summary>
public sealed class SextantException(string errorCode, string message, int statusCode = 400, string? field = null) : Exception(message)
{
    public string ErrorCode { get; } = errorCode;

    public int StatusCode { get; } = statusCode;

    public string? Field { get; } = field;

    public static SextantException Invalid(string field, string message) => new(ErrorCodes.InvalidParameterValue, message, 400, field);

    public static SextantException Missing(string field) =>
        new(ErrorCodes.InvalidParameterValue, $"Missing value for required parameter '{field}'.", 400, field);

    public static SextantException NotFound(string message) => new(ErrorCodes.ResourceDoesNotExist, message, 404);

    public static SextantException AlreadyExists(string message, string? field = null) => new(ErrorCodes.ResourceAlreadyExists, message, 400, field);
}
