// The lock that serialises an LV's requests: exclusion under contention, waiters let in in
// order, and a waiter that gives up neither takes the lock nor blocks the ones behind it.
namespace Tern.Storage.Tests;

public sealed class IoGateTests
{
    [Fact]
    public async Task Holders_never_overlap_under_contention()
    {
        var gate = new IoGate();
        int inside = 0, overlaps = 0, entries = 0;
        var workers = Enumerable.Range(0, 4).Select(w => Task.Run(async () =>
        {
            for (int i = 0; i < 5000; i++)
            {
                if (i % 2 == 0 || !gate.TryEnter())
                    await gate.WaitAsync();
                if (Interlocked.Increment(ref inside) != 1)
                    Interlocked.Increment(ref overlaps);
                Interlocked.Increment(ref entries);
                if (i % 64 == 0)
                    await Task.Yield(); // hold it across an await now and then, as a read that waits for I/O
                Interlocked.Decrement(ref inside);
                gate.Release();
            }
        })).ToArray();
        await Task.WhenAll(workers).WaitAsync(TimeSpan.FromSeconds(60));
        Assert.Equal(0, overlaps);
        Assert.Equal(4 * 5000, entries);
        Assert.True(gate.TryEnter(), "the lock is free at the end");
    }

    [Fact]
    public async Task Waiters_are_let_in_in_order_and_a_cancelled_one_is_skipped()
    {
        var gate = new IoGate();
        Assert.True(gate.TryEnter());
        Assert.False(gate.TryEnter());
        using var cancel = new CancellationTokenSource();
        var first = gate.WaitAsync();
        var quitter = gate.WaitAsync(cancel.Token);
        var third = gate.WaitAsync();
        cancel.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => quitter);
        Assert.False(first.IsCompleted);

        gate.Release();
        await first.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.False(third.IsCompleted); // first holds it now
        gate.Release();
        await third.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.False(gate.TryEnter());
        gate.Release();
        Assert.True(gate.TryEnter());
    }
}
