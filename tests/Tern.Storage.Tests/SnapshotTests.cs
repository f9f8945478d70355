// Snapshots of linear, striped and mirrored LVs (through a snapshot store), the journal of
// mapping changes and its crash behaviour, shrinking thin volumes, and LVs with checksums off.
using CsCheck;
using Tern.Storage.Format;

namespace Tern.Storage.Tests;

public sealed class SnapshotTests : IDisposable
{
    private const long Extent = 256 << 10;
    private const int Block = 4096;
    private readonly TestPool _pool = new();

    public void Dispose() => _pool.Dispose();

    public static TheoryData<string> Layouts => ["linear", "striped", "mirror"];

    private static LvLayout Layout(string name) => name switch
    {
        "striped" => new LvLayout(SegmentType.Striped, 3, 16 << 10),
        "mirror" => new LvLayout(SegmentType.Mirror, 2),
        _ => LvLayout.Linear,
    };

    private static byte[] Pattern(int length, int seed)
    {
        var b = new byte[length];
        new Random(seed).NextBytes(b);
        return b;
    }

    private static async Task<byte[]> ReadAll(IBlockDevice d)
    {
        var b = new byte[d.Length];
        await d.ReadAsync(0, b);
        return b;
    }

    private async Task<VolumeGroup> ReopenAsync(int pvs = 3, Func<int, IPhysicalVolumeIo, IPhysicalVolumeIo>? wrap = null)
    {
        _pool.CloseAll();
        return _pool.Track(await VolumeGroup.OpenAsync("vg0", await _pool.OpenPvsAsync(Enumerable.Range(0, pvs), wrap)));
    }

    [Theory]
    [MemberData(nameof(Layouts))]
    public async Task A_snapshot_keeps_the_old_data_of_every_lv_type_while_both_sides_are_written(string layout)
    {
        const int size = 3 * (int)Extent; // whole stripes: the LV is exactly this long
        var (vg, _) = await _pool.CreateVgAsync(3, Extent);
        await vg.CreateLvAsync("disk", size, Layout(layout));
        var a = Pattern(size, 1);
        var disk = await vg.OpenDeviceAsync("disk");
        await disk.WriteAsync(0, a);
        await disk.FlushAsync();

        await vg.SnapshotAsync("disk", "s1", storeBytes: null);
        var store = vg.Metadata.FindStore(vg.Metadata.FindLv("disk")!.Id)!;
        var storeData = vg.Metadata.Lvs.First(l => l.Id == store.DataLv);
        Assert.Equal(Layout(layout).Type, storeData.Segments[0].Type); // a mirror's snapshots stay mirrored
        Assert.Throws<StorageException>(() => vg.OpenLv("disk")); // written through the store from now on
        var stale = await Assert.ThrowsAsync<StorageException>(async () => await disk.WriteAsync(0, new byte[Block]));
        Assert.Contains("reopen it", stale.Message, StringComparison.Ordinal); // an instance opened before cannot bypass the store

        disk = await vg.OpenDeviceAsync("disk");
        var b = (byte[])a.Clone();
        Pattern(300_000, 2).CopyTo(b, 12_345); // unaligned: partial blocks at both ends
        await disk.WriteAsync(12_345, b.AsMemory(12_345, 300_000));
        await vg.SnapshotAsync("disk", "s2", storeBytes: null);
        var c = (byte[])b.Clone();
        Pattern(size / 2, 3).CopyTo(c, size / 2);
        await disk.WriteAsync(size / 2, c.AsMemory(size / 2));
        var s1 = await vg.OpenDeviceAsync("s1");
        var s1Data = (byte[])a.Clone();
        Pattern(8192, 4).CopyTo(s1Data, 4096);
        await s1.WriteAsync(4096, s1Data.AsMemory(4096, 8192)); // a snapshot is writable; the origin does not see it
        await s1.FlushAsync();

        Assert.Equal(c, await ReadAll(disk));
        Assert.Equal(s1Data, await ReadAll(s1));
        Assert.Equal(b, await ReadAll(await vg.OpenDeviceAsync("s2")));

        var vg2 = await ReopenAsync();
        Assert.Equal(c, await ReadAll(await vg2.OpenDeviceAsync("disk")));
        Assert.Equal(s1Data, await ReadAll(await vg2.OpenDeviceAsync("s1")));
        Assert.Equal(b, await ReadAll(await vg2.OpenDeviceAsync("s2")));

        var removeOrigin = await Assert.ThrowsAsync<StorageException>(() => vg2.RemoveLvAsync("disk"));
        Assert.Contains("remove them first", removeOrigin.Message, StringComparison.Ordinal);
        var storePool = await vg2.OpenThinPoolAsync(store.Name);
        long freeBefore = storePool.FreeChunks;
        await vg2.RemoveLvAsync("s1");
        Assert.True(storePool.FreeChunks > freeBefore, "the blocks s1 alone held are free again");
        Assert.Equal(b, await ReadAll(await vg2.OpenDeviceAsync("s2")));
        await vg2.RemoveLvAsync("s2");
        Assert.Equal(c, await ReadAll(await vg2.OpenDeviceAsync("disk")));
        await vg2.RemoveLvAsync("disk");
        Assert.Empty(vg2.Metadata.Lvs); // the store went with its origin
        Assert.Empty(vg2.Metadata.ThinPools ?? []);
    }

