using System.Globalization;
using System.Net;
using System.Text.Json.Serialization.Metadata;
using Microsoft.Extensions.Options;
using Sextant.Contracts;
using Sextant.Core;
using Sextant.Core.Projects;

namespace Sextant.Server.Http;

/// <summary>The JSON body type of a route whose body <see cref="JsonBody"/> reads, for the OpenAPI document.</summary>
internal sealed record JsonRequestBodyMetadata(Type Type);

/// <summary>Small helpers that keep endpoint files to one line of mapping per route.</summary>
internal static class EndpointHelpers
{
    /// <summary>Maps a POST whose JSON body is read with the size limit and handed to <paramref name="handler"/> with the caller.</summary>
    public static RouteHandlerBuilder MapJsonPost<TRequest>(
        this IEndpointRouteBuilder routes, string pattern, JsonTypeInfo<TRequest> typeInfo, Func<HttpContext, Caller, TRequest, Task<IResult>> handler)
        where TRequest : class =>
        routes.MapJson(HttpMethods.Post, pattern, typeInfo, handler);

    /// <summary>As <see cref="MapJsonPost"/> for another method with a JSON body (MLflow sends PATCH and DELETE with bodies).</summary>
    public static RouteHandlerBuilder MapJson<TRequest>(
        this IEndpointRouteBuilder routes, string method, string pattern, JsonTypeInfo<TRequest> typeInfo, Func<HttpContext, Caller, TRequest, Task<IResult>> handler)
        where TRequest : class =>
        routes.MapMethods(pattern, [method], async (HttpContext context, IOptions<SextantServerOptions> options) =>
            {
                var body = await JsonBody.ReadAsync(context, typeInfo, options.Value.MaxJsonBodyBytes);
                return await handler(context, context.Caller(), body);
            })
            // Not Accepts<T>(): that also makes routing refuse other content types, which MLflow clients may send.
            .WithMetadata(new JsonRequestBodyMetadata(typeof(TRequest)));

    public static RouteHandlerBuilder Describe(this RouteHandlerBuilder builder, string name, string summary, string tag) =>
        builder.WithName(name).WithSummary(summary).WithTags(tag);

    /// <summary>The Idempotency-Key header of a write, if the client sent one.</summary>
    public static string? IdempotencyKey(this HttpContext context) =>
        context.Request.Headers.TryGetValue("Idempotency-Key", out var value) ? value.ToString() : null;

    /// <summary>An experiments search given as a query string (GET): max_results, page_token, filter, order_by (repeated), view_type.</summary>
    public static SearchExperimentsRequest SearchExperimentsQuery(this HttpContext context) =>
        new(context.QueryLong("max_results"), context.Query("page_token"), context.Query("filter"),
            context.Request.Query["order_by"].Where(o => !string.IsNullOrEmpty(o)).Select(o => o!).ToList(), context.Query("view_type"));

    /// <summary>"localhost" or a loopback address (127.0.0.0/8, ::1), with or without IPv6 brackets.</summary>
    public static bool IsLoopbackHost(string host) =>
        host is "localhost" || (IPAddress.TryParse(host.Trim('[', ']'), out var ip) && IPAddress.IsLoopback(ip));

    public static string? Query(this HttpContext context, string name) =>
        context.Request.Query.TryGetValue(name, out var value) ? value.ToString() : null;

    public static long? QueryLong(this HttpContext context, string name)
    {
        var text = context.Query(name);
        if (string.IsNullOrEmpty(text))
        {
            return null;
        }
        return long.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value)
            ? value
            : throw SextantException.Invalid(name, $"'{name}' must be an integer; got '{text}'.");
    }

    /// <summary>A query integer that must fit an int (a page size, a version number).</summary>
    public static int? QueryInt(this HttpContext context, string name) => context.QueryLong(name) switch
    {
        null => null,
        >= int.MinValue and <= int.MaxValue and var value => (int)value,
        _ => throw SextantException.Invalid(name, $"'{name}' is out of range; got '{context.Query(name)}'."),
    };
}
