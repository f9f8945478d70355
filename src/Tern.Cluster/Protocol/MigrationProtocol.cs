// Live migration through the cluster: what users ask a VM controller, what the controller
// says to the target's and the source's hypervisors, and what they report back. Guest pages
// never travel in these messages: they go over a dedicated TCP connection that the target
// opens for one migration (endpoint and one-time token in MigrationPrepared).
using MessagePack;

namespace Tern.Cluster.Protocol;

/// <summary>The user's knobs of one migration (validated by the controller).</summary>
[MessagePackObject]
public sealed record MigrationSettings(
    [property: Key(0)] double DowntimeLimitMs,
    [property: Key(1)] long MaxBandwidthBytesPerSecond,
    [property: Key(2)] bool AutoConverge = true,
    [property: Key(3)] bool PostCopy = false,
    [property: Key(4)] bool PostCopyAtOnce = false)
{
    /// <summary>The defaults: a 10 ms downtime limit, no bandwidth cap, auto-converge on, pre-copy.</summary>
    public static readonly MigrationSettings Default = new(10, 0);

    /// <summary>Why these settings are unacceptable, or null.</summary>
    public string? Check()
    {
        if (!(DowntimeLimitMs > 0 && DowntimeLimitMs <= 60_000))
            return $"downtime limit {DowntimeLimitMs} ms: must be more than 0 and at most 60000 ms";
        if (MaxBandwidthBytesPerSecond < 0 || (MaxBandwidthBytesPerSecond > 0 && MaxBandwidthBytesPerSecond < 64 * 1024))
            return $"maximum bandwidth {MaxBandwidthBytesPerSecond} bytes/s: must be 0 (unlimited) or at least 64 KiB/s";
        return null;
    }
}

/// <summary>
/// Moves a running VM to <see cref="TargetHost"/> (or, when null, to a host the scheduler
/// chooses) by live migration. Allowed only while the VM runs and no other migration of it is
/// in progress. Answered with a <see cref="MigrationStatus"/> once the target has prepared
/// (the migration then runs on), or a <see cref="CommandRejected"/> that changed nothing.
/// </summary>
[MessagePackObject]
public sealed record MigrateVm(
    [property: Key(0)] string VmId,
    [property: Key(1)] string? TargetHost,
    [property: Key(2)] MigrationSettings Settings,
    [property: Key(3)] TraceContext? Trace) : ITernWireMessage, IWithVmId;

/// <summary>Cancels the VM's migration in progress; the guest keeps running on the source. Answered with the <see cref="MigrationStatus"/>.</summary>
[MessagePackObject]
public sealed record CancelMigration(
    [property: Key(0)] string VmId) : ITernWireMessage, IWithVmId;

/// <summary>Asks for the VM's current or last <see cref="MigrationStatus"/>.</summary>
[MessagePackObject]
public sealed record GetMigration(
    [property: Key(0)] string VmId) : ITernWireMessage, IWithVmId;

/// <summary>Where a running migration stands (from MigrationOptions.Progress on the source).</summary>
[MessagePackObject]
public sealed record MigrationProgressView(
    [property: Key(0)] string Phase,
    [property: Key(1)] int Round,
    [property: Key(2)] long RemainingBytes,
    [property: Key(3)] double DirtyPagesRate,
    [property: Key(4)] double BandwidthMiBps,
    [property: Key(5)] double ExpectedDowntimeMs,
    [property: Key(6)] long BytesSent,
    [property: Key(7)] double ElapsedMs,
    [property: Key(8)] int ThrottlePercent = 0);

/// <summary>The figures of a finished migration (named after QEMU's query-migrate).</summary>
[MessagePackObject]
public sealed record MigrationFigures(
    [property: Key(0)] double TotalTimeMs,
    [property: Key(1)] double SetupTimeMs,
    [property: Key(2)] double DowntimeMs,
    [property: Key(3)] int Rounds,
    [property: Key(4)] long BytesSent,
    [property: Key(5)] long PagesZero,
    [property: Key(6)] long PagesDelta,
    [property: Key(7)] long PagesCompressed,
    [property: Key(8)] long PagesRaw,
    [property: Key(9)] double DirtyPagesRate,
    [property: Key(10)] double BandwidthMiBps,
    [property: Key(11)] double PrepareTimeMs,
    [property: Key(12)] double PauseMs = 0,
    [property: Key(13)] double FinalCopyMs = 0,
    [property: Key(14)] double AckWaitMs = 0,
    [property: Key(15)] int ThrottlePercent = 0,
    [property: Key(16)] long PostCopyPages = 0,
    [property: Key(17)] MigrationBreakdown? Breakdown = null);

/// <summary>
/// Where a finished migration's time went (as `tern bench migrate` names the parts): the downtime
/// is pause + final copy + ready wait + go→started; the final copy includes the state capture,
/// the ready wait the target's own apply and load; the pre-copy parts add up over all rounds.
/// </summary>
[MessagePackObject]
public sealed record MigrationBreakdown(
    [property: Key(0)] double PauseMs,
    [property: Key(1)] double StateCaptureMs,
    [property: Key(2)] double FinalCopyMs,
    [property: Key(3)] int FinalPages,
    [property: Key(4)] double ReadyWaitMs,
    [property: Key(5)] double TargetApplyMs,
    [property: Key(6)] double TargetLoadMs,
    [property: Key(7)] double GoToStartedMs,
    [property: Key(8)] double PrecopyEncodeMs,
    [property: Key(9)] double PrecopyWriteMs,
    [property: Key(10)] double PrecopyRoundWaitMs);