    [Fact]
    public async Task A_whole_block_write_to_a_shared_block_reads_nothing_and_costs_the_same_with_ten_snapshots()
    {
        await _pool.CreateVgAsync(3, Extent, size: 16 << 20);
        var counters = new List<FaultyIo>();
        var vg = await ReopenAsync(wrap: (_, io) => { var f = new FaultyIo(io); counters.Add(f); return f; });
        await vg.CreateLvAsync("one", 1 << 20, LvLayout.Linear);
        await vg.CreateLvAsync("ten", 1 << 20, LvLayout.Linear);
        foreach (string lv in new[] { "one", "ten" })
        {
            var d = await vg.OpenDeviceAsync(lv);
            await d.WriteAsync(0, Pattern(1 << 20, 5));
            await d.FlushAsync();
        }
        await vg.SnapshotAsync("one", "one-s0", storeBytes: null);
        for (int i = 0; i < 10; i++)
            await vg.SnapshotAsync("ten", $"ten-s{i}", storeBytes: null);

        async Task<(int Reads, int Writes)> CostAsync(string lv)
        {
            var d = await vg.OpenDeviceAsync(lv);
            int reads = counters.Sum(c => c.Reads), writes = counters.Sum(c => c.Writes);
            for (int i = 0; i < 64; i++)
                await d.WriteAsync(i * 3L * Block, Pattern(Block, 100 + i));
            return (counters.Sum(c => c.Reads) - reads, counters.Sum(c => c.Writes) - writes);
        }

        var one = await CostAsync("one");
        var ten = await CostAsync("ten");
        Assert.Equal(0, one.Reads); // remapped, not copied
        Assert.Equal(0, ten.Reads);
        Assert.Equal(one.Writes, ten.Writes);
        Assert.Equal(Pattern(1 << 20, 5), await ReadAll(await vg.OpenDeviceAsync("ten-s9")));
    }

    [Fact]
    public async Task Mapping_commits_append_a_journal_transaction_instead_of_rewriting_the_table()
    {
        await _pool.CreateVgAsync(2, Extent, size: 32 << 20);
        var counters = new List<FaultyIo>();
        var vg = await ReopenAsync(2, (_, io) => { var f = new FaultyIo(io); counters.Add(f); return f; });
        await vg.CreateThinPoolAsync("pool", 20 << 20, Block);
        await vg.CreateThinAsync("t", "pool", 16 << 20);
        var t = await vg.OpenDeviceAsync("t");
        await t.WriteAsync(0, Pattern(16 << 20, 6)); // 4,096 mappings: a 64 KiB table
        await t.FlushAsync();
        var pool = await vg.OpenThinPoolAsync("pool");
        long checkpoints = pool.Checkpoints;
        long before = counters.Sum(c => c.BytesWritten);
        var tail = Pattern(Block, 7);
        await vg.SnapshotAsync("t", "s");
        await t.WriteAsync(5 * Block, tail); // remaps one block away from the snapshot
        await t.FlushAsync();
        long written = counters.Sum(c => c.BytesWritten) - before;
        Assert.Equal(checkpoints, pool.Checkpoints);
        Assert.InRange(written, Block, 40 << 10); // two journal transactions, one data block, its tag pages and bitmap

        var vg2 = await ReopenAsync(2);
        var back = new byte[Block];
        await (await vg2.OpenDeviceAsync("t")).ReadAsync(5 * Block, back);
        Assert.Equal(tail, back);
        await (await vg2.OpenDeviceAsync("s")).ReadAsync(5 * Block, back);
        Assert.Equal(Pattern(16 << 20, 6).AsSpan(5 * Block, Block).ToArray(), back);
    }

