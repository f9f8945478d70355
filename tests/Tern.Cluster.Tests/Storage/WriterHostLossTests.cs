// When the storage coordinator grants an LV to a new generation of a VM because the previous
// generation's host was lost, the legs that lost host could still write (its own) are distrusted
// before the grant: marked wholly stale, so the next resync copies them entirely from the leg
// that is trusted. A generation change while the old host is alive (a restart elsewhere, a
// migration) marks nothing. Three in-process nodes with real PV files and extent servers.
using Akka.Actor;
using Akka.Hosting;
using Tern.Cluster.Protocol;
using Tern.Cluster.Storage;
using Tern.Storage;
using Tern.Storage.Format;

namespace Tern.Cluster.Tests.Storage;

public sealed class WriterHostLossTests : IAsyncLifetime
{
    private const long Mib = 1 << 20;
    private readonly string _dir = Directory.CreateTempSubdirectory("tern-hostloss-").FullName;
    private TestCluster? _cluster;

    private TestCluster Cluster => _cluster!;

    public async Task InitializeAsync() =>
        _cluster = await TestCluster.StartAsync(_dir, 3, configure: o => o with
        {
            StorageVerbs = TestVerbs.RunAsync,
            StorageCoordinator = new StorageCoordinatorOptions
            {
                DiscoveryInterval = TimeSpan.FromMilliseconds(300),
                RemoteIo = new Tern.Storage.Remote.RemoteIoOptions { RequestTimeout = TimeSpan.FromSeconds(2), ConnectTimeout = TimeSpan.FromSeconds(1) },
            },
        });

    public async Task DisposeAsync()
    {
        if (_cluster is not null)
            await _cluster.DisposeAsync();
        Directory.Delete(_dir, recursive: true);
    }

    private StorageAgent Agent(int node) => StorageAgent.For(Cluster.Systems[node]) ?? throw new InvalidOperationException("no storage agent");

    private async Task OkAsync(params string[] args)
    {
        var r = await ActorRegistry.For(Cluster.Systems[0]).Get<StorageCoordinatorProxy>().Ask<StorageVerbResult>(new RunStorageVerb(args, null), TimeSpan.FromSeconds(30));
        Assert.True(r.ExitCode == 0, $"{string.Join(' ', args)} exited {r.ExitCode}: {r.Stderr}");
    }

    // The newest metadata on node-2's PV file, read without opening the PV.
    private async Task<VgMetadata> OnNode2Async()
    {
        string file = Path.Combine(_dir, "node-2", "pv2.img");
        using var io = FilePhysicalVolumeIo.Open(file);
        var block = new byte[PhysicalVolume.BlockSize];
        await io.ReadAsync(0, block);
        var copies = await PhysicalVolume.ReadMetadataCopiesAsync(io, PvLabel.Decode(block, file));
        return copies[^1].Document.Vg ?? throw new InvalidOperationException("no VG on pv2");
    }

    // host -> whether d1's leg there is stale, for the one mirror segment.
    private static Dictionary<string, bool> Legs(VgMetadata md)
    {
        var seg = Assert.Single(md.FindLv("d1")!.Segments);
        return seg.Areas.ToDictionary(a => md.Pvs.First(p => p.Id == a.Pv).Host, a => a.Stale);
    }

    private static byte[] Pattern(int length, int seed)
    {
        var b = new byte[length];
        new Random(seed).NextBytes(b);
        return b;
    }

    [Fact]
    public async Task A_grant_after_the_writers_host_was_lost_distrusts_the_legs_on_that_host_and_one_while_it_lives_does_not()
    {
        // A mirror with one leg on node-2 and one on node-3; node-1 (the coordinator's) holds none.
        await OkAsync("pv", "create", "pv2.img", "--size", $"{64 * Mib}", "--host", "node-2");
        await OkAsync("pv", "create", "pv3.img", "--size", $"{64 * Mib}", "--host", "node-3");
        await OkAsync("vg", "create", "vg0", "pv2.img", "pv3.img");
        await OkAsync("lv", "create", "vg0/d1", "--size", $"{8 * Mib}", "--type", "mirror", "--mirrors", "2");

        // Generation 1 on node-1, then generation 2 on node-3 while node-1 is alive: nothing is distrusted.
        var first = await Agent(0).OpenGuestDiskAsync("vg0/d1", "vm1", 1);
        Assert.True(first.Write(0, Pattern(8192, 1)), first.LastError);
        Assert.True(first.Flush(), first.LastError);
        var second = await Agent(2).OpenGuestDiskAsync("vg0/d1", "vm1", 2);
        await first.DisposeAsync();
        Assert.Equal(new Dictionary<string, bool> { ["node-2"] = false, ["node-3"] = false }, Legs(await OnNode2Async()));
        var data = Pattern(64 << 10, 2);
        Assert.True(second.Write(4096, data), second.LastError);
        Assert.True(second.Flush(), second.LastError);

        // node-3, generation 2's host and a leg's, leaves; generation 3 opens on node-2. The leg on
        // node-3 is now distrusted (wholly stale) in the committed metadata and in the view the
        // new generation got, and the new generation reads what generation 2 acknowledged.
        await Cluster.StopNodeAsync(2);
        await using var third = await Agent(1).OpenGuestDiskAsync("vg0/d1", "vm1", 3);
        Assert.Equal(new Dictionary<string, bool> { ["node-2"] = false, ["node-3"] = true }, Legs(await OnNode2Async()));
        Assert.True(Legs(third.View.Metadata)["node-3"], "the new generation's view still trusts the lost host's leg");
        var back = new byte[data.Length];
        Assert.True(third.Read(4096, back), third.LastError);
        Assert.Equal(data, back);
        await second.DisposeAsync(); // its node is gone: only its files and sockets are released
    }
}
