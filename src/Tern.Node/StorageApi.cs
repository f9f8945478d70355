// POST /api/storage/verbs: runs one `tern pv|vg|lv|pvmove` verb on the cluster's pool through
// the storage coordinator (a cluster singleton, which runs verbs one at a time) and answers what
// it printed and its exit code, so `tern lv list --cluster URL` prints what `tern lv list`
// prints on one node. The listing verbs (pv|vg|lv list) are open like the GETs; every other
// verb changes the pool and needs the API token.
using System.Diagnostics;
using Akka.Actor;
using Akka.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Tern.Cluster.Protocol;
using Tern.Cluster.Storage;

namespace Tern.Node;

/// <summary>The storage verbs route.</summary>
public static class StorageApi
{
    private static readonly string[] Families = ["pv", "vg", "lv", "pvmove"];

    /// <summary>Maps POST /storage/verbs on <paramref name="api"/>.</summary>
    public static void Map(IEndpointRouteBuilder api, string? apiToken)
    {
        ArgumentNullException.ThrowIfNull(api);
        api.MapPost("/storage/verbs", (HttpContext http, ActorRegistry registry, ActorSystem system) => RunAsync(http, registry, system, apiToken));
    }

    /// <summary>Whether a verb only lists (pv|vg|lv list), and may run without the token.</summary>
    public static bool IsListing(IReadOnlyList<string> args)
    {
        ArgumentNullException.ThrowIfNull(args);
        return args.Count >= 2 && args[0] is ("pv" or "vg" or "lv") && args[1] == "list";
    }

    private static async Task<IResult> RunAsync(HttpContext http, ActorRegistry registry, ActorSystem system, string? apiToken)
    {
        StorageVerbRequest? request;
        try
        {
            request = await http.Request.ReadFromJsonAsync<StorageVerbRequest>(http.RequestAborted);
        }
        catch (Exception e) when (e is System.Text.Json.JsonException or InvalidOperationException or BadHttpRequestException)
        {
            return Error($"the body is not a storage verb: {e.Message}", "Invalid", 400);
        }
        if (request?.Args is not { Count: > 0 } args || args.Any(a => a is null))
            return Error("a JSON body with 'args', the verb's words such as [\"lv\", \"list\"], is required", "Invalid", 400);
        if (!Families.Contains(args[0]))
            return Error($"'{args[0]}' is not a storage verb: expected pv, vg, lv or pvmove", "Invalid", 400);
        if (!IsListing(args) && apiToken is not null && http.Request.Headers.Authorization.ToString() != $"Bearer {apiToken}")
            return Error("a valid API token is required (Authorization: Bearer TOKEN)", "Unauthorized", 401);
        if (Akka.Cluster.Cluster.Get(system).SelfMember.Status != Akka.Cluster.MemberStatus.Up)
            return Error("this node has not joined the cluster yet; try again in a moment", "Unavailable", 503);
        if (!registry.TryGet<StorageCoordinatorProxy>(out var coordinator))
            return Error("this node runs no storage coordinator", "Unavailable", 503);
        using var span = NodeTelemetry.StartApiSpan(http, "api.storage.verb");
        span?.SetTag("tern.storage.verb", string.Join(' ', args.TakeWhile(a => !a.StartsWith('-')).Take(2)));
        StorageVerbAnswer answer;
        try
        {
            // Bounded at every step (StorageVerbClient): a verb no coordinator takes is sent again
            // to the next one, one whose coordinator is lost ends as "outcome unknown"; a listing
            // changes nothing and is simply asked again.
            answer = await StorageVerbClient.RunAsync(system, coordinator, [.. args], Activity.Current?.Id, IsListing(args), Client, http.RequestAborted);
        }
        catch (OperationCanceledException) when (http.RequestAborted.IsCancellationRequested)
        {
            return Results.Empty; // the client went away; a verb already taken goes on
        }
        return answer switch
        {
            { Outcome: StorageVerbOutcome.Done, Result: { } r } => Results.Ok(new StorageVerbView(r.ExitCode, r.Stdout, r.Stderr)),
            { Outcome: StorageVerbOutcome.Unknown } => Error(answer.Error!, "OutcomeUnknown", 503),
            { Outcome: StorageVerbOutcome.StillRunning } => Error(answer.Error!, "StillRunning", 503),
            _ => Error(answer.Error ?? "the storage coordinator did not take the verb", "Unavailable", 503),
        };
    }

    // The bounds of a verb's wait: 90 s to be taken, 90 s of silence, 30 min of running.
    private static readonly StorageVerbClientOptions Client = new();

    private static IResult Error(string reason, string kind, int status) => Results.Json(new ErrorView(reason, kind), statusCode: status);
}
