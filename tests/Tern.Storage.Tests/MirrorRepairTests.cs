// Mirrors across hosts: degraded legs reported as data, a metric and a trace event; resync
// throttled to a rate while the guest keeps writing; a leg lost for good rebuilt on another host
// (crash-safe, never at the expense of the good leg); and the legs a dead writer may have written
// behind its last recorded intent distrusted. Real PV files throughout.
using System.Diagnostics;
using System.Diagnostics.Metrics;
using Tern.Storage.Format;
using Tern.Storage.Remote;

namespace Tern.Storage.Tests;

public sealed class MirrorRepairTests : IDisposable
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

    // A VG over PVs owned by the given hosts with a mirror LV "m" of 8 MiB filled with a pattern;
    // returns the pattern and the PV indexes of the two legs. Everything is closed afterwards.
    private async Task<(string Vg, byte[] Model, int LegA, int LegB)> MirrorAsync(string[] hosts, string? vgName = null, long pvSize = 24 << 20)
    {
        vgName ??= "vg0";
        var pvs = await _pool.CreatePvsAsync(hosts.Length, pvSize, i => hosts[i]);
        var vg = _pool.Track(await VolumeGroup.CreateAsync(vgName, pvs, Extent));
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
        return (vgName, model, a, b);
    }

    private async Task<VolumeGroup> OpenAsync(string vg, params int[] pvs) =>
        _pool.Track(await VolumeGroup.OpenAsync(vg, await _pool.OpenPvsAsync(pvs)));

    // Every leg of every segment of the LV, read straight from its PV (checksums verified), equals the model.
    private static async Task AssertEveryLegHoldsAsync(VolumeGroup vg, string lv, byte[] model)
    {
        var entry = vg.Metadata.FindLv(lv)!;
        long es = vg.Metadata.ExtentSize;
        foreach (var seg in entry.Segments)
        {
            Assert.Equal(SegmentType.Mirror, seg.Type);
            foreach (var leg in seg.Areas)
            {
                Assert.False(leg.Stale);
                Assert.Null(leg.DirtyRegions);
                var data = new byte[seg.Extents * es];
                Assert.Null(await vg.Pvs[leg.Pv].ReadBlocksAsync(leg.StartExtent * es, data));
                Assert.True(model.AsSpan((int)(seg.StartExtent * es), data.Length).SequenceEqual(data), $"leg on {vg.Pvs[leg.Pv].Name} differs from what was written");
            }
        }
    }

    [Fact]
    public async Task Degraded_legs_are_reported_with_their_host_as_data_as_a_metric_and_as_a_trace_event()
    {
        string vgName = "degr-" + Guid.NewGuid().ToString("N")[..8];
        var (_, model, legA, legB) = await MirrorAsync(["h0", "h1", "h2"], vgName);
        int other = 3 - legA - legB;
        var events = new List<ActivityEvent>();
        using var listener = new ActivityListener
        {
            ShouldListenTo = s => s.Name == StorageTelemetry.SourceName,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = a =>
            {
                lock (events)
                    events.AddRange(a.Events.Where(e => e.Name == StorageTelemetry.LegDegradedEvent && e.Tags.Any(t => t.Key == "tern.vg" && (string?)t.Value == vgName)));
            },
        };
        ActivitySource.AddActivityListener(listener);

        using (var vg = await OpenAsync(vgName, legA, other))
        {
            var leg = Assert.Single(vg.Degraded("m"));
            Assert.Equal((LegProblem.Missing, "h" + legB, _pool.PathOf(legB), 1), (leg.Problem, leg.Host, leg.PvPath, leg.Leg));
            Assert.True(leg.Unreachable);
            Assert.Equal(1, GaugeFor(vgName));

            using var lv = vg.OpenLv("m");
            var block = Pattern(4096, 9);
            await lv.WriteAsync((3 * Region) + 4096, block);
            block.CopyTo(model, (3 * Region) + 4096);
            await lv.WriteAsync(4096, block); // a second write to the degraded leg: no second event
            block.CopyTo(model, 4096);
            Assert.Equal((LegProblem.Missing, 2), (vg.Degraded("m")[0].Problem, vg.Degraded("m")[0].DirtyRegions));
        }
        _pool.CloseAll();
        var ev = Assert.Single(events);
        Assert.Equal(("h" + legB, _pool.PathOf(legB), "m"), ((string?)ev.Tags.First(t => t.Key == "tern.host").Value, (string?)ev.Tags.First(t => t.Key == "tern.pv").Value,
            (string?)ev.Tags.First(t => t.Key == "tern.lv").Value));

        // The PV is back: the leg is reachable but behind in the two regions it missed.
        using var back = await OpenAsync(vgName, 0, 1, 2);
        var behind = Assert.Single(back.Degraded("m"));
        Assert.Equal((LegProblem.OutOfDate, 2, false), (behind.Problem, behind.DirtyRegions, behind.Unreachable));
        Assert.Equal(1, GaugeFor(vgName));
        await back.ResyncAsync("m");
        Assert.Empty(back.Degraded("m"));
        Assert.Equal(0, GaugeFor(vgName));
        await AssertEveryLegHoldsAsync(back, "m", model);
    }

    private static int GaugeFor(string vg)
    {
        int? value = null;
        using var meters = new MeterListener
        {
            InstrumentPublished = (i, l) =>
            {
                if (i.Meter.Name == StorageTelemetry.SourceName && i.Name == "tern.storage.degraded_legs")
                    l.EnableMeasurementEvents(i);
            },
        };
        meters.SetMeasurementEventCallback<int>((_, v, tags, _) =>
        {
            foreach (var t in tags)
            {
                if (t.Key == "tern.vg" && (string?)t.Value == vg)
                    value = v;
            }
        });
        meters.Start();
        meters.RecordObservableInstruments();
        return value ?? throw new InvalidOperationException($"the gauge reported nothing for {vg}");
    }

    [Fact]
    public async Task A_throttled_resync_takes_at_least_size_over_rate_while_guest_writes_keep_landing_on_every_leg()
    {
        var (vgName, model, legA, _) = await MirrorAsync(["h0", "h1", "h2"]);
        using var vg = await OpenAsync(vgName, 0, 1, 2);
        // The writer's host was lost: the leg on it is wholly stale, a full 8 MiB resync.
        Assert.Equal(1, await vg.MarkLegsStaleOnHostAsync("m", "h" + legA));
        Assert.Equal(LegProblem.Stale, Assert.Single(vg.Degraded("m")).Problem);

        const long rate = 4L << 20;
        using var lv = vg.OpenLv("m");
        var clock = Stopwatch.StartNew();
        var resync = vg.ResyncAsync("m", rate);
        int writesDuringResync = 0;
        var random = new Random(5);
        var deadline = Stopwatch.StartNew();
        for (int i = 0; i < 5000 && !resync.IsCompleted && deadline.Elapsed < TimeSpan.FromSeconds(60); i++)
        {
            long off = random.NextInt64(model.Length / 4096) * 4096;
            var block = Pattern(4096, i + 100);
            await lv.WriteAsync(off, block);
            block.CopyTo(model, off);
            if (i % 16 == 0)
                await lv.FlushAsync();
            if (!resync.IsCompleted)
                writesDuringResync++;
            await Task.Delay(2);
        }
        await resync;
        clock.Stop();
        await lv.FlushAsync();

        Assert.True(clock.Elapsed >= TimeSpan.FromSeconds(8.0 * Extent / rate) - TimeSpan.FromMilliseconds(20), $"8 MiB at 4 MiB/s took only {clock.Elapsed}");
        Assert.True(writesDuringResync >= 20, $"only {writesDuringResync} guest writes completed during a {clock.Elapsed} resync");
        Assert.False(vg.NeedsResync("m"));
        var back = new byte[model.Length];
        await lv.ReadAsync(0, back);
        Assert.Equal(model, back);
        await AssertEveryLegHoldsAsync(vg, "m", model);
    }

    [Fact]
    public async Task Bad_rates_are_refused_and_change_nothing()
    {
        var (vgName, _, legA, _) = await MirrorAsync(["h0", "h1", "h2"]);
        using var vg = await OpenAsync(vgName, 0, 1, 2);
        await vg.MarkLegsStaleOnHostAsync("m", "h" + legA);
        long seqno = vg.Metadata.Seqno;
        var e = await Assert.ThrowsAsync<StorageException>(() => vg.ResyncAsync("m", -1));
        Assert.Contains("-1 bytes/s", e.Message);
        await Assert.ThrowsAsync<StorageException>(() => vg.RepairAsync("m", -5));
        Assert.Equal(seqno, vg.Metadata.Seqno);
        Assert.True(vg.NeedsResync("m"));
    }

    [Fact]
    public async Task A_leg_lost_for_good_is_rebuilt_on_the_host_that_holds_no_other_copy()
    {
        var (vgName, model, legA, legB) = await MirrorAsync(["h0", "h1", "h2"]);
        int other = 3 - legA - legB;
        using (var vg = await OpenAsync(vgName, legA, other))
        {
            using (var lv = vg.OpenLv("m"))
            {
                // Written while degraded: the new leg must get these too.
                var block = Pattern(8192, 3);
                await lv.WriteAsync((3 * Region) + 8192, block);
                block.CopyTo(model, (3 * Region) + 8192);
                await lv.FlushAsync();
            }
            var reports = new List<CopyProgress>();
            var result = await vg.RepairAsync("m", progress: new SyncProgress(reports.Add));
            var line = Assert.Single(result.Replaced);
            Assert.Contains($"{_pool.PathOf(legB)} (h{legB})", line);
            Assert.Contains($"{_pool.PathOf(other)} (h{other})", line);
            Assert.Equal(8 * Extent, result.BytesSynced);
            Assert.Equal(8 * Extent, reports[^1].Done);
            var seg = Assert.Single(vg.Metadata.FindLv("m")!.Segments);
            Assert.Equal([vg.Pvs.Values.Single(p => p.Name == _pool.PathOf(legA)).Id, vg.Pvs.Values.Single(p => p.Name == _pool.PathOf(other)).Id], seg.Areas.Select(a => a.Pv));
            Assert.Empty(vg.Degraded("m"));
            await AssertEveryLegHoldsAsync(vg, "m", model);
        }
        _pool.CloseAll();

        // The lost PV turns up again: the LV no longer uses it, and reads through the new leg alone hold the data.
        using var again = await OpenAsync(vgName, 0, 1, 2);
        Assert.Empty(again.Degraded("m"));
        var legAEntry = again.Metadata.FindLv("m")!.Segments[0].Areas[0];
        for (long off = 0; off < model.Length; off += Region)
            _pool.Corrupt(again.Pvs[legAEntry.Pv].Label, legA, (legAEntry.StartExtent * Extent) + off);
        _pool.CloseAll();
        using var third = await OpenAsync(vgName, 0, 1, 2);
        using var lv2 = third.OpenLv("m");
        var back = new byte[model.Length];
        await lv2.ReadAsync(0, back);
        Assert.Equal(model, back);
        Assert.Equal(4, lv2.IntegrityEvents.Count(e => e.Repaired));
    }

    [Fact]
    public async Task Repair_is_refused_without_space_on_another_host_and_changes_nothing()
    {
        // Leg A on h0, leg B on h1, the only free space on a second PV of h0.
        var (vgName, _, legA, legB) = await MirrorAsync(["h0", "h1", "h0"]);
        Assert.Equal(2, 3 - legA - legB); // the allocator put the legs on distinct hosts
        using var vg = await OpenAsync(vgName, legA, 2);
        long seqno = vg.Metadata.Seqno;
        var e = await Assert.ThrowsAsync<InsufficientSpaceException>(() => vg.RepairAsync("m"));
        Assert.Contains("of a host that holds no other copy", e.Message);
        Assert.Equal(seqno, vg.Metadata.Seqno);
        Assert.Equal(LegProblem.Missing, Assert.Single(vg.Degraded("m")).Problem);
    }

    [Fact]
    public async Task Repair_is_refused_when_the_lost_leg_held_the_only_current_copy_of_a_region()
    {
        var (vgName, _, legA, legB) = await MirrorAsync(["h0", "h1", "h2"]);
        int other = 3 - legA - legB;
        using (var vg = await OpenAsync(vgName, legA, other))
        using (var lv = vg.OpenLv("m"))
        {
            await lv.WriteAsync(Region, Pattern(4096, 4)); // leg B misses it
            await lv.FlushAsync();
        }
        _pool.CloseAll();
        using var withoutA = await OpenAsync(vgName, legB, other);
        long seqno = withoutA.Metadata.Seqno;
        var e = await Assert.ThrowsAsync<StorageException>(() => withoutA.RepairAsync("m"));
        Assert.Contains($"from LV offset {Region} have no up-to-date copy", e.Message);
        Assert.Equal(seqno, withoutA.Metadata.Seqno);
        Assert.Equal(2, withoutA.Metadata.FindLv("m")!.Segments[0].Areas.Count);
    }

    [Fact]
    public async Task A_repair_killed_mid_copy_resumes_when_run_again_and_never_loses_the_good_leg()
    {
        var (vgName, model, legA, legB) = await MirrorAsync(["h0", "h1", "h2"]);
        int other = 3 - legA - legB;
        using (var vg = await OpenAsync(vgName, legA, other))
        {
            using var cts = new CancellationTokenSource();
            var progress = new SyncProgress(p =>
            {
                if (p.Done >= 2 * Extent)
                    cts.Cancel();
            });
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => vg.RepairAsync("m", 8L << 20, progress, cts.Token));
            var seg = Assert.Single(vg.Metadata.FindLv("m")!.Segments);
            Assert.Equal([false, true], seg.Areas.Select(a => a.Stale)); // the good leg kept, the new one not yet readable
        }
        _pool.KillAll(); // as kill -9: nothing flushed, nothing closed

        using var resumed = await OpenAsync(vgName, legA, other);
        Assert.Equal(LegProblem.Stale, Assert.Single(resumed.Degraded("m")).Problem);
        var result = await resumed.RepairAsync("m");
        Assert.Empty(result.Replaced); // nothing left to replace, only the copy to finish
        Assert.Equal(8 * Extent, result.BytesSynced);
        await AssertEveryLegHoldsAsync(resumed, "m", model);
    }

    [Fact]
    public async Task Repair_of_a_volume_that_is_not_mirrored_is_refused()
    {
        var (vg, _) = await _pool.CreateVgAsync(2, Extent, size: 16 << 20);
        await vg.CreateLvAsync("lin", 2 * Extent, LvLayout.Linear);
        var e = await Assert.ThrowsAsync<StorageException>(() => vg.RepairAsync("lin"));
        Assert.Equal("vg0/lin is not mirrored: only a mirror leg can be rebuilt from another copy", e.Message);
        await Assert.ThrowsAsync<StorageException>(() => vg.RepairAsync("nope"));
    }

    [Fact]
    public async Task Legs_on_a_lost_writer_host_are_wholly_stale_and_serve_no_reads_until_resynced()
    {
        var (vgName, model, legA, _) = await MirrorAsync(["h0", "h1", "h2"]);
        using var vg = await OpenAsync(vgName, 0, 1, 2);
        // What the old incarnation wrote to its own leg after its last recorded intent.
        var legAEntry = vg.Metadata.FindLv("m")!.Segments[0].Areas[0];
        Assert.Equal(vg.Pvs.Values.Single(p => p.Name == _pool.PathOf(legA)).Id, legAEntry.Pv);
        await vg.Pvs[legAEntry.Pv].WriteBlocksAsync((legAEntry.StartExtent * Extent) + (6 * Region), Pattern(4096, 66));
        await vg.Pvs[legAEntry.Pv].FlushAsync();

        Assert.Equal(1, await vg.MarkLegsStaleOnHostAsync("m", "h" + legA));
        var legs = vg.Metadata.FindLv("m")!.Segments[0].Areas;
        Assert.Equal([true, false], legs.Select(a => a.Stale));
        var degraded = Assert.Single(vg.Degraded("m"));
        Assert.Equal((LegProblem.Stale, "h" + legA), (degraded.Problem, degraded.Host));

        using (var lv = vg.OpenLv("m"))
        {
            var back = new byte[model.Length];
            await lv.ReadAsync(0, back);
            Assert.Equal(model, back); // served from leg B only
        }
        await vg.ResyncAsync("m");
        await AssertEveryLegHoldsAsync(vg, "m", model);
        await Assert.ThrowsAsync<StorageException>(() => vg.MarkLegsStaleOnHostAsync("nope", "h0"));
    }

    [Fact]
    public async Task When_the_trusted_leg_is_itself_behind_the_others_are_distrusted_everywhere_else()
    {
        var (vgName, _, legA, legB) = await MirrorAsync(["h0", "h1", "h2"]);
        int other = 3 - legA - legB;
        using (var vg = await OpenAsync(vgName, legA, other))
        using (var lv = vg.OpenLv("m"))
        {
            await lv.WriteAsync(Region, Pattern(4096, 4)); // leg B misses region 1
            await lv.FlushAsync();
        }
        _pool.CloseAll();
        using var all = await OpenAsync(vgName, 0, 1, 2);
        // The writer ran on h<legA>: leg B is trusted except in region 1, which only leg A holds.
        Assert.Equal(1, await all.MarkLegsStaleOnHostAsync("m", "h" + legA));
        var legs = all.Metadata.FindLv("m")!.Segments[0].Areas;
        Assert.False(legs[0].Stale);
        Assert.Equal([0L, 2L, 3L], legs[0].DirtyRegions!);
        Assert.Equal([1L], legs[1].DirtyRegions!);

        // A writer on a host holding no leg may have written either leg alone: one is trusted, the other is not.
        using var single = new TestPool();
        var pvs = await single.CreatePvsAsync(2, 24 << 20, i => "h" + i);
        var vg2 = single.Track(await VolumeGroup.CreateAsync("vg1", pvs, Extent));
        await vg2.CreateLvAsync("m", 4 * Extent, new LvLayout(SegmentType.Mirror, 2));
        Assert.Equal(1, await vg2.MarkLegsStaleOnHostAsync("m", "h9"));
        Assert.Single(vg2.Metadata.FindLv("m")!.Segments[0].Areas, a => a.Stale);
    }

    [Fact]
    public async Task A_resync_of_a_guest_disk_writes_as_its_writer_and_is_refused_once_a_newer_generation_owns_it()
    {
        var (vgName, model, legA, _) = await MirrorAsync(["h0", "h1", "h2"]);
        var fences = new FenceTable(Path.Combine(_pool.Dir, "fences.json"));
        var ios = new List<FencedPhysicalVolumeIo>();
        var pvs = await _pool.OpenPvsAsync([0, 1, 2], (_, io) =>
        {
            var fenced = new FencedPhysicalVolumeIo(io, fences);
            ios.Add(fenced);
            return fenced;
        });
        using var vg = _pool.Track(await VolumeGroup.OpenAsync(vgName, pvs));
        await vg.MarkLegsStaleOnHostAsync("m", "h" + legA);
        var id = vg.Metadata.FindLv("m")!.Id;
        using var lv = vg.OpenLv("m");
        lv.Writer = new WriterId(id, 1);
        fences.Raise(id, 2); // the guest was restarted elsewhere as generation 2

        await Assert.ThrowsAsync<FencedWriteException>(() => vg.ResyncAsync("m"));
        Assert.True(ios.Sum(i => i.RefusedStaleWrites) > 0);
        Assert.Equal(LegProblem.Stale, Assert.Single(vg.Degraded("m")).Problem);

        lv.Writer = new WriterId(id, 2);
        await vg.ResyncAsync("m");
        await AssertEveryLegHoldsAsync(vg, "m", model);
    }

    private sealed class SyncProgress(Action<CopyProgress> report) : IProgress<CopyProgress>
    {
        public void Report(CopyProgress value) => report(value);
    }
}
