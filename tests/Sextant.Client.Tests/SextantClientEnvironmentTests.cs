namespace Sextant.Client.Tests;

[Collection(ConsoleCollection.Name)]
public sealed class SextantClientEnvironmentTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    [Fact]
    public async Task FromEnvironment_uses_SEXTANT_URL_and_SEXTANT_API_KEY()
    {
        using var admin = fixture.CreateClient();
        var created = await admin.CreateKeyAsync("from-environment", "editor");
        var previous = (Environment.GetEnvironmentVariable("SEXTANT_URL"), Environment.GetEnvironmentVariable("SEXTANT_API_KEY"));
        Environment.SetEnvironmentVariable("SEXTANT_URL", fixture.Address.ToString());
        Environment.SetEnvironmentVariable("SEXTANT_API_KEY", created.Secret);
        try
        {
            using var client = SextantClient.FromEnvironment();

            var identity = await client.WhoAmIAsync();

            Assert.Equal(fixture.Address, client.BaseAddress);
            Assert.Equal(("editor", false), (identity.Role, identity.Anonymous));
        }
        finally
        {
            Environment.SetEnvironmentVariable("SEXTANT_URL", previous.Item1);
            Environment.SetEnvironmentVariable("SEXTANT_API_KEY", previous.Item2);
        }
    }
}
