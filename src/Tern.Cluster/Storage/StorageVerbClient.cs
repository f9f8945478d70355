// Sends one storage verb to the cluster's coordinator so that the caller never waits without
// knowing why. Each verb gets a request id; the coordinator answers "accepted" at once and the
// result is fetched by asking for it, held a few seconds at a time. So:
// - a verb no coordinator took (sent into a dying node, or while none serves) is sent again, with
//   the same id (a coordinator runs an id once), until one takes it or AcceptWithin has passed;
// - a verb a coordinator took and that coordinator then died ends with a one-line "outcome
//   unknown" error naming how to check, as soon as the next coordinator says it has no record of
//   it (or SilenceLimit passes without any answer); a listing is simply sent again instead;
// - a verb that is running keeps being answered "pending", and is waited for up to VerbTimeout.
using Akka.Actor;
using Tern.Cluster.Protocol;

namespace Tern.Cluster.Storage;

/// <summary>How long a storage verb's caller waits, phase by phase.</summary>
public sealed record StorageVerbClientOptions
{
    /// <summary>
    /// 90 s to find a coordinator that takes the verb: covers the loss of the coordinator's node
    /// (failure detection, the split-brain resolver's 20 s, the singleton's start and its 10 s
    /// wait for the extent servers) with room to spare.
    /// </summary>
    public TimeSpan AcceptWithin { get; init; } = TimeSpan.FromSeconds(90);

    /// <summary>5 s for one attempt to hand over the verb: a live coordinator answers in milliseconds.</summary>
    public TimeSpan Attempt { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// 90 s without any answer while waiting for an accepted verb, after which its outcome is
    /// unknown (a live coordinator answers every 3 s; a new one answers within the move's time).
    /// </summary>
    public TimeSpan SilenceLimit { get; init; } = TimeSpan.FromSeconds(90);

    /// <summary>30 min for a running verb (pvmove, convert, repair copy whole volumes); it goes on after that.</summary>
    public TimeSpan VerbTimeout { get; init; } = TimeSpan.FromMinutes(30);

    /// <summary>Called with the request id when a coordinator has taken the verb (each time, for a resent listing).</summary>
    public Action<string>? Taken { get; init; }
}

/// <summary>How a verb sent through <see cref="StorageVerbClient"/> ended.</summary>
public enum StorageVerbOutcome
{
    /// <summary>The verb ran; <see cref="StorageVerbAnswer.Result"/> is what it printed.</summary>
    Done,

    /// <summary>No coordinator took the verb: it did not run.</summary>
    NotAccepted,

    /// <summary>A coordinator took the verb and was lost: it may or may not have run.</summary>
    Unknown,

    /// <summary>The verb still runs after the client's limit.</summary>
    StillRunning,
}

/// <summary>The end of one verb: its result when it ran, else a one-line reason.</summary>
public sealed record StorageVerbAnswer(StorageVerbOutcome Outcome, StorageVerbResult? Result, string? Error);

/// <summary>Runs storage verbs on the cluster's coordinator with bounded waits.</summary>
public static class StorageVerbClient
{
    private const int ListingResends = 3;

    /// <summary>
    /// Sends <paramref name="args"/> to the coordinator through <paramref name="coordinator"/> (its
    /// singleton proxy) and waits for its end; see the file's header for the bounds.
    /// <paramref name="resendable"/> marks a verb that changes nothing (a listing), which is sent
    /// again as a new request when its coordinator was lost.
    /// </summary>
    public static async Task<StorageVerbAnswer> RunAsync(ActorSystem system, IActorRef coordinator, IReadOnlyList<string> args, string? traceParent,
        bool resendable, StorageVerbClientOptions? options = null, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(system);
        ArgumentNullException.ThrowIfNull(coordinator);
        ArgumentNullException.ThrowIfNull(args);
        options ??= new StorageVerbClientOptions();
        for (int resend = 0; ; resend++)
        {
            string id = Guid.NewGuid().ToString("N");
            var verb = new RunStorageVerb([.. args], traceParent, id);
            var taken = await HandOverAsync(system, coordinator, verb, options, ct).ConfigureAwait(false);
            if (taken is StorageVerbAnswer early)
                return early;
            var accepted = (StorageVerbAccepted)taken;
            options.Taken?.Invoke(accepted.RequestId);
            var answer = await AwaitAsync(system, coordinator, args, accepted, options, ct).ConfigureAwait(false);
            if (answer.Outcome == StorageVerbOutcome.Unknown && resendable && resend < ListingResends)
                continue;
            return answer;
        }
    }

