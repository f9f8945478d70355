// Bridges a VM's console from the actor world to async code (the HTTP API, the CLI): a
// short-lived actor attaches to the console, writes what it receives into a channel, and
// passes typed input on to the guest that accepted it.
using System.Threading.Channels;
using Akka.Actor;
using Tern.Cluster.Protocol;

namespace Tern.Cluster.Actors;

/// <summary>A live subscription to a VM's console output, which can also type to the guest.</summary>
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
    /// What arrives: <see cref="ConsoleAttached"/>, then <see cref="ConsoleOutput"/> chunks (the
    /// backlog first) and a final <see cref="ConsoleEnded"/> when the guest ends; or one
    /// <see cref="CommandRejected"/> when the VM is unknown or not running. The channel completes
    /// after either last message.
    /// </summary>
    public ChannelReader<object> Reader => _channel.Reader;

    /// <summary>Attaches to the console of <paramref name="vmId"/> through the VM controllers.</summary>
    public static ConsoleSubscription Open(ActorSystem system, IActorRef vmRegion, string vmId) => new(system, vmRegion, vmId);

    /// <summary>
    /// Types <paramref name="bytes"/> on the console (split into messages of at most
    /// <see cref="ConsoleInput.MaxBytes"/>). Input sent before the guest accepted the subscription waits for it.
    /// </summary>
    public void Send(ReadOnlySpan<byte> bytes)
    {
        for (int at = 0; at < bytes.Length; at += ConsoleInput.MaxBytes)
            _bridge.Tell(new Typed(bytes.Slice(at, Math.Min(ConsoleInput.MaxBytes, bytes.Length - at)).ToArray()));
    }

    /// <summary>Detaches (the VM actor forgets the subscriber when the bridge stops).</summary>
    public void Dispose()
    {
        _bridge.Tell(PoisonPill.Instance);
        _channel.Writer.TryComplete();
    }

    private sealed record Typed(byte[] Data) : INoSerializationVerificationNeeded;

    private sealed class Bridge : ReceiveActor
    {
        private readonly List<byte[]> _early = [];
        private IActorRef? _guest;
        private ConsoleAttached? _attached;

        public Bridge(ChannelWriter<object> writer)
        {
            Receive<ConsoleAttached>(a =>
            {
                _guest = Sender;
                _attached = a;
                foreach (var data in _early)
                    _guest.Tell(new ConsoleInput(a.VmId, a.Generation, data));
                _early.Clear();
                writer.TryWrite(a);
            });
            Receive<Typed>(t =>
            {
                if (_guest is null || _attached is null)
                    _early.Add(t.Data);
                else
                    _guest.Tell(new ConsoleInput(_attached.VmId, _attached.Generation, t.Data));
            });
            Receive<ConsoleOutput>(o =>
            {
                // Output comes from the guest that runs now (after a live migration, the new host's).
                if (_attached is not null && !Sender.IsNobody())
                {
                    _guest = Sender;
                    _attached = _attached with { Generation = o.Generation };
                }
                writer.TryWrite(o);
            });
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
