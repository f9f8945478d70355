// The extent pool across three in-process nodes, each with real PV files in its own data dir
// and its own extent server on loopback: PVs created on named hosts, one VG across them, a
// mirror with legs on distinct hosts, a guest disk opened by the agent of a node that is not the
// coordinator's, metadata adopted by that disk, stale generations refused and fenced, and the
// coordinator moving when its node leaves or dies in the middle of a commit.
using Akka.Actor;
using Akka.Hosting;
using Tern.Cluster.Protocol;
using Tern.Cluster.Storage;
using Tern.Storage;
using Tern.Storage.Faults;
using Tern.Storage.Format;

namespace Tern.Cluster.Tests.Storage;

public sealed class ClusterStorageTests : IAsyncLifetime
{
    private const long Mib = 1 << 20;
    private readonly string _dir = Directory.CreateTempSubdirectory("tern-cstorage-").FullName;
    private readonly List<FaultInjectingIo> _faulty = [];
    private TestCluster? _cluster;

    private TestCluster Cluster => _cluster!;

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        foreach (var f in _faulty)
            f.Plan = new FaultPlan();
        if (_cluster is not null)
            await _cluster.DisposeAsync();
        Directory.Delete(_dir, recursive: true);
    }

    private async Task StartAsync(Func<IPhysicalVolumeIo, IPhysicalVolumeIo>? wrap = null)
    {
        _cluster = await TestCluster.StartAsync(_dir, 3, configure: o => o with
        {
            StorageVerbs = TestVerbs.RunAsync,
            StorageCoordinator = new StorageCoordinatorOptions
            {
                DiscoveryInterval = TimeSpan.FromMilliseconds(300),
                RemoteIo = new Tern.Storage.Remote.RemoteIoOptions { RequestTimeout = TimeSpan.FromSeconds(2), ConnectTimeout = TimeSpan.FromSeconds(1) },
                WrapPvIo = wrap,
            },
        });
    }

    private IActorRef Coordinator(int node) => ActorRegistry.For(Cluster.Systems[node]).Get<StorageCoordinatorProxy>();

    private StorageAgent Agent(int node) => StorageAgent.For(Cluster.Systems[node]) ?? throw new InvalidOperationException("no storage agent");

    private async Task<StorageVerbResult> VerbAsync(int node, params string[] args) =>
        await Coordinator(node).Ask<StorageVerbResult>(new RunStorageVerb(args, null), TimeSpan.FromSeconds(30));

    private async Task<string> OkAsync(int node, params string[] args)
    {
        var r = await VerbAsync(node, args);
        Assert.True(r.ExitCode == 0, $"{string.Join(' ', args)} exited {r.ExitCode}: {r.Stderr}");
        return r.Stdout;
    }

    // Three PVs, one per node, pooled into vg0; a mirror d1 with a leg on each of the given copies.
    private async Task PoolAsync(int mirrors, long lvBytes = 8 * Mib)
    {
        for (int i = 1; i <= 3; i++)
            await OkAsync(0, "pv", "create", $"pv{i}.img", "--size", $"{64 * Mib}", "--host", $"node-{i}");
        await OkAsync(0, "vg", "create", "vg0", "pv1.img", "pv2.img", "pv3.img");
        await OkAsync(0, "lv", "create", "vg0/d1", "--size", $"{lvBytes}", "--type", "mirror", "--mirrors", $"{mirrors}");
    }

    private string PvFile(int node) => Path.Combine(_dir, $"node-{node}", $"pv{node}.img");

    // The newest metadata on a PV file, read without opening the PV (nothing is written).
    private static async Task<VgMetadata?> OnDiskAsync(string file)
    {
        using var io = FilePhysicalVolumeIo.Open(file);
        var block = new byte[PhysicalVolume.BlockSize];
        await io.ReadAsync(0, block);
        var copies = await PhysicalVolume.ReadMetadataCopiesAsync(io, PvLabel.Decode(block, file));
        return copies.Count == 0 ? null : copies[^1].Document.Vg;
    }

    private static async Task UntilAsync(Func<Task<bool>> condition, string what, int seconds = 20)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"{what} did not happen in {seconds} s");
            await Task.Delay(100);
        }
    }

    private static byte[] Pattern(int length, int seed)
    {
        var b = new byte[length];
        new Random(seed).NextBytes(b);
        return b;
    }

    [Fact]
    public async Task A_vg_spans_three_hosts_and_a_guest_disk_on_another_node_writes_adopts_growth_and_fences_stale_generations()
    {
        await StartAsync();
        await PoolAsync(mirrors: 2);

        // PVs live in each node's own data dir, labelled with that node; the mirror's legs are on distinct hosts.
        for (int i = 1; i <= 3; i++)
            Assert.True(File.Exists(PvFile(i)), $"pv{i}.img is not in node-{i}'s data dir");
        var md = (await OnDiskAsync(PvFile(1)))!;
        Assert.Equal(["node-1", "node-2", "node-3"], md.Pvs.Select(p => p.Host).Order());
        var legs = md.FindLv("d1")!.Segments.SelectMany(s => s.Areas).Select(a => md.Pvs.First(p => p.Id == a.Pv).Host).ToList();
        Assert.Equal(2, legs.Distinct().Count());
        Assert.Equal(md.Seqno, (await OnDiskAsync(PvFile(2)))!.Seqno);
        Assert.Equal(md.Seqno, (await OnDiskAsync(PvFile(3)))!.Seqno);

        // node-3 (not the coordinator's node) opens the LV for generation 1 of vm1 and writes.
        var disk = await Agent(2).OpenGuestDiskAsync("lv:vg0/d1", "vm1", 1);
        var data = Pattern(64 << 10, 1);
        Assert.True(disk.Write(4096, data), disk.LastError);
        Assert.True(disk.Flush(), disk.LastError);
        Assert.Equal(8 * Mib, disk.Length);

        // The coordinator grows the LV; the disk's view adopts the version it publishes and the new space works.
        await OkAsync(0, "lv", "extend", "vg0/d1", "--size", $"{16 * Mib}");
        await UntilAsync(() => Task.FromResult(disk.Length == 16 * Mib), "the disk adopting the grown LV");
        var tail = Pattern(8192, 2);
        Assert.True(disk.Write((12 * Mib) + 8192, tail), disk.LastError);
        Assert.True(disk.Flush(), disk.LastError);
        var back = new byte[8192];
        Assert.True(disk.Read((12 * Mib) + 8192, back), disk.LastError);
        Assert.Equal(tail, back);

        // An older generation, or another VM, cannot have it.
        var stale = await Assert.ThrowsAsync<StorageException>(() => Agent(1).OpenGuestDiskAsync("vg0/d1", "vm1", 0));
        Assert.Contains("stale", stale.Message, StringComparison.Ordinal);
        var other = await Assert.ThrowsAsync<StorageException>(() => Agent(1).OpenGuestDiskAsync("vg0/d1", "vm2", 5));
        Assert.Contains("in use by VM vm1", other.Message, StringComparison.Ordinal);

        // While vm1 holds it, verbs that would move its blocks are refused with one line; extend was allowed above.
        var refused = await VerbAsync(0, "lv", "remove", "vg0/d1");
        Assert.Equal(2, refused.ExitCode);
        Assert.Contains("in use by VM vm1", refused.Stderr, StringComparison.Ordinal);

        // vm1 restarts on node-2 as generation 2: generation 1's writes are refused everywhere from then on.
        await using var twin = await Agent(1).OpenGuestDiskAsync("vg0/d1", "vm1", 2);
        Assert.False(disk.Write(4096, Pattern(4096, 3)));
        Assert.Contains("refused", disk.LastError, StringComparison.Ordinal);
        var seen = new byte[data.Length];
        Assert.True(twin.Read(4096, seen), twin.LastError);
        Assert.Equal(data, seen);
        Assert.True(Cluster.Systems.Select(StorageAgent.For).Sum(a => a!.Node.RefusedStaleWrites) > 0);
        await disk.DisposeAsync();
    }

    [Fact]
    public async Task Write_intent_of_a_guest_disk_is_committed_through_the_coordinator_and_survives_its_move()
    {
        await StartAsync();
        await PoolAsync(mirrors: 3);
        var disk = await Agent(2).OpenGuestDiskAsync("vg0/d1", "vm1", 1);
        Assert.True(disk.Write(0, Pattern(8192, 4)), disk.LastError);
        Assert.True(disk.Flush(), disk.LastError);
        long before = (await OnDiskAsync(PvFile(2)))!.Seqno;

        // The coordinator's node (node-1, the oldest) leaves: the singleton moves to node-2, and
        // node-1's PV, which holds one leg, goes with it.
        await Cluster.StopNodeAsync(0);
        var list = await OkAsync(1, "lv", "list");
        Assert.Contains("vg0/d1", list, StringComparison.Ordinal);

        // The disk keeps working on its two remaining legs; the leg it cannot write is recorded
        // out of date by a commit of the new coordinator, on both remaining PVs.
        Assert.True(disk.Write(VgMetadata.RegionSize + 4096, Pattern(4096, 5)), disk.LastError);
        Assert.True(disk.Flush(), disk.LastError);
        var after = (await OnDiskAsync(PvFile(2)))!;
        Assert.True(after.Seqno > before);
        var node1Pv = after.Pvs.First(p => p.Host == "node-1").Id;
        var leg = after.FindLv("d1")!.Segments[0].Areas.First(a => a.Pv == node1Pv);
        Assert.Contains(1L, leg.DirtyRegions ?? []);
        Assert.Equal(after.Seqno, (await OnDiskAsync(PvFile(3)))!.Seqno);
        Assert.True(disk.View.Metadata.Seqno >= after.Seqno, "the disk's view did not take the version it committed");
        await disk.DisposeAsync();
    }

    [Fact]
    public async Task A_coordinator_killed_in_the_middle_of_a_commit_leaves_one_version_on_every_pv_after_the_move()
    {
        await StartAsync(io =>
        {
            // The coordinator's connection to node-3's PV: its metadata writes can be made to hang.
            if (!io.Name.StartsWith("node-3:", StringComparison.Ordinal))
                return io;
            var faulty = new FaultInjectingIo(io);
            lock (_faulty)
                _faulty.Add(faulty);
            return faulty;
        });
        await PoolAsync(mirrors: 2);
        long before = (await OnDiskAsync(PvFile(2)))!.Seqno;
        var label3 = await LabelAsync(PvFile(3));
        lock (_faulty)
        {
            // Every connection the coordinator opened to pv3 (discovery may have raced a verb's open).
            Assert.NotEmpty(_faulty);
            foreach (var pv3 in _faulty)
                pv3.Plan = new FaultPlan { Kinds = FaultKind.Slow, Delay = TimeSpan.FromMinutes(10), RangeStart = label3.MetadataOffset, RangeEnd = label3.ChecksumOffset };
        }

        // lv create commits to pv1, pv2, then hangs on pv3; the coordinator's node dies there.
        Coordinator(0).Tell(new RunStorageVerb(["lv", "create", "vg0/d2", "--size", $"{4 * Mib}"], null));
        await UntilAsync(async () => (await OnDiskAsync(PvFile(2)))!.Seqno == before + 1, "the commit reaching pv2");
        Assert.Equal(before, (await OnDiskAsync(PvFile(3)))!.Seqno);
        await Cluster.StopNodeAsync(0);

        // The new coordinator reopens vg0 from the PVs it reaches: the newest complete version wins and
        // the PV that missed it is rewritten, so both hold the new version, never a mix.
        var list = await OkAsync(1, "lv", "list");
        Assert.Contains("vg0/d2", list, StringComparison.Ordinal);
        var on2 = (await OnDiskAsync(PvFile(2)))!;
        var on3 = (await OnDiskAsync(PvFile(3)))!;
        Assert.Equal(on2.Seqno, on3.Seqno);
        Assert.Equal(VgMetadataJson.Serialize(on2), VgMetadataJson.Serialize(on3));
        Assert.NotNull(on3.FindLv("d2"));
    }

    // The caller's bounds in these tests: short, so a broken protocol fails the test quickly.
    private static readonly StorageVerbClientOptions Bounds = new() { AcceptWithin = TimeSpan.FromSeconds(45), SilenceLimit = TimeSpan.FromSeconds(30) };

    private Task<StorageVerbAnswer> ClientAsync(int node, params string[] args) =>
        StorageVerbClient.RunAsync(Cluster.Systems[node], Coordinator(node), args, null, StorageApiListing(args), Bounds);

    // As ClientAsync, and a task that completes when a coordinator has taken the verb.
    private (Task<StorageVerbAnswer> Answer, Task Taken) TakenClientAsync(int node, params string[] args)
    {
        var taken = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var answer = StorageVerbClient.RunAsync(Cluster.Systems[node], Coordinator(node), args, null, StorageApiListing(args), Bounds with { Taken = _ => taken.TrySetResult() });
        return (answer, taken.Task);
    }

    private static bool StorageApiListing(string[] args) => args.Length >= 2 && args[1] == "list";

    [Fact]
    public async Task A_request_id_is_run_once_and_verbs_in_flight_when_the_coordinators_node_stops_each_end_within_the_bound()
    {
        await StartAsync(io =>
        {
            if (!io.Name.StartsWith("node-3:", StringComparison.Ordinal))
                return io;
            var faulty = new FaultInjectingIo(io);
            lock (_faulty)
                _faulty.Add(faulty);
            return faulty;
        });
        await PoolAsync(mirrors: 2);

        // The same request id sent twice is taken twice but run once: the repeat after the end gets
        // the first run's result (a second `lv create` of the same name would have failed).
        var once = new RunStorageVerb(["lv", "create", "vg0/once", "--size", $"{4 * Mib}"], null, "req-once");
        Assert.IsType<StorageVerbAccepted>(await Coordinator(1).Ask<object>(once, TimeSpan.FromSeconds(10)));
        var repeat = await Coordinator(2).Ask<object>(once, TimeSpan.FromSeconds(10)); // taken again, or already done
        Assert.True(repeat is StorageVerbAccepted or StorageVerbResult { ExitCode: 0 }, $"the repeat got {repeat}");
        object awaited;
        do
            awaited = await Coordinator(1).Ask<object>(new AwaitStorageVerb("req-once"), TimeSpan.FromSeconds(10));
        while (awaited is StorageVerbPending);
        Assert.Equal(0, Assert.IsType<StorageVerbResult>(awaited).ExitCode);
        Assert.Equal(0, Assert.IsType<StorageVerbResult>(await Coordinator(2).Ask<object>(once, TimeSpan.FromSeconds(10))).ExitCode);
        Assert.IsType<StorageVerbUnknown>(await Coordinator(1).Ask<object>(new AwaitStorageVerb("never-sent"), TimeSpan.FromSeconds(10)));

        // d2's commit hangs on pv3 after reaching pv1 and pv2; d3 waits behind it; then the
        // coordinator's node leaves, with a listing in flight too.
        long before = (await OnDiskAsync(PvFile(2)))!.Seqno;
        var label3 = await LabelAsync(PvFile(3));
        lock (_faulty)
        {
            // Every connection the coordinator opened to pv3 (discovery may have raced a verb's open).
            Assert.NotEmpty(_faulty);
            foreach (var pv3 in _faulty)
                pv3.Plan = new FaultPlan { Kinds = FaultKind.Slow, Delay = TimeSpan.FromMinutes(10), RangeStart = label3.MetadataOffset, RangeEnd = label3.ChecksumOffset };
        }
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var d2 = ClientAsync(1, "lv", "create", "vg0/d2", "--size", $"{4 * Mib}");
        await UntilAsync(async () => (await OnDiskAsync(PvFile(2)))!.Seqno == before + 1, "the commit reaching pv2");
        var (d3, d3Taken) = TakenClientAsync(2, "lv", "create", "vg0/d3", "--size", $"{4 * Mib}");
        var (listing, listingTaken) = TakenClientAsync(1, "lv", "list");
        var bothTaken = Task.WhenAll(d3Taken, listingTaken); // queued behind d2
        Assert.Same(bothTaken, await Task.WhenAny(bothTaken, Task.Delay(TimeSpan.FromSeconds(60))));
        Assert.False(d2.IsCompleted || d3.IsCompleted || listing.IsCompleted, "a verb ended while d2's commit still hangs");
        await Cluster.StopNodeAsync(0);
        // A verb sent after the coordinator's node is gone reaches the new coordinator (one that
        // allocates nothing: with node-1's PV gone the VG refuses to allocate).
        var d4 = ClientAsync(2, "lv", "remove", "vg0/once");

        var all = Task.WhenAll(d2, d3, listing, d4);
        Assert.Same(all, await Task.WhenAny(all, Task.Delay(TimeSpan.FromSeconds(120))));
        // Taken by the lost coordinator: a one-line "outcome unknown" that says how to check.
        foreach (var lost in new[] { await d2, await d3 })
        {
            Assert.Equal(StorageVerbOutcome.Unknown, lost.Outcome);
            Assert.Contains("outcome is unknown: check with `tern lv list`", lost.Error, StringComparison.Ordinal);
            Assert.DoesNotContain('\n', lost.Error!);
            // Told by the new coordinator (on whichever of node-2 and node-3 is now the oldest), not by silence.
            Assert.Matches("the new one on node-[23] has no record of it", lost.Error);
        }
        // A listing changes nothing: it was simply asked again. d4 ran on the new coordinator.
        Assert.Equal((StorageVerbOutcome.Done, 0), ((await listing).Outcome, (await listing).Result!.ExitCode));
        Assert.True((await d4).Result is { ExitCode: 0 }, $"lv remove: {(await d4).Outcome} {(await d4).Error} {(await d4).Result?.Stderr}");
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(120), $"the callers waited {clock.Elapsed}");

        // The pool is consistent: d2's commit reached two PVs and the new coordinator completed it
        // everywhere; d3 never ran; `once` is removed; both PVs hold one version.
        var on2 = (await OnDiskAsync(PvFile(2)))!;
        var on3 = (await OnDiskAsync(PvFile(3)))!;
        Assert.Equal(VgMetadataJson.Serialize(on2), VgMetadataJson.Serialize(on3));
        Assert.Equal(["d1", "d2"], on2.Lvs.Select(l => l.Name).Order());
        var list = await OkAsync(1, "lv", "list");
        Assert.Contains("vg0/d2", list, StringComparison.Ordinal);
        Assert.DoesNotContain("vg0/d3", list, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Lv_repair_of_a_disk_a_guest_holds_runs_on_its_node_while_it_writes_and_rebuilds_the_lost_leg_on_another_host()
    {
        await StartAsync();
        for (int i = 1; i <= 3; i++)
            await OkAsync(0, "pv", "create", $"pv{i}.img", "--size", $"{64 * Mib}", "--host", $"node-{i}");
        // The mirror's legs on node-2 and node-3; node-1's PV joins afterwards, free for a new leg.
        await OkAsync(0, "vg", "create", "vg0", "pv2.img", "pv3.img");
        const long size = 16 * Mib;
        await OkAsync(0, "lv", "create", "vg0/d1", "--size", $"{size}", "--type", "mirror", "--mirrors", "2");
        await OkAsync(0, "vg", "extend", "vg0", "pv1.img");

        var disk = await Agent(1).OpenGuestDiskAsync("lv:vg0/d1", "vm1", 1);
        var model = Pattern((int)size, 7);
        for (long at = 0; at < size; at += Mib)
            Assert.True(disk.Write(at, model.AsSpan((int)at, (int)Mib)), disk.LastError);
        Assert.True(disk.Flush(), disk.LastError);

        // node-3, holding one leg, leaves for good; the guest's writes go on degraded.
        await Cluster.StopNodeAsync(2);
        using var stop = new CancellationTokenSource();
        long acked = 0;
        var writer = Task.Run(() =>
        {
            var rng = new Random(11);
            var block = new byte[16 << 10];
            var deadline = DateTime.UtcNow.AddSeconds(90);
            while (!stop.IsCancellationRequested && DateTime.UtcNow < deadline)
            {
                long at = rng.NextInt64(size / block.Length) * block.Length;
                rng.NextBytes(block);
                if (!disk.Write(at, block) || !disk.Flush())
                    throw new IOException($"the guest's write at {at} failed: {disk.LastError}");
                block.CopyTo(model.AsSpan((int)at)); // acknowledged: flushed
                Interlocked.Increment(ref acked);
            }
        });
        await UntilAsync(() => Task.FromResult(Interlocked.Read(ref acked) > 5 || writer.IsCompleted), "the guest writing after node-3 left", 30);

        // Repair now, through the coordinator: it runs on node-2, the guest's node.
        var repaired = await VerbAsync(0, "lv", "repair", "vg0/d1", "--max-rate", "8M");
        Assert.True(repaired.ExitCode == 0, repaired.Stderr);
        Assert.Contains("vg0/d1: 1 leg(s) rebuilt", repaired.Stdout, StringComparison.Ordinal);
        Assert.Contains("repaired on node-2, where VM vm1 has it open", repaired.Stdout, StringComparison.Ordinal);
        long ackedDuringRepair = Interlocked.Read(ref acked);
        await UntilAsync(() => Task.FromResult(Interlocked.Read(ref acked) > ackedDuringRepair + 5 || writer.IsCompleted), "the guest writing after the repair", 30);
        stop.Cancel();
        await writer;

        // Every acknowledged write reads back, and the legs are on node-1 and node-2, both current.
        var back = new byte[Mib];
        for (long at = 0; at < size; at += Mib)
        {
            Assert.True(disk.Read(at, back), disk.LastError);
            Assert.True(model.AsSpan((int)at, (int)Mib).SequenceEqual(back), $"the disk differs from what was acknowledged in MiB {at / Mib}");
        }
        await disk.DisposeAsync();
        var md = (await OnDiskAsync(PvFile(1)))!;
        var seg = Assert.Single(md.FindLv("d1")!.Segments);
        Assert.Equal(["node-1", "node-2"], seg.Areas.Select(a => md.Pvs.First(p => p.Id == a.Pv).Host).Order());
        Assert.All(seg.Areas, a => Assert.False(a.Stale || a.DirtyRegions is { Count: > 0 }, "a leg is still behind after the repair"));
        // Each leg's extents in its PV file hold exactly the acknowledged data.
        foreach (var area in seg.Areas)
        {
            string host = md.Pvs.First(p => p.Id == area.Pv).Host;
            string file = PvFile(int.Parse(host["node-".Length..], System.Globalization.CultureInfo.InvariantCulture));
            var label = await LabelAsync(file);
            var leg = new byte[size];
            using (var io = FilePhysicalVolumeIo.Open(file))
                await io.ReadAsync(label.DataOffset + (area.StartExtent * md.ExtentSize), leg);
            Assert.True(model.AsSpan().SequenceEqual(leg), $"the leg on {host} differs from the acknowledged data");
        }
    }

    // An open right after the previous holder closed: the close is a message, which may reach the
    // coordinator after this node's open; asked again for up to 10 s.
    private static async Task<GuestDisk> OnceClosedAsync(Func<Task<GuestDisk>> open)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (true)
        {
            try
            {
                return await open();
            }
            catch (StorageException e) when (e.Message.Contains("in use by VM", StringComparison.Ordinal) && DateTime.UtcNow < deadline)
            {
                await Task.Delay(100);
            }
        }
    }

    [Fact]
    public async Task An_lv_open_for_a_copy_writes_at_the_current_fence_and_excludes_guests_while_it_holds_the_lv()
    {
        await StartAsync();
        await PoolAsync(mirrors: 2);
        // A guest held it at generation 3 and closed it: the fence stays at 3.
        await (await Agent(1).OpenGuestDiskAsync("vg0/d1", "vm1", 3)).DisposeAsync();
        var copy = await OnceClosedAsync(() => Agent(2).OpenForCopyAsync("vg0/d1", "lv-copy@node-3"));
        Assert.Equal(3, copy.Generation);
        Assert.True(copy.Write(0, Pattern(4096, 8)), copy.LastError); // admitted: not below the fence
        Assert.True(copy.Flush(), copy.LastError);
        // While the copy holds it, neither a guest nor another copy gets it.
        var guest = await Assert.ThrowsAsync<StorageException>(() => Agent(1).OpenGuestDiskAsync("vg0/d1", "vm1", 4));
        Assert.Contains("in use by VM lv-copy@node-3", guest.Message, StringComparison.Ordinal);
        var other = await Assert.ThrowsAsync<StorageException>(() => Agent(0).OpenForCopyAsync("vg0/d1", "lv-copy@node-1"));
        Assert.Contains("in use by VM lv-copy@node-3", other.Message, StringComparison.Ordinal);
        await copy.DisposeAsync();

        // Closed: the guest opens it (raising the fence to 4) and reads what the copy wrote; a copy is now refused.
        await using var held = await OnceClosedAsync(() => Agent(1).OpenGuestDiskAsync("vg0/d1", "vm1", 4));
        var seen = new byte[4096];
        Assert.True(held.Read(0, seen), held.LastError);
        Assert.Equal(Pattern(4096, 8), seen);
        var whileHeld = await Assert.ThrowsAsync<StorageException>(() => Agent(2).OpenForCopyAsync("vg0/d1", "lv-copy@node-3"));
        Assert.Contains("in use by VM vm1", whileHeld.Message, StringComparison.Ordinal);
    }

    private static async Task<PvLabel> LabelAsync(string file)
    {
        using var io = FilePhysicalVolumeIo.Open(file);
        var block = new byte[PhysicalVolume.BlockSize];
        await io.ReadAsync(0, block);
        return PvLabel.Decode(block, file);
    }
}
