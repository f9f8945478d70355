// The cluster singleton that places VMs. It learns hosts from their agents' reports and
// forgets them when they leave or become unreachable.
using Akka.Actor;
using Akka.Cluster;
using Tern.Cluster.Protocol;
using Tern.Cluster.State;
using Tern.Cluster.Telemetry;

namespace Tern.Cluster.Actors;

/// <summary>Places VMs on hosts.</summary>
public sealed class Scheduler : ReceiveActor
{
    private readonly SchedulerState _state = new();

    /// <summary>Creates the scheduler.</summary>
    public Scheduler()
    {
        Receive<HostReport>(r => _state.Report(r.Capacity));
        Receive<GetHosts>(_ => Sender.Tell(List()));
        Receive<SetHostDraining>(d =>
        {
            if (_state.SetDraining(d.Host, d.Draining))
                Sender.Tell(List());
            else
                Sender.Tell(new CommandRejected(d.Host, $"no host named '{d.Host}' (known: {string.Join(", ", _state.Hosts.Select(h => h.Name).Order(StringComparer.Ordinal))})", RejectionKind.NotFound));
        });
        Receive<PlaceVm>(p =>
        {
            using var span = TernTracing.Start("scheduler.place", p.Trace, System.Diagnostics.ActivityKind.Server);
            span?.SetTag("tern.vm", p.VmId);
            var decision = _state.Place(p);
            if (decision.Host is { } host)
            {
                span?.SetTag("tern.host", host.Name);
                Sender.Tell(new VmPlaced(p.VmId, host.Name, host.Address));
            }
            else
            {
                span?.SetStatus(System.Diagnostics.ActivityStatusCode.Error, decision.Reason);
                Sender.Tell(new PlacementRefused(p.VmId, decision.Reason!));
            }
        });
        Receive<ClusterEvent.MemberRemoved>(m => _state.RemoveAddress(m.Member.Address.ToString()));
        Receive<ClusterEvent.UnreachableMember>(m => _state.RemoveAddress(m.Member.Address.ToString()));
        Receive<ClusterEvent.IClusterDomainEvent>(_ => { });
        Receive<ClusterEvent.CurrentClusterState>(_ => { });
    }

    private HostList List() => new(
        _state.Hosts.OrderBy(h => h.Name, StringComparer.Ordinal).ToList(),
        _state.Draining.Order(StringComparer.Ordinal).ToList());

    /// <summary>Props for the scheduler.</summary>
    public static Props Props() => Akka.Actor.Props.Create(() => new Scheduler());

    /// <inheritdoc/>
    protected override void PreStart() =>
        Akka.Cluster.Cluster.Get(Context.System).Subscribe(Self, ClusterEvent.SubscriptionInitialStateMode.InitialStateAsSnapshot,
            typeof(ClusterEvent.MemberRemoved), typeof(ClusterEvent.UnreachableMember));

    /// <inheritdoc/>
    protected override void PostStop() => Akka.Cluster.Cluster.Get(Context.System).Unsubscribe(Self);
}
