// Publishes this node's capacity and use to the scheduler: at start, on every change, and
// periodically (the scheduler forgets reservations only when a fresh report arrives).
using Akka.Actor;
using Tern.Cluster.Protocol;

namespace Tern.Cluster.Actors;

/// <summary>A hypervisor's report of what its guests use (local only).</summary>
public sealed record HostUsageChanged(ulong UsedMemoryBytes, int Guests) : INoSerializationVerificationNeeded;

/// <summary>Reports this node's capacity to the scheduler.</summary>
public sealed class HostAgent : ReceiveActor, IWithTimers
{
    private readonly TimeSpan _interval;
    private HostCapacity _capacity;

    /// <summary>Creates the agent for a host with the given identity and budget.</summary>
    public HostAgent(HostCapacity capacity, IActorRef scheduler, TimeSpan interval)
    {
        _capacity = capacity;
        Receive<HostUsageChanged>(u =>
        {
            _capacity = _capacity with { UsedMemoryBytes = u.UsedMemoryBytes, Guests = u.Guests };
            scheduler.Tell(new HostReport(_capacity));
        });
        Receive<Tick>(_ => scheduler.Tell(new HostReport(_capacity)));
        _interval = interval;
    }

    /// <inheritdoc/>
    public ITimerScheduler Timers { get; set; } = null!;

    /// <inheritdoc/>
    protected override void PreStart() => Timers.StartPeriodicTimer("report", Tick.Instance, TimeSpan.Zero, _interval);

    /// <summary>Props for the agent.</summary>
    public static Props Props(HostCapacity capacity, IActorRef scheduler, TimeSpan interval) =>
        Akka.Actor.Props.Create(() => new HostAgent(capacity, scheduler, interval));

    private sealed class Tick : INoSerializationVerificationNeeded
    {
        public static readonly Tick Instance = new();
    }
}
