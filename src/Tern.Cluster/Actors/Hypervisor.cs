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
    private readonly IGuestDisks? _disks;
    // Volume disks (lv:VG/LV) held by each guest generation here, closed when it ends.
    private readonly Dictionary<(string VmId, long Generation), IReadOnlyDictionary<string, Machine.Devices.IBlockBackend>> _volumes = [];
    // Guests whose volumes are being opened before they boot.
    private readonly Dictionary<string, long> _opening = new(StringComparer.Ordinal);

    /// <summary>
    /// Creates the hypervisor of host <paramref name="hostName"/>; <paramref name="disks"/> opens guest
    /// disks named lv:VG/LV (null: this host refuses them).
    /// </summary>
    public Hypervisor(string hostName, ulong memoryBudgetBytes, int harts, IActorRef controllers, IActorRef hostAgent, HostTelemetry? telemetry = null, string bindAddress = "127.0.0.1", IGuestDisks? disks = null)
    {
        _disks = disks;
        _hostName = hostName;
        _bindAddress = bindAddress;
        _telemetry = telemetry ?? HostTelemetry.None;
        _meters = TernMetrics.RegisterHost(hostName, memoryBudgetBytes);
        _state = new HypervisorState(memoryBudgetBytes, harts);
        _controllers = controllers;
        _hostAgent = hostAgent;
        Receive<StartGuest>(Start);
        Receive<VolumesOpened>(VolumesReady);
        Receive<VolumesSized>(PrepareIncoming);
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
    public static Props Props(string hostName, ulong memoryBudgetBytes, int harts, IActorRef controllers, IActorRef hostAgent, HostTelemetry? telemetry = null, string bindAddress = "127.0.0.1", IGuestDisks? disks = null) =>
        Akka.Actor.Props.Create(() => new Hypervisor(hostName, memoryBudgetBytes, harts, controllers, hostAgent, telemetry, bindAddress, disks));

    /// <inheritdoc/>
    protected override void PreStart() =>
        // Rehearse the migration protocol now, in the background, so that this host's first
        // migration (in or out) neither waits for it nor compiles its switchover during the
        // downtime; then settle that code (paced, giving way to real migrations).
        _ = Tern.Migration.MigrationWarmUp.SettleAsync();

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
        if (VolumeRefusal(start.Spec) is { } bad)
        {
            _state.Release(start.VmId, start.Generation);
            Refuse(start, $"cannot boot: {bad}");
            return;
        }
        if (!start.Spec.Disks.Any(GuestDiskNames.IsVolume))
        {
            Boot(start, Sender, null);
            return;
        }
        // Opening a volume asks the storage coordinator (and fences older generations): off the actor.
        _opening[start.VmId] = start.Generation;
        var sender = Sender;
        OpenVolumesAsync(_disks!, start.Spec, start.VmId, start.Generation)
            .PipeTo(Self, success: v => new VolumesOpened(start, sender, v, null), failure: e => new VolumesOpened(start, sender, null, e));
    }

    private void VolumesReady(VolumesOpened opened)
    {
        var start = opened.Start;
        if (!_opening.TryGetValue(start.VmId, out long generation) || generation != start.Generation)
        {
            // Stopped while its volumes were opening: the stop has answered already.
            if (opened.Volumes is { } orphan)
                CloseVolumes(start.VmId, start.Generation, orphan);
            return;
        }
        _opening.Remove(start.VmId);
        if (opened.Volumes is null)
        {
            _state.Release(start.VmId, start.Generation);
            Refuse(start, $"cannot open its disk: {opened.Error!.GetBaseException().Message}", opened.Sender);
            return;
        }
        Boot(start, opened.Sender, opened.Volumes);
    }

    private void Boot(StartGuest start, IActorRef sender, IReadOnlyDictionary<string, Machine.Devices.IBlockBackend>? volumes)
    {
        Machine.MachineThread machine;
        try
        {
            machine = GuestFactory.Build(start.Spec, start.Generation, _telemetry.GuestIoSampleEvery, volumes);
        }
        catch (Exception e) when (e is Machine.Boot.InvalidImageException or IOException or ArgumentException or UnauthorizedAccessException)
        {
            _state.Release(start.VmId, start.Generation);
            if (volumes is not null)
                CloseVolumes(start.VmId, start.Generation, volumes);
            Refuse(start, $"cannot boot: {e.Message}", sender);
            return;
        }
        if (volumes is not null)
            _volumes[(start.VmId, start.Generation)] = volumes;
        var guest = Context.ActorOf(
            VmActor.Props(start.VmId, start.Generation, machine, () => GuestFactory.Build(start.Spec, start.Generation, _telemetry.GuestIoSampleEvery, volumes), _meters.Guest(start.VmId, start.Generation)),
            $"{start.VmId}.{start.Generation}");
        Context.Watch(guest);
        _guests[start.VmId] = guest;
        HypervisorLog.Started(_telemetry.Log, start.VmId, start.Generation, _hostName, start.Spec.MemoryBytes >> 20, start.Spec.Harts);
        sender.Tell(new GuestStarted(start.VmId, start.Generation, _hostName));
        PublishUsage();
    }

    // Why this host cannot give the spec its volume disks, or null.
    private string? VolumeRefusal(VmSpec spec)
    {
        foreach (var disk in spec.Disks.Where(GuestDiskNames.IsVolume))
        {
            if (GuestDiskNames.Volume(disk) is null)
                return $"disk '{disk}' is not a volume name; expected lv:VG/LV";
            if (_disks is null)
                return $"disk {disk} is a logical volume and host '{_hostName}' has no cluster storage";
        }
        return null;
    }

    // Opens every volume disk of the spec for this generation; on a failure closes those opened.
    private static async Task<IReadOnlyDictionary<string, Machine.Devices.IBlockBackend>> OpenVolumesAsync(IGuestDisks disks, VmSpec spec, string vmId, long generation)
    {
        var opened = new Dictionary<string, Machine.Devices.IBlockBackend>(StringComparer.Ordinal);
        try
        {
            // A restart after a host's loss often races the storage coordinator's own move off that
            // host: an open that fails is tried again until the patience runs out, which stays
            // below the controller's wait for the boot (15 s by default).
            var deadline = DateTime.UtcNow + OpenPatience;
            foreach (var disk in spec.Disks.Where(GuestDiskNames.IsVolume).Distinct(StringComparer.Ordinal))
            {
                while (true)
                {
                    var left = deadline - DateTime.UtcNow;
                    using var limit = new CancellationTokenSource(left > TimeSpan.FromSeconds(1) ? left : TimeSpan.FromSeconds(1));
                    try
                    {
                        opened[disk] = await disks.OpenAsync(GuestDiskNames.Volume(disk)!, vmId, generation, limit.Token).ConfigureAwait(false);
                        break;
                    }
                    catch (Exception e) when (e is IOException or TimeoutException or OperationCanceledException or AskTimeoutException or Tern.Storage.StorageException)
                    {
                        if (DateTime.UtcNow + OpenRetryPause >= deadline)
                            throw;
                        await Task.Delay(OpenRetryPause).ConfigureAwait(false);
                    }
                }
            }
            return opened;
        }
        catch
        {
            foreach (var backend in opened.Values)
                await GuestDiskNames.CloseAsync(backend).ConfigureAwait(false);
            throw;
        }
    }

    // Closes a guest's volumes off the actor (a close flushes and tells the coordinator); a failure is only logged.
    private void CloseVolumes(string vmId, long generation, IReadOnlyDictionary<string, Machine.Devices.IBlockBackend> volumes)
    {
        var log = _log;
        _ = Task.Run(async () =>
        {
            foreach (var (disk, backend) in volumes)
            {
                try
                {
                    await GuestDiskNames.CloseAsync(backend).ConfigureAwait(false);
                }
                catch (Exception e) when (e is IOException or TimeoutException or OperationCanceledException or InvalidOperationException or ObjectDisposedException)
                {
                    log.Warning("closing disk {0} of VM {1} generation {2} failed: {3}", disk, vmId, generation, e.Message);
                }
            }
        });
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
            refusal = prepare.Spec.Disks.FirstOrDefault(d => !GuestDiskNames.IsVolume(d) && !File.Exists(d)) is { } missing ? $"disk '{missing}' does not exist on {_hostName}" : VolumeRefusal(prepare.Spec);
            if (refusal is null && prepare.Spec.Disks.Any(GuestDiskNames.IsVolume))
            {
                // The target learns its volumes' sizes now and opens them only when the guest runs here.
                var sender = Sender;
                var trace = TernTracing.Capture();
                SizeVolumesAsync(_disks!, prepare.Spec).PipeTo(Self, success: z => new VolumesSized(prepare, sender, trace, z, null), failure: e => new VolumesSized(prepare, sender, trace, null, e));
                return;
            }
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
        AwaitSource(prepare, Sender, listener, TernTracing.Capture(), null);
    }

    // Lets a VM actor wait at the listener for the source; volume disks open when the guest first uses them.
    private void AwaitSource(PrepareMigration prepare, IActorRef sender, MigrationListener listener, TraceContext? trace, IReadOnlyDictionary<string, Machine.Devices.IBlockBackend>? volumes)
    {
        if (volumes is not null)
            _volumes[(prepare.VmId, prepare.Generation)] = volumes;
        var guest = Context.ActorOf(VmActor.Incoming(prepare.VmId, prepare.Generation, prepare.Spec, listener, sender, _hostName, trace, _meters.Guest(prepare.VmId, prepare.Generation), volumes), $"{prepare.VmId}.{prepare.Generation}");
        Context.Watch(guest);
        _guests[prepare.VmId] = guest;
        _incoming.Add(prepare.VmId);
        _log.Info("prepared incoming migration of VM {0} generation {1} at {2}", prepare.VmId, prepare.Generation, listener.Endpoint);
        sender.Tell(new MigrationPrepared(prepare.VmId, prepare.Generation, _hostName, listener.Endpoint, listener.Token));
        PublishUsage();
    }

    private void PrepareIncoming(VolumesSized sized)
    {
        var prepare = sized.Prepare;
        string? refusal = sized.Error is { } e ? $"cannot find its disk: {e.GetBaseException().Message}" : null;
        MigrationListener? listener = null;
        if (refusal is null && _state.Find(prepare.VmId)?.Generation != prepare.Generation)
            refusal = "the migration was aborted while its disks were looked up";
        if (refusal is null)
        {
            try
            {
                listener = new MigrationListener(_bindAddress);
            }
            catch (System.Net.Sockets.SocketException x)
            {
                refusal = $"cannot open a migration endpoint on {_bindAddress}: {x.Message}";
            }
        }
        if (refusal is not null || listener is null)
        {
            _state.Release(prepare.VmId, prepare.Generation);
            _log.Info("refused incoming migration of VM {0} generation {1}: {2}", prepare.VmId, prepare.Generation, refusal);
            sized.Sender.Tell(new MigrationRefused(prepare.VmId, prepare.Generation, $"host '{_hostName}' cannot take it: {refusal}"));
            PublishUsage();
            return;
        }
        var volumes = sized.Sizes!.ToDictionary(
            z => z.Key,
            z => (Machine.Devices.IBlockBackend)new DeferredGuestDisk(_disks!, GuestDiskNames.Volume(z.Key)!, prepare.VmId, prepare.Generation, z.Value),
            StringComparer.Ordinal);
        AwaitSource(prepare, sized.Sender, listener, sized.Trace, volumes);
    }

    private static async Task<IReadOnlyDictionary<string, long>> SizeVolumesAsync(IGuestDisks disks, VmSpec spec)
    {
        var sizes = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var disk in spec.Disks.Where(GuestDiskNames.IsVolume).Distinct(StringComparer.Ordinal))
        {
            using var limit = new CancellationTokenSource(VolumeTimeout);
            sizes[disk] = await disks.SizeAsync(GuestDiskNames.Volume(disk)!, limit.Token).ConfigureAwait(false);
        }
        return sizes;
    }

    // Hands a migration message to the VM actor of the guest (of that generation, when given), else runs otherwise.
    private void ToGuest(string vmId, long? generation, object message, Action otherwise)
    {
        if (_state.Find(vmId) is { } r && (generation is null || r.Generation == generation) && _guests.TryGetValue(vmId, out var guest))
            guest.Forward(message);
        else
            otherwise();
    }

    private void Refuse(StartGuest start, string reason, IActorRef? to = null)
    {
        HypervisorLog.Refused(_telemetry.Log, start.VmId, start.Generation, _hostName, reason);
        TernMetrics.GuestStartFailures.Add(1, new KeyValuePair<string, object?>("tern.host", _hostName));
        System.Diagnostics.Activity.Current?.SetStatus(System.Diagnostics.ActivityStatusCode.Error, reason);
        (to ?? Sender).Tell(new GuestRefused(start.VmId, start.Generation, reason));
        PublishUsage(); // clears the scheduler's reservation for the refused guest
    }

    private void Stop(StopGuest stop)
    {
        using var span = TernTracing.Start("hypervisor.stop-guest", stop.Trace, System.Diagnostics.ActivityKind.Server);
        span?.SetTag("tern.vm", stop.VmId);
        if (_state.Find(stop.VmId) is { } r && r.Generation == stop.Generation && _guests.TryGetValue(stop.VmId, out var guest))
            guest.Tell(StopGuestNow.Instance);
        else if (_opening.TryGetValue(stop.VmId, out long opening) && opening == stop.Generation)
        {
            _opening.Remove(stop.VmId);
            Ended(stop.VmId, stop.Generation, "stopped by the host before its disks were open");
        }
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
        if (_volumes.Remove((vmId, generation), out var volumes))
            CloseVolumes(vmId, generation, volumes);
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

    // How long sizing one volume may take (a coordinator round trip).
    private static readonly TimeSpan VolumeTimeout = TimeSpan.FromSeconds(20);

    // How long a start keeps trying to open its volumes (fencing needs the coordinator), and the pause between tries.
    private static readonly TimeSpan OpenPatience = TimeSpan.FromSeconds(12);
    private static readonly TimeSpan OpenRetryPause = TimeSpan.FromMilliseconds(500);

    private sealed record VolumesOpened(StartGuest Start, IActorRef Sender, IReadOnlyDictionary<string, Machine.Devices.IBlockBackend>? Volumes, Exception? Error) : INoSerializationVerificationNeeded;

    private sealed record VolumesSized(PrepareMigration Prepare, IActorRef Sender, TraceContext? Trace, IReadOnlyDictionary<string, long>? Sizes, Exception? Error) : INoSerializationVerificationNeeded;
}
