// Knobs of a live migration, with the reason for each default.
namespace Tern.Migration;

/// <summary>How a migration trades total time against downtime.</summary>
public sealed record MigrationOptions
{
    /// <summary>
    /// Switch over once the pages still dirty can be sent within this time at the measured
    /// bandwidth. 10 ms: users notice pauses above a few tens of milliseconds, and a loopback or
    /// datacenter link drains a few MiB in that time.
    /// </summary>
    public TimeSpan DowntimeLimit { get; init; } = TimeSpan.FromMilliseconds(10);

    /// <summary>Give up iterating after this many rounds and switch over anyway (QEMU-like safety net).</summary>
    public int MaxRounds { get; init; } = 30;

    /// <summary>How long the source waits for the target to load the state and acknowledge.</summary>
    public TimeSpan AckTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Bytes of previously sent pages kept for XOR deltas (QEMU's XBZRLE cache is 64 MiB too).</summary>
    public long DeltaCacheBytes { get; init; } = 64L << 20;

    /// <summary>Told after round 0, after each pre-copy round and at switchover (for progress bars and the API).</summary>
    public IProgress<MigrationProgress>? Progress { get; init; }
}

/// <summary>Where a running migration stands.</summary>
/// <param name="Phase">"precopy", "switchover" or "completed".</param>
/// <param name="Round">Rounds done so far (round 0 included).</param>
/// <param name="RemainingBytes">Dirty guest memory not yet sent, in bytes.</param>
/// <param name="DirtyPagesRate">Pages the guest dirtied per second in the last round.</param>
/// <param name="BandwidthMiBps">Measured channel throughput.</param>
/// <param name="ExpectedDowntimeMs">Time to send what remains at that bandwidth.</param>
/// <param name="BytesSent">Bytes written to the channel so far.</param>
/// <param name="ElapsedMs">Time since the migration started.</param>
public sealed record MigrationProgress(string Phase, int Round, long RemainingBytes, double DirtyPagesRate, double BandwidthMiBps, double ExpectedDowntimeMs, long BytesSent, double ElapsedMs);

/// <summary>The figures of one migration, named after QEMU's query-migrate where one exists.</summary>
public sealed record MigrationStats
{
    /// <summary>"completed" or "failed".</summary>
    public required string Status { get; init; }
    /// <summary>Start to acknowledgement.</summary>
    public double TotalTimeMs { get; init; }
    /// <summary>Start until the first page was sent (the target built its machine).</summary>
    public double SetupTimeMs { get; init; }
    /// <summary>Guest paused on the source until it runs on the target.</summary>
    public double DowntimeMs { get; init; }
    /// <summary>Pre-copy rounds, the final stop-and-copy included (QEMU's dirty-sync-count).</summary>
    public int Rounds { get; init; }
    /// <summary>Bytes written to the channel.</summary>
    public long BytesSent { get; init; }
    /// <summary>Pages sent as zero markers (QEMU's ram.duplicate).</summary>
    public long PagesZero { get; init; }
    /// <summary>Pages sent as XOR deltas against the previous copy.</summary>
    public long PagesDelta { get; init; }
    /// <summary>Pages sent LZ4-compressed.</summary>
    public long PagesCompressed { get; init; }
    /// <summary>Pages sent as they are (QEMU's ram.normal).</summary>
    public long PagesRaw { get; init; }
    /// <summary>Pages dirtied per second during the last pre-copy round.</summary>
    public double DirtyPagesRate { get; init; }
    /// <summary>Measured throughput of the channel, in MiB/s.</summary>
    public double BandwidthMiBps { get; init; }
    /// <summary>Downtime spent stopping the guest between quanta.</summary>
    public double PauseMs { get; init; }
    /// <summary>Downtime spent sending the last dirty pages and the machine state.</summary>
    public double FinalCopyMs { get; init; }
    /// <summary>Downtime spent waiting for the target to load the state, start the guest and answer.</summary>
    public double AckWaitMs { get; init; }
}
