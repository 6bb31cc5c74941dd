using Sextant.Core.Evaluation;
using Sextant.Server;

namespace Sextant.Server.Evaluation;

/// <summary>
/// Runs the experiments made on this server, and every few seconds looks for experiments no live server holds (this
/// one before a crash, or another replica that died) to resume them. At most a few run at once; each limits its own
/// concurrency.
/// </summary>
internal sealed class ExperimentWorker(ExperimentService experiments, ILogger<ExperimentWorker> logger) : BackgroundService
{
    private const int MaxExperimentsAtOnce = 4;
    private static readonly TimeSpan Scan = TimeSpan.FromSeconds(5);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var slots = new SemaphoreSlim(MaxExperimentsAtOnce);
        var running = new System.Collections.Concurrent.ConcurrentDictionary<long, Task>();
        async Task StartAsync(long id)
        {
            if (running.ContainsKey(id))
            {
                return;
            }
            await slots.WaitAsync(stoppingToken);
            running[id] = Task.Run(async () =>
            {
                try
                {
                    await experiments.RunAsync(id, stoppingToken);
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    logger.LogError(e, "Experiment {Id} could not be run", id);
                }
                finally
                {
                    running.TryRemove(id, out _);
                    slots.Release();
                }
            }, CancellationToken.None);
        }
        var scanning = Task.Run(async () =>
        {
            using var timer = new PeriodicTimer(Scan);
            do
            {
                try
                {
                    foreach (var id in await experiments.UnfinishedAsync(stoppingToken))
                    {
                        if (!running.ContainsKey(id))
                        {
                            logger.LogInformation("Resuming experiment {Id}", id);
                            await StartAsync(id);
                        }
                    }
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    logger.LogWarning(e, "Looking for experiments to resume failed; trying again in {Interval}", Scan);
                }
            }
            while (await timer.WaitForNextTickAsync(stoppingToken));
        }, CancellationToken.None);
        try
        {
            await foreach (var id in experiments.Queued.ReadAllAsync(stoppingToken))
            {
                await StartAsync(id);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
        try
        {
            await scanning;
        }
        catch (OperationCanceledException)
        {
        }
        await Task.WhenAll(running.Values);
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
