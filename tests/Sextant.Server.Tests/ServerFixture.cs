using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Sextant.Server;

namespace Sextant.Server.Tests;

/// <summary>A real Sextant server on 127.0.0.1 with a temporary data folder (SQLite), and JSON helpers over HTTP.</summary>
public class ServerFixture : IAsyncLifetime
{
    private readonly Action<SextantServerOptions>? _configure;

    public ServerFixture() : this(null)
    {
    }

    internal ServerFixture(Action<SextantServerOptions>? configure) => _configure = configure;

    public SextantServer Server { get; private set; } = null!;

    public HttpClient Http { get; private set; } = null!;

    public string DataDirectory { get; } = Path.Combine(Path.GetTempPath(), "sextant-server-" + Guid.NewGuid().ToString("N")[..10]);

    public async Task InitializeAsync()
    {
        var options = new SextantServerOptions { Port = 0, DataDirectory = DataDirectory };
        _configure?.Invoke(options);
        await ConfigureAsync(options);
        Server = await SextantServer.StartAsync(options);
        Http = new HttpClient { BaseAddress = Server.Address };
    }

    /// <summary>Lets a subclass change the options, e.g. put the metadata in PostgreSQL.</summary>
    protected virtual Task ConfigureAsync(SextantServerOptions options) => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        Http.Dispose();
        await Server.DisposeAsync();
        try
        {
            Directory.Delete(DataDirectory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

/// <summary>The same server with its metadata in a fresh PostgreSQL database.</summary>
public sealed class PostgresServerFixture : ServerFixture
{
    protected override async Task ConfigureAsync(SextantServerOptions options) =>
        options.DatabaseUri = await Sextant.Core.Tests.Storage.PostgresServer.CreateDatabaseAsync();
}

/// <summary>One HTTP answer: status, headers and the body parsed as JSON (null when it is not JSON).</summary>
public sealed record ApiAnswer(int Status, JsonNode? Json, string Body, HttpResponseMessage Response)
{
    public string? ErrorCode => Json?["error_code"]?.GetValue<string>();
    public string? Message => Json?["message"]?.GetValue<string>();
    public string? Field => Json?["field"]?.GetValue<string>();
}

public static class HttpJson
{
    public static async Task<ApiAnswer> SendAsync(this HttpClient http, HttpMethod method, string path, string? body = null, string? key = null)
    {
        using var request = new HttpRequestMessage(method, path);
        if (body is not null)
        {
            request.Content = new StringContent(body, Encoding.UTF8, "application/json");
        }
        if (key is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
        }
        var response = await http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        JsonNode? json = null;
        try
        {
            json = text.Length > 0 ? JsonNode.Parse(text) : null;
        }
        catch (JsonException)
        {
        }
        return new ApiAnswer((int)response.StatusCode, json, text, response);
    }

    public static Task<ApiAnswer> PostAsync(this HttpClient http, string path, object body, string? key = null) =>
        http.SendAsync(HttpMethod.Post, path, body as string ?? JsonSerializer.Serialize(body), key);

    public static Task<ApiAnswer> GetJsonAsync(this HttpClient http, string path, string? key = null) =>
        http.SendAsync(HttpMethod.Get, path, null, key);

    /// <summary>An API key with a role in a project (created when missing); returns its secret.</summary>
    public static async Task<string> CreateKeyAsync(this HttpClient http, string project, string role)
    {
        var existing = await http.GetJsonAsync("/api/v1/projects");
        if (!existing.Json!["projects"]!.AsArray().Any(p => p!["name"]!.GetValue<string>() == project))
        {
            Assert.Equal(201, (await http.PostAsync("/api/v1/projects", new { name = project })).Status);
        }
        var created = await http.PostAsync("/api/v1/keys", new { name = $"{project}-{role}", role, project });
        Assert.Equal(201, created.Status);
        return created.Json!["secret"]!.GetValue<string>();
    }

    public static async Task<string> CreateExperimentAsync(this HttpClient http, string name, string? key = null)
    {
        var answer = await http.PostAsync("/api/2.0/mlflow/experiments/create", new { name }, key);
        Assert.Equal(200, answer.Status);
        return answer.Json!["experiment_id"]!.GetValue<string>();
    }

    public static async Task<string> CreateRunAsync(this HttpClient http, string experimentId, string? key = null)
    {
        var answer = await http.PostAsync("/api/2.0/mlflow/runs/create", new { experiment_id = experimentId, start_time = 1 }, key);
        Assert.Equal(200, answer.Status);
        return answer.Json!["run"]!["info"]!["run_id"]!.GetValue<string>();
    }
}
