using Sextant.Client;
using Sextant.Server;

namespace Sextant.Web.Tests;

/// <summary>The browser fixture with an experiment of three runs logged through the SDK, with histories and artifacts.</summary>
public class SeededFixture : BrowserFixture
{
    public const string Experiment = "mnist-ui";

    /// <summary>A 2x2 PNG.</summary>
    public static readonly byte[] Png = Convert.FromBase64String(
        "iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAFklEQVR4nGP8z8DAwMDAxMDAwMDAAAANHQEDasKb6QAAAABJRU5ErkJggg==");

    public string ExperimentId { get; private set; } = "";

    public List<string> RunIds { get; } = [];

    public async Task SeedAsync()
    {
        using var client = Client();
        var models = new[] { ("cnn", 0.01, 0.95), ("mlp", 0.1, 0.88), ("cnn", 0.001, 0.97) };
        for (var i = 0; i < models.Length; i++)
        {
            var (model, lr, acc) = models[i];
            await using var run = await client.StartRunAsync(Experiment, $"run-{i}-{model}");
            run.LogParam("model", model);
            run.LogParam("lr", lr.ToString(System.Globalization.CultureInfo.InvariantCulture));
            run.LogParam("epochs", "50");
            run.SetTag("team", "vision");
            for (var step = 0; step < 50; step++)
            {
                run.LogMetric("acc", acc * (1 - Math.Exp(-step / 8.0)), step);
                run.LogMetric("loss", 2.0 * Math.Exp(-step / (10.0 + i)), step);
            }
            if (i == 0)
            {
                // Dataset inputs through the MLflow API, as mlflow.log_input sends them.
                using var http = new HttpClient { BaseAddress = Address };
                var body = $$$"""
                    {"run_id": "{{{run.RunId}}}", "datasets": [{"tags": [{"key": "mlflow.data.context", "value": "training"}],
                      "dataset": {"name": "mnist-train", "digest": "9f2c", "source_type": "local", "source": "/data/mnist/train"}}]}
                    """;
                using var response = await http.PostAsync("/api/2.0/mlflow/runs/log-inputs", new StringContent(body, System.Text.Encoding.UTF8, "application/json"));
                response.EnsureSuccessStatusCode();
                await run.LogArtifactAsync(new MemoryStream("""{"layers": [32, 64], "dropout": 0.2}"""u8.ToArray()), "config.json");
                await run.LogArtifactAsync(new MemoryStream("epoch,acc,loss\n1,0.5,1.2\n2,\"0.75\",0.8\n"u8.ToArray()), "eval/metrics.csv");
                await run.LogArtifactAsync(new MemoryStream("training finished\n"u8.ToArray()), "eval/notes.txt");
                await run.LogArtifactAsync(new MemoryStream(Png), "plots/confusion.png");
            }
            RunIds.Add(run.RunId);
            ExperimentId = run.ExperimentId;
        }
        // A registered model from the first run (which read a dataset), version 1 under the alias champion.
        await client.RegisterModelAsync(Model, $"runs:/{RunIds[0]}/plots", description: "the CNN");
        await client.SetModelAliasAsync(Model, "champion", "1");
    }

    public const string Model = "mnist-classifier";

    public override async Task InitializeAsync()
    {
        await base.InitializeAsync();
        await SeedAsync();
    }
}
