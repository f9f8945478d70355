// Bridges a VM's console from the actor world to async code (the HTTP API, the CLI): a
// short-lived actor attaches to the console and writes what it receives into a channel.
using System.Threading.Channels;
using Akka.Actor;
using Tern.Cluster.Protocol;

namespace Tern.Cluster.Actors;

/// <summary>A live subscription to a VM's console output.</summary>
public sealed class ConsoleSubscription : IDisposable
{
    private readonly Channel<object> _channel = Channel.CreateBounded<object>(new BoundedChannelOptions(1024) { FullMode = BoundedChannelFullMode.DropOldest });
    private readonly IActorRef _bridge;

    private ConsoleSubscription(ActorSystem system, IActorRef vmRegion, string vmId)
    {
        _bridge = system.ActorOf(Props.Create(() => new Bridge(_channel.Writer)));
        vmRegion.Tell(new AttachConsole(vmId), _bridge);
    }

    /// <summary>
    /// What arrives: <see cref="ConsoleOutput"/> chunks (the backlog first) and a final
    /// <see cref="ConsoleEnded"/> when the guest ends, or one <see cref="CommandRejected"/> when
    /// the VM is unknown or not running. The channel completes after either last message.
    /// </summary>
    public ChannelReader<object> Reader => _channel.Reader;

    /// <summary>Attaches to the console of <paramref name="vmId"/> through the VM controllers.</summary>
    public static ConsoleSubscription Open(ActorSystem system, IActorRef vmRegion, string vmId) => new(system, vmRegion, vmId);

    /// <summary>Detaches (the VM actor forgets the subscriber when the bridge stops).</summary>
    public void Dispose()
    {
        _bridge.Tell(PoisonPill.Instance);
        _channel.Writer.TryComplete();
    }

    private sealed class Bridge : ReceiveActor
    {
        public Bridge(ChannelWriter<object> writer)
        {
            Receive<ConsoleOutput>(o => writer.TryWrite(o));
            Receive<CommandRejected>(r =>
            {
                writer.TryWrite(r);
                writer.TryComplete();
            });
            Receive<ConsoleEnded>(e =>
            {
                writer.TryWrite(e);
                writer.TryComplete();
            });
        }
    }
}
