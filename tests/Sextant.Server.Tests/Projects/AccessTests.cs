using System.Net.Http.Headers;
using System.Text;
using Sextant.Core;
using Sextant.Contracts;

namespace Sextant.Server.Tests.Projects;

/// <summary>Keys, roles and project isolation over HTTP.</summary>
public sealed class AccessTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private HttpClient Http => fixture.Http;

    private Task<string> KeyAsync(string project, string role) => Http.CreateKeyAsync(project, role);

    [Fact]
    public async Task A_key_of_one_project_cannot_read_or_write_another()
    {
        var a = await KeyAsync("proj-a", "editor");
        var b = await KeyAsync("proj-b", "admin");
        var experiment = await Http.CreateExperimentAsync("private", a);
        var run = await Http.CreateRunAsync(experiment, a);

        Assert.Equal(404, (await Http.GetJsonAsync($"/api/2.0/mlflow/experiments/get?experiment_id={experiment}", b)).Status);
        Assert.Equal(404, (await Http.GetJsonAsync($"/api/2.0/mlflow/runs/get?run_id={run}", b)).Status);
        Assert.Equal(404, (await Http.PostAsync("/api/2.0/mlflow/runs/log-metric", new { run_id = run, key = "x", value = 1.0, timestamp = 1 }, b)).Status);
        var search = await Http.PostAsync("/api/2.0/mlflow/runs/search", new { experiment_ids = new[] { experiment } }, b);
        Assert.Empty(search.Json!["runs"]!.AsArray());
        var experiments = await Http.GetJsonAsync("/api/2.0/mlflow/experiments/search", b);
        Assert.DoesNotContain(experiments.Json!["experiments"]!.AsArray(), e => e!["name"]!.GetValue<string>() == "private");
        using var hopRequest = new HttpRequestMessage(HttpMethod.Get, $"/api/2.0/mlflow/experiments/get?experiment_id={experiment}");
        hopRequest.Headers.Authorization = new AuthenticationHeaderValue("Bearer", b);
        hopRequest.Headers.Add("X-Sextant-Project", "proj-a");
        var hop = await Http.SendAsync(hopRequest);
        Assert.Equal(403, (int)hop.StatusCode);
        Assert.Equal(200, (await Http.GetJsonAsync($"/api/2.0/mlflow/runs/get?run_id={run}", a)).Status);
    }

    [Fact]
    public async Task A_viewer_can_read_but_not_write()
    {
        var editor = await KeyAsync("proj-v", "editor");
        var viewer = await KeyAsync("proj-v", "viewer");
        var experiment = await Http.CreateExperimentAsync("readable", editor);
        Assert.Equal(200, (await Http.GetJsonAsync($"/api/2.0/mlflow/experiments/get?experiment_id={experiment}", viewer)).Status);
        var write = await Http.PostAsync("/api/2.0/mlflow/experiments/create", new { name = "nope" }, viewer);
        Assert.Equal((403, ErrorCodes.PermissionDenied), (write.Status, write.ErrorCode));
        Assert.Equal(403, (await Http.PostAsync("/api/v1/keys", new { name = "x", role = "admin" }, viewer)).Status);
    }

    [Fact]
    public async Task Basic_auth_with_the_key_as_password_works_like_mlflow_clients_send_it()
    {
        var key = await KeyAsync("proj-basic", "editor");
        using var request = new HttpRequestMessage(HttpMethod.Get, "/api/v1/whoami");
        request.Headers.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes("anyone:" + key)));
        var response = await Http.SendAsync(request);
        Assert.Contains("proj-basic", await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task A_revoked_or_unknown_key_is_a_401()
    {
        var key = await KeyAsync("proj-r", "editor");
        Assert.Equal(200, (await Http.GetJsonAsync("/api/v1/whoami", key)).Status);
        var keys = await Http.GetJsonAsync("/api/v1/keys?all=true");
        var keyId = keys.Json!["keys"]!.AsArray().Last(k => k!["project"]!.GetValue<string>() == "proj-r")!["key_id"]!.GetValue<string>();
        Assert.Equal(200, (await Http.SendAsync(HttpMethod.Delete, $"/api/v1/keys/{keyId}")).Status);
        var revoked = await Http.GetJsonAsync("/api/v1/whoami", key);
        Assert.Equal((401, ErrorCodes.Unauthenticated), (revoked.Status, revoked.ErrorCode));
        Assert.True(revoked.Response.Headers.WwwAuthenticate.Count > 0);
        Assert.Equal(401, (await Http.GetJsonAsync("/api/v1/whoami", "sx_nothing_here")).Status);
        Assert.DoesNotContain(key, keys.Body);
    }

    [Fact]
    public async Task Anonymous_loopback_callers_are_admin_of_default()
    {
        var answer = await Http.GetJsonAsync("/api/v1/whoami");
        Assert.Equal(("default", "admin"), (answer.Json!["project"]!.GetValue<string>(), answer.Json!["role"]!.GetValue<string>()));
    }

    [Theory]
    [InlineData("Host", "attacker.example")]
    [InlineData("X-Forwarded-For", "203.0.113.7")]
    [InlineData("Forwarded", "for=203.0.113.7")]
    public async Task Anonymous_access_is_refused_through_a_proxy_or_a_foreign_host_name(string header, string value)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/api/v1/whoami");
        if (header == "Host")
        {
            request.Headers.Host = value;
        }
        else
        {
            request.Headers.Add(header, value);
        }
        var response = await Http.SendAsync(request);
        Assert.Equal(401, (int)response.StatusCode);
    }

    [Fact]
    public async Task An_anonymous_cross_site_form_post_is_refused()
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/2.0/mlflow/experiments/create")
        {
            Content = new StringContent("""{"name": "csrf"}""", Encoding.UTF8, "text/plain"),
        };
        var response = await Http.SendAsync(request);
        Assert.Equal(415, (int)response.StatusCode);
        Assert.Equal(404, (await Http.GetJsonAsync("/api/2.0/mlflow/experiments/get-by-name?experiment_name=csrf")).Status);
    }

    [Theory]
    [InlineData("Sec-Fetch-Site", "cross-site", 403)]
    [InlineData("Origin", "https://attacker.example", 403)]
    [InlineData("Origin", "null", 403)]
    public async Task Anonymous_requests_from_another_web_site_are_refused(string header, string value, int status)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/api/v1/whoami");
        request.Headers.TryAddWithoutValidation(header, value);
        Assert.Equal(status, (int)(await Http.SendAsync(request)).StatusCode);
    }

    [Fact]
    public async Task A_loopback_origin_is_a_local_page_and_allowed()
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/api/v1/whoami");
        request.Headers.TryAddWithoutValidation("Origin", "http://localhost:5000");
        request.Headers.TryAddWithoutValidation("Sec-Fetch-Site", "same-origin");
        Assert.Equal(200, (int)(await Http.SendAsync(request)).StatusCode);
    }

    [Fact]
    public async Task An_anonymous_post_without_a_content_type_is_refused()
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/2.0/mlflow/experiments/create")
        {
            Content = new ByteArrayContent("""{"name": "no-type"}"""u8.ToArray()),
        };
        Assert.Null(request.Content.Headers.ContentType);
        Assert.Equal(415, (int)(await Http.SendAsync(request)).StatusCode);
    }

    [Fact]
    public async Task A_keyed_post_needs_no_json_content_type()
    {
        var key = await KeyAsync("proj-ct", "editor");
        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/2.0/mlflow/experiments/create")
        {
            Content = new StringContent("""{"name": "with-key"}""", Encoding.UTF8, "text/plain"),
        };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
        Assert.Equal(200, (int)(await Http.SendAsync(request)).StatusCode);
    }

    [Fact]
    public async Task A_non_loopback_server_refuses_to_start_without_keys_or_allow_anonymous()
    {
        var folder = Path.Combine(Path.GetTempPath(), "sextant-open-" + Guid.NewGuid().ToString("N")[..8]);
        var e = await Assert.ThrowsAsync<SextantException>(() => SextantServer.StartAsync(new SextantServerOptions { Host = "0.0.0.0", Port = 0, DataDirectory = folder }));
        Assert.Contains("--allow-anonymous", e.Message);
    }
}
