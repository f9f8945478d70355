// Every kind of volume as a cluster guest disk: a thin volume (served through its pool's data
// and mapping LVs) and an LV with snapshots (written through its snapshot store), on three
// in-process nodes with real PV files and extent servers on loopback. Each disk is written and
// flushed, its node is lost or its VM's next generation opens it on another node, and then every
// acknowledged write is read back there, the old generation's writes are refused, the pool's
// mappings written by the guests are what the coordinator reads once the guests let go, and a
// snapshot still holds what its origin held when it was taken.
using Akka.Actor;
using Akka.Hosting;
using Tern.Cluster.Protocol;
using Tern.Cluster.Storage;
using Tern.Storage;

namespace Tern.Cluster.Tests.Storage;

public sealed class ClusterVolumeDiskTests : IAsyncLifetime
{
    private const long Mib = 1 << 20;
    private readonly string _dir = Directory.CreateTempSubdirectory("tern-cvolume-").FullName;
    private TestCluster? _cluster;

    private TestCluster Cluster => _cluster!;

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        if (_cluster is not null)
            await _cluster.DisposeAsync();
        Directory.Delete(_dir, recursive: true);
    }

    private async Task StartAsync()
    {
        _cluster = await TestCluster.StartAsync(_dir, 3, configure: o => o with
        {
            StorageVerbs = TestVerbs.RunAsync,
            StorageCoordinator = new StorageCoordinatorOptions
            {
                DiscoveryInterval = TimeSpan.FromMilliseconds(300),
                RemoteIo = new Tern.Storage.Remote.RemoteIoOptions { RequestTimeout = TimeSpan.FromSeconds(2), ConnectTimeout = TimeSpan.FromSeconds(1) },
            },
        });
    }

    private IActorRef Coordinator(int node) => ActorRegistry.For(Cluster.Systems[node]).Get<StorageCoordinatorProxy>();

    private StorageAgent Agent(int node) => StorageAgent.For(Cluster.Systems[node]) ?? throw new InvalidOperationException("no storage agent");

    private async Task<StorageVerbResult> VerbAsync(params string[] args) =>
        await Coordinator(0).Ask<StorageVerbResult>(new RunStorageVerb(args, null), TimeSpan.FromSeconds(30));

    private async Task<string> OkAsync(params string[] args)
    {
        var r = await VerbAsync(args);
        Assert.True(r.ExitCode == 0, $"{string.Join(' ', args)} exited {r.ExitCode}: {r.Stderr}");
        return r.Stdout;
    }

    // A verb run once the coordinator has heard that a guest closed its disk (the close is a
    // message of its own, which may arrive after the verb): retried while refused, for 10 s at most.
    private async Task<string> OkOnceReleasedAsync(params string[] args)
    {
        var until = DateTime.UtcNow.AddSeconds(10);
        while (true)
        {
            var r = await VerbAsync(args);
            if (r.ExitCode == 2 && r.Stderr.Contains("in use by VM", StringComparison.Ordinal) && DateTime.UtcNow < until)
            {
                await Task.Delay(100);
                continue;
            }
            Assert.True(r.ExitCode == 0, $"{string.Join(' ', args)} exited {r.ExitCode}: {r.Stderr}");
            return r.Stdout;
        }
    }

    private async Task RefusedAsync(string expected, params string[] args)
    {
        var r = await VerbAsync(args);
        Assert.True(r.ExitCode == 2, $"{string.Join(' ', args)} was not refused: exit {r.ExitCode}, {r.Stdout}{r.Stderr}");
        Assert.Contains(expected, r.Stderr, StringComparison.Ordinal);
    }

    private static byte[] Pattern(int length, int seed)
    {
        var b = new byte[length];
        new Random(seed).NextBytes(b);
        return b;
    }

    // Writes each (offset, seed) record and flushes: a write is acknowledged once the flush returned.
    private static void WriteAcknowledged(GuestDisk disk, Dictionary<long, byte[]> acked, IEnumerable<(long Offset, int Seed)> records, int length = 64 << 10)
    {
        foreach (var (offset, seed) in records)
        {
            var data = Pattern(length, seed);
            Assert.True(disk.Write(offset, data), disk.LastError);
            Assert.True(disk.Flush(), disk.LastError);
            acked[offset] = data;
        }
    }

    private static void AssertIntact(GuestDisk disk, Dictionary<long, byte[]> expected)
    {
        foreach (var (offset, data) in expected)
        {
            var seen = new byte[data.Length];
            Assert.True(disk.Read(offset, seen), disk.LastError);
            Assert.True(data.AsSpan().SequenceEqual(seen), $"{disk.Lv} at {offset} does not hold what was acknowledged there");
        }
    }

    [Fact]
    public async Task A_thin_volume_is_a_guest_disk_its_pool_fenced_and_held_and_its_mappings_survive_the_next_generation_elsewhere()
    {
        await StartAsync();
        for (int i = 1; i <= 3; i++)
            await OkAsync("pv", "create", $"pv{i}.img", "--size", $"{64 * Mib}", "--host", $"node-{i}");
        await OkAsync("vg", "create", "vg0", "pv1.img", "pv2.img", "pv3.img");
        await OkAsync("lv", "create", "vg0/tp", "--type", "thin-pool", "--size", $"{16 * Mib}");
        await OkAsync("lv", "create", "vg0/t1", "--thin-pool", "tp", "--size", $"{32 * Mib}");
        await OkAsync("lv", "create", "vg0/t2", "--thin-pool", "tp", "--size", $"{8 * Mib}");

        // Generation 1 of vm1 on node-3 writes its thin volume (chunks allocated and journalled there).
        var acked = new Dictionary<long, byte[]>();
        var disk = await Agent(2).OpenGuestDiskAsync("lv:vg0/t1", "vm1", 1);
        Assert.Equal(32 * Mib, disk.Length);
        WriteAcknowledged(disk, acked, [(0, 1), (5 * Mib, 2), (20 * Mib, 3), (31 * Mib, 4)]);

        // While vm1 holds the pool, nothing else writes its mappings: another VM's volume of the
        // same pool, and verbs on the pool, are refused with one line; listing still works.
        var other = await Assert.ThrowsAsync<StorageException>(() => Agent(1).OpenGuestDiskAsync("vg0/t2", "vm2", 7));
        Assert.Contains("volumes of one pool are the disks of one VM", other.Message, StringComparison.Ordinal);
        await RefusedAsync("in use by VM vm1", "lv", "create", "vg0/t3", "--thin-pool", "tp", "--size", $"{8 * Mib}");
        await RefusedAsync("in use by VM vm1", "lv", "snapshot", "vg0/t2", "--name", "s2");
        await RefusedAsync("in use by VM vm1", "lv", "remove", "vg0/t2");
        Assert.Contains("vg0/t1 33554432 thin tp chunks=-", await OkAsync("lv", "list"), StringComparison.Ordinal);

        // A completed write not flushed yet, to a chunk not mapped yet: the mapping is committed
        // with it, so the next generation sees it even while this one still holds the volume (a
        // live migration's target opens it before the source lets go).
        var completed = Pattern(64 << 10, 20);
        Assert.True(disk.Write(7 * Mib, completed), disk.LastError);
        acked[7 * Mib] = completed;

        // vm1's next generation opens the volume on node-2: everything acknowledged is there, and
        // generation 1 (cut off, not closed) can write neither the data nor the mappings any more.
        var twin = await Agent(1).OpenGuestDiskAsync("vg0/t1", "vm1", 2);
        AssertIntact(twin, acked);
        Assert.False(disk.Write(5 * Mib, Pattern(4096, 99)));
        Assert.Contains("refused", disk.LastError, StringComparison.Ordinal);
        Assert.False(disk.Write(12 * Mib, Pattern(64 << 10, 98)), "a stale generation mapped a new chunk");
        AssertIntact(twin, acked);
        WriteAcknowledged(twin, acked, [(5 * Mib, 5), (9 * Mib, 6)]);
        await twin.DisposeAsync();
        await disk.DisposeAsync();

        // Released, the pool is the coordinator's to change again: it reads the mappings the
        // guests journalled, so a new volume's chunks do not land on t1's.
        await OkOnceReleasedAsync("lv", "create", "vg0/t3", "--thin-pool", "tp", "--size", $"{8 * Mib}");
        Assert.Matches(@"vg0/t1 \d+ thin tp chunks=[1-9]", await OkAsync("lv", "list"));
        var third = await Agent(0).OpenGuestDiskAsync("vg0/t1", "vm1", 3);
        var t3 = await Agent(0).OpenGuestDiskAsync("vg0/t3", "vm1", 3);
        var fill = new Dictionary<long, byte[]>();
        WriteAcknowledged(t3, fill, [(0, 10), (1 * Mib, 11), (2 * Mib, 12), (7 * Mib, 13)]);
        AssertIntact(third, acked);
        AssertIntact(t3, fill);
        await t3.DisposeAsync();
        await third.DisposeAsync();
    }

    [Fact]
    public async Task An_lv_with_snapshots_is_a_guest_disk_that_survives_the_loss_of_its_host_and_leaves_its_snapshot_unchanged()
    {
        await StartAsync();
        // The PVs are on node-1 and node-2; the guest runs on node-3, whose loss costs no copy.
        for (int i = 1; i <= 2; i++)
            await OkAsync("pv", "create", $"pv{i}.img", "--size", $"{64 * Mib}", "--host", $"node-{i}");
        await OkAsync("vg", "create", "vg0", "pv1.img", "pv2.img");
        await OkAsync("lv", "create", "vg0/d1", "--size", $"{8 * Mib}", "--type", "mirror", "--mirrors", "2");

        var before = new Dictionary<long, byte[]>();
        var first = await Agent(2).OpenGuestDiskAsync("vg0/d1", "vm1", 1);
        WriteAcknowledged(first, before, [(0, 1), (1 * Mib, 2), (4 * Mib, 3), (8 * Mib - (64 << 10), 4)]);
        var untouched = new byte[4096]; // what the LV holds where only generation 3 writes, later
        Assert.True(first.Read(2 * Mib, untouched), first.LastError);
        before[2 * Mib] = untouched;
        await first.DisposeAsync();
        await OkOnceReleasedAsync("lv", "snapshot", "vg0/d1", "--name", "s1");

        // Generation 2 on node-3 writes the origin through its snapshot store: shared blocks are
        // remapped into the store, whose data and mappings it writes as generation 2.
        var acked = new Dictionary<long, byte[]>();
        var disk = await Agent(2).OpenGuestDiskAsync("vg0/d1", "vm1", 2);
        WriteAcknowledged(disk, acked, [(0, 5), (4 * Mib + 4096, 6), (6 * Mib, 7)], length: 32 << 10);
        await RefusedAsync("in use by VM vm1", "lv", "remove", "vg0/s1");
        await RefusedAsync("in use by VM vm1", "lv", "snapshot", "vg0/d1", "--name", "s2");
        var expected = Overlay(before, acked);

        // node-3 is lost; generation 3 opens the disk on node-2 and finds every acknowledged write.
        await Cluster.StopNodeAsync(2);
        var next = await Agent(1).OpenGuestDiskAsync("vg0/d1", "vm1", 3);
        AssertIntact(next, expected);
        // The old incarnation (its extent connections still open) is refused, data and mappings alike.
        Assert.False(disk.Write(0, Pattern(4096, 97)));
        Assert.Contains("refused", disk.LastError, StringComparison.Ordinal);
        Assert.False(disk.Write(2 * Mib, Pattern(4096, 96)), "a stale generation remapped a shared block");
        AssertIntact(next, expected);
        var more = new Dictionary<long, byte[]>();
        WriteAcknowledged(next, more, [(2 * Mib, 8)], length: 4096);
        await next.DisposeAsync();
        await disk.DisposeAsync();

        // The snapshot, opened as a disk of its own, still holds exactly what d1 held when it was taken.
        var snap = await Agent(0).OpenGuestDiskAsync("vg0/s1", "vm1", 4);
        AssertIntact(snap, before);
        await snap.DisposeAsync();

        // Removing the last snapshot dissolves the store on the coordinator, from the mappings the
        // guests journalled: the plain LV then holds the latest acknowledged data.
        await OkOnceReleasedAsync("lv", "remove", "vg0/s1");
        var plain = await Agent(0).OpenGuestDiskAsync("vg0/d1", "vm1", 5);
        AssertIntact(plain, Overlay(expected, more));
        await plain.DisposeAsync();
    }

    // The byte image of `older` with `newer`'s records written over it, as records of whole blocks.
    private static Dictionary<long, byte[]> Overlay(Dictionary<long, byte[]> older, Dictionary<long, byte[]> newer)
    {
        var image = new SortedDictionary<long, byte>();
        foreach (var layer in new[] { older, newer })
        {
            foreach (var (offset, data) in layer)
            {
                for (int i = 0; i < data.Length; i++)
                    image[offset + i] = data[i];
            }
        }
        // Back to records: runs of consecutive bytes.
        var result = new Dictionary<long, byte[]>();
        long start = -1, last = -2;
        var run = new List<byte>();
        foreach (var (at, b) in image)
        {
            if (at != last + 1)
            {
                if (run.Count > 0)
                    result[start] = [.. run];
                run.Clear();
                start = at;
            }
            run.Add(b);
            last = at;
        }
        if (run.Count > 0)
            result[start] = [.. run];
        return result;
    }
}
