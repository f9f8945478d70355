// Registry keys and well-known actor names of a Tern node.
namespace Tern.Cluster.Actors;

/// <summary>Registry key of the VM controller shard region.</summary>
public sealed class VmControllerRegion;

/// <summary>Registry key of the scheduler singleton proxy.</summary>
public sealed class SchedulerProxy;

/// <summary>Registry key of this node's hypervisor.</summary>
public sealed class HypervisorKey;

/// <summary>Registry key of this node's host agent.</summary>
public sealed class HostAgentKey;

/// <summary>Names under /user that other nodes address directly.</summary>
public static class ActorNames
{
    /// <summary>The hypervisor of every node, at /user/hypervisor.</summary>
    public const string Hypervisor = "hypervisor";

    /// <summary>The host agent of every node.</summary>
    public const string HostAgent = "host-agent";

    /// <summary>The event log of every node, at /user/events.</summary>
    public const string Events = "events";

    /// <summary>The VM controllers' shard type name.</summary>
    public const string VmShardType = "vm";

    /// <summary>The scheduler singleton's name.</summary>
    public const string Scheduler = "scheduler";

    /// <summary>The hypervisor on the node with Akka address <paramref name="address"/>.</summary>
    public static string HypervisorPath(string address) => $"{address}/user/{Hypervisor}";
}
