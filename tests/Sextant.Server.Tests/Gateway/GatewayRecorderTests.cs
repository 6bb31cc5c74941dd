using Sextant.Server.Gateway;

namespace Sextant.Server.Tests.Gateway;

/// <summary>The thread that records gateway calls after their answers: every call posted is recorded, before and after it stops.</summary>
public sealed class GatewayRecorderTests
{
    [Fact]
    public async Task Calls_posted_from_many_threads_all_run_off_the_callers_thread_and_give_their_results()
    {
        using var recorder = new GatewayRecorder();
        var callers = Enumerable.Range(0, 8).Select(t => Task.Run(async () =>
        {
            var results = new List<Task<(int Value, int Thread)>>();
            for (var i = 0; i < 200; i++)
            {
                var value = t * 1000 + i;
                results.Add(recorder.Post(async () =>
                {
                    var thread = Environment.CurrentManagedThreadId;
                    await Task.Yield();
                    return (value, thread);
                }));
                if (i % 50 == 0)
                {
                    // Gaps, so that the recorder also goes to sleep and is woken.
                    await Task.Delay(5);
                }
            }
            return await Task.WhenAll(results);
        })).ToList();
        var all = (await Task.WhenAll(callers)).SelectMany(r => r).ToList();
        Assert.Equal(Enumerable.Range(0, 8).SelectMany(t => Enumerable.Range(t * 1000, 200)).Order(), all.Select(r => r.Value).Order());
        // The first part of each recording ran on the recorder's one thread.
        Assert.Single(all.Select(r => r.Thread).Distinct());
    }

    [Fact]
    public async Task A_failing_recording_faults_its_own_task_only_and_calls_after_the_stop_still_run()
    {
        var recorder = new GatewayRecorder();
        var failing = recorder.Post<int>(() => throw new InvalidOperationException("broken"));
        var fine = recorder.Post(() => Task.FromResult(7));
        Assert.Equal("broken", (await Assert.ThrowsAsync<InvalidOperationException>(() => failing)).Message);
        Assert.Equal(7, await fine);
        recorder.Dispose();
        Assert.Equal(8, await recorder.Post(() => Task.FromResult(8)).WaitAsync(TimeSpan.FromSeconds(10)));
    }
}
