// Test-only network partitions between node processes. A node started with fault injection
// runs its remoting through Akka's throttler transport adapter (applied-adapters = [trttl]);
// this class tells that adapter to blackhole every Akka message to and from named peers (both
// directions, on this node's side of each association) and to let them through again. Only Akka
// traffic is cut: the HTTP API and the extent servers' TCP connections keep working, which is
// exactly a partition of the cluster's control plane while an old incarnation can still write
// its disk, the case writer fencing exists for.
using System.Runtime.CompilerServices;
using Akka.Actor;
using Akka.Cluster;
using Akka.Remote;
using Akka.Remote.Transport;
using Tern.Cluster.Actors;

namespace Tern.Cluster.Hosting;

/// <summary>A peer a partition command named, resolved to its Akka address.</summary>
/// <param name="Name">The host name (or the address as given).</param>
/// <param name="Address">Its Akka address.</param>
public sealed record PartitionPeer(string Name, string Address);

/// <summary>A peer that cannot be resolved: the message is one line naming it.</summary>
public sealed class UnknownPeerException(string message) : Exception(message);

/// <summary>Cuts this node off from peers (a blackhole both ways) and heals it; only on nodes started with fault injection.</summary>
public sealed class NetworkFaults
{
    private static readonly ConditionalWeakTable<ActorSystem, NetworkFaults> Registered = [];

    private readonly ActorSystem _system;
    private readonly Dictionary<string, PartitionPeer> _cut = new(StringComparer.Ordinal); // by address

    private NetworkFaults(ActorSystem system) => _system = system;

    /// <summary>The fault injector of <paramref name="system"/>, or null when the node runs without fault injection.</summary>
    public static NetworkFaults? For(ActorSystem system)
    {
        ArgumentNullException.ThrowIfNull(system);
        return Registered.TryGetValue(system, out var faults) ? faults : null;
    }

    /// <summary>Enables fault injection on <paramref name="system"/> (whose remoting must run through the trttl adapter).</summary>
    public static NetworkFaults Register(ActorSystem system)
    {
        ArgumentNullException.ThrowIfNull(system);
        var faults = new NetworkFaults(system);
        Registered.AddOrUpdate(system, faults);
        return faults;
    }

    /// <summary>The peers this node is cut off from now.</summary>
    public IReadOnlyList<PartitionPeer> Blackholed
    {
        get
        {
            lock (_cut)
                return [.. _cut.Values.OrderBy(p => p.Name, StringComparer.Ordinal)];
        }
    }

    /// <summary>
    /// Blackholes (<paramref name="blackhole"/> true) or heals every Akka association between this
    /// node and <paramref name="peers"/>: host names of members (or of peers blackholed before,
    /// which the cluster may since have removed), or Akka addresses (akka.tcp://SYSTEM@HOST:PORT,
    /// either scheme, or HOST:PORT). All names are resolved before anything changes.
    /// </summary>
    /// <exception cref="UnknownPeerException">a name is neither a known host nor an address, or names this node.</exception>
    public async Task<IReadOnlyList<PartitionPeer>> ApplyAsync(IReadOnlyList<string> peers, bool blackhole, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(peers);
        if (peers.Count == 0)
            throw new UnknownPeerException("no peers named");
        var resolved = peers.Select(Resolve).DistinctBy(p => p.Address).ToList();
        var transport = ((IRemoteActorRefProvider)((ExtendedActorSystem)_system).Provider).Transport;
        ThrottleMode mode = blackhole ? Blackhole.Instance : Unthrottled.Instance;
        foreach (var peer in resolved)
        {
            var address = Address.Parse(peer.Address);
            bool ok = await transport.ManagementCommand(new SetThrottle(address, ThrottleTransportAdapter.Direction.Both, mode), ct).ConfigureAwait(false);
            // Connections are left alone (the adapter does not tell the endpoints of a connection it
            // drops, they would wait for the transport's heartbeat timeout): a cut shorter than that
            // timeout resumes on the same connections once healed.
            if (!ok)
                throw new InvalidOperationException($"the remoting transport did not take the throttle for {peer.Name} ({peer.Address}); is the trttl adapter applied?");
            lock (_cut)
            {
                if (blackhole)
                    _cut[peer.Address] = peer;
                else
                    _cut.Remove(peer.Address);
            }
        }
        return resolved;
    }

    private PartitionPeer Resolve(string name)
    {
        var cluster = Akka.Cluster.Cluster.Get(_system);
        var self = cluster.SelfAddress;
        string text = name.Trim();
        Address? address = null;
        if (text.Contains("://", StringComparison.Ordinal))
        {
            try
            {
                address = Address.Parse(text);
            }
            catch (Exception e) when (e is FormatException or ArgumentException)
            {
                throw new UnknownPeerException($"'{name}' is not an Akka address");
            }
        }
        else if (text.LastIndexOf(':') is int colon and > 0 && int.TryParse(text[(colon + 1)..], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int port) && port is > 0 and < 65536)
        {
            address = new Address(self.Protocol, self.System, text[..colon], port);
        }
        if (address is not null)
        {
            address = new Address(self.Protocol, self.System, address.Host, address.Port);
            if (address.Equals(self))
                throw new UnknownPeerException($"'{name}' is this node");
            string known = cluster.State.Members.Where(m => m.Address.Equals(address)).Select(EventLog.HostName).FirstOrDefault() ?? text;
            return new PartitionPeer(known, address.ToString());
        }
        if (cluster.State.Members.FirstOrDefault(m => EventLog.HostName(m) == text) is { } member)
        {
            return member.Address.Equals(self)
                ? throw new UnknownPeerException($"'{name}' is this node")
                : new PartitionPeer(text, member.Address.ToString());
        }
        lock (_cut)
        {
            if (_cut.Values.FirstOrDefault(p => p.Name == text) is { } earlier)
                return earlier;
        }
        var names = cluster.State.Members.Where(m => !m.Address.Equals(self)).Select(EventLog.HostName).Order(StringComparer.Ordinal);
        throw new UnknownPeerException($"no host named '{name}' in the cluster (peers: {string.Join(", ", names)})");
    }
}
