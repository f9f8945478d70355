// The VM controller's journal: one event per change of a VM, replayed on recovery.
using MessagePack;

namespace Tern.Cluster.Protocol;

/// <summary>An event in a VM controller's journal (persisted with the Tern serializer).</summary>
public interface IVmEvent : ITernWireMessage;

/// <summary>The VM was created with this spec (not yet running).</summary>
[MessagePackObject]
public sealed record VmCreated(
    [property: Key(0)] VmSpec Spec) : IVmEvent;

/// <summary>Generation <see cref="Generation"/> was placed on a host and is booting.</summary>
[MessagePackObject]
public sealed record VmPlacedOnHost(
    [property: Key(0)] string Host,
    [property: Key(1)] string HostAddress,
    [property: Key(2)] long Generation) : IVmEvent;

/// <summary>The hypervisor reported generation <see cref="Generation"/> running.</summary>
[MessagePackObject]
public sealed record VmRunning(
    [property: Key(0)] long Generation) : IVmEvent;

/// <summary>The user asked the VM to stop.</summary>
[MessagePackObject]
public sealed record VmStopRequested : IVmEvent;

/// <summary>Generation <see cref="Generation"/> ended on its host.</summary>
[MessagePackObject]
public sealed record VmStopped(
    [property: Key(0)] long Generation,
    [property: Key(1)] string Reason) : IVmEvent;

/// <summary>Generation <see cref="Generation"/> is gone with its host (the host died or the cluster restarted); the desired state stands.</summary>
[MessagePackObject]
public sealed record VmLost(
    [property: Key(0)] long Generation,
    [property: Key(1)] string Reason) : IVmEvent;

/// <summary>Generation <see cref="Generation"/> could not be started.</summary>
[MessagePackObject]
public sealed record VmFailed(
    [property: Key(0)] long Generation,
    [property: Key(1)] string Reason) : IVmEvent;

/// <summary>The VM was deleted; its name is free again.</summary>
[MessagePackObject]
public sealed record VmDeleted : IVmEvent;
