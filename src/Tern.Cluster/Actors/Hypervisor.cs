// One per node: boots the guests controllers send it, refuses those that do not fit (with
// the reason), stops them on request, and reports every guest's end to its controller.
using Akka.Actor;
using Akka.Event;
using Tern.Cluster.Migration;
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
    private readonly HashSet<string> _incoming = new(StringComparer.Ordinal);
    private readonly string _bindAddress;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly HostTelemetry _telemetry;
    private readonly HostMeters _meters;

    /// <summary>Creates the hypervisor of host <paramref name="hostName"/>.</summary>
    public Hypervisor(string hostName, ulong memoryBudgetBytes, int harts, IActorRef controllers, IActorRef hostAgent, HostTelemetry? telemetry = null, string bindAddress = "127.0.0.1")
    {
        _hostName = hostName;
        _bindAddress = bindAddress;
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
        Receive<PrepareMigration>(Prepare);
        Receive<MigrateGuest>(m => ToGuest(m.VmId, m.Generation, m, () => Sender.Tell(new MigrationFailed(m.VmId, m.NewGeneration, $"generation {m.Generation} of VM '{m.VmId}' is not running on {_hostName}"))));
        Receive<CancelGuestMigration>(c => ToGuest(c.VmId, null, c, () => { }));
        Receive<AbortMigration>(a => ToGuest(a.VmId, a.Generation, a, () => { }));
        Receive<ConsoleHandover>(h => ToGuest(h.VmId, h.Generation, h, () => { }));
        Receive<GuestMigratedIn>(g =>
        {
            _incoming.Remove(g.VmId);
            PublishUsage();
        });
        Receive<ProbeGuest>(p => _incoming.Contains(p.VmId) && _state.Find(p.VmId)?.Generation == p.Generation, p => _guests[p.VmId].Forward(p));
        Receive<ProbeGuest>(p =>
        {
            if (_state.Find(p.VmId) is { } r && r.Generation == p.Generation && !_incoming.Contains(p.VmId))
                Sender.Tell(new GuestStarted(p.VmId, p.Generation, _hostName));
            else
                Sender.Tell(new GuestExited(p.VmId, p.Generation, $"not running on {_hostName}"));
        });
        Receive<GuestEnded>(e => Ended(e.VmId, e.Generation, e.Reason, e.Report));
        Receive<GuestReset>(Reset);
        Receive<Terminated>(t =>
        {
            var entry = _guests.FirstOrDefault(g => g.Value.Equals(t.ActorRef));
            if (entry.Key is not null && _state.Find(entry.Key) is { } r)
                Ended(r.VmId, r.Generation, "the VM actor stopped unexpectedly");
        });
    }

    /// <summary>Props for the hypervisor.</summary>
    public static Props Props(string hostName, ulong memoryBudgetBytes, int harts, IActorRef controllers, IActorRef hostAgent, HostTelemetry? telemetry = null, string bindAddress = "127.0.0.1") =>
        Akka.Actor.Props.Create(() => new Hypervisor(hostName, memoryBudgetBytes, harts, controllers, hostAgent, telemetry, bindAddress));

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

    // The target's half of a migration's prepare step: reserve room for the new generation,
    // open a one-time endpoint, and let a VM actor wait there for the source. A refusal holds nothing.
    private void Prepare(PrepareMigration prepare)
    {
        using var span = TernTracing.Start("migration.prepare", prepare.Trace, System.Diagnostics.ActivityKind.Server);
        span?.SetTag("tern.vm", prepare.VmId);
        span?.SetTag("tern.generation", prepare.Generation);
        span?.SetTag("tern.host", _hostName);
        var reservation = new GuestReservation(prepare.VmId, prepare.Generation, prepare.Spec.MemoryBytes, prepare.Spec.Harts);
        string? refusal = _state.TryReserve(reservation);
        MigrationListener? listener = null;
        if (refusal is null)
        {
            refusal = prepare.Spec.Disks.FirstOrDefault(d => !File.Exists(d)) is { } missing ? $"disk '{missing}' does not exist on {_hostName}" : null;
            if (refusal is null)
            {
                try
                {
                    listener = new MigrationListener(_bindAddress);
                }
                catch (System.Net.Sockets.SocketException e)
                {
                    refusal = $"cannot open a migration endpoint on {_bindAddress}: {e.Message}";
                }
            }
            if (refusal is not null)
                _state.Release(prepare.VmId, prepare.Generation);
        }
        if (refusal is not null || listener is null)
        {
            _log.Info("refused incoming migration of VM {0} generation {1}: {2}", prepare.VmId, prepare.Generation, refusal);
            span?.SetStatus(System.Diagnostics.ActivityStatusCode.Error, refusal);
            Sender.Tell(new MigrationRefused(prepare.VmId, prepare.Generation, $"host '{_hostName}' cannot take it: {refusal}"));
            PublishUsage();
            return;
        }
        var guest = Context.ActorOf(VmActor.Incoming(prepare.VmId, prepare.Generation, prepare.Spec, listener, Sender, _hostName, TernTracing.Capture(), _meters.Guest(prepare.VmId, prepare.Generation)), $"{prepare.VmId}.{prepare.Generation}");
        Context.Watch(guest);
        _guests[prepare.VmId] = guest;
        _incoming.Add(prepare.VmId);
        _log.Info("prepared incoming migration of VM {0} generation {1} at {2}", prepare.VmId, prepare.Generation, listener.Endpoint);
        Sender.Tell(new MigrationPrepared(prepare.VmId, prepare.Generation, _hostName, listener.Endpoint, listener.Token));
        PublishUsage();
    }

    // Hands a migration message to the VM actor of the guest (of that generation, when given), else runs otherwise.
    private void ToGuest(string vmId, long? generation, object message, Action otherwise)
    {
        if (_state.Find(vmId) is { } r && (generation is null || r.Generation == generation) && _guests.TryGetValue(vmId, out var guest))
            guest.Forward(message);
        else
            otherwise();
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

    private void Ended(string vmId, long generation, string reason, bool report = true)
    {
        if (!_state.Release(vmId, generation))
            return;
        if (_guests.Remove(vmId, out var guest))
            Context.Unwatch(guest);
        _resets.Remove(vmId);
        _incoming.Remove(vmId);
        HypervisorLog.Ended(_telemetry.Log, vmId, generation, _hostName, reason);
        if (report)
            _controllers.Tell(new GuestExited(vmId, generation, reason));
        PublishUsage();
    }

    private void PublishUsage()
    {
        _meters.SetUsage(_state.UsedMemoryBytes, _state.Guests.Count);
        _hostAgent.Tell(new HostUsageChanged(_state.UsedMemoryBytes, _state.Guests.Count));
    }
}
