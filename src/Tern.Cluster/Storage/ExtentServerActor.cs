// The face of a node's storage towards the cluster, at /user/extent-server: tells the
// coordinator where the node's extent server listens and which PVs it serves, creates and
// forgets PV files of this node on the coordinator's behalf, and raises LV write fences.
// The bytes themselves never pass through actors: they go over the extent server's TCP link.
using Akka.Actor;
using Tern.Cluster.Protocol;
using Tern.Storage;

namespace Tern.Cluster.Storage;

/// <summary>The extent server actor of one node.</summary>
public sealed class ExtentServerActor : ReceiveActor
{
    /// <summary>Its name under /user.</summary>
    public const string Name = "extent-server";

    /// <summary>Creates the actor over the node's (started) storage; <paramref name="address"/> is the node's Akka address.</summary>
    public ExtentServerActor(NodeStorage storage, string address)
    {
        Receive<GetExtentServer>(_ => Sender.Tell(Info(storage, address)));
        // Handlers capture Sender before they await: the actor's context is not theirs after it.
        ReceiveAsync<CreatePhysicalVolume>(async c =>
        {
            var sender = Sender;
            try
            {
                var pv = await storage.CreatePvAsync(c.Path, c.Size).ConfigureAwait(false);
                sender.Tell(new PhysicalVolumeCreated(new PvInfo(pv.Id, storage.Host, pv.Path, pv.Size)));
            }
            catch (Exception e) when (e is StorageException or IOException or UnauthorizedAccessException)
            {
                sender.Tell(new StorageRefused($"{storage.Host}: {e.Message}"));
            }
        });
        ReceiveAsync<ForgetPhysicalVolume>(async f =>
        {
            var sender = Sender;
            await storage.ForgetPvAsync(f.PvId).ConfigureAwait(false);
            sender.Tell(new PhysicalVolumeForgotten(f.PvId));
        });
        ReceiveAsync<FenceLv>(async f =>
        {
            // Raising waits for writes admitted under the old fence: off the actor's thread.
            var sender = Sender;
            await Task.Run(() => storage.Fences.Raise(f.LvId, f.Generation)).ConfigureAwait(false);
            sender.Tell(new LvFenced(f.LvId, storage.Fences.Get(f.LvId), storage.Host));
        });
    }

    /// <summary>What the node serves, as the coordinator needs it.</summary>
    public static ExtentServerInfo Info(NodeStorage storage, string address)
    {
        ArgumentNullException.ThrowIfNull(storage);
        var ep = storage.Server.Endpoint;
        return new ExtentServerInfo(storage.Host, address, $"{storage.Advertised}:{ep.Port}", storage.Server.Token,
            [.. storage.Pvs.Select(p => new PvInfo(p.Id, storage.Host, p.Path, p.Size))]);
    }

    /// <summary>Props for the actor.</summary>
    public static Props Props(NodeStorage storage, string address) => Akka.Actor.Props.Create(() => new ExtentServerActor(storage, address));

    /// <summary>The extent server actor of the node with Akka address <paramref name="address"/>.</summary>
    public static string PathOf(string address) => $"{address}/user/{Name}";
}
