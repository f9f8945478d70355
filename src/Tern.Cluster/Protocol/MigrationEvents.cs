// Journal events of a migration: the new generation is reserved before the target is asked,
// so it is never reused, and a controller that restarts mid-migration knows where to look.
using MessagePack;

namespace Tern.Cluster.Protocol;

/// <summary>A migration of the current generation to <see cref="Host"/> as <see cref="Generation"/> began.</summary>
[MessagePackObject]
public sealed record VmMigrationStarted(
    [property: Key(0)] string Host,
    [property: Key(1)] string HostAddress,
    [property: Key(2)] long Generation) : IVmEvent;

/// <summary>The switchover happened: generation <see cref="Generation"/> runs on <see cref="Host"/>.</summary>
[MessagePackObject]
public sealed record VmMigrated(
    [property: Key(0)] string Host,
    [property: Key(1)] string HostAddress,
    [property: Key(2)] long Generation) : IVmEvent;

/// <summary>The migration to generation <see cref="Generation"/> failed or was cancelled; the VM runs where it ran.</summary>
[MessagePackObject]
public sealed record VmMigrationAborted(
    [property: Key(0)] long Generation,
    [property: Key(1)] string Reason) : IVmEvent;
