// A mirror that loses a leg keeps working; what the leg missed is recorded region by region
// (write intent) and resynced region by region when the leg is back, never read before that.
using Tern.Storage.Format;

namespace Tern.Storage.Tests;

public sealed class DegradedMirrorTests : IDisposable
{
    private const long Extent = 1 << 20;
    private const long Region = VgMetadata.RegionSize;
    private readonly TestPool _pool = new();

    public void Dispose() => _pool.Dispose();

    private static byte[] Pattern(int length, int seed)
    {
        var b = new byte[length];
        new Random(seed).NextBytes(b);
        return b;
    }

    private async Task<(byte[] Model, int LegA, int LegB)> MirrorAsync()
    {
        var (vg, pvs) = await _pool.CreateVgAsync(3, Extent, size: 24 << 20);
        var entry = await vg.CreateLvAsync("m", 8 * Extent, new LvLayout(SegmentType.Mirror, 2));
        var model = Pattern((int)(8 * Extent), 1);
        using (var lv = vg.OpenLv("m"))
        {
            await lv.WriteAsync(0, model);
            await lv.FlushAsync();
        }
        var seg = Assert.Single(entry.Segments);
        int a = pvs.FindIndex(p => p.Id == seg.Areas[0].Pv), b = pvs.FindIndex(p => p.Id == seg.Areas[1].Pv);
        _pool.CloseAll();
        return (model, a, b);
    }

    [Fact]
    public async Task Writes_while_a_leg_is_missing_are_never_read_from_it_and_are_resynced_region_by_region()
    {
        var (model, legA, legB) = await MirrorAsync();
        int other = 3 - legA - legB;

        // Leg B's PV is away: writes land on leg A only, in regions 0 and 2.
        using (var vg = await VolumeGroup.OpenAsync("vg0", await _pool.OpenPvsAsync([legA, other])))
        {
            using var lv = vg.OpenLv("m");
            foreach (long off in new[] { 4096L, (2 * Region) + 8192, (2 * Region) + 12288 })
            {
                var block = Pattern(4096, (int)off);
                await lv.WriteAsync(off, block);
                block.CopyTo(model, off);
            }
            await lv.FlushAsync();
            var legBEntry = vg.Metadata.FindLv("m")!.Segments[0].Areas[1];
            Assert.Equal([0L, 2L], legBEntry.DirtyRegions!.Order());
        }
        _pool.CloseAll();

        // Leg B is back (with its old, well-checksummed data): reads must not take it from there.
        var pvs = await _pool.OpenPvsAsync([0, 1, 2]);
        using var vg2 = _pool.Track(await VolumeGroup.OpenAsync("vg0", pvs));
        Assert.Single(vg2.Repairs); // its metadata had missed the updates
        Assert.True(vg2.NeedsResync("m"));
        using (var lv = vg2.OpenLv("m"))
        {
            var back = new byte[model.Length];
            await lv.ReadAsync(0, back);
            Assert.Equal(model, back);
        }

        var reports = new List<CopyProgress>();
        await vg2.ResyncAsync("m", new SyncProgress(reports.Add));
        Assert.Equal(2 * Region, reports[^1].Total); // two regions, not the whole 8 MiB leg
        Assert.False(vg2.NeedsResync("m"));

        // Leg B now holds the new data: destroy leg A's copies and read through B.
        var segA = vg2.Metadata.FindLv("m")!.Segments[0].Areas[0];
        foreach (long off in new[] { 4096L, (2 * Region) + 8192, (2 * Region) + 12288 })
            _pool.Corrupt(pvs[legA].Label, legA, (segA.StartExtent * Extent) + off);
        using var lv2 = vg2.OpenLv("m");
        var all = new byte[model.Length];
        await lv2.ReadAsync(0, all);
        Assert.Equal(model, all);
        Assert.Equal(3, lv2.IntegrityEvents.Count(e => e.Repaired));
    }

    [Fact]
    public async Task A_leg_that_starts_failing_mid_run_is_recorded_and_the_volume_keeps_its_data()
    {
        var (model, legA, legB) = await MirrorAsync();
        var ios = new Dictionary<int, FaultyIo>();
        var pvs = await _pool.OpenPvsAsync([0, 1, 2], (i, io) => ios[i] = new FaultyIo(io));
        using (var vg = _pool.Track(await VolumeGroup.OpenAsync("vg0", pvs)))
        {
            using var lv = vg.OpenLv("m");
            ios[legB].FailWrites = true;
            ios[legB].FailReads = true;
            var block = Pattern(4096, 77);
            await lv.WriteAsync(3 * Region, block);
            block.CopyTo(model, 3 * Region);
            await lv.FlushAsync();
            var back = new byte[model.Length];
            await lv.ReadAsync(0, back);
            Assert.Equal(model, back);
            Assert.True(pvs[legB].Failed);
            Assert.Equal([3L], vg.Metadata.FindLv("m")!.Segments[0].Areas[1].DirtyRegions!);
        }
        _pool.CloseAll();
        using var vg2 = _pool.Track(await VolumeGroup.OpenAsync("vg0", await _pool.OpenPvsAsync([0, 1, 2])));
        using (var lv = vg2.OpenLv("m"))
        {
            var back = new byte[model.Length];
            await lv.ReadAsync(0, back);
            Assert.Equal(model, back);
            var scrub = await lv.ScrubAsync(); // the out-of-date region is not a scrub finding: it is not read
            Assert.Equal(0, scrub.Unrepairable);
        }
        await vg2.ResyncAsync("m");
        Assert.False(vg2.NeedsResync("m"));
    }

    private sealed class SyncProgress(Action<CopyProgress> report) : IProgress<CopyProgress>
    {
        public void Report(CopyProgress value) => report(value);
    }
}
