// Test-only fault injection through the API: POST /api/debug/partition cuts this node off from
// named peers (Akka remoting blackholed both ways) or heals the cut; GET lists the cut peers.
// Both answer 404 unless the node was started with --fault-injection on (TERN_FAULT_INJECTION);
// the POST needs the API token like every mutating call. Only Akka traffic is cut: the HTTP API
// and the extent servers stay reachable, so a test can partition a node and watch both sides.
using Akka.Actor;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Tern.Cluster.Hosting;

namespace Tern.Node;

/// <summary>The body of POST /api/debug/partition.</summary>
/// <param name="Peers">Host names of peers (or their Akka addresses, or HOST:PORT).</param>
/// <param name="Mode">"blackhole" (cut) or "heal".</param>
public sealed record PartitionRequest(IReadOnlyList<string>? Peers, string? Mode);

/// <summary>The answer of the partition endpoints.</summary>
/// <param name="Mode">What was applied ("blackhole", "heal"), or null for GET.</param>
/// <param name="Peers">The peers the request named, resolved.</param>
/// <param name="Blackholed">Every peer this node is cut off from now.</param>
public sealed record PartitionView(string? Mode, IReadOnlyList<PartitionPeer> Peers, IReadOnlyList<PartitionPeer> Blackholed);

public static partial class NodeApi
{
    private static readonly ErrorView FaultInjectionOff = new("fault injection is off on this node (start every node with --fault-injection on, tests only)", "NotFound");

    private static void MapDebug(RouteGroupBuilder api, RouteGroupBuilder mutating)
    {
        api.MapGet("/debug/partition", (ActorSystem system) =>
            NetworkFaults.For(system) is { } faults
                ? Results.Ok(new PartitionView(null, [], faults.Blackholed))
                : Results.Json(FaultInjectionOff, statusCode: 404));
        mutating.MapPost("/debug/partition", async (HttpRequest http, ActorSystem system) =>
        {
            if (NetworkFaults.For(system) is not { } faults)
                return Results.Json(FaultInjectionOff, statusCode: 404);
            PartitionRequest? request;
            try
            {
                request = await http.ReadFromJsonAsync<PartitionRequest>(http.HttpContext.RequestAborted);
            }
            catch (Exception e) when (e is System.Text.Json.JsonException or InvalidOperationException or BadHttpRequestException)
            {
                return Results.Json(new ErrorView($"the body is not a partition request: {e.Message}", "Invalid"), statusCode: 400);
            }
            if (request?.Peers is not { Count: > 0 } peers || peers.Any(string.IsNullOrWhiteSpace) || request.Mode is not ("blackhole" or "heal"))
                return Results.Json(new ErrorView("a JSON body {\"peers\": [HOST, ...], \"mode\": \"blackhole\" or \"heal\"} is required", "Invalid"), statusCode: 400);
            try
            {
                var applied = await faults.ApplyAsync(peers, request.Mode == "blackhole", http.HttpContext.RequestAborted);
                return Results.Ok(new PartitionView(request.Mode, applied, faults.Blackholed));
            }
            catch (UnknownPeerException e)
            {
                return Results.Json(new ErrorView(e.Message, "Invalid"), statusCode: 400);
            }
        });
    }
}
