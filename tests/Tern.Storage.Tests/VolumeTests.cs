// Logical volumes: the mapping of linear, striped and mirrored LVs onto PVs, allocation rules,
// and the block-device contract.
using Tern.Storage.Format;

namespace Tern.Storage.Tests;

public sealed class VolumeTests : IDisposable
{
    private const long Extent = 256 << 10;
    private readonly TestPool _pool = new();

    public void Dispose() => _pool.Dispose();

    private static byte[] Pattern(int length, int seed)
    {
        var b = new byte[length];
        new Random(seed).NextBytes(b);
        return b;
    }

    [Fact]
    public async Task A_linear_lv_spanning_pvs_reads_back_what_was_written_after_reopen()
    {
        var (vg, pvs) = await _pool.CreateVgAsync(2);
        long pvExtents = vg.Metadata.Pvs[0].Extents;
        long size = (pvExtents + 3) * Extent;
        var entry = await vg.CreateLvAsync("big", size, LvLayout.Linear);
        Assert.Equal(2, entry.Segments.Count);
        var data = Pattern((int)size, 7);
        using (var lv = vg.OpenLv("big"))
        {
            Assert.Equal(size, lv.Length);
            await lv.WriteAsync(0, data);
            await lv.FlushAsync();
        }
        _pool.CloseAll();
        using var vg2 = await VolumeGroup.OpenAsync("vg0", await _pool.OpenPvsAsync([0, 1]));
        using var lv2 = vg2.OpenLv("big");
        var back = new byte[size];
        await lv2.ReadAsync(0, back);
        Assert.Equal(data, back);
    }

    [Fact]
    public async Task A_striped_lv_deals_stripe_units_round_robin_over_its_pvs()
    {
        var (vg, pvs) = await _pool.CreateVgAsync(3);
        var entry = await vg.CreateLvAsync("s", 6 * Extent, new LvLayout(SegmentType.Striped, 3, 64 << 10));
        var seg = Assert.Single(entry.Segments);
        Assert.Equal(3, seg.Areas.Select(a => a.Pv).Distinct().Count());
        using var lv = vg.OpenLv("s");
        var data = Pattern(6 * 64 << 10, 3);
        await lv.WriteAsync(0, data);
        await lv.FlushAsync();
        for (int unit = 0; unit < 6; unit++)
        {
            var area = seg.Areas[unit % 3];
            int pvIndex = pvs.FindIndex(p => p.Id == area.Pv);
            var raw = _pool.ReadRaw(pvs[pvIndex].Label, pvIndex, (area.StartExtent * Extent) + (unit / 3 * (64 << 10)), 64 << 10);
            Assert.Equal(data.AsSpan(unit * (64 << 10), 64 << 10).ToArray(), raw);
        }
    }

    [Fact]
    public async Task A_mirror_keeps_identical_copies_on_distinct_pvs()
    {
        var (vg, pvs) = await _pool.CreateVgAsync(3);
        var entry = await vg.CreateLvAsync("m", 4 * Extent, new LvLayout(SegmentType.Mirror, 2));
        var seg = Assert.Single(entry.Segments);
        Assert.NotEqual(seg.Areas[0].Pv, seg.Areas[1].Pv);
        using var lv = vg.OpenLv("m");
        var data = Pattern((int)(4 * Extent), 5);
        await lv.WriteAsync(0, data);
        await lv.FlushAsync();
        foreach (var area in seg.Areas)
        {
            int i = pvs.FindIndex(p => p.Id == area.Pv);
            Assert.Equal(data, _pool.ReadRaw(pvs[i].Label, i, area.StartExtent * Extent, data.Length));
        }
    }

