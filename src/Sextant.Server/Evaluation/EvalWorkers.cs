using Sextant.Core.Evaluation;
using Sextant.Server;

namespace Sextant.Server.Evaluation;

/// <summary>
/// Runs the experiments made on this server, and at start-up resumes the ones a stopped (or crashed) server left
/// unfinished. At most a few run at once; each limits its own concurrency.
/// </summary>
internal sealed class ExperimentWorker(ExperimentService experiments, ILogger<ExperimentWorker> logger) : BackgroundService
{
    private const int MaxExperimentsAtOnce = 4;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var slots = new SemaphoreSlim(MaxExperimentsAtOnce);
        var running = new List<Task>();
        async Task StartAsync(long id)
        {
            await slots.WaitAsync(stoppingToken);
            running.RemoveAll(t => t.IsCompleted);
            running.Add(Task.Run(async () =>
            {
                try
                {
                    await experiments.RunAsync(id, stoppingToken);
                }
                finally
                {
                    slots.Release();
                }
            }, CancellationToken.None));
        }
        try
        {
            foreach (var id in await experiments.UnfinishedAsync(stoppingToken))
            {
                logger.LogInformation("Resuming experiment {Id}", id);
                await StartAsync(id);
            }
            await foreach (var id in experiments.Queued.ReadAllAsync(stoppingToken))
            {
                await StartAsync(id);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
        await Task.WhenAll(running);
    }
}

/// <summary>Online evaluation: every interval, each enabled rule scores the sampled generations that arrived since its last pass.</summary>
internal sealed class OnlineEvalWorker(ScoreService scores, Microsoft.Extensions.Options.IOptions<SextantServerOptions> settings, ILogger<OnlineEvalWorker> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var options = settings.Value;
        using var timer = new PeriodicTimer(options.OnlineEvalInterval);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                try
                {
                    await scores.EvaluateOnlineAsync(options.OnlineEvalSettle, stoppingToken);
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    logger.LogWarning(e, "Online evaluation failed; it tries again in {Interval}", options.OnlineEvalInterval);
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }
}