    public static TheoryData<string> CrashKinds => ["thin", "origin"];

    [Theory]
    [MemberData(nameof(CrashKinds))]
    public async Task A_power_cut_at_any_write_of_journaled_commits_leaves_a_committed_state(string kind)
    {
        // Rounds of writes, each ending with a flush (a journal commit; the small journal fills and
        // is checkpointed part way). A power cut after write number `budget` (that write torn,
        // later ones lost) must leave the volume as of a commit no older than the last flush that
        // returned, and the snapshot untouched.
        const int rounds = 28, size = (int)Extent;
        async Task<(VolumeGroup Vg, IBlockDevice Dev, byte[] Original)> SetUpAsync()
        {
            foreach (var f in Directory.GetFiles(_pool.Dir))
                File.Delete(f);
            var (vg, _) = await _pool.CreateVgAsync(2, Extent);
            if (kind == "thin")
            {
                await vg.CreateThinPoolAsync("pool", 512 << 10, Block);
                await vg.CreateThinAsync("v", "pool", size);
            }
            else
            {
                await vg.CreateLvAsync("v", size, LvLayout.Linear);
            }
            var original = Pattern(size, 1);
            var dev = await vg.OpenDeviceAsync("v");
            await dev.WriteAsync(0, original);
            await dev.FlushAsync();
            await vg.SnapshotAsync("v", "s", storeBytes: kind == "origin" ? 512 << 10 : null);
            return (vg, dev, original);
        }

        // Each round writes blocks no earlier round wrote, so each remaps blocks and commits.
        static byte[] RoundData(int r) => Pattern(2 * Block, 1000 + r);
        static long RoundOffset(int r) => r * 2L * Block;

        var states = new List<byte[]>();
        {
            var (_, _, original) = await SetUpAsync();
            var state = (byte[])original.Clone();
            states.Add((byte[])state.Clone());
            for (int r = 0; r < rounds; r++)
            {
                RoundData(r).CopyTo(state, RoundOffset(r));
                states.Add((byte[])state.Clone());
            }
        }
        int total;
        {
            await SetUpAsync();
            var counters = new List<FaultyIo>();
            var vg = await ReopenAsync(2, (_, io) => { var f = new FaultyIo(io); counters.Add(f); return f; });
            var dev = await vg.OpenDeviceAsync("v");
            for (int r = 0; r < rounds; r++)
            {
                await dev.WriteAsync(RoundOffset(r), RoundData(r));
                await dev.FlushAsync();
            }
            if (kind == "thin")
                Assert.True((await vg.OpenThinPoolAsync("pool")).Checkpoints >= 2, "the journal filled and was checkpointed");
            total = counters.Sum(c => c.Writes);
        }
        var rng = new Random(42);
        var budgets = Enumerable.Range(0, 30).Select(_ => rng.Next(total + 1)).Append(total).Distinct().Order();
        foreach (int budget in budgets)
        {
            var (_, _, original) = await SetUpAsync();
            var crash = new CrashPoint(budget);
            var vg = await ReopenAsync(2, (_, io) => new FaultyIo(io) { Crash = crash });
            var dev = await vg.OpenDeviceAsync("v");
            int durable = 0;
            for (int r = 0; r < rounds; r++)
            {
                await dev.WriteAsync(RoundOffset(r), RoundData(r));
                await dev.FlushAsync();
                if (!crash.Crashed)
                    durable = r + 1;
            }
            _pool.KillAll();
            var after = _pool.Track(await VolumeGroup.OpenAsync("vg0", await _pool.OpenPvsAsync([0, 1])));
            var now = await ReadAll(await after.OpenDeviceAsync("v"));
            int match = states.FindIndex(s => s.AsSpan().SequenceEqual(now));
            Assert.True(match >= durable, $"budget {budget}/{total}: the volume is as of commit {match}, but {durable} commits were durable");
            Assert.Equal(original, await ReadAll(await after.OpenDeviceAsync("s")));
            _pool.CloseAll();
        }
    }

