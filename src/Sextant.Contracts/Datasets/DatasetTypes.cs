namespace Sextant.Contracts;

/// <summary>One version of a dataset: its manifest's digest, what it holds, and a summary of its tabular files.</summary>
/// <param name="Uri">datasets:/name@version, the name lineage and run inputs use for it.</param>
public sealed record DatasetVersion(
    string Name,
    long Version,
    string Uri,
    string Digest,
    long FileCount,
    long TotalSize,
    string Message,
    long CreationTimestamp,
    IReadOnlyList<TableSummary> Tables);

/// <summary>A tabular file of a version: its row and column counts (the full profile is fetched separately).</summary>
public sealed record TableSummary(string Path, string Format, long Rows, int Columns);

/// <summary>A versioned dataset and its latest version.</summary>
public sealed record DatasetInfo(string Name, string Description, long CreationTimestamp, long LastUpdatedTimestamp, long VersionCount, DatasetVersion? Latest);

public sealed record DatasetsResponse(IReadOnlyList<DatasetInfo> Datasets, string? NextPageToken = null);

public sealed record DatasetVersionsResponse(IReadOnlyList<DatasetVersion> Versions, string? NextPageToken = null);

/// <summary>Makes a version from a manifest blob the caller uploaded. Same content as the latest version: no new version.</summary>
public sealed record CreateDatasetVersionRequest(string? ManifestSha256, string? Message = null, string? Description = null);

/// <param name="Created">False when the content equals the latest version's, which is returned instead.</param>
public sealed record CreateDatasetVersionResponse(DatasetVersion Version, bool Created);

public sealed record BlobListRequest(IReadOnlyList<string>? Sha256);

public sealed record MissingBlobsResponse(IReadOnlyList<string> Missing);

public sealed record StoredBlob(string Sha256, long Size);

public sealed record StoredBlobsResponse(IReadOnlyList<StoredBlob> Blobs);

/// <summary>The profiles of a version's tabular files (CSV, TSV, Parquet), computed when the version was made.</summary>
/// <param name="NotProfiled">Tabular files past the per-version limit of profiled tables (in path order), left out.</param>
public sealed record DatasetProfile(IReadOnlyList<TableProfile> Tables, long NotProfiled = 0);

/// <param name="Sampled">True when quantiles, histograms and top categories come from a sample, not every row.</param>
/// <param name="Error">Why the file could not be profiled (it is then stored without a profile).</param>
public sealed record TableProfile(string Path, string Format, long Rows, IReadOnlyList<ColumnProfile> Columns, bool Sampled = false, string? Error = null);

/// <summary>One column: type (integer, float, boolean, string, timestamp), counts, and the statistics its type has.</summary>
public sealed record ColumnProfile(
    string Name,
    string Type,
    long Count,
    long Nulls,
    long DistinctEstimate,
    double? Min = null,
    double? Max = null,
    double? Mean = null,
    double? Std = null,
    IReadOnlyList<QuantileValue>? Quantiles = null,
    Histogram? Histogram = null,
    IReadOnlyList<CategoryCount>? TopCategories = null);

public sealed record QuantileValue(double Q, double Value);

/// <summary>Bins over [min, max]: Edges has one more item than Counts.</summary>
public sealed record Histogram(IReadOnlyList<double> Edges, IReadOnlyList<long> Counts);

public sealed record CategoryCount(string Value, long Count);

/// <summary>What changed between two versions of a dataset.</summary>
public sealed record DatasetDiff(
    string Name,
    long From,
    long To,
    IReadOnlyList<ManifestEntry> Added,
    IReadOnlyList<ManifestEntry> Removed,
    IReadOnlyList<FileChange> Changed,
    IReadOnlyList<TableDiff> Tables);

public sealed record FileChange(string Path, long OldSize, long NewSize, string OldSha256, string NewSha256);

/// <summary>A tabular file present in both versions with different content: schema, row count and column statistics.</summary>
public sealed record TableDiff(
    string Path,
    long OldRows,
    long NewRows,
    IReadOnlyList<string> AddedColumns,
    IReadOnlyList<string> RemovedColumns,
    IReadOnlyList<ColumnChange> Columns);

/// <summary>A column in both versions; the old and new values of its type and statistics.</summary>
public sealed record ColumnChange(
    string Name,
    string OldType,
    string NewType,
    long OldNulls,
    long NewNulls,
    long OldDistinct,
    long NewDistinct,
    double? OldMean,
    double? NewMean,
    double? OldStd,
    double? NewStd,
    double? OldMin,
    double? NewMin,
    double? OldMax,
    double? NewMax);
