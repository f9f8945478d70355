// What users and other actors say to a VM controller, and what it answers.
using MessagePack;

namespace Tern.Cluster.Protocol;

/// <summary>A boot image: a path on the host that runs the guest, or the bytes themselves (small images only: they travel in one message and one event).</summary>
[MessagePackObject]
public sealed record ImageRef(
    [property: Key(0)] string? Path,
    [property: Key(1)] byte[]? Bytes)
{
    /// <summary>Largest image accepted inline; bigger ones must be given as a path.</summary>
    public const int MaxInlineBytes = 64 * 1024;

    /// <summary>An image read from <paramref name="path"/> on the host that runs the guest.</summary>
    public static ImageRef FromPath(string path) => new(path, null);

    /// <summary>An image carried inline.</summary>
    public static ImageRef FromBytes(byte[] bytes) => new(null, bytes);
}

/// <summary>What a VM is: everything needed to (re)create it on any host.</summary>
[MessagePackObject]
public sealed record VmSpec(
    [property: Key(0)] string Name,
    [property: Key(1)] ulong MemoryBytes,
    [property: Key(2)] int Harts,
    [property: Key(3)] ImageRef Kernel,
    [property: Key(4)] ImageRef? Bios,
    [property: Key(5)] ImageRef? Initrd,
    [property: Key(6)] string Append,
    [property: Key(7)] IReadOnlyList<string> Disks,
    [property: Key(8)] string? PreferredHost,
    [property: Key(9)] string? Clock = null)
{
    /// <summary>The guest clock: "icount" (deterministic, from retired instructions) or the host clock (null or "host").</summary>
    [IgnoreMember]
    public bool Icount => string.Equals(Clock, "icount", StringComparison.OrdinalIgnoreCase);
}

/// <summary>Whether the user wants the VM running.</summary>
public enum DesiredState
{
    /// <summary>The VM should not run.</summary>
    Stopped,
    /// <summary>The VM should run.</summary>
    Running,
}

/// <summary>Where a VM is in its life.</summary>
public enum VmPhase
{
    /// <summary>Not running on any host.</summary>
    Stopped,
    /// <summary>Placed on a host; the hypervisor is booting it.</summary>
    Starting,
    /// <summary>Running on <see cref="VmStatus.Host"/>.</summary>
    Running,
    /// <summary>Could not be started, see <see cref="VmStatus.LastError"/>.</summary>
    Failed,
}

/// <summary>Creates a VM and starts it. Allowed only when no VM of that name exists.</summary>
[MessagePackObject]
public sealed record CreateVm(
    [property: Key(0)] string VmId,
    [property: Key(1)] VmSpec Spec,
    [property: Key(2)] TraceContext? Trace) : ITernWireMessage, IWithVmId;

/// <summary>Starts a stopped or failed VM (a new generation). Starting a running VM is a no-op.</summary>
[MessagePackObject]
public sealed record StartVm(
    [property: Key(0)] string VmId,
    [property: Key(1)] TraceContext? Trace) : ITernWireMessage, IWithVmId;

/// <summary>Stops a running VM. Stopping a stopped VM is a no-op.</summary>
[MessagePackObject]
public sealed record StopVm(
    [property: Key(0)] string VmId,
    [property: Key(1)] TraceContext? Trace) : ITernWireMessage, IWithVmId;

/// <summary>Stops the VM if it runs and forgets it; its name can be used again.</summary>
[MessagePackObject]
public sealed record DeleteVm(
    [property: Key(0)] string VmId,
    [property: Key(1)] TraceContext? Trace) : ITernWireMessage, IWithVmId;

/// <summary>Asks for a VM's <see cref="VmStatus"/>.</summary>
[MessagePackObject]
public sealed record GetVm(
    [property: Key(0)] string VmId) : ITernWireMessage, IWithVmId;

/// <summary>
/// Subscribes the sender to the VM's console: it receives the output so far, then every new
/// <see cref="ConsoleOutput"/> of the current generation. Allowed only while the VM runs.
/// </summary>
[MessagePackObject]
public sealed record AttachConsole(
    [property: Key(0)] string VmId) : ITernWireMessage, IWithVmId;

/// <summary>
/// A VM actor's first answer to <see cref="AttachConsole"/>: the subscriber is attached to
/// generation <see cref="Generation"/>; the sender is the guest, where <see cref="ConsoleInput"/> goes.
/// </summary>
[MessagePackObject]
public sealed record ConsoleAttached(
    [property: Key(0)] string VmId,
    [property: Key(1)] long Generation) : ITernWireMessage;

/// <summary>Bytes typed on the console, for the guest's UART; ignored unless <see cref="Generation"/> is the one running.</summary>
[MessagePackObject]
public sealed record ConsoleInput(
    [property: Key(0)] string VmId,
    [property: Key(1)] long Generation,
    [property: Key(2)] byte[] Data) : ITernWireMessage
{
    /// <summary>Most bytes one message carries; longer input is split.</summary>
    public const int MaxBytes = 4096;
}

/// <summary>Bytes the guest wrote to its console.</summary>
[MessagePackObject]
public sealed record ConsoleOutput(
    [property: Key(0)] string VmId,
    [property: Key(1)] long Generation,
    [property: Key(2)] byte[] Data) : ITernWireMessage;

/// <summary>The console's last word to a subscriber: generation <see cref="Generation"/> ended.</summary>
[MessagePackObject]
public sealed record ConsoleEnded(
    [property: Key(0)] string VmId,
    [property: Key(1)] long Generation,
    [property: Key(2)] string Reason) : ITernWireMessage;

/// <summary>
/// A VM as its controller sees it: the answer to every accepted command. <see cref="Restarts"/>
/// counts the times the cluster started it again after losing it; <see cref="LastRestartReason"/> says why the last time.
/// </summary>
[MessagePackObject]
public sealed record VmStatus(
    [property: Key(0)] string VmId,
    [property: Key(1)] VmSpec Spec,
    [property: Key(2)] DesiredState Desired,
    [property: Key(3)] VmPhase Phase,
    [property: Key(4)] string? Host,
    [property: Key(5)] long Generation,
    [property: Key(6)] string? LastError,
    [property: Key(7)] int Restarts = 0,
    [property: Key(8)] string? LastRestartReason = null) : ITernWireMessage;

/// <summary>Why a command was refused, so an API can answer with the right status.</summary>
public enum RejectionKind
{
    /// <summary>The request itself is malformed (bad name, spec out of range).</summary>
    Invalid,
    /// <summary>No VM of that name exists.</summary>
    NotFound,
    /// <summary>The VM's state forbids it (the name is taken, the VM is not running).</summary>
    Conflict,
    /// <summary>No host can or will run it (too large, cannot boot).</summary>
    Refused,
    /// <summary>A part of the cluster did not answer in time.</summary>
    Unavailable,
}

/// <summary>The answer to a command that was refused; nothing changed.</summary>
[MessagePackObject]
public sealed record CommandRejected(
    [property: Key(0)] string VmId,
    [property: Key(1)] string Reason,
    [property: Key(2)] RejectionKind Kind = RejectionKind.Invalid) : ITernWireMessage;
