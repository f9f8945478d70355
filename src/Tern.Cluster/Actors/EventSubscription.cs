// Bridges the node's event log to async code (the HTTP API): a short-lived actor subscribes
// and writes what it receives into a channel.
using System.Threading.Channels;
using Akka.Actor;
using Tern.Cluster.Protocol;

namespace Tern.Cluster.Actors;

/// <summary>A live subscription to this node's event log.</summary>
public sealed class EventSubscription : IDisposable
{
    private readonly Channel<object> _channel = Channel.CreateBounded<object>(new BoundedChannelOptions(4096) { FullMode = BoundedChannelFullMode.DropOldest });
    private readonly IActorRef _bridge;

    private EventSubscription(ActorSystem system)
    {
        _bridge = system.ActorOf(Props.Create(() => new Bridge(_channel.Writer)));
        system.ActorSelection($"/user/{ActorNames.Events}").Tell(new SubscribeEvents(), _bridge);
    }

    /// <summary>What arrives: one <see cref="EventHistory"/>, then each new <see cref="TernEvent"/>.</summary>
    public ChannelReader<object> Reader => _channel.Reader;

    /// <summary>Subscribes to the event log of <paramref name="system"/>'s node.</summary>
    public static EventSubscription Open(ActorSystem system) => new(system);

    /// <summary>Unsubscribes.</summary>
    public void Dispose()
    {
        _bridge.Tell(PoisonPill.Instance);
        _channel.Writer.TryComplete();
    }

    private sealed class Bridge : ReceiveActor
    {
        public Bridge(ChannelWriter<object> writer)
        {
            Receive<EventHistory>(h => writer.TryWrite(h));
            Receive<TernEvent>(e => writer.TryWrite(e));
        }
    }
}
