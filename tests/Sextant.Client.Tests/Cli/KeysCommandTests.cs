using System.Net;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Sextant.Client.Tests.Cli;

[Collection(ConsoleCollection.Name)]
public sealed partial class KeysCommandTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    [Fact]
    public async Task Keys_create_prints_a_secret_that_authenticates_until_keys_revoke()
    {
        var created = await CliRunner.RunAsync(fixture.Address, "keys", "create", "--name", "cli-key", "--role", "editor");
        var secret = SecretLine().Match(created.Out).Groups[1].Value;
        using var client = fixture.CreateClient(secret);
        var identity = await client.WhoAmIAsync();

        var listed = await CliRunner.RunAsync(fixture.Address, "keys", "list", "--json");
        using var keys = JsonDocument.Parse(listed.Out);
        var keyId = keys.RootElement.GetProperty("keys").EnumerateArray()
            .Single(k => k.GetProperty("name").GetString() == "cli-key").GetProperty("key_id").GetString()!;
        var revoked = await CliRunner.RunAsync(fixture.Address, "keys", "revoke", keyId);
        var error = await Assert.ThrowsAsync<SextantApiException>(() => client.WhoAmIAsync());

        Assert.Equal(0, created.ExitCode);
        Assert.Contains("will not be shown again", created.Out);
        Assert.Equal("editor", identity.Role);
        Assert.Equal(0, revoked.ExitCode);
        Assert.Equal(HttpStatusCode.Unauthorized, error.StatusCode);
    }

    [Fact]
    public async Task The_api_key_option_authenticates_the_cli_and_a_revoked_key_exits_1()
    {
        using var admin = fixture.CreateClient();
        var key = await admin.CreateKeyAsync("cli-viewer", "viewer");

        var allowed = await CliRunner.RunAsync(fixture.Address, "experiments", "list", "--api-key", key.Secret);
        var denied = await CliRunner.RunAsync(fixture.Address, "keys", "list", "--api-key", key.Secret);
        await admin.RevokeKeyAsync(key.Key.KeyId);
        var revoked = await CliRunner.RunAsync(fixture.Address, "experiments", "list", "--api-key", key.Secret);

        Assert.Equal(0, allowed.ExitCode);
        Assert.Equal(1, denied.ExitCode);
        Assert.Contains("viewer", Assert.Single(denied.ErrorLines));
        Assert.Equal(1, revoked.ExitCode);
        Assert.Contains("revoked", Assert.Single(revoked.ErrorLines));
    }

    [Fact]
    public async Task Keys_create_rejects_an_unknown_role_before_calling_the_server()
    {
        var result = await CliRunner.RunAsync(fixture.Address, "keys", "create", "--name", "cli-bad", "--role", "owner");
        using var admin = fixture.CreateClient();

        Assert.NotEqual(0, result.ExitCode);
        Assert.DoesNotContain(await admin.ListKeysAsync(), k => k.Name == "cli-bad");
    }

    [GeneratedRegex(@"Secret: (\S+)")]
    private static partial Regex SecretLine();
}
