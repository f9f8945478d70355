// Fault injection (errors, dropped writes, corruption, slow I/O, failed flushes) under an
// fsx-style workload, and the workload running across every LV type while pvmove, grow and
// lv convert change where its extents live.
using Tern.Storage.Faults;
using Tern.Storage.Format;

namespace Tern.Storage.Tests;

public sealed class FaultAndWorkloadTests : IDisposable
{
    private const long Extent = 256 << 10;
    private readonly TestPool _pool = new();

    public void Dispose() => _pool.Dispose();

    public static TheoryData<FaultKind> Faults =>
    [
        FaultKind.ReadError, FaultKind.WriteError, FaultKind.DropWrites, FaultKind.CorruptReads, FaultKind.Slow, FaultKind.FlushError,
        FaultKind.ReadError | FaultKind.WriteError | FaultKind.FlushError,
    ];

    [Theory]
    [MemberData(nameof(Faults))]
    public async Task A_mirror_serves_correct_data_while_one_leg_misbehaves_and_reports_it(FaultKind kind)
    {
        var (vg0, _) = await _pool.CreateVgAsync(2, Extent, size: 12 << 20);
        var entry = await vg0.CreateLvAsync("m", 16 * Extent, new LvLayout(SegmentType.Mirror, 2));
        _pool.CloseAll();
        var faults = new Dictionary<int, FaultInjectingIo>();
        var pvs = await _pool.OpenPvsAsync([0, 1], (i, io) => faults[i] = new FaultInjectingIo(io, seed: 7));
        int leg0 = pvs.FindIndex(p => p.Id == entry.Segments[0].Areas[0].Pv);
        using var vg = _pool.Track(await VolumeGroup.OpenAsync("vg0", pvs));
        using var lv = vg.OpenLv("m");
        var fsx = new Fsx(lv, seed: (int)kind);
        await fsx.RunAsync(150);
        // The read-preferred leg starts misbehaving on part of its data area.
        var label = pvs[leg0].Label;
        faults[leg0].Plan = new FaultPlan
        {
            Kinds = kind,
            RangeStart = label.DataOffset,
            RangeEnd = label.DataOffset + (8 * Extent),
            Probability = kind == FaultKind.DropWrites ? 1 : 0.5,
            Delay = TimeSpan.FromMilliseconds(1),
        };
        // Blocks cached before the fault began were verified then; the reads are meant to meet the
        // misbehaving leg, so they start from the disk.
        pvs[leg0].DropCachedBlocks();
        await fsx.RunAsync(300);
        await lv.FlushAsync();
        await fsx.VerifyAllAsync();
        Assert.True(faults[leg0].Injected > 0);
        switch (kind)
        {
            case FaultKind.CorruptReads or FaultKind.DropWrites:
                Assert.Contains(lv.IntegrityEvents, e => e.Repaired && e.Pv == pvs[leg0].Name);
                break;
            case FaultKind.Slow:
                Assert.False(pvs[leg0].Failed);
                break;
            default:
                Assert.True(pvs[leg0].Failed);
                break;
        }
        if ((kind & (FaultKind.WriteError | FaultKind.FlushError)) != 0)
            Assert.True(vg.NeedsResync("m"));

        // The leg heals (the faults stop, the pool is reopened): a resync and a scrub leave both legs right.
        faults[leg0].Plan = new FaultPlan();
        if (kind != FaultKind.DropWrites) // silent loss is caught by checksums in session only; see docs/storage-format.md
        {
            _pool.CloseAll();
            var again = await _pool.OpenPvsAsync([0, 1]);
            using var vg2 = _pool.Track(await VolumeGroup.OpenAsync("vg0", again));
            await vg2.ResyncAsync("m");
            using var lv2 = vg2.OpenLv("m");
            var scrub = await lv2.ScrubAsync();
            Assert.Equal(0, scrub.Unrepairable);
            Assert.Equal(0, scrub.Resynced);
            await fsx.VerifyAllAsync(lv2);
        }
    }

    [Fact]
    public async Task A_linear_volume_reports_injected_errors_to_the_caller()
    {
        var (vg0, _) = await _pool.CreateVgAsync(1, Extent);
        await vg0.CreateLvAsync("l", 4 * Extent, LvLayout.Linear);
        _pool.CloseAll();
        FaultInjectingIo? fault = null;
        var pvs = await _pool.OpenPvsAsync([0], (_, io) => fault = new FaultInjectingIo(io));
        using var vg = _pool.Track(await VolumeGroup.OpenAsync("vg0", pvs));
        using var lv = vg.OpenLv("l");
        fault!.Plan = new FaultPlan { Kinds = FaultKind.WriteError | FaultKind.ReadError };
        await Assert.ThrowsAsync<IOException>(async () => await lv.WriteAsync(0, new byte[4096]));
        await Assert.ThrowsAsync<IOException>(async () => await lv.ReadAsync(0, new byte[4096]));
        fault.Plan = new FaultPlan { Kinds = FaultKind.CorruptReads };
        await lv.WriteAsync(0, new byte[4096]);
        await Assert.ThrowsAsync<ChecksumMismatchException>(async () => await lv.ReadAsync(0, new byte[4096]));
    }

