// The snapshot store of a linear, striped or mirrored LV follows its origin: it dissolves with
// the origin's last snapshot (the origin's data goes back into its own extents, the store's
// extents are freed, and a power cut at any write of it leaves the data whole and the
// dissolution to finish), and `lv convert` gives it the origin's number of copies.
using Tern.Storage.Format;

namespace Tern.Storage.Tests;

public sealed class SnapshotStoreTests : IDisposable
{
    private const long Extent = 256 << 10;
    private const int Block = 4096;
    private const int Size = 3 * (int)Extent; // whole stripes
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

    private static List<string> Placement(LvEntry lv) =>
        [.. lv.Segments.Select(s => $"{s.StartExtent}+{s.Extents} {s.Type} {string.Join(",", s.Areas.Select(a => $"{a.Pv}:{a.StartExtent}"))}")];

    // An origin written, snapshotted twice, then written again in whole blocks (remapped into the
    // store), partial blocks and a long run; returns what the origin holds.
    private static async Task<byte[]> SnapshotAndRewriteAsync(VolumeGroup vg, string layout)
    {
        await vg.CreateLvAsync("disk", Size, Layout(layout));
        var data = Pattern(Size, 1);
        var disk = await vg.OpenDeviceAsync("disk");
        await disk.WriteAsync(0, data);
        await disk.FlushAsync();
        await vg.SnapshotAsync("disk", "s1", storeBytes: null);
        await vg.SnapshotAsync("disk", "s2", storeBytes: null);
        disk = await vg.OpenDeviceAsync("disk");
        var rng = new Random(2);
        for (int i = 0; i < 40; i++)
        {
            int at = rng.Next(Size / Block) * Block;
            var block = Pattern(Block, 100 + i);
            await disk.WriteAsync(at, block);
            block.CopyTo(data, at);
        }
        var partial = Pattern(10_000, 7);
        await disk.WriteAsync(50_001, partial);
        partial.CopyTo(data, 50_001);
        var run = Pattern(300 << 10, 8);
        await disk.WriteAsync(Size - run.Length, run);
        run.CopyTo(data, Size - run.Length);
        await disk.FlushAsync();
        return data;
    }

    [Theory]
    [MemberData(nameof(Layouts))]
    public async Task Removing_the_last_snapshot_puts_the_origin_back_in_its_own_extents(string layout)
    {
        var (vg, _) = await _pool.CreateVgAsync(3, Extent);
        long freeBefore = Allocator.FreeExtents(vg.Metadata);
        var data = await SnapshotAndRewriteAsync(vg, layout);
        var origin = vg.Metadata.FindLv("disk")!;
        var open = await vg.OpenDeviceAsync("disk"); // a guest's disk, kept open across the dissolution
        Assert.IsType<ThinVolume>(open);

        await vg.RemoveLvAsync("s1");
        Assert.NotNull(vg.Metadata.FindStore(origin.Id)); // s2 still shares blocks
        await vg.RemoveLvAsync("s2");

        var md = vg.Metadata;
        Assert.Empty(md.ThinPools ?? []);
        Assert.Equal(["disk"], md.Lvs.Select(l => l.Name));
        Assert.Equal(Placement(origin), Placement(md.FindLv("disk")!)); // the same extents, the same layout
        Assert.Equal(freeBefore - (origin.Extents * (layout == "mirror" ? 2 : 1)), Allocator.FreeExtents(md)); // the store's extents are free
        Assert.IsType<LogicalVolume>(await vg.OpenDeviceAsync("disk"));
        using (var plain = vg.OpenLv("disk"))
            Assert.Equal(data, await ReadAll(plain));
        Assert.Equal(data, await ReadAll(open)); // the device opened before goes on, through the LV itself

        var more = Pattern(3 * Block, 9);
        await open.WriteAsync(Block, more);
        await open.FlushAsync();
        more.CopyTo(data, Block);
        _pool.CloseAll();
        var vg2 = _pool.Track(await VolumeGroup.OpenAsync("vg0", await _pool.OpenPvsAsync([0, 1, 2])));
        using var reopened = vg2.OpenLv("disk");
        Assert.Equal(data, await ReadAll(reopened));
        Assert.Equal(0, (await reopened.ScrubAsync()).Unrepairable);
        await vg2.SnapshotAsync("disk", "again", storeBytes: null); // and it can have snapshots anew
        Assert.Equal(data, await ReadAll(await vg2.OpenDeviceAsync("again")));
    }

