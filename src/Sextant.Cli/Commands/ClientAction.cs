using System.CommandLine;
using Sextant.Client;

namespace Sextant.Cli.Commands;

/// <summary>
/// Runs a client verb: builds the client from the options and turns every failure into exit code 1 and one line
/// <c>sextant: &lt;message&gt;</c> on stderr, since scripts read the exit code and people read one line.
/// </summary>
internal static class ClientAction
{
    public static void SetClientAction(this Command command, ClientOptions options, Func<ClientInvocation, CancellationToken, Task> action)
    {
        command.SetAction(async (ParseResult parse, CancellationToken cancellationToken) =>
        {
            var url = parse.GetValue(options.Url) ?? SextantClient.DefaultUrl;
            try
            {
                if (!Uri.TryCreate(url, UriKind.Absolute, out var address) || (address.Scheme != Uri.UriSchemeHttp && address.Scheme != Uri.UriSchemeHttps))
                {
                    throw new CliException($"--url '{url}' is not an absolute http or https URL.");
                }
                using var client = new SextantClient(address, parse.GetValue(options.ApiKey));
                await action(new ClientInvocation(parse, client, parse.GetValue(options.Json), CliOutput.CreateConsole()), cancellationToken);
                return 0;
            }
            catch (Exception e)
            {
                await Console.Error.WriteLineAsync("sextant: " + OneLine(Describe(e, url)));
                return 1;
            }
        });
    }

    private static string Describe(Exception e, string url) => e switch
    {
        SextantApiException api => api.Message,
        HttpRequestException { HttpRequestError: HttpRequestError.ConnectionError or HttpRequestError.NameResolutionError or HttpRequestError.SecureConnectionError } http =>
            $"could not reach {url}: {http.Message}",
        HttpRequestException http => $"request to {url} failed: {http.Message}",
        OperationCanceledException => "cancelled",
        _ => e.Message,
    };

    private static string OneLine(string message) => string.Join(' ', message.Split(['\r', '\n'], StringSplitOptions.RemoveEmptyEntries));
}

/// <summary>An error in what the user asked for, reported as its message alone.</summary>
internal sealed class CliException(string message) : Exception(message);
