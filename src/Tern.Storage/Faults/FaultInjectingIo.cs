// Fault injection on a PV's I/O, in the manner of device-mapper's test targets: dm-error
// (I/O fails), dm-flakey drop_writes (writes are acknowledged and lost) and corrupt_bio_byte
// (reads return a damaged byte), and dm-delay (I/O is slow). Faults can be switched on and off
// while the volume is in use and limited to a byte range; a seeded probability makes them
// intermittent yet reproducible. Used by the fault tests and by chaos runs of the cluster.
namespace Tern.Storage.Faults;

/// <summary>Kinds of injected fault.</summary>
[Flags]
public enum FaultKind
{
    /// <summary>No fault.</summary>
    None = 0,

    /// <summary>Reads fail with an I/O error.</summary>
    ReadError = 1,

    /// <summary>Writes fail with an I/O error.</summary>
    WriteError = 2,

    /// <summary>Writes are acknowledged but never reach the volume.</summary>
    DropWrites = 4,

    /// <summary>Reads return data with one byte per read flipped.</summary>
    CorruptReads = 8,

    /// <summary>Every I/O waits <see cref="FaultPlan.Delay"/> first.</summary>
    Slow = 16,

    /// <summary>Flushes fail with an I/O error.</summary>
    FlushError = 32,
}

/// <summary>Which faults to inject, where and how often.</summary>
public sealed record FaultPlan
{
    /// <summary>The faults.</summary>
    public FaultKind Kinds { get; init; }

    /// <summary>Faults apply only to I/O overlapping [RangeStart, RangeEnd) of the volume.</summary>
    public long RangeStart { get; init; }

    /// <summary>End of the faulty range (exclusive).</summary>
    public long RangeEnd { get; init; } = long.MaxValue;

    /// <summary>Chance that an eligible I/O is hit (1 = always).</summary>
    public double Probability { get; init; } = 1;

    /// <summary>Delay for <see cref="FaultKind.Slow"/>.</summary>
    public TimeSpan Delay { get; init; } = TimeSpan.FromMilliseconds(5);
}

/// <summary>Wraps a PV's I/O and injects the faults of the current <see cref="Plan"/>.</summary>
public sealed class FaultInjectingIo(IPhysicalVolumeIo inner, int seed = 1) : IPhysicalVolumeIo
{
    private readonly Random _random = new(seed);
    private readonly Lock _lock = new();
    private long _injected;

    /// <summary>The faults in force; replace it at any time.</summary>
    public FaultPlan Plan { get; set; } = new();

    /// <summary>How many I/Os were hit by a fault.</summary>
    public long Injected => Interlocked.Read(ref _injected);

    /// <inheritdoc/>
    public string Name => inner.Name;

    /// <inheritdoc/>
    public long Length => inner.Length;

    private bool Hits(FaultPlan plan, FaultKind kind, long offset, long length)
    {
        if ((plan.Kinds & kind) == 0 || offset + length <= plan.RangeStart || offset >= plan.RangeEnd)
            return false;
        bool hit;
        lock (_lock)
            hit = plan.Probability >= 1 || _random.NextDouble() < plan.Probability;
        if (hit)
            Interlocked.Increment(ref _injected);
        return hit;
    }

    /// <inheritdoc/>
    public async ValueTask ReadAsync(long offset, Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        var plan = Plan;
        if (Hits(plan, FaultKind.Slow, offset, buffer.Length))
            await Task.Delay(plan.Delay, cancellationToken).ConfigureAwait(false);
        if (Hits(plan, FaultKind.ReadError, offset, buffer.Length))
            throw new IOException($"{Name}: injected read error at {offset}");
        await inner.ReadAsync(offset, buffer, cancellationToken).ConfigureAwait(false);
        if (buffer.Length > 0 && Hits(plan, FaultKind.CorruptReads, offset, buffer.Length))
        {
            long from = Math.Max(offset, plan.RangeStart), to = Math.Min(offset + buffer.Length, plan.RangeEnd);
            int at;
            lock (_lock)
                at = (int)(from - offset + _random.NextInt64(to - from));
            buffer.Span[at] ^= 0x20;
        }
    }

    /// <inheritdoc/>
    public async ValueTask WriteAsync(long offset, ReadOnlyMemory<byte> data, CancellationToken cancellationToken = default)
    {
        var plan = Plan;
        if (Hits(plan, FaultKind.Slow, offset, data.Length))
            await Task.Delay(plan.Delay, cancellationToken).ConfigureAwait(false);
        if (Hits(plan, FaultKind.WriteError, offset, data.Length))
            throw new IOException($"{Name}: injected write error at {offset}");
        if (Hits(plan, FaultKind.DropWrites, offset, data.Length))
            return;
        await inner.WriteAsync(offset, data, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public async ValueTask FlushAsync(CancellationToken cancellationToken = default)
    {
        var plan = Plan;
        if (Hits(plan, FaultKind.Slow, plan.RangeStart, 1))
            await Task.Delay(plan.Delay, cancellationToken).ConfigureAwait(false);
        if (Hits(plan, FaultKind.FlushError, plan.RangeStart, 1))
            throw new IOException($"{Name}: injected flush error");
        await inner.FlushAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public void Dispose() => inner.Dispose();
}
