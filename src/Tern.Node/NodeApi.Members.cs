// GET /api/cluster/members: the cluster's members as this node sees them (status and
// reachability from its own gossip state). A cluster is formed for every purpose (the
// split-brain resolver counts only Up members, for one) when every node lists every member Up
// and reachable; `tern cluster status` and the multi-process tests use it to wait for that.
using Akka.Actor;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Tern.Cluster.Actors;

namespace Tern.Node;

/// <summary>One member of the cluster in this node's view.</summary>
/// <param name="Name">The host name (node name).</param>
/// <param name="Address">The member's cluster address.</param>
/// <param name="Status">Akka's member status, lower case: joining, weaklyup, up, leaving, exiting, down, removed.</param>
/// <param name="Reachable">False while this node's failure detector (or another's, by gossip) marks it unreachable.</param>
/// <param name="Self">True for the node answering.</param>
public sealed record MemberView(string Name, string Address, string Status, bool Reachable, bool Self);

public static partial class NodeApi
{
    private static void MapMembers(RouteGroupBuilder api) =>
        api.MapGet("/cluster/members", (ActorSystem system) =>
        {
            var cluster = Akka.Cluster.Cluster.Get(system);
            var state = cluster.State;
            var unreachable = state.Unreachable.Select(m => m.UniqueAddress).ToHashSet();
            return Results.Ok(state.Members
                .Select(m => new MemberView(EventLog.HostName(m), m.Address.ToString(), m.Status.ToString().ToLowerInvariant(),
                    !unreachable.Contains(m.UniqueAddress), m.UniqueAddress.Equals(cluster.SelfUniqueAddress)))
                .OrderBy(m => m.Name, StringComparer.Ordinal));
        });
}
