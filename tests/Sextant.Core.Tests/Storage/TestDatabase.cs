using Sextant.Core.Artifacts;
using Sextant.Core.Datasets;
using Sextant.Core.Lineage;
using Sextant.Core.Projects;
using Sextant.Core.Registry;
using Sextant.Core.Storage;
using Sextant.Core.Tracking;

namespace Sextant.Core.Tests.Storage;

/// <summary>A migrated database of one engine with the services on top, for one test class.</summary>
public sealed class TestDatabase : IAsyncDisposable
{
    private TestDatabase(SextantDatabase database, string folder, TrackingOptions options)
    {
        Database = database;
        Folder = folder;
        Writer = new TrackingWriter(database, options);
        Projects = new ProjectService(database);
        Tracking = new TrackingService(database, Writer, options);
        var blobs = new LocalBlobStore(Path.Combine(folder, "blobs"));
        Artifacts = new ArtifactService(database, blobs);
        Registry = new RegistryService(database, Tracking, options, blobs);
        Datasets = new DatasetService(database, blobs);
        Lineage = new LineageService(database, Registry, Datasets);
    }

    public SextantDatabase Database { get; }
    public string Folder { get; }
    public TrackingWriter Writer { get; }
    public ProjectService Projects { get; }
    public TrackingService Tracking { get; }
    public ArtifactService Artifacts { get; }
    public RegistryService Registry { get; }
    public DatasetService Datasets { get; }
    public LineageService Lineage { get; }

    /// <summary>The anonymous local admin of the default project.</summary>
    public static Caller Admin { get; } = new(1, ProjectService.DefaultProject, Role.Admin, Anonymous: true);

    public static async Task<TestDatabase> CreateAsync(DatabaseEngine engine, TrackingOptions? options = null)
    {
        var folder = Path.Combine(Path.GetTempPath(), "sextant-test-" + Guid.NewGuid().ToString("N")[..10]);
        Directory.CreateDirectory(folder);
        var uri = engine == DatabaseEngine.Sqlite
            ? DatabaseUri.Sqlite(Path.Combine(folder, "sextant.db"))
            : DatabaseUri.Parse(await PostgresServer.CreateDatabaseAsync());
        var database = new SextantDatabase(uri);
        await database.MigrateAsync();
        var test = new TestDatabase(database, folder, options ?? new TrackingOptions());
        await test.Projects.EnsureDefaultProjectAsync();
        return test;
    }

    /// <summary>Creates a project and returns a caller with <paramref name="role"/> in it.</summary>
    public async Task<Caller> CallerInNewProjectAsync(string name, Role role = Role.Admin)
    {
        await Projects.CreateAsync(name);
        var (id, projectName) = await Projects.GetAsync(name);
        return new Caller(id, projectName, role, Anonymous: false);
    }

    public async ValueTask DisposeAsync()
    {
        await Writer.DisposeAsync();
        await Database.DisposeAsync();
        try
        {
            Directory.Delete(Folder, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
