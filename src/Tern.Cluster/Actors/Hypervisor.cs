// One per node: boots the guests controllers send it, refuses those that do not fit (with
// the reason), stops them on request, and reports every guest's end to its controller.
using Akka.Actor;
using Tern.Cluster.Protocol;
using Tern.Cluster.State;
using Tern.Cluster.Telemetry;

namespace Tern.Cluster.Actors;

/// <summary>The hypervisor of one host.</summary>
public sealed class Hypervisor : ReceiveActor
{
    private readonly string _hostName;
    private readonly HypervisorState _state;
    private readonly IActorRef _controllers;
    private readonly IActorRef _hostAgent;
    private readonly Dictionary<string, IActorRef> _guests = new(StringComparer.Ordinal);
    private readonly Dictionary<string, (DateTime Last, int Pending)> _resets = new(StringComparer.Ordinal);
    private readonly HostTelemetry _telemetry;
    private readonly HostMeters _meters;

    /// <summary>Creates the hypervisor of host <paramref name="hostName"/>.</summary>
    public Hypervisor(string hostName, ulong memoryBudgetBytes, int harts, IActorRef controllers, IActorRef hostAgent, HostTelemetry? telemetry = null)
    {
        _hostName = hostName;
        _telemetry = telemetry ?? HostTelemetry.None;
        _meters = TernMetrics.RegisterHost(hostName, memoryBudgetBytes);
        _state = new HypervisorState(memoryBudgetBytes, harts);
        _controllers = controllers;
        _hostAgent = hostAgent;
        Receive<StartGuest>(Start);
        Receive<StopGuest>(Stop);
        Receive<AttachConsole>(a =>
        {
            if (_guests.TryGetValue(a.VmId, out var guest))
                guest.Forward(a);
            else
                Sender.Tell(new CommandRejected(a.VmId, $"VM '{a.VmId}' is not running on {_hostName}", RejectionKind.Conflict));
        });
        Receive<ProbeGuest>(p =>
        {
            if (_state.Find(p.VmId) is { } r && r.Generation == p.Generation)
                Sender.Tell(new GuestStarted(p.VmId, p.Generation, _hostName));
            else
                Sender.Tell(new GuestExited(p.VmId, p.Generation, $"not running on {_hostName}"));
        });
        Receive<GuestEnded>(e => Ended(e.VmId, e.Generation, e.Reason));
        Receive<GuestReset>(Reset);
        Receive<Terminated>(t =>
        {
            var entry = _guests.FirstOrDefault(g => g.Value.Equals(t.ActorRef));
            if (entry.Key is not null && _state.Find(entry.Key) is { } r)
                Ended(r.VmId, r.Generation, "the VM actor stopped unexpectedly");
        });
    }

    /// <summary>Props for the hypervisor.</summary>
    public static Props Props(string hostName, ulong memoryBudgetBytes, int harts, IActorRef controllers, IActorRef hostAgent, HostTelemetry? telemetry = null) =>
        Akka.Actor.Props.Create(() => new Hypervisor(hostName, memoryBudgetBytes, harts, controllers, hostAgent, telemetry));

    /// <inheritdoc/>
    protected override void PostStop() => _meters.Dispose();

    /// <inheritdoc/>
    protected override SupervisorStrategy SupervisorStrategy() => new OneForOneStrategy(_ => Directive.Stop);

    private void Start(StartGuest start)
    {
        using var span = TernTracing.Start("hypervisor.start-guest", start.Trace, System.Diagnostics.ActivityKind.Server);
        span?.SetTag("tern.vm", start.VmId);
        span?.SetTag("tern.generation", start.Generation);
        span?.SetTag("tern.host", _hostName);
        var reservation = new GuestReservation(start.VmId, start.Generation, start.Spec.MemoryBytes, start.Spec.Harts);
        if (_state.TryReserve(reservation) is { } refusal)
        {
            Refuse(start, refusal);
            return;
        }
        Machine.MachineThread machine;
        try
        {
            machine = GuestFactory.Build(start.Spec, start.Generation, _telemetry.GuestIoSampleEvery);
        }
        catch (Exception e) when (e is Machine.Boot.InvalidImageException or IOException or ArgumentException or UnauthorizedAccessException)
        {
            _state.Release(start.VmId, start.Generation);
            Refuse(start, $"cannot boot: {e.Message}");
            return;
        }
        var guest = Context.ActorOf(
            VmActor.Props(start.VmId, start.Generation, machine, () => GuestFactory.Build(start.Spec, start.Generation, _telemetry.GuestIoSampleEvery), _meters.Guest(start.VmId, start.Generation)),
            $"{start.VmId}.{start.Generation}");
        Context.Watch(guest);
        _guests[start.VmId] = guest;
        HypervisorLog.Started(_telemetry.Log, start.VmId, start.Generation, _hostName, start.Spec.MemoryBytes >> 20, start.Spec.Harts);
        Sender.Tell(new GuestStarted(start.VmId, start.Generation, _hostName));
        PublishUsage();
    }

    private void Refuse(StartGuest start, string reason)
    {
        HypervisorLog.Refused(_telemetry.Log, start.VmId, start.Generation, _hostName, reason);
        TernMetrics.GuestStartFailures.Add(1, new KeyValuePair<string, object?>("tern.host", _hostName));
        System.Diagnostics.Activity.Current?.SetStatus(System.Diagnostics.ActivityStatusCode.Error, reason);
        Sender.Tell(new GuestRefused(start.VmId, start.Generation, reason));
        PublishUsage(); // clears the scheduler's reservation for the refused guest
    }

    private void Stop(StopGuest stop)
    {
        using var span = TernTracing.Start("hypervisor.stop-guest", stop.Trace, System.Diagnostics.ActivityKind.Server);
        span?.SetTag("tern.vm", stop.VmId);
        if (_state.Find(stop.VmId) is { } r && r.Generation == stop.Generation && _guests.TryGetValue(stop.VmId, out var guest))
            guest.Tell(StopGuestNow.Instance);
        else
            _controllers.Tell(new GuestExited(stop.VmId, stop.Generation, $"not running on {_hostName}"));
    }

    // A guest in a reset loop must not flood the event logs: at most one restarted event per
    // guest a second, saying how many resets it stands for.
    private void Reset(GuestReset reset)
    {
        var now = DateTime.UtcNow;
        var (last, pending) = _resets.GetValueOrDefault(reset.VmId);
        if (now - last < TimeSpan.FromSeconds(1))
        {
            _resets[reset.VmId] = (last, pending + 1);
            return;
        }
        _resets[reset.VmId] = (now, 0);
        string detail = pending == 0 ? "the guest reset" : $"the guest reset ({pending + 1} times since the last event)";
        EventLog.Publish(Context.System, TernEvent.Now(TernEventKinds.VmRestarted, reset.VmId, _hostName, reset.Generation, detail));
    }

    private void Ended(string vmId, long generation, string reason)
    {
        if (!_state.Release(vmId, generation))
            return;
        if (_guests.Remove(vmId, out var guest))
            Context.Unwatch(guest);
        _resets.Remove(vmId);
        HypervisorLog.Ended(_telemetry.Log, vmId, generation, _hostName, reason);
        _controllers.Tell(new GuestExited(vmId, generation, reason));
        PublishUsage();
    }

    private void PublishUsage()
    {
        _meters.SetUsage(_state.UsedMemoryBytes, _state.Guests.Count);
        _hostAgent.Tell(new HostUsageChanged(_state.UsedMemoryBytes, _state.Guests.Count));
    }
}
