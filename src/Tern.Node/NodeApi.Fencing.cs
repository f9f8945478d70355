// GET /api/storage/fencing: this node's writer fencing as its extent server and local PVs saw
// it: how many writes of a stale generation (an incarnation of a VM that a newer one replaced)
// were refused here, and the requests the extent server served. Read-only, open like the GETs;
// the HA tests read it after a partition heals.
using Akka.Actor;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Tern.Cluster.Storage;

namespace Tern.Node;

/// <summary>This node's fencing counters in API answers.</summary>
public sealed record FencingView(string Host, long RefusedStaleWrites, long ExtentRequests);

public static partial class NodeApi
{
    private static void MapFencing(RouteGroupBuilder api) =>
        api.MapGet("/storage/fencing", (ActorSystem system) =>
            StorageAgent.For(system)?.Node is { } node
                ? Results.Ok(new FencingView(node.Host, node.RefusedStaleWrites, node.Server.Requests))
                : Results.Json(new ErrorView("this node has no storage", "Unavailable"), statusCode: 503));
}
