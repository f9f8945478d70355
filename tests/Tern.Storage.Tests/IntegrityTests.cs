// Per-block CRC32C: detection on read, repair from a mirror leg, scrub, and failing legs.
using Tern.Storage.Format;

namespace Tern.Storage.Tests;

public sealed class IntegrityTests : IDisposable
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

    private async Task<(VolumeGroup Vg, List<PhysicalVolume> Pvs, LvEntry Entry, byte[] Data)> WrittenAsync(LvLayout layout, int pvCount = 2)
    {
        var (vg, _) = await _pool.CreateVgAsync(pvCount);
        var entry = await vg.CreateLvAsync("d", 4 * Extent, layout);
        var data = Pattern((int)(4 * Extent), 9);
        using (var lv = vg.OpenLv("d"))
        {
            await lv.WriteAsync(0, data);
            await lv.FlushAsync();
        }
        _pool.CloseAll();
        var pvs = await _pool.OpenPvsAsync(Enumerable.Range(0, pvCount));
        return (_pool.Track(await VolumeGroup.OpenAsync("vg0", pvs)), pvs, entry, data);
    }

    private int IndexOf(List<PhysicalVolume> pvs, Guid id) => pvs.FindIndex(p => p.Id == id);

    [Fact]
    public async Task A_corrupted_block_on_a_linear_lv_fails_the_read_with_its_offset()
    {
        var (vg, pvs, entry, _) = await WrittenAsync(LvLayout.Linear);
        var area = entry.Segments[0].Areas[0];
        int i = IndexOf(pvs, area.Pv);
        _pool.Corrupt(pvs[i].Label, i, (area.StartExtent * Extent) + (5 * 4096) + 100);
        using var lv = vg.OpenLv("d");
        var e = await Assert.ThrowsAsync<ChecksumMismatchException>(async () => await lv.ReadAsync(0, new byte[64 << 10]));
        Assert.Contains($"offset {5 * 4096}", e.Message, StringComparison.Ordinal);
        var ev = Assert.Single(lv.IntegrityEvents);
        Assert.False(ev.Repaired);
        // Blocks around it still read.
        await lv.ReadAsync(0, new byte[5 * 4096]);
    }

    [Fact]
    public async Task Large_reads_find_every_bad_block_whichever_thread_verifies_its_piece()
    {
        // 256 KiB runs are verified in 64 KiB pieces, shared with the helper thread: bad blocks in
        // every piece of the run, at its first and last block too, are all found and repaired.
        var (vg, pvs, entry, data) = await WrittenAsync(new LvLayout(SegmentType.Mirror, 2));
        var leg0 = entry.Segments[0].Areas[0];
        int i = IndexOf(pvs, leg0.Pv);
        int[] badBlocks = [0, 17, 20, 35, 48, 63];
        foreach (int b in badBlocks)
            _pool.Corrupt(pvs[i].Label, i, (leg0.StartExtent * Extent) + (b * 4096L) + 99);
        using var lv = vg.OpenLv("d");
        var back = new byte[data.Length];
        await lv.ReadAsync(0, back);
        Assert.Equal(data, back);
        Assert.Equal(badBlocks.Select(b => b * 4096L), lv.IntegrityEvents.Select(e => e.LvOffset));
        Assert.All(lv.IntegrityEvents, e => Assert.True(e.Repaired));
        for (int round = 0; round < 20; round++)
        {
            Array.Clear(back);
            await lv.ReadAsync(0, back);
            Assert.Equal(data, back);
        }
        Assert.Equal(badBlocks.Length, lv.IntegrityEvents.Count); // repaired for good
    }

    [Fact]
    public async Task A_large_read_of_a_linear_lv_names_a_bad_block_in_its_middle()
    {
        var (lin, linPvs, linEntry, data) = await WrittenAsync(LvLayout.Linear);
        var area = linEntry.Segments[0].Areas[0];
        int j = IndexOf(linPvs, area.Pv);
        _pool.Corrupt(linPvs[j].Label, j, (area.StartExtent * Extent) + (50 * 4096L));
        using var linear = lin.OpenLv("d");
        var e = await Assert.ThrowsAsync<ChecksumMismatchException>(async () => await linear.ReadAsync(0, new byte[data.Length]));
        Assert.Contains($"offset {50 * 4096}", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_corrupted_block_on_a_mirror_is_served_from_the_good_leg_repaired_and_reported()
    {
        var (vg, pvs, entry, data) = await WrittenAsync(new LvLayout(SegmentType.Mirror, 2));
        var leg0 = entry.Segments[0].Areas[0];
        int i = IndexOf(pvs, leg0.Pv);
        long bad = (leg0.StartExtent * Extent) + (3 * 4096);
        _pool.Corrupt(pvs[i].Label, i, bad + 17);
        using var lv = vg.OpenLv("d");
        var seen = new List<IntegrityEvent>();
        lv.Integrity += seen.Add;
        var back = new byte[data.Length];
        await lv.ReadAsync(0, back);
        Assert.Equal(data, back);
        var ev = Assert.Single(seen);
        Assert.True(ev.Repaired);
        Assert.Equal(3 * 4096, ev.LvOffset);
        Assert.Equal(bad, ev.PvDataOffset);
        await lv.FlushAsync();
        Assert.Equal(data.AsSpan(3 * 4096, 4096).ToArray(), _pool.ReadRaw(pvs[i].Label, i, bad, 4096));
        var scrub = await lv.ScrubAsync();
        Assert.Equal(new ScrubResult(4 * Extent / 4096 * 2 / 2, 0, 0, 0), scrub);
    }

    [Fact]
    public async Task Scrub_walks_every_copy_and_repairs_bad_blocks_on_either_leg()
    {
        var (vg, pvs, entry, data) = await WrittenAsync(new LvLayout(SegmentType.Mirror, 2));
        var legs = entry.Segments[0].Areas;
        for (int k = 0; k < 6; k++)
        {
            var leg = legs[k % 2];
            int i = IndexOf(pvs, leg.Pv);
            _pool.Corrupt(pvs[i].Label, i, (leg.StartExtent * Extent) + (k * 40 * 4096) + k);
        }
        using var lv = vg.OpenLv("d");
        long lastProgress = 0;
        var result = await lv.ScrubAsync(new SyncProgress(p => lastProgress = p));
        Assert.Equal(lv.Length, lastProgress);
        Assert.Equal(4 * Extent / 4096, result.BlocksChecked);
        Assert.Equal(6, result.Repaired);
        Assert.Equal(0, result.Unrepairable);
        Assert.Equal(6, lv.IntegrityEvents.Count(e => e.Repaired));
        Assert.Equal(new ScrubResult(result.BlocksChecked, 0, 0, 0), await lv.ScrubAsync());
        var back = new byte[data.Length];
        await lv.ReadAsync(0, back);
        Assert.Equal(data, back);
    }

    [Fact]
    public async Task Scrub_reports_blocks_bad_on_every_leg_as_unrepairable()
    {
        var (vg, pvs, entry, _) = await WrittenAsync(new LvLayout(SegmentType.Mirror, 2));
        foreach (var leg in entry.Segments[0].Areas)
        {
            int i = IndexOf(pvs, leg.Pv);
            _pool.Corrupt(pvs[i].Label, i, (leg.StartExtent * Extent) + 8192);
        }
        using var lv = vg.OpenLv("d");
        var result = await lv.ScrubAsync();
        Assert.Equal(1, result.Unrepairable);
        await Assert.ThrowsAsync<ChecksumMismatchException>(async () => await lv.ReadAsync(8192, new byte[4096]));
    }

    [Fact]
    public async Task Scrub_resyncs_mirror_legs_that_disagree()
    {
        var (vg, pvs, entry, data) = await WrittenAsync(new LvLayout(SegmentType.Mirror, 2));
        // Leg 1 gets a different but well-checksummed block, as a crash between the two leg writes would leave.
        var leg1 = entry.Segments[0].Areas[1];
        var pv1 = pvs[IndexOf(pvs, leg1.Pv)];
        await pv1.WriteBlocksAsync(leg1.StartExtent * Extent, Pattern(4096, 99));
        using var lv = vg.OpenLv("d");
        var result = await lv.ScrubAsync();
        Assert.Equal(1, result.Resynced);
        Assert.Equal(0, result.Repaired);
        var raw = new byte[4096];
        Assert.Null(await pv1.ReadBlocksAsync(leg1.StartExtent * Extent, raw));
        Assert.Equal(data.AsSpan(0, 4096).ToArray(), raw);
    }

    [Fact]
    public async Task A_mirror_keeps_serving_correct_data_when_a_leg_fails_and_marks_it()
    {
        var (vg, _) = await _pool.CreateVgAsync(2);
        await vg.CreateLvAsync("d", 2 * Extent, new LvLayout(SegmentType.Mirror, 2));
        _pool.CloseAll();
        var ios = new Dictionary<int, FaultyIo>();
        var pvs = await _pool.OpenPvsAsync([0, 1], (i, io) => ios[i] = new FaultyIo(io));
        using var vg2 = _pool.Track(await VolumeGroup.OpenAsync("vg0", pvs));
        using var lv = vg2.OpenLv("d");
        var data = Pattern((int)(2 * Extent), 4);
        await lv.WriteAsync(0, data);
        ios[0].FailReads = true;
        ios[0].FailWrites = true;
        var back = new byte[data.Length];
        await lv.ReadAsync(0, back);
        Assert.Equal(data, back);
        Assert.True(pvs[0].Failed);
        var more = Pattern(4096, 5);
        await lv.WriteAsync(8192, more);
        await lv.FlushAsync();
        await lv.ReadAsync(8192, back.AsMemory(0, 4096));
        Assert.Equal(more, back.AsSpan(0, 4096).ToArray());
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Writes_not_yet_flushed_when_the_process_dies_read_back_old_or_new_without_checksum_errors(bool mirror)
    {
        var (vg, _) = await _pool.CreateVgAsync(2);
        await vg.CreateLvAsync("d", 4 * Extent, mirror ? new LvLayout(SegmentType.Mirror, 2) : LvLayout.Linear);
        var model = Pattern((int)(4 * Extent), 1);
        using (var lv = vg.OpenLv("d"))
        {
            await lv.WriteAsync(0, model.AsMemory(0, (int)(2 * Extent)));
            await lv.FlushAsync();
            // Overwrites and first writes that no flush covers: their tags are only in memory.
            var late = Pattern((int)Extent, 2);
            await lv.WriteAsync(Extent + 8192, late);
            late.CopyTo(model, Extent + 8192);
        }
        _pool.KillAll();
        var pvs = await _pool.OpenPvsAsync([0, 1]);
        Assert.Contains(pvs, p => p.RecoveredRegions > 0);
        using var vg2 = _pool.Track(await VolumeGroup.OpenAsync("vg0", pvs));
        Assert.Equal(mirror, vg2.NeedsResync("d")); // a mirror's second leg is out of date where writes were in flight
        if (mirror)
            await vg2.ResyncAsync("d");
        using var lv2 = vg2.OpenLv("d");
        var back = new byte[model.Length];
        await lv2.ReadAsync(0, back); // no checksum error anywhere
        Assert.Empty(lv2.IntegrityEvents);
        // Overwrites of blocks written before are kept (the page cache outlives a kill); blocks first
        // written after the last flush read as their new data or as their old content, zeros, as an
        // unflushed write to a disk may be lost.
        Assert.Equal(model.AsSpan(0, (int)(2 * Extent)).ToArray(), back.AsSpan(0, (int)(2 * Extent)).ToArray());
        for (long b = 2 * Extent; b < model.Length; b += 4096)
        {
            var block = back.AsSpan((int)b, 4096);
            Assert.True(block.SequenceEqual(model.AsSpan((int)b, 4096)) || !block.ContainsAnyExcept((byte)0), $"block at {b}");
        }
        _pool.CloseAll();
        Assert.All(await _pool.OpenPvsAsync([0, 1]), p => Assert.Equal(0, p.RecoveredRegions)); // a clean close clears the marks
    }

    [Fact]
    public async Task Regions_in_flight_when_the_writer_died_stay_readable_when_the_first_legs_pv_died_with_it()
    {
        // Three PVs; the mirror's first leg is on the PV that goes away with the writer (as when a
        // node running the guest dies): the surviving leg must keep the torn regions, not be
        // marked out of date behind a leg that cannot be read.
        var (vg, pvs) = await _pool.CreateVgAsync(3);
        var entry = await vg.CreateLvAsync("d", 4 * Extent, new LvLayout(SegmentType.Mirror, 2));
        var seg = Assert.Single(entry.Segments);
        int first = pvs.FindIndex(p => p.Id == seg.Areas[0].Pv);
        var model = Pattern((int)(4 * Extent), 3);
        using (var lv = vg.OpenLv("d"))
        {
            await lv.WriteAsync(0, model);
            await lv.FlushAsync();
            var late = Pattern((int)Extent, 4); // in flight at the kill: no flush covers it
            await lv.WriteAsync(Extent, late);
            late.CopyTo(model, Extent);
        }
        _pool.KillAll();
        var present = await _pool.OpenPvsAsync([.. Enumerable.Range(0, 3).Where(i => i != first)]);
        Assert.Contains(present, p => p.RecoveredRegions > 0);
        using var vg2 = _pool.Track(await VolumeGroup.OpenAsync("vg0", present));
        var survivor = vg2.Metadata.FindLv("d")!.Segments[0].Areas[1];
        Assert.True(survivor.DirtyRegions is null || survivor.DirtyRegions.Count == 0, $"the surviving leg was marked out of date in regions {string.Join(',', survivor.DirtyRegions ?? [])}");
        using var lv2 = vg2.OpenLv("d");
        var back = new byte[model.Length];
        await lv2.ReadAsync(0, back); // every region readable, from the surviving leg
        Assert.Empty(lv2.IntegrityEvents);
        Assert.Equal(model.AsSpan(0, (int)Extent).ToArray(), back.AsSpan(0, (int)Extent).ToArray());
        for (long b = Extent; b < model.Length; b += 4096)
        {
            var block = back.AsSpan((int)b, 4096);
            Assert.True(block.SequenceEqual(model.AsSpan((int)b, 4096)) || block.SequenceEqual(Pattern((int)(4 * Extent), 3).AsSpan((int)b, 4096)), $"block at {b} is neither the old nor the new data");
        }
    }

    private sealed class SyncProgress(Action<long> report) : IProgress<long>
    {
        public void Report(long value) => report(value);
    }
}
