using System.Net.Http.Headers;

namespace Sextant.Server.Tests.Artifacts;

/// <summary>A blob damaged on disk is never served as if it were whole: the download fails, visibly.</summary>
public sealed class CorruptedBlobTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    [Fact]
    public async Task Downloading_a_damaged_artifact_fails_instead_of_returning_wrong_bytes()
    {
        var experiment = await fixture.Http.CreateExperimentAsync("corrupt");
        var runId = await fixture.Http.CreateRunAsync(experiment);
        var content = System.Security.Cryptography.RandomNumberGenerator.GetBytes(300_000);
        using (var body = new ByteArrayContent(content))
        {
            body.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
            (await fixture.Http.PutAsync($"/api/v1/runs/{runId}/artifacts/model.bin", body)).EnsureSuccessStatusCode();
        }
        var sha = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(content));
        var file = Directory.GetFiles(Path.Combine(fixture.DataDirectory, "blobs"), sha, SearchOption.AllDirectories).Single();
        var damaged = (byte[])content.Clone();
        damaged[^10] ^= 0x01;
        await File.WriteAllBytesAsync(file, damaged);

        // Whole and in order up to the last read, then the connection is cut: no client takes it for complete.
        await Assert.ThrowsAnyAsync<HttpRequestException>(() => fixture.Http.GetByteArrayAsync($"/api/v1/runs/{runId}/artifacts/model.bin"));
        await Assert.ThrowsAnyAsync<HttpRequestException>(() => fixture.Http.GetByteArrayAsync($"/api/2.0/mlflow-artifacts/artifacts/{experiment}/{runId}/artifacts/model.bin"));
    }
}
