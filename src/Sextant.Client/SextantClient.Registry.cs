using System.Net.Http.Json;
using Sextant.Contracts;

namespace Sextant.Client;

// The model registry, through the MLflow-compatible registry routes, and model URIs (models:/name/3, models:/name@alias).
public sealed partial class SextantClient
{
    private const string Registry = "api/2.0/mlflow/";

    public async Task<RegisteredModel> CreateRegisteredModelAsync(string name, string? description = null, IReadOnlyDictionary<string, string>? tags = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        var request = new CreateRegisteredModelRequest(name, tags?.Select(t => new KeyValue(t.Key, t.Value)).ToList(), description);
        var response = await PostJsonAsync(Registry + "registered-models/create", request, Wire.CreateRegisteredModelRequest, Wire.RegisteredModelResponse, cancellationToken).ConfigureAwait(false);
        return response.RegisteredModel;
    }

    /// <summary>The registered model with this name, or null when there is none.</summary>
    public async Task<RegisteredModel?> GetRegisteredModelAsync(string name, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        try
        {
            var response = await GetJsonAsync(Registry + "registered-models/get" + Query(("name", name)), Wire.RegisteredModelResponse, cancellationToken).ConfigureAwait(false);
            return response.RegisteredModel;
        }
        catch (SextantApiException e) when (IsNotFound(e))
        {
            return null;
        }
    }

    /// <summary>One page of registered models; <paramref name="filter"/> takes e.g. <c>name LIKE 'churn%'</c> or <c>tags.team = 'risk'</c>.</summary>
    public Task<SearchRegisteredModelsResponse> SearchRegisteredModelsAsync(
        string? filter = null, int? maxResults = null, string? pageToken = null, IReadOnlyList<string>? orderBy = null, CancellationToken cancellationToken = default) =>
        GetJsonAsync(Registry + "registered-models/search" + SearchQuery(filter, maxResults, pageToken, orderBy), Wire.SearchRegisteredModelsResponse, cancellationToken);

    /// <summary>One page of model versions; <paramref name="filter"/> takes e.g. <c>name = 'churn'</c> or <c>run_id = '...'</c>.</summary>
    public Task<SearchModelVersionsResponse> SearchModelVersionsAsync(
        string? filter = null, int? maxResults = null, string? pageToken = null, IReadOnlyList<string>? orderBy = null, CancellationToken cancellationToken = default) =>
        GetJsonAsync(Registry + "model-versions/search" + SearchQuery(filter, maxResults, pageToken, orderBy), Wire.SearchModelVersionsResponse, cancellationToken);

    /// <summary>
    /// Registers a new version of <paramref name="name"/> (creating the model first when needed) from
    /// <paramref name="source"/>, e.g. <c>runs:/RUN_ID/model</c>; the server keeps its own copy of the files.
    /// </summary>
    /// <param name="flavor">onnx, mlnet or opaque: the files must then be of that flavor. Omitted, the server detects it.</param>
    public async Task<ModelVersion> RegisterModelAsync(string name, string source, string? runId = null, string? description = null,
        IReadOnlyDictionary<string, string>? tags = null, string? flavor = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentException.ThrowIfNullOrEmpty(source);
        if (await GetRegisteredModelAsync(name, cancellationToken).ConfigureAwait(false) is null)
        {
            try
            {
                await CreateRegisteredModelAsync(name, cancellationToken: cancellationToken).ConfigureAwait(false);
            }
            catch (SextantApiException e) when (e.ErrorCode == "RESOURCE_ALREADY_EXISTS")
            {
                // Created meanwhile by someone else: register into it.
            }
        }
        if (runId is null && source.StartsWith("runs:/", StringComparison.Ordinal))
        {
            runId = source["runs:/".Length..].Split('/')[0];
        }
        var request = new CreateModelVersionRequest(name, source, runId, tags?.Select(t => new KeyValue(t.Key, t.Value)).ToList(), Description: description, Flavor: flavor);
        var response = await PostJsonAsync(Registry + "model-versions/create", request, Wire.CreateModelVersionRequest, Wire.ModelVersionResponse, cancellationToken).ConfigureAwait(false);
        return response.ModelVersion;
    }

    public async Task<ModelVersion> GetModelVersionAsync(string name, string version, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentException.ThrowIfNullOrEmpty(version);
        var response = await GetJsonAsync(Registry + "model-versions/get" + Query(("name", name), ("version", version)), Wire.ModelVersionResponse, cancellationToken).ConfigureAwait(false);
        return response.ModelVersion;
    }

    /// <summary>Points <paramref name="alias"/> (e.g. champion) at a version, creating or moving it.</summary>
    public Task SetModelAliasAsync(string name, string alias, string version, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentException.ThrowIfNullOrEmpty(alias);
        ArgumentException.ThrowIfNullOrEmpty(version);
        return PostJsonAsync(Registry + "registered-models/alias", new SetModelAliasRequest(name, alias, version), Wire.SetModelAliasRequest, Wire.EmptyResponse, cancellationToken);
    }

