using System.Text.Json.Serialization.Metadata;
using Sextant.Contracts;

namespace Sextant.Server.Http;

/// <summary>JSON results through the source-generated contracts; a success always has an object body.</summary>
internal static class ApiResults
{
    public static IResult Ok<T>(T value, JsonTypeInfo<T> typeInfo) => TypedResults.Json(value, typeInfo);

    public static IResult Empty() => TypedResults.Json(new EmptyResponse(), SextantJsonContext.Default.EmptyResponse);

    public static IResult Error(int status, string code, string message, string? field = null) =>
        TypedResults.Json(new ErrorResponse(code, message, field), SextantJsonContext.Default.ErrorResponse, statusCode: status);
}
