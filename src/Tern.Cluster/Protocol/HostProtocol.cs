// Between VM controllers, the scheduler, and each node's host agent and hypervisor.
using MessagePack;

namespace Tern.Cluster.Protocol;

/// <summary>What one host offers and how much of it is in use.</summary>
[MessagePackObject]
public sealed record HostCapacity(
    [property: Key(0)] string Name,
    [property: Key(1)] string Address,
    [property: Key(2)] ulong MemoryBytes,
    [property: Key(3)] int Harts,
    [property: Key(4)] ulong UsedMemoryBytes,
    [property: Key(5)] int Guests,
    [property: Key(6)] int ProcessId,
    [property: Key(7)] IReadOnlyList<PvCapacity>? Pvs = null)
{
    /// <summary>Memory not yet given to guests.</summary>
    [IgnoreMember]
    public ulong FreeMemoryBytes => MemoryBytes > UsedMemoryBytes ? MemoryBytes - UsedMemoryBytes : 0;

    /// <summary>Guests per hart: the load figure placement breaks ties with.</summary>
    [IgnoreMember]
    public double Load => Harts == 0 ? 0 : (double)Guests / Harts;
}

/// <summary>One physical volume of a host: its file, volume group (null: none), usable and free bytes.</summary>
[MessagePackObject]
public sealed record PvCapacity(
    [property: Key(0)] string Path,
    [property: Key(1)] string? Vg,
    [property: Key(2)] long SizeBytes,
    [property: Key(3)] long FreeBytes);

/// <summary>A host agent's periodic report to the scheduler.</summary>
[MessagePackObject]
public sealed record HostReport(
    [property: Key(0)] HostCapacity Capacity) : ITernWireMessage;

/// <summary>Asks the scheduler for every known host.</summary>
[MessagePackObject]
public sealed record GetHosts : ITernWireMessage;

/// <summary>Every host the scheduler knows, by name.</summary>
[MessagePackObject]
public sealed record HostList(
    [property: Key(0)] IReadOnlyList<HostCapacity> Hosts,
    [property: Key(1)] IReadOnlyList<string>? Draining = null) : ITernWireMessage;

/// <summary>Asks the scheduler where a VM should run.</summary>
[MessagePackObject]
public sealed record PlaceVm(
    [property: Key(0)] string VmId,
    [property: Key(1)] ulong MemoryBytes,
    [property: Key(2)] int Harts,
    [property: Key(3)] string? PreferredHost,
    [property: Key(4)] TraceContext? Trace,
    [property: Key(5)] string? ExcludedHost = null) : ITernWireMessage;

/// <summary>The scheduler's choice (memory is reserved there until the host's next report).</summary>
[MessagePackObject]
public sealed record VmPlaced(
    [property: Key(0)] string VmId,
    [property: Key(1)] string Host,
    [property: Key(2)] string HostAddress) : ITernWireMessage;

/// <summary>No host can take the VM.</summary>
[MessagePackObject]
public sealed record PlacementRefused(
    [property: Key(0)] string VmId,
    [property: Key(1)] string Reason) : ITernWireMessage;

/// <summary>Tells a hypervisor to boot generation <see cref="Generation"/> of a VM.</summary>
[MessagePackObject]
public sealed record StartGuest(
    [property: Key(0)] string VmId,
    [property: Key(1)] VmSpec Spec,
    [property: Key(2)] long Generation,
    [property: Key(3)] TraceContext? Trace) : ITernWireMessage;

/// <summary>The hypervisor booted the guest.</summary>
[MessagePackObject]
public sealed record GuestStarted(
    [property: Key(0)] string VmId,
    [property: Key(1)] long Generation,
    [property: Key(2)] string Host) : ITernWireMessage;

/// <summary>The hypervisor would not or could not boot the guest; it holds nothing for it.</summary>
[MessagePackObject]
public sealed record GuestRefused(
    [property: Key(0)] string VmId,
    [property: Key(1)] long Generation,
    [property: Key(2)] string Reason) : ITernWireMessage;

/// <summary>Tells a hypervisor to stop generation <see cref="Generation"/> of a VM; it answers with <see cref="GuestExited"/> to the controller.</summary>
[MessagePackObject]
public sealed record StopGuest(
    [property: Key(0)] string VmId,
    [property: Key(1)] long Generation,
    [property: Key(2)] TraceContext? Trace) : ITernWireMessage;

/// <summary>A guest ended (powered off, stopped by the host, or crashed); sent to its controller.</summary>
[MessagePackObject]
public sealed record GuestExited(
    [property: Key(0)] string VmId,
    [property: Key(1)] long Generation,
    [property: Key(2)] string Reason) : ITernWireMessage, IWithVmId;

/// <summary>
/// Asks a hypervisor whether it still runs generation <see cref="Generation"/> of a VM (a
/// recovered controller checks its journal against reality). Answered with
/// <see cref="GuestStarted"/> if it does, else <see cref="GuestExited"/>.
/// </summary>
[MessagePackObject]
public sealed record ProbeGuest(
    [property: Key(0)] string VmId,
    [property: Key(1)] long Generation) : ITernWireMessage;
