using Sextant.Contracts;

namespace Sextant.Client;

// Experiments: /api/v1/experiments.
public sealed partial class SextantClient
{
    private static SextantJsonContext Wire => SextantJsonContext.Default;

    public async Task<Experiment> CreateExperimentAsync(string name, IReadOnlyDictionary<string, string>? tags = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        var request = new CreateExperimentRequest(name, Tags: tags?.Select(t => new KeyValue(t.Key, t.Value)).ToList());
        var response = await PostJsonAsync("api/v1/experiments", request, Wire.CreateExperimentRequest, Wire.ExperimentResponse, cancellationToken).ConfigureAwait(false);
        return response.Experiment;
    }

    public async Task<Experiment> GetExperimentAsync(string experimentId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(experimentId);
        var response = await GetJsonAsync($"api/v1/experiments/{Segment(experimentId)}", Wire.ExperimentResponse, cancellationToken).ConfigureAwait(false);
        return response.Experiment;
    }

    /// <summary>The experiment with this name, or null when there is none.</summary>
    public async Task<Experiment?> GetExperimentByNameAsync(string name, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        if (name is "." or "..")
        {
            // Valid names that no URL path can carry (they are dot segments): found by search instead.
            var found = await SearchExperimentsAsync($"name = '{name}'", viewType: "ALL", cancellationToken: cancellationToken).ConfigureAwait(false);
            return found.Experiments.FirstOrDefault(e => e.Name == name);
        }
        try
        {
            var response = await GetJsonAsync($"api/v1/experiments/by-name/{Segment(name)}", Wire.ExperimentResponse, cancellationToken).ConfigureAwait(false);
            return response.Experiment;
        }
        catch (SextantApiException e) when (IsNotFound(e))
        {
            return null;
        }
    }

    /// <summary>One page of experiments; pass the response's next_page_token to get the next.</summary>
    /// <param name="filter">MLflow's experiment filter, e.g. <c>name LIKE 'nlp-%'</c>.</param>
    /// <param name="orderBy">e.g. <c>["name ASC"]</c>.</param>
    /// <param name="viewType">ACTIVE_ONLY (default), DELETED_ONLY or ALL.</param>
    public Task<SearchExperimentsResponse> SearchExperimentsAsync(
        string? filter = null,
        int? maxResults = null,
        string? pageToken = null,
        IReadOnlyList<string>? orderBy = null,
        string? viewType = null,
        CancellationToken cancellationToken = default)
    {
        var query = Query(
            new (string, string?)[] { ("filter", filter), ("max_results", maxResults?.ToString(System.Globalization.CultureInfo.InvariantCulture)), ("page_token", pageToken), ("view_type", viewType) }
                .Concat((orderBy ?? []).Select(o => ("order_by", (string?)o))));
        return GetJsonAsync("api/v1/experiments" + query, Wire.SearchExperimentsResponse, cancellationToken);
    }

    /// <summary>Deletes an experiment and its runs (restorable on the server).</summary>
    public Task DeleteExperimentAsync(string experimentId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(experimentId);
        return SendJsonAsync(HttpMethod.Delete, $"api/v1/experiments/{Segment(experimentId)}", null, null, Wire.EmptyResponse, cancellationToken);
    }
}
