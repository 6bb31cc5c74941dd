using System.Buffers.Binary;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using Sextant.Contracts;

namespace Sextant.Server.Tests.Datasets;

/// <summary>The dataset upload protocol over HTTP on both engines: blobs, manifests, versions, and what it refuses.</summary>
public abstract class DatasetApiTests(ServerFixture fixture)
{
    private HttpClient Http => fixture.Http;

    private static string Sha(byte[] content) => Convert.ToHexStringLower(SHA256.HashData(content));

    private static byte[] Frames(params (string Sha, byte[] Content)[] blobs)
    {
        using var body = new MemoryStream();
        foreach (var (sha, content) in blobs)
        {
            body.Write(Encoding.ASCII.GetBytes(sha));
            var length = new byte[8];
            BinaryPrimitives.WriteInt64LittleEndian(length, content.Length);
            body.Write(length);
            body.Write(content);
        }
        return body.ToArray();
    }

    private async Task<ApiAnswer> UploadAsync(byte[] framed, string? key = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/v1/blobs") { Content = new ByteArrayContent(framed) };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/vnd.sextant.blobs");
        if (key is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
        }
        var response = await Http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        return new ApiAnswer((int)response.StatusCode, text.StartsWith('{') ? System.Text.Json.Nodes.JsonNode.Parse(text) : null, text, response);
    }

    /// <summary>Uploads the files and their manifest; returns the manifest's address.</summary>
    private async Task<string> UploadVersionAsync(params (string Path, string Text)[] files)
    {
        var entries = files.Select(f => (f.Path, Bytes: Encoding.UTF8.GetBytes(f.Text))).ToList();
        Assert.Equal(200, (await UploadAsync(Frames([.. entries.Select(e => (Sha(e.Bytes), e.Bytes))]))).Status);
        var manifest = entries.Select(e => new ManifestEntry(e.Path, e.Bytes.Length, Sha(e.Bytes))).ToList();
        Assert.Null(DatasetManifest.Validate(manifest));
        var canonical = DatasetManifest.Serialize(manifest);
        Assert.Equal(200, (await UploadAsync(Frames((Sha(canonical), canonical)))).Status);
        return Sha(canonical);
    }

    private async Task<string> UploadManifestAsync(string json)
    {
        var bytes = Encoding.UTF8.GetBytes(json);
        Assert.Equal(200, (await UploadAsync(Frames((Sha(bytes), bytes)))).Status);
        return Sha(bytes);
    }

    [Fact]
    public async Task Upload_then_version_then_read_back_with_unchanged_content_making_no_version()
    {
        var a = Encoding.UTF8.GetBytes("id,x\n1,2\n3,4\n");
        var missing = await Http.PostAsync("/api/v1/blobs/missing", new { sha256 = new[] { Sha(a) } });
        Assert.Equal(Sha(a), missing.Json!["missing"]![0]!.GetValue<string>());

        var manifest = await UploadVersionAsync(("data/t.csv", "id,x\n1,2\n3,4\n"), ("readme.md", "hi"));
        Assert.Empty((await Http.PostAsync("/api/v1/blobs/missing", new { sha256 = new[] { Sha(a) } })).Json!["missing"]!.AsArray());

        var created = await Http.PostAsync("/api/v1/datasets/api-ds/versions", new { manifest_sha256 = manifest, message = "first" });
        Assert.Equal(200, created.Status);
        Assert.True(created.Json!["created"]!.GetValue<bool>());
        var version = created.Json!["version"]!;
        Assert.Equal((1L, "datasets:/api-ds@1", 2L), (version["version"]!.GetValue<long>(), version["uri"]!.GetValue<string>(), version["file_count"]!.GetValue<long>()));
        Assert.Equal(2, version["tables"]![0]!["rows"]!.GetValue<long>());

        var again = await Http.PostAsync("/api/v1/datasets/api-ds/versions", new { manifest_sha256 = manifest });
        Assert.False(again.Json!["created"]!.GetValue<bool>());
        Assert.Equal(1, again.Json!["version"]!["version"]!.GetValue<long>());

        var second = await UploadVersionAsync(("data/t.csv", "id,x,y\n1,2,a\n3,5,b\n5,6,c\n"));
        Assert.Equal(2, (await Http.PostAsync("/api/v1/datasets/api-ds/versions", new { manifest_sha256 = second })).Json!["version"]!["version"]!.GetValue<long>());

        var log = await Http.GetJsonAsync("/api/v1/datasets/api-ds/versions?max_results=1");
        Assert.Equal(2, log.Json!["versions"]![0]!["version"]!.GetValue<long>());
        var rest = await Http.GetJsonAsync("/api/v1/datasets/api-ds/versions?max_results=1&page_token=" + Uri.EscapeDataString(log.Json!["next_page_token"]!.GetValue<string>()));
        Assert.Equal(1, rest.Json!["versions"]![0]!["version"]!.GetValue<long>());

        var diff = await Http.GetJsonAsync("/api/v1/datasets/api-ds/diff?from=1&to=latest");
        Assert.Equal("readme.md", diff.Json!["removed"]![0]!["path"]!.GetValue<string>());
        Assert.Equal("data/t.csv", diff.Json!["changed"]![0]!["path"]!.GetValue<string>());
        var table = diff.Json!["tables"]![0]!;
        Assert.Equal((2L, 3L, "y"), (table["old_rows"]!.GetValue<long>(), table["new_rows"]!.GetValue<long>(), table["added_columns"]![0]!.GetValue<string>()));

        var manifestBody = await Http.GetStringAsync("/api/v1/datasets/api-ds/versions/1/manifest");
        Assert.Equal(manifest, Sha(Encoding.UTF8.GetBytes(manifestBody)));
        var blob = await Http.GetByteArrayAsync($"/api/v1/blobs/{Sha(a)}");
        Assert.Equal(a, blob);
        var listed = await Http.GetJsonAsync("/api/v1/datasets?filter=API-");
        Assert.Contains(listed.Json!["datasets"]!.AsArray(), d => d!["name"]!.GetValue<string>() == "api-ds");
    }

    [Fact]
    public async Task Parallel_versions_of_one_dataset_get_unique_gap_free_numbers()
    {
        var manifests = new List<string>();
        for (var i = 0; i < 8; i++)
        {
            manifests.Add(await UploadVersionAsync(($"part-{i}.txt", $"content {i}")));
        }
        var answers = await Task.WhenAll(manifests.Select(m => Http.PostAsync("/api/v1/datasets/parallel-ds/versions", new { manifest_sha256 = m })));
        Assert.All(answers, a => Assert.Equal(200, a.Status));
        Assert.Equal(Enumerable.Range(1, 8).Select(i => (long)i), answers.Select(a => a.Json!["version"]!["version"]!.GetValue<long>()).Order());
    }

    [Fact]
    public async Task A_blob_that_does_not_hash_as_declared_is_refused_and_the_blobs_before_it_are_kept()
    {
        var good = Encoding.UTF8.GetBytes("good blob " + Guid.NewGuid());
        var bad = Encoding.UTF8.GetBytes("changed while being sent");
        var answer = await UploadAsync(Frames((Sha(good), good), (Sha("other"u8.ToArray()), bad)));
        Assert.Equal(400, answer.Status);
        Assert.Equal("body", answer.Field);
        Assert.Contains("blob 1", answer.Message);
        Assert.Contains("change", answer.Message);
        var missing = await Http.PostAsync("/api/v1/blobs/missing", new { sha256 = new[] { Sha(good), Sha(bad) } });
        Assert.Equal([Sha(bad)], missing.Json!["missing"]!.AsArray().Select(m => m!.GetValue<string>()));
    }

    [Fact]
    public async Task A_truncated_or_malformed_frame_is_a_400()
    {
        var content = Encoding.UTF8.GetBytes("short");
        var framed = Frames((Sha(content), content));
        var truncated = await UploadAsync(framed[..^2]);
        Assert.Equal(400, truncated.Status);
        Assert.Contains("ends after 3 of its 5 bytes", truncated.Message);
        var header = await UploadAsync(framed[..40]);
        Assert.Equal(400, header.Status);
        Assert.Contains("header", header.Message);
        // Fewer bytes than declared that happen to hash as declared: still refused.
        var prefix = Encoding.UTF8.GetBytes("sho");
        var lying = Frames((Sha(prefix), prefix));
        BinaryPrimitives.WriteInt64LittleEndian(lying.AsSpan(64), 5);
        var shortBody = await UploadAsync(lying);
        Assert.Equal(400, shortBody.Status);
        Assert.Contains("ends after 3 of its 5 bytes", shortBody.Message);
        Assert.Single((await Http.PostAsync("/api/v1/blobs/missing", new { sha256 = new[] { Sha(prefix) } })).Json!["missing"]!.AsArray());
        var notHex = await UploadAsync(Frames(("Z" + Sha(content)[1..], content)));
        Assert.Equal(400, notHex.Status);
        var badHash = await Http.PostAsync("/api/v1/blobs/missing", new { sha256 = new[] { "abc" } });
        Assert.Equal((400, "sha256[0]"), (badHash.Status, badHash.Field));
    }

    [Theory]
    [InlineData("../escape.txt", "escapes the dataset's folder")]
    [InlineData("/etc/passwd", "absolute")]
    [InlineData("a/./b", "'.' segment")]
    [InlineData("a\\\\b", "backslash")]
    public async Task A_manifest_path_that_escapes_its_folder_is_refused(string path, string reason)
    {
        var content = Encoding.UTF8.GetBytes("x");
        await UploadAsync(Frames((Sha(content), content)));
        var manifest = await UploadManifestAsync($$"""{"files":[{"path":"{{path}}","size":1,"sha256":"{{Sha(content)}}"}]}""");
        var answer = await Http.PostAsync("/api/v1/datasets/escape-ds/versions", new { manifest_sha256 = manifest });
        Assert.Equal((400, "manifest"), (answer.Status, answer.Field));
        Assert.Contains(reason, answer.Message);
        Assert.Equal(404, (await Http.GetJsonAsync("/api/v1/datasets/escape-ds/versions/latest")).Status);
    }

    [Fact]
    public async Task Manifests_that_are_not_canonical_or_name_content_never_uploaded_are_refused()
    {
        var content = Encoding.UTF8.GetBytes("y");
        await UploadAsync(Frames((Sha(content), content)));
        var unsorted = await UploadManifestAsync($$"""{"files":[{"path":"b","size":1,"sha256":"{{Sha(content)}}"},{"path":"a","size":1,"sha256":"{{Sha(content)}}"}]}""");
        var answer = await Http.PostAsync("/api/v1/datasets/bad-ds/versions", new { manifest_sha256 = unsorted });
        Assert.Equal((400, "manifest_sha256"), (answer.Status, answer.Field));
        Assert.Contains("canonical", answer.Message);

        var unknown = new string('a', 64);
        var dangling = await UploadManifestAsync($$"""{"files":[{"path":"a","size":1,"sha256":"{{unknown}}"}]}""");
        answer = await Http.PostAsync("/api/v1/datasets/bad-ds/versions", new { manifest_sha256 = dangling });
        Assert.Equal((400, "manifest"), (answer.Status, answer.Field));
        Assert.Contains("has not been uploaded", answer.Message);

        var wrongSize = await UploadManifestAsync($$"""{"files":[{"path":"a","size":7,"sha256":"{{Sha(content)}}"}]}""");
        Assert.Contains("holds 1", (await Http.PostAsync("/api/v1/datasets/bad-ds/versions", new { manifest_sha256 = wrongSize })).Message);

        var twice = await UploadManifestAsync($$"""{"files":[{"path":"a","size":1,"sha256":"{{Sha(content)}}"},{"path":"a/b","size":1,"sha256":"{{Sha(content)}}"}]}""");
        Assert.Contains("is a file and also the folder", (await Http.PostAsync("/api/v1/datasets/bad-ds/versions", new { manifest_sha256 = twice })).Message);

        var notJson = await UploadManifestAsync("not json");
        Assert.Equal(400, (await Http.PostAsync("/api/v1/datasets/bad-ds/versions", new { manifest_sha256 = notJson })).Status);
        var neverUploaded = await Http.PostAsync("/api/v1/datasets/bad-ds/versions", new { manifest_sha256 = new string('b', 64) });
        Assert.Equal((400, "manifest_sha256"), (neverUploaded.Status, neverUploaded.Field));

        var badName = await Http.PostAsync("/api/v1/datasets/-x/versions", new { manifest_sha256 = unsorted });
        Assert.Equal((400, "name"), (badName.Status, badName.Field));
        Assert.Equal(404, (await Http.GetJsonAsync("/api/v1/datasets/no-such-ds/versions/1")).Status);
        Assert.Equal((400, "version"), ((await Http.GetJsonAsync("/api/v1/datasets/no-such-ds/versions/v0")).Status, (await Http.GetJsonAsync("/api/v1/datasets/no-such-ds/versions/v0")).Field));
    }

    [Fact]
    public async Task Tables_with_repeated_or_blank_headers_and_tsv_quotes_are_profiled_and_diffed()
    {
        var first = await UploadVersionAsync(("t.csv", "a,a,\n1,2,3\n"), ("q.tsv", "x\ty\n\"open\t1\n2\t3\n4\t5\n"));
        var created = await Http.PostAsync("/api/v1/datasets/headers-ds/versions", new { manifest_sha256 = first });
        Assert.Equal(200, created.Status);
        var profile = await Http.GetJsonAsync("/api/v1/datasets/headers-ds/versions/1/profile");
        var tables = profile.Json!["tables"]!.AsArray();
        var csv = tables.Single(t => t!["path"]!.GetValue<string>() == "t.csv")!;
        Assert.Equal(["a", "a_2", "column_3"], csv["columns"]!.AsArray().Select(c => c!["name"]!.GetValue<string>()));
        // A stray quote in a TSV is a character, not the start of a quoted field: three rows.
        Assert.Equal(3, tables.Single(t => t!["path"]!.GetValue<string>() == "q.tsv")!["rows"]!.GetValue<long>());

        var second = await UploadVersionAsync(("t.csv", "a,a,\n1,2,3\n4,5,6\n"), ("q.tsv", "x\ty\n"));
        await Http.PostAsync("/api/v1/datasets/headers-ds/versions", new { manifest_sha256 = second });
        var diff = await Http.GetJsonAsync("/api/v1/datasets/headers-ds/diff?from=1&to=2");
        Assert.Equal(200, diff.Status);
        Assert.Equal((400, "from"), ((await Http.GetJsonAsync("/api/v1/datasets/headers-ds/diff?from=v0&to=2")).Status, (await Http.GetJsonAsync("/api/v1/datasets/headers-ds/diff?from=v0&to=2")).Field));
        Assert.Equal((400, "uri"), ((await Http.GetJsonAsync("/api/v1/lineage?uri=" + Uri.EscapeDataString("datasets:/headers-ds@"))).Status, (await Http.GetJsonAsync("/api/v1/lineage?uri=" + Uri.EscapeDataString("datasets:/headers-ds@"))).Field));
    }

    [Fact]
    public async Task A_damaged_blob_is_never_served()
    {
        var content = Encoding.UTF8.GetBytes("precious bytes " + Guid.NewGuid());
        await UploadAsync(Frames((Sha(content), content)));
        var sha = Sha(content);
        var file = Path.Combine(fixture.DataDirectory, "blobs", "sha256", sha[..2], sha[2..4], sha);
        var damaged = File.ReadAllBytes(file);
        damaged[0] ^= 0xFF;
        File.WriteAllBytes(file, damaged);
        // The connection is cut short of its Content-Length: no client takes the bytes for the blob.
        await Assert.ThrowsAnyAsync<Exception>(() => Http.GetByteArrayAsync($"/api/v1/blobs/{sha}"));
        await Assert.ThrowsAnyAsync<Exception>(() => Http.PostAsync("/api/v1/blobs/read", new { sha256 = new[] { sha } }));
    }
}

public sealed class SqliteDatasetApiTests(ServerFixture fixture) : DatasetApiTests(fixture), IClassFixture<ServerFixture>;

public sealed class PostgresDatasetApiTests(PostgresServerFixture fixture) : DatasetApiTests(fixture), IClassFixture<PostgresServerFixture>;