    [Fact]
    public async Task A_power_cut_at_any_write_of_the_dissolution_loses_nothing_and_the_next_open_finishes_it()
    {
        async Task<byte[]> SetUpAsync()
        {
            _pool.CloseAll();
            foreach (var f in Directory.GetFiles(_pool.Dir))
                File.Delete(f);
            var (vg, _) = await _pool.CreateVgAsync(3, Extent);
            var data = await SnapshotAndRewriteAsync(vg, "mirror");
            await vg.RemoveLvAsync("s1");
            _pool.CloseAll();
            return data;
        }

        int total;
        {
            await SetUpAsync();
            var counters = new List<FaultyIo>();
            var vg = _pool.Track(await VolumeGroup.OpenAsync("vg0", await _pool.OpenPvsAsync([0, 1, 2], (_, io) =>
            {
                var f = new FaultyIo(io);
                counters.Add(f);
                return f;
            })));
            await vg.RemoveLvAsync("s2");
            total = counters.Sum(c => c.Writes);
            Assert.True(total > 10, $"the dissolution wrote {total} times");
        }
        var rng = new Random(11);
        var budgets = Enumerable.Range(0, 25).Select(_ => rng.Next(total + 1)).Append(0).Append(total - 1).Distinct().Order();
        foreach (int budget in budgets)
        {
            var data = await SetUpAsync();
            var crash = new CrashPoint(budget);
            var vg = _pool.Track(await VolumeGroup.OpenAsync("vg0", await _pool.OpenPvsAsync([0, 1, 2], (_, io) => new FaultyIo(io) { Crash = crash })));
            await vg.RemoveLvAsync("s2");
            _pool.KillAll();

            var after = _pool.Track(await VolumeGroup.OpenAsync("vg0", await _pool.OpenPvsAsync([0, 1, 2])));
            if (after.Metadata.FindThin("s2") is not null)
                await after.RemoveLvAsync("s2"); // the cut came before the removal itself was committed
            var disk = await after.OpenDeviceAsync("disk"); // finishes an interrupted dissolution
            Assert.IsType<LogicalVolume>(disk);
            Assert.Empty(after.Metadata.ThinPools ?? []);
            var now = await ReadAll(disk);
            Assert.True(data.AsSpan().SequenceEqual(now), $"budget {budget}/{total}: the origin's data changed");
            Assert.Equal(0, (await ((LogicalVolume)disk).ScrubAsync()).Unrepairable);
            _pool.CloseAll();
        }
    }

    private static void AssertCopies(VolumeGroup vg, Guid id, int copies)
    {
        var lv = vg.Metadata.Lvs.First(l => l.Id == id);
        Assert.All(lv.Segments, s =>
        {
            Assert.Equal(copies, s.Areas.Count);
            Assert.Equal(copies == 1 ? SegmentType.Linear : SegmentType.Mirror, s.Type);
            Assert.All(s.Areas, a => Assert.False(a.Stale || a.DirtyRegions is not null, $"{lv.Name}: a leg is not in sync"));
            Assert.Equal(copies, s.Areas.Select(a => a.Pv).Distinct().Count());
        });
    }

    [Fact]
    public async Task Reducing_a_striped_origin_less_than_a_whole_stripe_keeps_its_data_and_its_snapshot()
    {
        // A 2-stripe LV keeps whole stripes: asked to shrink by one extent it keeps its size, so
        // its store must keep every mapping (it once dropped those past the size asked for).
        var (vg, _) = await _pool.CreateVgAsync(3, Extent);
        await vg.CreateLvAsync("disk", 2 * Extent, new LvLayout(SegmentType.Striped, 2, 16 << 10));
        var disk = await vg.OpenDeviceAsync("disk");
        await disk.WriteAsync(0, Pattern(2 * (int)Extent, 5));
        await disk.FlushAsync();
        (disk as IDisposable)?.Dispose();
        await vg.SnapshotAsync("disk", "s1", storeBytes: null);
        disk = await vg.OpenDeviceAsync("disk");
        var data = Pattern(2 * (int)Extent, 6);
        await disk.WriteAsync(0, data); // whole blocks: remapped into the store
        await disk.FlushAsync();
        (disk as IDisposable)?.Dispose();

        Assert.Equal(2 * Extent, await vg.ReduceLvAsync("disk", Extent));
        Assert.Equal(data, await ReadAll(await vg.OpenDeviceAsync("disk")));
        Assert.Equal(Pattern(2 * (int)Extent, 5), await ReadAll(await vg.OpenDeviceAsync("s1")));
    }

