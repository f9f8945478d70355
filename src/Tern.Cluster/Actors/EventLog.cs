// One per node (/user/events): keeps the cluster's recent events and streams new ones to
// subscribers (the API's /api/events). Actors of this node publish with EventLog.Publish; the
// log records the event and sends it to the event log of every other Up member, so each node
// sees every VM event wherever it happened. Hosts joining and leaving each node observes itself.
using Akka.Actor;
using Akka.Cluster;
using Tern.Cluster.Protocol;

namespace Tern.Cluster.Actors;

/// <summary>Subscribes the sender to the node's event log: it receives <see cref="EventHistory"/>, then every new <see cref="TernEvent"/> (local only).</summary>
public sealed record SubscribeEvents : INoSerializationVerificationNeeded;

/// <summary>The events the log still holds, oldest first (local only).</summary>
public sealed record EventHistory(IReadOnlyList<TernEvent> Events) : INoSerializationVerificationNeeded;

/// <summary>The node's event log.</summary>
public sealed class EventLog : ReceiveActor
{
    /// <summary>Events kept for late subscribers.</summary>
    public const int Capacity = 1000;

    /// <summary>The role every node carries with its name, so events can name a member's host.</summary>
    public const string NameRolePrefix = "tern-name-";

    /// <summary>
    /// The cluster roles of node <paramref name="nodeName"/>: "host", and its name role when the
    /// name is plain enough for the HOCON the roles go through (letters, digits, '-', '_', '.').
    /// </summary>
    public static IReadOnlyList<string> Roles(string nodeName) =>
        !string.IsNullOrEmpty(nodeName) && nodeName.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.')
            ? ["host", NameRolePrefix + nodeName]
            : ["host"];

    private readonly Queue<TernEvent> _events = new();
    private readonly HashSet<IActorRef> _subscribers = [];
    private readonly Akka.Cluster.Cluster _cluster = Akka.Cluster.Cluster.Get(Context.System);

    /// <summary>Creates the log.</summary>
    public EventLog()
    {
        Receive<Published>(p =>
        {
            Record(p.Event);
            foreach (var m in _cluster.State.Members.Where(m => m.Status == MemberStatus.Up && !m.Address.Equals(_cluster.SelfAddress)))
                Context.ActorSelection(new RootActorPath(m.Address) / "user" / ActorNames.Events).Tell(p.Event);
        });
        Receive<TernEvent>(Record);
        Receive<ClusterEvent.MemberUp>(m => Record(TernEvent.Now(TernEventKinds.HostJoined, null, HostName(m.Member), 0, m.Member.Address.ToString())));
        Receive<ClusterEvent.MemberRemoved>(m => Record(TernEvent.Now(TernEventKinds.HostLeft, null, HostName(m.Member), 0, m.Member.Address.ToString())));
        Receive<ClusterEvent.IClusterDomainEvent>(_ => { });
        Receive<SubscribeEvents>(_ =>
        {
            Sender.Tell(new EventHistory([.. _events]));
            if (_subscribers.Add(Sender))
                Context.Watch(Sender);
        });
        Receive<Terminated>(t => _subscribers.Remove(t.ActorRef));
    }

    /// <summary>Props for the log.</summary>
    public static Props Props() => Akka.Actor.Props.Create(() => new EventLog());

    /// <summary>Publishes <paramref name="e"/> through this node's event log (to every node's).</summary>
    public static void Publish(ActorSystem system, TernEvent e)
    {
        ArgumentNullException.ThrowIfNull(system);
        system.ActorSelection($"/user/{ActorNames.Events}").Tell(new Published(e));
    }

    /// <summary>The host name of <paramref name="member"/> (from its name role), else its address.</summary>
    public static string HostName(Member member)
    {
        ArgumentNullException.ThrowIfNull(member);
        return member.Roles.FirstOrDefault(r => r.StartsWith(NameRolePrefix, StringComparison.Ordinal)) is { } role
            ? role[NameRolePrefix.Length..]
            : member.Address.ToString();
    }

    /// <inheritdoc/>
    protected override void PreStart() =>
        _cluster.Subscribe(Self, ClusterEvent.SubscriptionInitialStateMode.InitialStateAsEvents, typeof(ClusterEvent.MemberUp), typeof(ClusterEvent.MemberRemoved));

    /// <inheritdoc/>
    protected override void PostStop() => _cluster.Unsubscribe(Self);

    private void Record(TernEvent e)
    {
        _events.Enqueue(e);
        while (_events.Count > Capacity)
            _events.Dequeue();
        foreach (var s in _subscribers)
            s.Tell(e);
    }

    private sealed record Published(TernEvent Event) : INoSerializationVerificationNeeded;
}