    // Sends the verb until a coordinator takes it: returns its StorageVerbAccepted, or the end.
    private static async Task<object> HandOverAsync(ActorSystem system, IActorRef coordinator, RunStorageVerb verb, StorageVerbClientOptions options, CancellationToken ct)
    {
        var until = DateTime.UtcNow + options.AcceptWithin;
        string last = "no coordinator answered";
        while (true)
        {
            if (DateTime.UtcNow >= until)
                return new StorageVerbAnswer(StorageVerbOutcome.NotAccepted, null,
                    $"no storage coordinator took the verb in {options.AcceptWithin.TotalSeconds:0} s ({last}); it was not run, try again");
            // While the coordinator's node is unreachable (not yet downed), what the proxy sends is
            // lost: wait for the singleton to move rather than send into the void.
            if (StorageCoordinator.UnreachableHome(system) is { } home)
            {
                last = $"the coordinator's node {home} is unreachable";
                await Task.Delay(200, ct).ConfigureAwait(false);
                continue;
            }
            try
            {
                var reply = await coordinator.Ask<object>(verb, options.Attempt, ct).ConfigureAwait(false);
                switch (reply)
                {
                    case StorageVerbAccepted a:
                        return a;
                    case StorageVerbResult r:
                        return new StorageVerbAnswer(StorageVerbOutcome.Done, r, null); // a repeat of a verb already done
                    case StorageRefused r:
                        return new StorageVerbAnswer(StorageVerbOutcome.NotAccepted, null, r.Reason);
                    default:
                        last = $"the coordinator answered {reply.GetType().Name}";
                        break;
                }
            }
            catch (AskTimeoutException)
            {
                last = $"an attempt got no answer in {options.Attempt.TotalSeconds:0} s";
            }
        }
    }

    private static async Task<StorageVerbAnswer> AwaitAsync(ActorSystem system, IActorRef coordinator, IReadOnlyList<string> args, StorageVerbAccepted accepted,
        StorageVerbClientOptions options, CancellationToken ct)
    {
        string id = accepted.RequestId;
        string host = accepted.Host;
        var lastAnswer = DateTime.UtcNow;
        var until = DateTime.UtcNow + options.VerbTimeout;
        string check = Check(args);
        var ask = options.Attempt + TimeSpan.FromSeconds(3);
        while (true)
        {
            if (DateTime.UtcNow - lastAnswer >= options.SilenceLimit)
                return new StorageVerbAnswer(StorageVerbOutcome.Unknown, null,
                    $"the storage coordinator on {host} took the verb (request {id}) and has not answered for {options.SilenceLimit.TotalSeconds:0} s; its outcome is unknown: check with `{check}`");
            if (DateTime.UtcNow >= until)
                return new StorageVerbAnswer(StorageVerbOutcome.StillRunning, null,
                    $"the verb still runs on the storage coordinator on {host} after {options.VerbTimeout.TotalMinutes:0} min (request {id}); it goes on: check with `{check}`");
            if (StorageCoordinator.UnreachableHome(system) is not null)
            {
                await Task.Delay(200, ct).ConfigureAwait(false);
                continue;
            }
            object reply;
            try
            {
                reply = await coordinator.Ask<object>(new AwaitStorageVerb(id), ask, ct).ConfigureAwait(false);
            }
            catch (AskTimeoutException)
            {
                continue;
            }
            lastAnswer = DateTime.UtcNow;
            switch (reply)
            {
                case StorageVerbResult r:
                    return new StorageVerbAnswer(StorageVerbOutcome.Done, r, null);
                case StorageVerbPending p:
                    host = p.Host;
                    break;
                case StorageVerbUnknown u:
                    return new StorageVerbAnswer(StorageVerbOutcome.Unknown, null,
                        $"the storage coordinator on {host} took the verb (request {id}) and was lost before it answered (the new one on {u.Host} has no record of it); its outcome is unknown: check with `{check}`");
                default:
                    break;
            }
        }
    }

    // The listing that shows whether a verb of this family happened.
    private static string Check(IReadOnlyList<string> args) => args.Count > 0 && args[0] is "pv" or "vg" ? $"tern {args[0]} list" : "tern lv list";
}
