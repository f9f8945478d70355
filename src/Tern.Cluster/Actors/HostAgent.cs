// Publishes this node's capacity and use to the scheduler: at start, on every change, and
// periodically (the scheduler forgets reservations only when a fresh report arrives). The
// capacity includes the node's physical volumes, re-read from its storage home every few
// seconds off the actor's thread.
using Akka.Actor;
using Tern.Cluster.Protocol;

namespace Tern.Cluster.Actors;

/// <summary>A hypervisor's report of what its guests use (local only).</summary>
public sealed record HostUsageChanged(ulong UsedMemoryBytes, int Guests) : INoSerializationVerificationNeeded;

/// <summary>Reports this node's capacity to the scheduler.</summary>
public sealed class HostAgent : ReceiveActor, IWithTimers
{
    // PVs change only when an operator runs a storage command: a few seconds' delay is fine.
    private static readonly TimeSpan PvScanInterval = TimeSpan.FromSeconds(3);

    private readonly TimeSpan _interval;
    private readonly string? _storageHome;
    private HostCapacity _capacity;
    private bool _scanning;

    /// <summary>
    /// Creates the agent for a host with the given identity and budget; its PVs are those listed in
    /// <paramref name="storageHome"/> (the node's data dir; null: none).
    /// </summary>
    public HostAgent(HostCapacity capacity, IActorRef scheduler, TimeSpan interval, string? storageHome = null)
    {
        _capacity = capacity;
        _storageHome = storageHome;
        Receive<HostUsageChanged>(u =>
        {
            _capacity = _capacity with { UsedMemoryBytes = u.UsedMemoryBytes, Guests = u.Guests };
            scheduler.Tell(new HostReport(_capacity));
        });
        Receive<Tick>(_ => scheduler.Tell(new HostReport(_capacity)));
        Receive<ScanPvs>(_ =>
        {
            if (_scanning || _storageHome is null)
                return;
            _scanning = true;
            Tern.Storage.PvInventory.ScanAsync(_storageHome).PipeTo(Self,
                success: r => new PvsScanned([.. r.Pvs.Select(p => new PvCapacity(p.Path, p.Vg, p.SizeBytes, p.FreeBytes))]),
                failure: _ => new PvsScanned(null));
        });
        Receive<PvsScanned>(s =>
        {
            _scanning = false;
            if (s.Pvs is null || (_capacity.Pvs is { } known && known.SequenceEqual(s.Pvs)))
                return;
            _capacity = _capacity with { Pvs = s.Pvs };
            scheduler.Tell(new HostReport(_capacity));
        });
        _interval = interval;
    }

    /// <inheritdoc/>
    public ITimerScheduler Timers { get; set; } = null!;

    /// <inheritdoc/>
    protected override void PreStart()
    {
        Timers.StartPeriodicTimer("report", Tick.Instance, TimeSpan.Zero, _interval);
        Timers.StartPeriodicTimer("pvs", ScanPvs.Instance, TimeSpan.Zero, PvScanInterval);
    }

    /// <summary>Props for the agent.</summary>
    public static Props Props(HostCapacity capacity, IActorRef scheduler, TimeSpan interval, string? storageHome = null) =>
        Akka.Actor.Props.Create(() => new HostAgent(capacity, scheduler, interval, storageHome));

    private sealed record PvsScanned(IReadOnlyList<PvCapacity>? Pvs) : INoSerializationVerificationNeeded;

    private sealed class ScanPvs : INoSerializationVerificationNeeded
    {
        public static readonly ScanPvs Instance = new();
    }

    private sealed class Tick : INoSerializationVerificationNeeded
    {
        public static readonly Tick Instance = new();
    }
}
