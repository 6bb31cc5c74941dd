namespace Sextant.Client;

/// <summary>The error codes a client most often branches on; the server sends MLflow's codes.</summary>
public static class SextantErrorCodes
{
    public const string ResourceDoesNotExist = "RESOURCE_DOES_NOT_EXIST";
    public const string ResourceAlreadyExists = "RESOURCE_ALREADY_EXISTS";
    public const string InvalidParameterValue = "INVALID_PARAMETER_VALUE";
    public const string Unauthenticated = "UNAUTHENTICATED";
    public const string PermissionDenied = "PERMISSION_DENIED";
}