    [Fact]
    public async Task Converting_an_origin_converts_its_snapshot_store_and_the_store_survives_a_lost_pv()
    {
        var (vg, _) = await _pool.CreateVgAsync(3, Extent);
        var data = await SnapshotAndRewriteAsync(vg, "linear");
        var old = Pattern(Size, 1); // what both snapshots hold
        var store = vg.Metadata.FindStore(vg.Metadata.FindLv("disk")!.Id)!;
        AssertCopies(vg, store.DataLv, 1);

        var reports = new List<CopyProgress>();
        await vg.ConvertMirrorsAsync("disk", 2, new SyncProgress(reports.Add));
        AssertCopies(vg, vg.Metadata.FindLv("disk")!.Id, 2);
        AssertCopies(vg, store.DataLv, 2);
        AssertCopies(vg, store.MetaLv, 2);
        Assert.Equal(reports[^1].Total, reports[^1].Done);
        Assert.True(reports[^1].Total >= 2L * Size, "the progress counts the origin and its store's data");
        Assert.Equal(data, await ReadAll(await vg.OpenDeviceAsync("disk")));
        Assert.Equal(old, await ReadAll(await vg.OpenDeviceAsync("s1")));

        // Every PV holds one leg of something: whichever is lost, the origin and its snapshots read whole.
        for (int lost = 0; lost < 3; lost++)
        {
            _pool.CloseAll();
            var degraded = _pool.Track(await VolumeGroup.OpenAsync("vg0", await _pool.OpenPvsAsync(Enumerable.Range(0, 3).Where(i => i != lost))));
            Assert.Equal(data, await ReadAll(await degraded.OpenDeviceAsync("disk")));
            Assert.Equal(old, await ReadAll(await degraded.OpenDeviceAsync("s1")));
            Assert.Equal(old, await ReadAll(await degraded.OpenDeviceAsync("s2")));
        }

        _pool.CloseAll();
        var vg2 = _pool.Track(await VolumeGroup.OpenAsync("vg0", await _pool.OpenPvsAsync([0, 1, 2])));
        await vg2.ConvertMirrorsAsync("disk", 1);
        AssertCopies(vg2, vg2.Metadata.FindLv("disk")!.Id, 1);
        AssertCopies(vg2, store.DataLv, 1);
        AssertCopies(vg2, store.MetaLv, 1);
        Assert.Equal(data, await ReadAll(await vg2.OpenDeviceAsync("disk")));
        Assert.Equal(old, await ReadAll(await vg2.OpenDeviceAsync("s2")));
    }

    [Fact]
    public async Task A_convert_that_cannot_also_fit_the_store_is_refused_and_changes_nothing()
    {
        var (vg, _) = await _pool.CreateVgAsync(2, Extent, size: 4 << 20);
        await vg.CreateLvAsync("disk", 4 * Extent, LvLayout.Linear);
        await vg.SnapshotAsync("disk", "s", storeBytes: null);
        await vg.CreateLvAsync("filler", (Allocator.FreeExtents(vg.Metadata) - 6) * Extent, LvLayout.Linear); // room for the origin's new leg, not the store's
        var before = vg.Metadata;
        var e = await Assert.ThrowsAsync<InsufficientSpaceException>(() => vg.ConvertMirrorsAsync("disk", 2));
        Assert.Contains("snapshot store", e.Message, StringComparison.Ordinal);
        Assert.Equal(before.Seqno, vg.Metadata.Seqno);
    }

    // Reports on the calling thread, so the list is complete when the convert returns.
    private sealed class SyncProgress(Action<CopyProgress> report) : IProgress<CopyProgress>
    {
        public void Report(CopyProgress value) => report(value);
    }
}
