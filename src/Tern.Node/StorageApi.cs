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
    /// <summary>
    /// How long the API waits for a verb. Verbs run one at a time and `pvmove` or `lv convert`
    /// copy whole volumes, so this is long; the verb itself goes on if the client gives up.
    /// </summary>
    public static readonly TimeSpan VerbTimeout = TimeSpan.FromMinutes(30);

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
        // While the coordinator's node is unreachable (not yet downed) the proxy would send the
        // verb into the void: wait (bounded) for the singleton to move first.
        for (var until = DateTime.UtcNow + MoveWait; StorageCoordinator.UnreachableHome(system) is { } home;)
        {
            if (DateTime.UtcNow >= until)
                return Error($"the storage coordinator's node {home} has been unreachable for {MoveWait.TotalSeconds:0} s; the coordinator moves to another node once that node is downed (try again shortly)", "Unavailable", 503);
            await Task.Delay(200, http.RequestAborted);
        }

        using var span = NodeTelemetry.StartApiSpan(http, "api.storage.verb");
        span?.SetTag("tern.storage.verb", string.Join(' ', args.TakeWhile(a => !a.StartsWith('-')).Take(2)));
        object answer;
        try
        {
            // A listing changes nothing, so it is asked again when an attempt gets no answer: a
            // message sent just after the coordinator's node died (before the failure detector
            // noticed) is lost, and the next attempt reaches the coordinator's new home.
            answer = IsListing(args)
                ? await AskListingAsync(coordinator, new RunStorageVerb([.. args], Activity.Current?.Id), http.RequestAborted)
                : await coordinator.Ask<object>(new RunStorageVerb([.. args], Activity.Current?.Id), VerbTimeout, http.RequestAborted);
        }
        catch (AskTimeoutException)
        {
            return Error(IsListing(args)
                ? $"the storage coordinator did not answer {ListingAttempts} attempts of {ListingAttempt.TotalSeconds:0} s"
                : $"the storage coordinator did not answer within {VerbTimeout.TotalMinutes:0} min (the verb may still be running)", "Unavailable", 503);
        }
        catch (TaskCanceledException) when (http.RequestAborted.IsCancellationRequested)
        {
            return Results.Empty; // the client went away; the verb goes on
        }
        return answer switch
        {
            StorageVerbResult r => Results.Ok(new StorageVerbView(r.ExitCode, r.Stdout, r.Stderr)),
            StorageRefused r => Error(r.Reason, "Unavailable", 503),
            _ => Error($"unexpected answer {answer.GetType().Name}", "Internal", 500),
        };
    }

    private static readonly TimeSpan MoveWait = TimeSpan.FromSeconds(30);

    private static async Task<object> AskListingAsync(IActorRef coordinator, RunStorageVerb verb, CancellationToken ct)
    {
        for (int attempt = 1; ; attempt++)
        {
            try
            {
                return await coordinator.Ask<object>(verb, ListingAttempt, ct);
            }
            catch (AskTimeoutException) when (attempt < ListingAttempts)
            {
                // asked again below
            }
        }
    }

    private static readonly TimeSpan ListingAttempt = TimeSpan.FromSeconds(5);
    private const int ListingAttempts = 8;

    private static IResult Error(string reason, string kind, int status) => Results.Json(new ErrorView(reason, kind), statusCode: status);
}