    [Fact]
    public async Task A_thin_volume_shrinks_in_whole_chunks_and_frees_them_while_its_snapshot_keeps_its_own()
    {
        const int chunk = 64 << 10;
        var (vg, _) = await _pool.CreateVgAsync(2, Extent);
        await vg.CreateThinPoolAsync("pool", 4 << 20, chunk);
        await vg.CreateThinAsync("t", "pool", 16 * chunk);
        var t = await vg.OpenDeviceAsync("t");
        var data = Pattern(16 * chunk, 8);
        await t.WriteAsync(0, data);
        await t.FlushAsync();
        var pool = await vg.OpenThinPoolAsync("pool");
        long free = pool.FreeChunks;

        Assert.Equal(5 * chunk, await vg.ReduceLvAsync("t", (4 * chunk) + 1)); // rounded up to whole chunks
        Assert.Equal(free + 11, pool.FreeChunks);
        Assert.Equal(5 * chunk, t.Length);
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(async () => await t.ReadAsync(5 * chunk, new byte[Block]));
        Assert.Equal(data.AsSpan(0, 5 * chunk).ToArray(), await ReadAll(t));

        await vg.SnapshotAsync("t", "s");
        Assert.Equal(2 * chunk, await vg.ReduceLvAsync("s", 2 * chunk));
        Assert.Equal(free + 11, pool.FreeChunks); // t still maps every chunk s let go
        await vg.ExtendLvAsync("t", 8 * chunk);
        var grown = await ReadAll(t);
        Assert.Equal(data.AsSpan(0, 5 * chunk).ToArray(), grown.AsSpan(0, 5 * chunk).ToArray());
        Assert.All(grown.AsSpan(5 * chunk).ToArray(), x => Assert.Equal(0, x)); // not the data given up

        var vg2 = await ReopenAsync(2);
        Assert.Equal(data.AsSpan(0, 2 * chunk).ToArray(), await ReadAll(await vg2.OpenDeviceAsync("s")));
        Assert.Equal(8 * chunk, (await vg2.OpenDeviceAsync("t")).Length);
        Assert.Equal(free + 11, (await vg2.OpenThinPoolAsync("pool")).FreeChunks);
    }

    [Fact]
    public async Task An_lv_with_checksums_off_keeps_its_data_but_does_not_catch_corruption()
    {
        var (vg, pvs) = await _pool.CreateVgAsync(1, Extent);
        await vg.CreateLvAsync("plain", Extent, LvLayout.Linear with { Checksums = false });
        await vg.CreateLvAsync("summed", Extent, LvLayout.Linear);
        Assert.True(vg.Metadata.FindLv("plain")!.ChecksumsOff);
        var data = Pattern((int)Extent, 9);
        foreach (string name in new[] { "plain", "summed" })
        {
            using var lv = vg.OpenLv(name);
            var zeros = new byte[Block];
            await lv.ReadAsync(Block, zeros);
            Assert.All(zeros, x => Assert.Equal(0, x)); // a new LV reads as zeros either way
            await lv.WriteAsync(0, data);
            await lv.FlushAsync();
        }
        var label = pvs[0].Label;
        var vg2 = await ReopenAsync(1);
        _pool.Corrupt(label, 0, 100);
        _pool.Corrupt(label, 0, Extent + 100);
        using var plain = vg2.OpenLv("plain");
        var back = await ReadAll(plain);
        Assert.Equal(data.Length, back.Length);
        Assert.NotEqual(data[100], back[100]); // served as it is
        Assert.Equal(data.AsSpan(101).ToArray(), back.AsSpan(101).ToArray());
        using var summed = vg2.OpenLv("summed");
        await Assert.ThrowsAsync<ChecksumMismatchException>(async () => await summed.ReadAsync(0, new byte[Block]));
    }