/// <summary>A VM's current or last migration, as its controller knows it.</summary>
/// <param name="Status">"none", "preparing", "running", "completed", "failed" or "cancelled".</param>
[MessagePackObject]
public sealed record MigrationStatus(
    [property: Key(0)] string VmId,
    [property: Key(1)] string Status,
    [property: Key(2)] string? From,
    [property: Key(3)] string? To,
    [property: Key(4)] long Generation,
    [property: Key(5)] MigrationProgressView? Progress,
    [property: Key(6)] MigrationFigures? Figures,
    [property: Key(7)] string? Error) : ITernWireMessage;

/// <summary>
/// Controller → target hypervisor: reserve room for generation <see cref="Generation"/> of the
/// VM, build nothing yet, and open a one-time TCP endpoint for the source. Answered with
/// <see cref="MigrationPrepared"/> or <see cref="MigrationRefused"/>.
/// </summary>
[MessagePackObject]
public sealed record PrepareMigration(
    [property: Key(0)] string VmId,
    [property: Key(1)] VmSpec Spec,
    [property: Key(2)] long Generation,
    [property: Key(3)] string SourceHost,
    [property: Key(4)] TraceContext? Trace) : ITernWireMessage;

/// <summary>The target is ready: connect to <see cref="Endpoint"/> (host:port) and send <see cref="Token"/> first.</summary>
[MessagePackObject]
public sealed record MigrationPrepared(
    [property: Key(0)] string VmId,
    [property: Key(1)] long Generation,
    [property: Key(2)] string Host,
    [property: Key(3)] string Endpoint,
    [property: Key(4)] string Token) : ITernWireMessage;

/// <summary>The target cannot take the guest; it holds nothing for it.</summary>
[MessagePackObject]
public sealed record MigrationRefused(
    [property: Key(0)] string VmId,
    [property: Key(1)] long Generation,
    [property: Key(2)] string Reason) : ITernWireMessage;

/// <summary>
/// Controller → source hypervisor: migrate generation <see cref="Generation"/> of the VM to the
/// target's endpoint, where it becomes <see cref="NewGeneration"/>. The source's VM actor
/// reports <see cref="MigrationProgressed"/>, then <see cref="MigrationCompleted"/> or
/// <see cref="MigrationFailed"/> to the sender.
/// </summary>
[MessagePackObject]
public sealed record MigrateGuest(
    [property: Key(0)] string VmId,
    [property: Key(1)] long Generation,
    [property: Key(2)] long NewGeneration,
    [property: Key(3)] string TargetHost,
    [property: Key(4)] string TargetAddress,
    [property: Key(5)] string Endpoint,
    [property: Key(6)] string Token,
    [property: Key(7)] MigrationSettings Settings,
    [property: Key(8)] TraceContext? Trace) : ITernWireMessage;

/// <summary>Source → controller: a progress report of the migration to <see cref="NewGeneration"/>.</summary>
[MessagePackObject]
public sealed record MigrationProgressed(
    [property: Key(0)] string VmId,
    [property: Key(1)] long NewGeneration,
    [property: Key(2)] MigrationProgressView Progress) : ITernWireMessage;

/// <summary>Source → controller: the target acknowledged; the source has let go of the guest.</summary>
[MessagePackObject]
public sealed record MigrationCompleted(
    [property: Key(0)] string VmId,
    [property: Key(1)] long NewGeneration,
    [property: Key(2)] MigrationFigures Figures) : ITernWireMessage;

/// <summary>Source → controller: the migration failed before the acknowledgement; the guest runs on the source.</summary>
[MessagePackObject]
public sealed record MigrationFailed(
    [property: Key(0)] string VmId,
    [property: Key(1)] long NewGeneration,
    [property: Key(2)] string Reason) : ITernWireMessage;

/// <summary>Controller → source hypervisor: cancel the migration to <see cref="NewGeneration"/> (the source reports <see cref="MigrationFailed"/>).</summary>
[MessagePackObject]
public sealed record CancelGuestMigration(
    [property: Key(0)] string VmId,
    [property: Key(1)] long NewGeneration) : ITernWireMessage;

/// <summary>Target → controller: generation <see cref="Generation"/> was received, loaded and runs here.</summary>
[MessagePackObject]
public sealed record GuestMigratedIn(
    [property: Key(0)] string VmId,
    [property: Key(1)] long Generation,
    [property: Key(2)] string Host) : ITernWireMessage;

/// <summary>Controller → target hypervisor: drop generation <see cref="Generation"/> (stop receiving, stop it if it landed, release its room).</summary>
[MessagePackObject]
public sealed record AbortMigration(
    [property: Key(0)] string VmId,
    [property: Key(1)] long Generation,
    [property: Key(2)] string Reason) : ITernWireMessage;

/// <summary>
/// Source → target hypervisor after the switchover: the console output so far (the last 64 KiB)
/// and the subscribers (serialized actor paths), so consoles follow the guest to its new host.
/// </summary>
[MessagePackObject]
public sealed record ConsoleHandover(
    [property: Key(0)] string VmId,
    [property: Key(1)] long Generation,
    [property: Key(2)] byte[] Backlog,
    [property: Key(3)] IReadOnlyList<string> Subscribers) : ITernWireMessage;

/// <summary>Asks the scheduler to stop placing guests on <see cref="Host"/> (draining) or to place on it again. Answered with a <see cref="HostList"/>.</summary>
[MessagePackObject]
public sealed record SetHostDraining(
    [property: Key(0)] string Host,
    [property: Key(1)] bool Draining) : ITernWireMessage;
