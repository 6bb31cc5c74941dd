namespace Sextant.Core;

/// <summary>Error codes shared with MLflow's REST API, so MLflow clients understand them.</summary>
public static class ErrorCodes
{
    public const string InvalidParameterValue = "INVALID_PARAMETER_VALUE";
    public const string ResourceDoesNotExist = "RESOURCE_DOES_NOT_EXIST";
    public const string ResourceAlreadyExists = "RESOURCE_ALREADY_EXISTS";
    public const string InvalidState = "INVALID_STATE";
    public const string Unauthenticated = "UNAUTHENTICATED";
    public const string PermissionDenied = "PERMISSION_DENIED";
    public const string ResourceExhausted = "RESOURCE_EXHAUSTED";
    public const string TemporarilyUnavailable = "TEMPORARILY_UNAVAILABLE";
    public const string EndpointNotFound = "ENDPOINT_NOT_FOUND";
    public const string RequestTooLarge = "REQUEST_LIMIT_EXCEEDED";
    public const string InternalError = "INTERNAL_ERROR";
}

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