    [Fact]
    public async Task A_large_read_verified_in_pieces_names_the_bad_block_and_a_mirror_serves_it_from_the_good_leg()
    {
        const int size = 1 << 20; // read in pieces of 256 KiB, each verified while the next is read
        var (vg, pvs) = await _pool.CreateVgAsync(2, Extent);
        await vg.CreateLvAsync("lin", size, LvLayout.Linear);
        await vg.CreateLvAsync("mir", size, new LvLayout(SegmentType.Mirror, 2));
        var data = Pattern(size, 10);
        foreach (string name in new[] { "lin", "mir" })
        {
            using var lv = vg.OpenLv(name);
            await lv.WriteAsync(0, data);
            await lv.FlushAsync();
        }
        var linArea = vg.Metadata.FindLv("lin")!.Segments[0].Areas[0];
        var mirArea = vg.Metadata.FindLv("mir")!.Segments[0].Areas[0];
        int linPv = pvs.FindIndex(p => p.Id == linArea.Pv), mirPv = pvs.FindIndex(p => p.Id == mirArea.Pv);
        var vg2 = await ReopenAsync(2);
        _pool.Corrupt(pvs[0].Label, linPv, (linArea.StartExtent * Extent) + (175 * Block) + 9);
        _pool.Corrupt(pvs[0].Label, mirPv, (mirArea.StartExtent * Extent) + (200 * Block) + 9);
        using var lin = vg2.OpenLv("lin");
        var e = await Assert.ThrowsAsync<ChecksumMismatchException>(async () => await lin.ReadAsync(0, new byte[size]));
        Assert.Contains($"offset {175 * Block}", e.Message, StringComparison.Ordinal);
        using var mir = vg2.OpenLv("mir");
        Assert.Equal(data, await ReadAll(mir));
        Assert.Equal(200L * Block, Assert.Single(mir.IntegrityEvents).LvOffset);
    }

    [Theory]
    [MemberData(nameof(Layouts))]
    public void Random_snapshot_operations_on_every_lv_type_match_a_model(string layout)
    {
        // Ops: 0 write, 1 read-check, 2 snapshot, 3 remove a snapshot, 4 flush (and sometimes reopen).
        const int size = 3 * (64 << 10); // three extents: whole stripes
        var gen = Gen.Select(Gen.Int[0, 4], Gen.Int[0, 5], Gen.Int[0, size - 1], Gen.Int[1, 5 * Block], Gen.Int).Array[5, 40];
        gen.Sample(ops =>
        {
            using var pool = new TestPool();
            RunModel(pool, Layout(layout), size, ops).GetAwaiter().GetResult();
        }, iter: 15, threads: 1);
    }

    private static async Task RunModel(TestPool testPool, LvLayout layout, int size, (int Op, int Vol, int Offset, int Length, int Seed)[] ops)
    {
        var (vg, _) = await testPool.CreateVgAsync(3, 64 << 10);
        await vg.CreateLvAsync("o", size, layout);
        var models = new Dictionary<string, byte[]> { ["o"] = new byte[size] };
        int next = 0;
        foreach (var (op, vol, offset, length, seed) in ops)
        {
            var names = models.Keys.Order(StringComparer.Ordinal).ToList();
            string name = names[vol % names.Count];
            var dev = await vg.OpenDeviceAsync(name);
            int len = Math.Min(length, size - offset);
            switch (op)
            {
                case 0:
                    var data = Pattern(len, seed);
                    await dev.WriteAsync(offset, data);
                    data.CopyTo(models[name], offset);
                    break;
                case 1:
                    var back = new byte[len];
                    await dev.ReadAsync(offset, back);
                    Assert.True(models[name].AsSpan(offset, len).SequenceEqual(back), $"{name} {offset}+{len}");
                    break;
                case 2 when models.Count < 6:
                    string snap = $"s{next++}";
                    await vg.SnapshotAsync(name, snap, storeBytes: null);
                    models[snap] = (byte[])models[name].Clone();
                    break;
                case 3 when name != "o":
                    await vg.RemoveLvAsync(name);
                    models.Remove(name);
                    break;
                case 4:
                    await dev.FlushAsync();
                    if (seed % 3 == 0)
                    {
                        testPool.CloseAll();
                        vg = testPool.Track(await VolumeGroup.OpenAsync("vg0", await testPool.OpenPvsAsync([0, 1, 2])));
                    }
                    break;
            }
        }
        foreach (var (name, model) in models)
            Assert.Equal(model, await ReadAll(await vg.OpenDeviceAsync(name)));
        await (await vg.OpenDeviceAsync("o")).FlushAsync();
        testPool.CloseAll();
        var reopened = testPool.Track(await VolumeGroup.OpenAsync("vg0", await testPool.OpenPvsAsync([0, 1, 2])));
        foreach (var (name, model) in models)
            Assert.Equal(model, await ReadAll(await reopened.OpenDeviceAsync(name)));
    }
}