    [Fact]
    public async Task Mirror_legs_go_to_distinct_hosts_when_the_vg_spans_hosts()
    {
        // pv0 and pv1 on host a, pv2 on host b: two legs must be a + b, three are impossible.
        var (vg, pvs) = await _pool.CreateVgAsync(3, host: i => i < 2 ? "a" : "b");
        var entry = await vg.CreateLvAsync("m", 2 * Extent, new LvLayout(SegmentType.Mirror, 2));
        var hosts = entry.Segments.SelectMany(s => s.Areas).Select(a => vg.Metadata.Pvs.First(p => p.Id == a.Pv).Host);
        Assert.Equal(["a", "b"], hosts.Order());
        var e = await Assert.ThrowsAsync<InsufficientSpaceException>(() => vg.CreateLvAsync("m3", Extent, new LvLayout(SegmentType.Mirror, 3)));
        Assert.Contains("distinct hosts", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Too_large_a_volume_is_refused_and_changes_nothing()
    {
        var (vg, _) = await _pool.CreateVgAsync(2);
        long seq = vg.Metadata.Seqno;
        long free = Allocator.FreeExtents(vg.Metadata);
        await Assert.ThrowsAsync<InsufficientSpaceException>(() => vg.CreateLvAsync("x", (free + 1) * Extent, LvLayout.Linear));
        await Assert.ThrowsAsync<InsufficientSpaceException>(() => vg.CreateLvAsync("x", free * Extent, new LvLayout(SegmentType.Mirror, 2)));
        await Assert.ThrowsAsync<InsufficientSpaceException>(() => vg.CreateLvAsync("x", Extent * 3, new LvLayout(SegmentType.Striped, 3)));
        Assert.Equal(seq, vg.Metadata.Seqno);
        Assert.Equal(free, Allocator.FreeExtents(vg.Metadata));
        await vg.CreateLvAsync("x", free * Extent, LvLayout.Linear);
        Assert.Equal(0, Allocator.FreeExtents(vg.Metadata));
    }

    [Fact]
    public async Task A_new_lv_reads_zeros_where_a_removed_lv_left_data()
    {
        var (vg, _) = await _pool.CreateVgAsync(1);
        using (var lv = vg.OpenLv((await vg.CreateLvAsync("old", 2 * Extent, LvLayout.Linear)).Name))
        {
            await lv.WriteAsync(0, Pattern((int)(2 * Extent), 1));
            await lv.FlushAsync();
        }
        await vg.RemoveLvAsync("old");
        await vg.CreateLvAsync("new", 2 * Extent, LvLayout.Linear);
        _pool.CloseAll();
        using var vg2 = await VolumeGroup.OpenAsync("vg0", await _pool.OpenPvsAsync([0]));
        using var lv2 = vg2.OpenLv("new");
        var back = new byte[2 * Extent];
        await lv2.ReadAsync(0, back);
        Assert.All(back, b => Assert.Equal(0, b));
    }

    [Fact]
    public async Task A_flush_reaches_every_mirror_leg()
    {
        await _pool.CreateVgAsync(3);
        _pool.CloseAll();
        var ios = new Dictionary<int, FaultyIo>();
        var pvs = await _pool.OpenPvsAsync([0, 1, 2], (i, io) => ios[i] = new FaultyIo(io));
        using var vg = await VolumeGroup.OpenAsync("vg0", pvs);
        var entry = await vg.CreateLvAsync("m", Extent, new LvLayout(SegmentType.Mirror, 3));
        using var lv = vg.OpenLv("m");
        await lv.WriteAsync(4096, Pattern(8192, 2));
        var before = ios.ToDictionary(kv => kv.Key, kv => kv.Value.Flushes);
        await lv.FlushAsync();
        Assert.All(ios, kv => Assert.True(kv.Value.Flushes > before[kv.Key], $"pv{kv.Key} was not flushed"));
    }

    [Fact]
    public async Task Sector_sized_unaligned_io_is_merged_into_whole_blocks()
    {
        var (vg, _) = await _pool.CreateVgAsync(2);
        await vg.CreateLvAsync("l", 2 * Extent, new LvLayout(SegmentType.Striped, 2, 16 << 10));
        using var lv = vg.OpenLv("l");
        var model = new byte[lv.Length];
        var rng = new Random(11);
        for (int i = 0; i < 200; i++)
        {
            long off = rng.NextInt64(0, model.Length / 512) * 512 + (i % 3 == 0 ? rng.Next(0, 512) : 0);
            int len = (int)Math.Min(model.Length - off, rng.Next(1, 40000));
            var data = Pattern(len, i);
            await lv.WriteAsync(off, data);
            data.CopyTo(model.AsSpan((int)off));
            long roff = rng.NextInt64(0, model.Length - 1);
            int rlen = (int)Math.Min(model.Length - roff, rng.Next(1, 70000));
            var back = new byte[rlen];
            await lv.ReadAsync(roff, back);
            Assert.True(model.AsSpan((int)roff, rlen).SequenceEqual(back), $"step {i}");
        }
    }

    [Fact]
    public async Task Io_outside_the_volume_is_refused()
    {
        var (vg, _) = await _pool.CreateVgAsync(1);
        await vg.CreateLvAsync("l", Extent, LvLayout.Linear);
        using var lv = vg.OpenLv("l");
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(async () => await lv.ReadAsync(Extent - 10, new byte[20]));
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(async () => await lv.WriteAsync(-1, new byte[1]));
    }

    [Fact]
    public async Task Names_and_duplicates_are_checked()
    {
        var (vg, pvs) = await _pool.CreateVgAsync(1);
        await vg.CreateLvAsync("l", Extent, LvLayout.Linear);
        await Assert.ThrowsAsync<StorageException>(() => vg.CreateLvAsync("l", Extent, LvLayout.Linear));
        await Assert.ThrowsAsync<StorageException>(() => vg.CreateLvAsync("bad/name", Extent, LvLayout.Linear));
        var e = await Assert.ThrowsAsync<StorageException>(() => VolumeGroup.CreateAsync("vg1", pvs));
        Assert.Contains("already belongs to volume group vg0", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_open_lv_grows_and_shrinks_while_it_is_written()
    {
        var (vg, _) = await _pool.CreateVgAsync(3);
        await vg.CreateLvAsync("g", 2 * Extent, new LvLayout(SegmentType.Striped, 2, 16 << 10));
        using var lv = vg.OpenLv("g");
        var rng = new Random(5);
        using var stop = new CancellationTokenSource();
        // A writer appends patterned blocks within the current length while sizes change.
        var writer = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                long len = lv.Length;
                long off = rng.NextInt64(0, len / 4096) * 4096;
                try
                {
                    await lv.WriteAsync(off, Pattern(4096, (int)off));
                }
                catch (ArgumentOutOfRangeException)
                {
                    // The volume shrank between reading its length and the write: refused, as it must be.
                }
            }
        });
        await vg.ExtendLvAsync("g", 6 * Extent);
        Assert.Equal(6 * Extent, lv.Length);
        await vg.ExtendLvAsync("g", 7 * Extent);
        Assert.Equal(8 * Extent, lv.Length); // striped: whole stripes
        await vg.ReduceLvAsync("g", 3 * Extent);
        Assert.Equal(4 * Extent, lv.Length);
        await Task.Delay(50);
        await stop.CancelAsync();
        await writer;
        var data = Pattern(4096, 7);
        await lv.WriteAsync(lv.Length - 4096, data);
        var back = new byte[4096];
        await lv.ReadAsync(lv.Length - 4096, back);
        Assert.Equal(data, back);
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(async () => await lv.ReadAsync(lv.Length, new byte[4096]));
        Assert.Equal(Allocator.FreeExtents(vg.Metadata), vg.Metadata.Pvs.Sum(p => p.Extents) - 4);
    }

    [Fact]
    public async Task Grown_space_reads_as_zeros()
    {
        var (vg, _) = await _pool.CreateVgAsync(1);
        await vg.CreateLvAsync("a", Extent, LvLayout.Linear);
        await vg.CreateLvAsync("b", Extent, LvLayout.Linear);
        using (var b = vg.OpenLv("b"))
            await b.WriteAsync(0, Pattern((int)Extent, 1));
        await vg.RemoveLvAsync("b");
        await vg.ExtendLvAsync("a", 2 * Extent);
        using var a = vg.OpenLv("a");
        var back = new byte[Extent];
        await a.ReadAsync(Extent, back);
        Assert.All(back, x => Assert.Equal(0, x));
    }
}
