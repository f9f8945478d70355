// The health endpoints that container probes use (deploy/Dockerfile HEALTHCHECK, k8s probes):
// liveness says the process serves HTTP; readiness says this node can take work: an Up member of
// the cluster whose VM shard region the shard coordinator has registered.
using Akka.Actor;
using Akka.Cluster.Sharding;
using Akka.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Tern.Cluster.Actors;

namespace Tern.Node;

/// <summary>Maps /health/live and /health/ready.</summary>
public static class NodeHealth
{
    /// <summary>The liveness path: 200 while the process serves HTTP.</summary>
    public const string LivePath = "/health/live";

    /// <summary>The readiness path: 200 once the node is Up and its shard region is registered, else 503 with the reason.</summary>
    public const string ReadyPath = "/health/ready";

    // Short: a probe has a timeout of its own (1 s by default in Kubernetes).
    private static readonly TimeSpan CoordinatorTimeout = TimeSpan.FromMilliseconds(800);

    /// <summary>Adds the health endpoints to <paramref name="app"/>.</summary>
    public static void Map(IEndpointRouteBuilder app)
    {
        ArgumentNullException.ThrowIfNull(app);
        app.MapGet(LivePath, () => Results.Ok(new { status = "live" }));
        app.MapGet(ReadyPath, async (ActorSystem system, IRequiredActor<VmControllerRegion> vms) =>
            await WhyNotReadyAsync(system, vms.ActorRef) is { } reason
                ? Results.Json(new ErrorView(reason, "Unavailable"), statusCode: StatusCodes.Status503ServiceUnavailable)
                : Results.Ok(new { status = "ready" }));
    }

    /// <summary>Why the node is not ready, or null when it is.</summary>
    public static async Task<string?> WhyNotReadyAsync(ActorSystem system, IActorRef vmRegion)
    {
        ArgumentNullException.ThrowIfNull(system);
        ArgumentNullException.ThrowIfNull(vmRegion);
        var cluster = Akka.Cluster.Cluster.Get(system);
        if (cluster.SelfMember.Status != Akka.Cluster.MemberStatus.Up)
            return $"cluster member is {cluster.SelfMember.Status}";
        try
        {
            var regions = await vmRegion.Ask<CurrentRegions>(GetCurrentRegions.Instance, CoordinatorTimeout);
            return regions.Regions.Contains(cluster.SelfAddress) ? null : "the VM shard region is not registered with the shard coordinator yet";
        }
        catch (AskTimeoutException)
        {
            return "the shard coordinator did not answer";
        }
    }
}