    public Task DeleteModelAliasAsync(string name, string alias, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentException.ThrowIfNullOrEmpty(alias);
        return SendJsonAsync(HttpMethod.Delete, Registry + "registered-models/alias",
            JsonContent.Create(new DeleteModelAliasRequest(name, alias), Wire.DeleteModelAliasRequest), null, Wire.EmptyResponse, cancellationToken);
    }

    /// <summary>Resolves <c>models:/name/3</c>, <c>models:/name/latest</c> or <c>models:/name@alias</c> to the version it names.</summary>
    public async Task<ModelVersion> ResolveModelAsync(string modelUri, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(modelUri);
        var response = await GetJsonAsync("api/v1/models/resolve" + Query(("uri", modelUri)), Wire.ModelVersionResponse, cancellationToken).ConfigureAwait(false);
        return response.ModelVersion;
    }

    /// <summary>
    /// Downloads the files of the version <paramref name="modelUri"/> names into <paramref name="directory"/>
    /// (sub-folders kept); returns the version. The files must be held by this server (a registered copy).
    /// </summary>
    public async Task<ModelVersion> DownloadModelAsync(string modelUri, string directory, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        var version = await ResolveModelAsync(modelUri, cancellationToken).ConfigureAwait(false);
        var uri = (await GetJsonAsync(Registry + "model-versions/get-download-uri" + Query(("name", version.Name), ("version", version.Version)),
            Wire.ModelDownloadUriResponse, cancellationToken).ConfigureAwait(false)).ArtifactUri;
        const string Proxy = "mlflow-artifacts:/";
        if (!uri.StartsWith(Proxy, StringComparison.Ordinal))
        {
            throw new InvalidOperationException($"Version {version.Version} of '{version.Name}' is stored outside this server ({uri}); fetch it from there.");
        }
        var root = Path.TrimEndingDirectorySeparator(Path.GetFullPath(directory));
        Directory.CreateDirectory(root);
        await DownloadFolderAsync(uri[Proxy.Length..], "", root, cancellationToken).ConfigureAwait(false);
        return version;
    }

    private async Task DownloadFolderAsync(string remoteRoot, string relative, string localRoot, CancellationToken cancellationToken)
    {
        var folder = relative.Length == 0 ? remoteRoot : remoteRoot + "/" + relative;
        var listing = await GetJsonAsync("api/2.0/mlflow-artifacts/artifacts" + Query(("path", folder)), Wire.ListArtifactsResponse, cancellationToken).ConfigureAwait(false);
        foreach (var file in listing.Files)
        {
            var name = file.Path.Split('/')[^1];
            var child = relative.Length == 0 ? name : relative + "/" + name;
            var local = Path.GetFullPath(Path.Combine(localRoot, child));
            if (!local.StartsWith(localRoot + Path.DirectorySeparatorChar, StringComparison.Ordinal) || name is "" or "." or "..")
            {
                throw new InvalidOperationException($"The server listed '{file.Path}', which would land outside {localRoot}.");
            }
            if (file.IsDir)
            {
                Directory.CreateDirectory(local);
                await DownloadFolderAsync(remoteRoot, child, localRoot, cancellationToken).ConfigureAwait(false);
                continue;
            }
            // Written under a temporary name and moved into place when whole: a cut transfer leaves no partial file.
            var partial = local + ".partial-" + Guid.NewGuid().ToString("N")[..8];
            try
            {
                using var response = await SendStreamingAsync(HttpMethod.Get, "api/2.0/mlflow-artifacts/artifacts/" + ArtifactSegments(remoteRoot + "/" + child), null, cancellationToken).ConfigureAwait(false);
                var stream = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
                await using (stream.ConfigureAwait(false))
                {
                    var output = File.Create(partial);
                    await using (output.ConfigureAwait(false))
                    {
                        await stream.CopyToAsync(output, cancellationToken).ConfigureAwait(false);
                    }
                }
                File.Move(partial, local, overwrite: true);
            }
            finally
            {
                File.Delete(partial);
            }
        }
    }

    /// <summary>The lineage graph around a datasets:/, runs:/ or models:/ URI.</summary>
    /// <param name="direction">up (where it came from), down (what came from it) or both.</param>
    public Task<LineageResponse> GetLineageAsync(string uri, string direction = "both", int depth = 3, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(uri);
        return GetJsonAsync("api/v1/lineage" + Query(("uri", uri), ("direction", direction), ("depth", depth.ToString(System.Globalization.CultureInfo.InvariantCulture))),
            Wire.LineageResponse, cancellationToken);
    }

    private static string SearchQuery(string? filter, int? maxResults, string? pageToken, IReadOnlyList<string>? orderBy) =>
        Query(new (string, string?)[] { ("filter", filter), ("max_results", maxResults?.ToString(System.Globalization.CultureInfo.InvariantCulture)), ("page_token", pageToken) }
            .Concat((orderBy ?? []).Select(o => ("order_by", (string?)o))));
}