    public static TheoryData<string> Layouts => ["linear", "striped", "mirror"];

    [Theory]
    [MemberData(nameof(Layouts))]
    public async Task The_workload_keeps_its_data_through_pvmove_grow_and_convert(string layout)
    {
        var (vg, pvs) = await _pool.CreateVgAsync(4, Extent, size: 16 << 20);
        var lvLayout = layout switch
        {
            "striped" => new LvLayout(SegmentType.Striped, 2, 32 << 10),
            "mirror" => new LvLayout(SegmentType.Mirror, 2),
            _ => LvLayout.Linear,
        };
        await vg.CreateLvAsync("w", 12 * Extent, lvLayout);
        using var lv = vg.OpenLv("w");
        var fsx = new Fsx(lv, seed: layout.Length);
        await fsx.RunAsync(100);

        // pvmove runs beside the workload; the workload keeps going until it is done.
        var source = pvs.First(p => vg.Metadata.FindLv("w")!.Segments.Any(s => s.Areas.Any(a => a.Pv == p.Id)));
        var move = Task.Run(() => vg.PvMoveAsync(source, chunkExtents: 2));
        while (!move.IsCompleted)
            await fsx.RunAsync(20);
        await move;
        Assert.DoesNotContain(vg.Metadata.FindLv("w")!.Segments, s => s.Areas.Any(a => a.Pv == source.Id));

        await vg.ExtendLvAsync("w", 16 * Extent);
        fsx.Resized();
        await fsx.RunAsync(200);

        if (layout != "striped")
        {
            var convert = Task.Run(() => vg.ConvertMirrorsAsync("w", 3));
            while (!convert.IsCompleted)
                await fsx.RunAsync(20);
            await convert;
            await fsx.RunAsync(100);
            await vg.ConvertMirrorsAsync("w", 1);
        }
        await fsx.RunAsync(100);
        await lv.FlushAsync();
        await fsx.VerifyAllAsync();

        _pool.CloseAll();
        using var vg2 = await VolumeGroup.OpenAsync("vg0", await _pool.OpenPvsAsync([0, 1, 2, 3]));
        using var lv2 = vg2.OpenLv("w");
        var scrub = await lv2.ScrubAsync();
        Assert.Equal(0, scrub.Unrepairable + scrub.Repaired);
    }

    [Theory]
    [MemberData(nameof(Layouts))]
    public async Task The_workload_keeps_its_data_and_its_snapshots_through_pvmove_and_grow(string layout)
    {
        var (vg, pvs) = await _pool.CreateVgAsync(4, Extent, size: 16 << 20);
        var lvLayout = layout switch
        {
            "striped" => new LvLayout(SegmentType.Striped, 2, 32 << 10),
            "mirror" => new LvLayout(SegmentType.Mirror, 2),
            _ => LvLayout.Linear,
        };
        await vg.CreateLvAsync("w", 12 * Extent, lvLayout);
        var fsx = new Fsx(vg.OpenLv("w"), seed: 7 + layout.Length);
        await fsx.RunAsync(100);

        await vg.SnapshotAsync("w", "s1", storeBytes: 36 * Extent); // room for every block to diverge from two snapshots
        var s1 = fsx.Model;
        fsx.Reopened(await vg.OpenDeviceAsync("w"));
        await fsx.RunAsync(100);

        var source = pvs.First(p => vg.Metadata.FindLv("w")!.Segments.Any(s => s.Areas.Any(a => a.Pv == p.Id)));
        var move = Task.Run(() => vg.PvMoveAsync(source, chunkExtents: 2));
        while (!move.IsCompleted)
            await fsx.RunAsync(20);
        await move;
        Assert.DoesNotContain(vg.Metadata.Lvs, l => l.Segments.Any(s => s.Areas.Any(a => a.Pv == source.Id)));

        await vg.SnapshotAsync("w", "s2", storeBytes: null);
        var s2 = fsx.Model;
        await vg.ExtendLvAsync("w", 16 * Extent);
        fsx.Resized();
        await fsx.RunAsync(200);
        await fsx.VerifyAllAsync();
        Assert.Equal(s1, await ReadAllAsync(await vg.OpenDeviceAsync("s1")));
        Assert.Equal(s2, await ReadAllAsync(await vg.OpenDeviceAsync("s2")));

        _pool.CloseAll();
        var vg2 = _pool.Track(await VolumeGroup.OpenAsync("vg0", await _pool.OpenPvsAsync([0, 1, 2, 3])));
        await fsx.VerifyAllAsync(await vg2.OpenDeviceAsync("w"));
        Assert.Equal(s1, await ReadAllAsync(await vg2.OpenDeviceAsync("s1")));
        Assert.Equal(s2, await ReadAllAsync(await vg2.OpenDeviceAsync("s2")));
    }

    private static async Task<byte[]> ReadAllAsync(IBlockDevice d)
    {
        var b = new byte[d.Length];
        await d.ReadAsync(0, b);
        return b;
    }
}
