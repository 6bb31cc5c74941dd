namespace Sextant.Contracts;

/// <summary>The error codes of every error body; MLflow's REST API codes, so MLflow clients understand them.</summary>
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
