using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.Http.Json;
using System.Text.Json;
using Sextant.Contracts;

namespace Sextant.Client;

// The prompt registry: /api/v1/prompts. GetPromptAsync keeps what it fetched for PromptCacheTtl.
public sealed partial class SextantClient
{
    private readonly ConcurrentDictionary<(string Name, string? Label, int? Version), CachedPrompt> _prompts = new();

    private sealed class CachedPrompt(PromptVersion prompt, long fetchedAt)
    {
        public PromptVersion Prompt = prompt;
        public long FetchedAt = fetchedAt;
        public int Refreshing;
    }

    /// <summary>How long GetPromptAsync uses a fetched prompt before it asks again (60 s; zero turns the cache off).</summary>
    public TimeSpan PromptCacheTtl { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>
    /// A prompt version by label (production when neither label nor version is given) or number. Fetched prompts are
    /// kept for <see cref="PromptCacheTtl"/>; after that the kept one is returned at once while a fresh copy is
    /// fetched in the background (stale while revalidate). When the server cannot be reached and nothing is kept,
    /// <paramref name="fallback"/> is returned (see <see cref="FallbackPrompt(string, string)"/>), else the error is thrown.
    /// </summary>
    public ValueTask<PromptVersion> GetPromptAsync(string name, string? label = null, int? version = null, PromptVersion? fallback = null,
        CancellationToken cancellationToken = default)
    {
        var key = (name, label, version);
        if (_prompts.TryGetValue(key, out var cached))
        {
            if (Stopwatch.GetElapsedTime(cached.FetchedAt) >= PromptCacheTtl && Interlocked.Exchange(ref cached.Refreshing, 1) == 0)
            {
                _ = RefreshPromptAsync(key, cached);
            }
            return ValueTask.FromResult(cached.Prompt);
        }
        return new ValueTask<PromptVersion>(FetchPromptAsync(key, fallback, cancellationToken));
    }

    private async Task<PromptVersion> FetchPromptAsync((string Name, string? Label, int? Version) key, PromptVersion? fallback, CancellationToken cancellationToken)
    {
        try
        {
            var prompt = await FetchPromptVersionAsync(key, cancellationToken).ConfigureAwait(false);
            if (PromptCacheTtl > TimeSpan.Zero)
            {
                _prompts[key] = new CachedPrompt(prompt, Stopwatch.GetTimestamp());
            }
            return prompt;
        }
        catch (Exception e) when (fallback is not null && Unreachable(e))
        {
            return fallback;
        }
    }

    private async Task RefreshPromptAsync((string Name, string? Label, int? Version) key, CachedPrompt cached)
    {
        try
        {
            var prompt = await FetchPromptVersionAsync(key, CancellationToken.None).ConfigureAwait(false);
            (cached.Prompt, cached.FetchedAt) = (prompt, Stopwatch.GetTimestamp());
        }
        catch (Exception e) when (Unreachable(e) || e is SextantApiException)
        {
            // Keep serving what was fetched; the next call past the time-to-live tries again.
        }
        finally
        {
            Volatile.Write(ref cached.Refreshing, 0);
        }
    }

    /// <summary>A server that cannot answer (down, unreachable, too slow, failing), as opposed to one that says no (404, 403).</summary>
    private static bool Unreachable(Exception e) =>
        e is HttpRequestException or TimeoutException or SextantSendException || (e is SextantApiException api && (int)api.StatusCode >= 500);

    private Task<PromptVersion> FetchPromptVersionAsync((string Name, string? Label, int? Version) key, CancellationToken cancellationToken) =>
        GetJsonAsync("api/v1/prompts/get" + Query(("name", key.Name), ("label", key.Label), ("version", Text(key.Version))), Wire.PromptVersion, cancellationToken);

    /// <summary>Drops what GetPromptAsync kept, so that the next call fetches.</summary>
    public void ClearPromptCache() => _prompts.Clear();

    /// <summary>A text prompt to fall back on when the server cannot be reached (version 0).</summary>
    public static PromptVersion FallbackPrompt(string name, string template) => Fallback(name, "text", JsonSerializer.SerializeToElement(template, Wire.String));

    /// <summary>A chat prompt to fall back on when the server cannot be reached (version 0).</summary>
    public static PromptVersion FallbackPrompt(string name, IReadOnlyList<PromptMessage> messages) =>
        Fallback(name, "chat", JsonSerializer.SerializeToElement(messages, Wire.IReadOnlyListPromptMessage));

    private static PromptVersion Fallback(string name, string type, JsonElement template) =>
        new(name, 0, type, template, null, [], ["fallback"], PromptTemplate.Variables(type, template), "fallback", null, 0);

    /// <summary>Renders a prompt here, as the server would (missing variables throw, naming them).</summary>
    public static RenderedPrompt RenderPrompt(PromptVersion prompt, IReadOnlyDictionary<string, string> variables) =>
        PromptTemplate.Render(prompt, variables.ToDictionary(v => v.Key, v => JsonSerializer.SerializeToElement(v.Value, Wire.String)));

    /// <summary>Renders a prompt here with variables of any JSON shape (lists for sections, objects for dotted names).</summary>
    public static RenderedPrompt RenderPrompt(PromptVersion prompt, IReadOnlyDictionary<string, JsonElement> variables) => PromptTemplate.Render(prompt, variables);

    public Task<PromptVersion> CreatePromptVersionAsync(string name, CreatePromptVersionRequest request, CancellationToken cancellationToken = default) =>
        PostJsonAsync("api/v1/prompts/versions" + Query(("name", name)), request, Wire.CreatePromptVersionRequest, Wire.PromptVersion, cancellationToken);

    public Task<PromptVersionsResponse> ListPromptVersionsAsync(string name, CancellationToken cancellationToken = default) =>
        GetJsonAsync("api/v1/prompts/versions" + Query(("name", name)), Wire.PromptVersionsResponse, cancellationToken);

    public Task<PromptsResponse> ListPromptsAsync(string? prefix = null, int? maxResults = null, string? pageToken = null, CancellationToken cancellationToken = default) =>
        GetJsonAsync("api/v1/prompts" + Query(("prefix", prefix), ("max_results", Text(maxResults)), ("page_token", pageToken)), Wire.PromptsResponse, cancellationToken);

    /// <summary>Points a label at a version (a deployment; production needs an admin key).</summary>
    public async Task SetPromptLabelAsync(string name, string label, int version, CancellationToken cancellationToken = default)
    {
        using var response = await SendStreamingAsync(HttpMethod.Put, "api/v1/prompts/labels" + Query(("name", name), ("label", label)),
            JsonContent.Create(new SetPromptLabelRequest(version), Wire.SetPromptLabelRequest), cancellationToken).ConfigureAwait(false);
    }

    public Task<PromptLabelHistoryResponse> GetPromptLabelHistoryAsync(string name, CancellationToken cancellationToken = default) =>
        GetJsonAsync("api/v1/prompts/labels/history" + Query(("name", name)), Wire.PromptLabelHistoryResponse, cancellationToken);

    public Task<PromptDiff> DiffPromptVersionsAsync(string name, int from, int to, CancellationToken cancellationToken = default) =>
        GetJsonAsync("api/v1/prompts/diff" + Query(("name", name), ("from", Text(from)), ("to", Text(to))), Wire.PromptDiff, cancellationToken);
}
