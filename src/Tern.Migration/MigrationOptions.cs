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

    /// <summary>
    /// Throttle the guest's vCPUs step by step while it dirties memory faster than the link
    /// drains it (QEMU's auto-converge): on by default, so that a busy guest still moves.
    /// </summary>
    public bool AutoConverge { get; init; } = true;

    /// <summary>The first throttle step, in percent of the time the guest is kept stopped (QEMU's cpu-throttle-initial).</summary>
    public int ThrottleInitial { get; init; } = 20;

    /// <summary>Each further step (QEMU's cpu-throttle-increment); the throttle never exceeds 99%.</summary>
    public int ThrottleIncrement { get; init; } = 10;

    /// <summary>
    /// Cap on the pre-copy rounds' throughput in bytes per second (0: unlimited, the default, as
    /// on a dedicated migration link). The final copy at switchover is never capped: it is downtime.
    /// </summary>
    public long MaxBandwidth { get; init; }

    /// <summary>
    /// Post-copy: switch over right after round 0; the guest runs on the target while the pages
    /// it dirtied since are fetched on first touch and pushed in the background. Total time and
    /// traffic are bounded whatever the dirty rate, but the guest needs both hosts and the link
    /// until the last page has arrived: if the source or the link dies meanwhile, the guest is lost.
    /// </summary>
    public bool PostCopy { get; init; }

    /// <summary>
    /// Post-copy without round 0: the guest moves at once (downtime is the machine state and a
    /// bitmap) and every page with data follows by demand or background push, so each crosses
    /// exactly once; zero pages never travel. Implies <see cref="PostCopy"/>, with its risk for
    /// longer: until the last page has arrived the guest needs both hosts and the link.
    /// </summary>
    public bool PostCopyAtOnce { get; init; }

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
public sealed record MigrationProgress(string Phase, int Round, long RemainingBytes, double DirtyPagesRate, double BandwidthMiBps, double ExpectedDowntimeMs, long BytesSent, double ElapsedMs)
{
    /// <summary>Percent of the time auto-converge keeps the guest's vCPUs stopped now (0: not throttled).</summary>
    public int ThrottlePercent { get; init; }

    /// <summary>The migration's figures, with where its downtime went, in the "completed" report (null before).</summary>
    public MigrationStats? Stats { get; init; }
}

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
    /// <summary>Zero pages sent, each inside a run of zero pages (QEMU's ram.duplicate).</summary>
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
    /// <summary>Highest vCPU throttle auto-converge applied, in percent (QEMU's cpu-throttle-percentage); 0 when none was needed.</summary>
    public int ThrottlePercent { get; init; }
    /// <summary>True when the remaining dirty set fitted the downtime limit; false when the round limit forced the switchover.</summary>
    public bool Converged { get; init; }
    /// <summary>Downtime spent stopping the guest between quanta.</summary>
    public double PauseMs { get; init; }
    /// <summary>Downtime spent sending the last dirty pages and the machine state.</summary>
    public double FinalCopyMs { get; init; }
    /// <summary>Part of <see cref="AckWaitMs"/> until the target said it had loaded the state (ready).</summary>
    public double ReadyWaitMs { get; init; }
    /// <summary>Post-copy: pages the guest touched on the target before the background pass had pushed them.</summary>
    public long PostCopyPages { get; init; }
    /// <summary>Downtime spent waiting for the target to load the state, start the guest and answer.</summary>
    public double AckWaitMs { get; init; }
    /// <summary>Pages in the stop-and-copy set (dirtied since the last pre-copy round); in post-copy, the pages left to fetch.</summary>
    public int FinalPages { get; init; }
    /// <summary>Part of <see cref="FinalCopyMs"/> spent on the guest's thread after it stopped: harvesting the dirty log and capturing the machine state.</summary>
    public double StateCaptureMs { get; init; }
    /// <summary>Part of <see cref="ReadyWaitMs"/>, measured by the target: applying the last pages (partly while the source still encoded them).</summary>
    public double TargetApplyMs { get; init; }
    /// <summary>Part of <see cref="ReadyWaitMs"/>, measured by the target: decoding and loading the machine state.</summary>
    public double TargetLoadMs { get; init; }
    /// <summary>Pre-copy: time spent encoding pages (zero check, delta, LZ4) on the source.</summary>
    public double EncodeMs { get; init; }
    /// <summary>Pre-copy: time spent writing page records to the channel (blocked on a full socket buffer included).</summary>
    public double WriteMs { get; init; }
    /// <summary>Pre-copy: time spent waiting at the end of each round for the target to have applied it.</summary>
    public double RoundWaitMs { get; init; }
    /// <summary>When each hand-off of the switchover happened (pre-copy and post-copy alike).</summary>
    public SwitchoverTimeline? Timeline { get; init; }
}

/// <summary>
/// When each hand-off of a switchover happened, in milliseconds after the pause request, in the
/// order they happen. The target's marks (sent back in its started answer) are NaN unless both
/// sides share a clock (one host), or the target is of a build that does not send them.
/// </summary>
public sealed record SwitchoverTimeline
{
    /// <summary>The guest's thread took the pause request (the guest stopped).</summary>
    public double GuestParkedMs { get; init; }
    /// <summary>The last dirty pages were harvested and the machine state captured.</summary>
    public double StateCapturedMs { get; init; }
    /// <summary>The thread that sends the last pages began (a hop when it is not the guest's thread).</summary>
    public double SwitchoverBegunMs { get; init; }
    /// <summary>The last dirty pages were written to the channel.</summary>
    public double FinalPagesSentMs { get; init; }
    /// <summary>The state and the end record were written.</summary>
    public double StateSentMs { get; init; }
    /// <summary>Target: the state record was read.</summary>
    public double TargetStateReadMs { get; init; }
    /// <summary>Target: the state was loaded into its machine.</summary>
    public double TargetLoadedMs { get; init; }
    /// <summary>Target: the end record was read.</summary>
    public double TargetEndReadMs { get; init; }
    /// <summary>Target: ready was written.</summary>
    public double TargetReadySentMs { get; init; }
    /// <summary>The source read ready.</summary>
    public double ReadySeenMs { get; init; }
    /// <summary>Target: its guest's thread woke and began to wait for go.</summary>
    public double TargetGuestThreadWaitingMs { get; init; }
    /// <summary>The source wrote go.</summary>
    public double GoSentMs { get; init; }
    /// <summary>Target: its guest's thread read go.</summary>
    public double TargetGoReadMs { get; init; }
    /// <summary>Target: started was about to be written (then the same thread runs the guest).</summary>
    public double TargetStartedSentMs { get; init; }
    /// <summary>The source read started: the end of the downtime.</summary>
    public double StartedSeenMs { get; init; }
    /// <summary>Gen0 garbage collections of this process during the window (both sides, when in one process).</summary>
    public int Gen0Collections { get; init; }
    /// <summary>Methods this process compiled during the window.</summary>
    public int MethodsJitted { get; init; }
}
