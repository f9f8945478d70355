// What happened in the cluster, for people and scripts watching it (`tern events`,
// GET /api/events): VM lifecycle steps and hosts joining and leaving. Each node keeps the
// recent ones; VM events are sent by the node where they happen to every other node.
using MessagePack;

namespace Tern.Cluster.Protocol;

/// <summary>One thing that happened: when, what, to which VM, on which host, in which generation.</summary>
[MessagePackObject]
public sealed record TernEvent(
    [property: Key(0)] long TimeUnixMs,
    [property: Key(1)] string Kind,
    [property: Key(2)] string? Vm,
    [property: Key(3)] string? Host,
    [property: Key(4)] long Generation,
    [property: Key(5)] string? Detail) : ITernWireMessage
{
    /// <summary>An event that happens now.</summary>
    public static TernEvent Now(string kind, string? vm, string? host, long generation, string? detail = null) =>
        new(DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), kind, vm, host, generation, detail);
}

/// <summary>The kinds of <see cref="TernEvent"/> (documented in docs/cluster.md).</summary>
public static class TernEventKinds
{
    /// <summary>A VM was created (its spec recorded); the generation is the last one used under that name.</summary>
    public const string VmCreated = "vm.created";

    /// <summary>A generation was placed on a host and is booting there.</summary>
    public const string VmPlaced = "vm.placed";

    /// <summary>The host reported the generation running.</summary>
    public const string VmStarted = "vm.started";

    /// <summary>The guest reset and booted again in the same generation on the same host.</summary>
    public const string VmRestarted = "vm.restarted";

    /// <summary>The generation ended (powered off, stopped); the detail says why.</summary>
    public const string VmStopped = "vm.stopped";

    /// <summary>The generation was lost with its host (or after a cluster restart).</summary>
    public const string VmLost = "vm.lost";

    /// <summary>The generation could not be started.</summary>
    public const string VmFailed = "vm.failed";

    /// <summary>The VM was deleted; its name is free.</summary>
    public const string VmDeleted = "vm.deleted";

    /// <summary>A live migration began; the host is the target, the generation the one it will run as.</summary>
    public const string VmMigrating = "vm.migrating";

    /// <summary>The switchover happened: the generation runs on the host.</summary>
    public const string VmMigrated = "vm.migrated";

    /// <summary>A live migration failed or was cancelled; the VM runs where it ran (the detail says why).</summary>
    public const string VmMigrationAborted = "vm.migration-aborted";

    /// <summary>A host became an Up member of the cluster (as seen by the reporting node).</summary>
    public const string HostJoined = "host.joined";

    /// <summary>A host left the cluster or was removed from it.</summary>
    public const string HostLeft = "host.left";
}
