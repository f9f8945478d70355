// lv convert (adding and dropping mirror legs), resync, and pvmove: online, with writes going on,
// and resumable after a power cut at seeded random points.
using Tern.Storage.Format;

namespace Tern.Storage.Tests;

public sealed class RelocationTests : IDisposable
{
    private const long Extent = 64 << 10;
    private readonly TestPool _pool = new();

    public void Dispose() => _pool.Dispose();

    private static byte[] Pattern(int length, int seed)
    {
        var b = new byte[length];
        new Random(seed).NextBytes(b);
        return b;
    }

    private static async Task<byte[]> ReadAll(LogicalVolume lv)
    {
        var b = new byte[lv.Length];
        await lv.ReadAsync(0, b);
        return b;
    }

    [Fact]
    public async Task Converting_linear_to_a_mirror_copies_the_data_to_the_new_leg_and_back_again()
    {
        var (vg, pvs) = await _pool.CreateVgAsync(3, Extent);
        await vg.CreateLvAsync("d", 12 * Extent, LvLayout.Linear);
        using var lv = vg.OpenLv("d");
        var data = Pattern((int)(12 * Extent), 1);
        await lv.WriteAsync(0, data.AsMemory(0, (int)(8 * Extent))); // the tail stays never-written
        Array.Clear(data, (int)(8 * Extent), (int)(4 * Extent));

        var entry = await vg.ConvertMirrorsAsync("d", 2);
        Assert.All(entry.Segments, s => Assert.Equal(SegmentType.Mirror, s.Type));
        Assert.All(entry.Segments.SelectMany(s => s.Areas), a => Assert.False(a.Stale));
        Assert.All(entry.Segments, s => Assert.NotEqual(s.Areas[0].Pv, s.Areas[1].Pv));
        Assert.Equal(data, await ReadAll(lv));

        // The new leg really holds the data: corrupt every block of leg 0 and read through leg 1.
        var seg = entry.Segments[0];
        int i0 = pvs.FindIndex(p => p.Id == seg.Areas[0].Pv);
        for (long b = 0; b < 8 * Extent / 4096 && b < seg.Extents * Extent / 4096; b++)
            _pool.Corrupt(pvs[i0].Label, i0, (seg.Areas[0].StartExtent * Extent) + (b * 4096));
        Assert.Equal(data, await ReadAll(lv));
        Assert.True(lv.IntegrityEvents.Count > 0);
        Assert.All(lv.IntegrityEvents, e => Assert.True(e.Repaired));

        entry = await vg.ConvertMirrorsAsync("d", 1);
        Assert.All(entry.Segments, s => Assert.Equal(SegmentType.Linear, s.Type));
        Assert.Equal(data, await ReadAll(lv));
        Assert.Equal(vg.Metadata.Pvs.Sum(p => p.Extents) - 12, Allocator.FreeExtents(vg.Metadata));
    }

    [Fact]
    public async Task A_mirror_leg_added_while_the_volume_is_written_misses_no_write()
    {
        var (vg, _) = await _pool.CreateVgAsync(2, Extent);
        await vg.CreateLvAsync("d", 16 * Extent, LvLayout.Linear);
        using var lv = vg.OpenLv("d");
        var model = Pattern((int)(16 * Extent), 2);
        await lv.WriteAsync(0, model);
        using var stop = new CancellationTokenSource();
        var writer = Task.Run(async () =>
        {
            var rng = new Random(3);
            while (!stop.IsCancellationRequested)
            {
                long off = rng.NextInt64(0, model.Length / 4096) * 4096;
                var block = Pattern(4096, rng.Next());
                await lv.WriteAsync(off, block);
                lock (model)
                    block.CopyTo(model, off);
            }
        });
        await vg.ConvertMirrorsAsync("d", 2);
        await stop.CancelAsync();
        await writer;
        // Drop the original leg: what is left was filled by the resync and the concurrent writes.
        var entry = vg.Metadata.FindLv("d")!;
        await vg.CommitAsync(md => md with { Lvs = [entry with { Segments = [.. entry.Segments.Select(s => s with { Type = SegmentType.Linear, Areas = [s.Areas[1]] })] }] });
        Assert.Equal(model, await ReadAll(lv));
    }

    [Fact]
    public async Task Pvmove_empties_a_pv_while_every_lv_type_keeps_its_data()
    {
        var (vg, pvs) = await _pool.CreateVgAsync(4, Extent);
        await vg.CreateLvAsync("l", 10 * Extent, LvLayout.Linear);
        await vg.CreateLvAsync("s", 6 * Extent, new LvLayout(SegmentType.Striped, 3, 16 << 10));
        await vg.CreateLvAsync("m", 5 * Extent, new LvLayout(SegmentType.Mirror, 2));
        var models = new Dictionary<string, byte[]>();
        foreach (var name in new[] { "l", "s", "m" })
        {
            using var lv = vg.OpenLv(name);
            models[name] = Pattern((int)lv.Length, name[0]);
            await lv.WriteAsync(0, models[name]);
            await lv.FlushAsync();
        }
        var source = pvs[0];
        Assert.Contains(vg.Metadata.Lvs, l => l.Segments.Any(s => s.Areas.Any(a => a.Pv == source.Id)));
        var reports = new List<CopyProgress>();
        long moved = await vg.PvMoveAsync(source, chunkExtents: 3, progress: new Progress(reports.Add));
        Assert.True(moved > 0);
        Assert.DoesNotContain(vg.Metadata.Lvs, l => l.Segments.Any(s => s.Areas.Any(a => a.Pv == source.Id || a.MoveTo is not null)));
        Assert.Equal(source.Label.DataLength / Extent, Allocator.FreeRuns(vg.Metadata)[source.Id].Sum(r => r.Count));
        var striped = vg.Metadata.FindLv("s")!;
        Assert.All(striped.Segments, s => Assert.Equal(3, s.Areas.Select(a => a.Pv).Distinct().Count()));
        var mirror = vg.Metadata.FindLv("m")!;
        Assert.All(mirror.Segments, s => Assert.NotEqual(s.Areas[0].Pv, s.Areas[1].Pv));
        Assert.Equal(reports[^1].Total, reports[^1].Done);
        _pool.CloseAll();
        using var vg2 = await VolumeGroup.OpenAsync("vg0", await _pool.OpenPvsAsync([0, 1, 2, 3]));
        foreach (var (name, model) in models)
        {
            using var lv = vg2.OpenLv(name);
            Assert.Equal(model, await ReadAll(lv));
        }
        await vg2.ReduceAsync([vg2.Pvs[source.Id]]);
    }

    [Fact]
    public async Task Pvmove_of_one_lv_leaves_the_others_in_place()
    {
        var (vg, pvs) = await _pool.CreateVgAsync(2, Extent);
        await vg.CreateLvAsync("a", 3 * Extent, LvLayout.Linear);
        await vg.CreateLvAsync("b", 3 * Extent, LvLayout.Linear);
        await vg.PvMoveAsync(pvs[0], lvName: "a");
        Assert.All(vg.Metadata.FindLv("a")!.Segments, s => Assert.Equal(pvs[1].Id, s.Areas[0].Pv));
        Assert.All(vg.Metadata.FindLv("b")!.Segments, s => Assert.Equal(pvs[0].Id, s.Areas[0].Pv));
    }

    [Fact]
    public async Task Pvmove_resumes_after_a_power_cut_at_random_points_without_losing_a_write()
    {
        var rng = new Random(20261124);
        int resumedMidChunk = 0;
        // Where each cut lands depends on how the move and the guest's write interleave: quiet,
        // 3 of the first 8 rounds are cut in the middle of a chunk copy, loaded 2, and one loaded
        // run fell below the 2 checked here. So the rounds go on (bounded) beyond the first 8
        // until 2 such cuts were resumed.
        int round = 0;
        for (; round < 8 || (resumedMidChunk < 2 && round < 40); round++)
        {
            foreach (var f in Directory.GetFiles(_pool.Dir))
                File.Delete(f);
            var (vg0, pvs0) = await _pool.CreateVgAsync(3, Extent);
            await vg0.CreateLvAsync("m", 6 * Extent, new LvLayout(SegmentType.Mirror, 2));
            await vg0.CreateLvAsync("l", 9 * Extent, LvLayout.Linear);
            var models = new Dictionary<string, byte[]>();
            foreach (var name in new[] { "m", "l" })
            {
                using var lv = vg0.OpenLv(name);
                models[name] = Pattern((int)lv.Length, round * 7 + name[0]);
                await lv.WriteAsync(0, models[name]);
                await lv.FlushAsync();
            }
            _pool.CloseAll();

            // Run pvmove with the power cut after a random number of writes; a flushed write made
            // during the move (before the cut) must survive too.
            var crash = new CrashPoint(rng.Next(1, 120));
            var pvs = await _pool.OpenPvsAsync([0, 1, 2], (_, io) => new FaultyIo(io) { Crash = crash });
            var block = Pattern(4096, round);
            byte[]? either = null;
            using (var vg = await VolumeGroup.OpenAsync("vg0", pvs))
            {
                using var l = vg.OpenLv("l");
                var moving = Task.Run(() => vg.PvMoveAsync(pvs[0], chunkExtents: 2));
                await Task.Delay(rng.Next(0, 3));
                await l.WriteAsync(5 * Extent, block);
                await l.FlushAsync();
                if (crash.Crashed)
                    either = block; // the cut may have come before or after the flush
                else
                    block.CopyTo(models["l"], 5 * Extent);
                await moving;
            }
            _pool.CloseAll();

            var after = await _pool.OpenPvsAsync([0, 1, 2]);
            using (var vg = await VolumeGroup.OpenAsync("vg0", after))
            {
                if (vg.Metadata.Lvs.Any(lv => lv.Segments.Any(s => s.Areas.Any(a => a.MoveTo is not null))))
                    resumedMidChunk++;
                await vg.PvMoveAsync(after[0], chunkExtents: 2);
                Assert.DoesNotContain(vg.Metadata.Lvs, lv => lv.Segments.Any(s => s.Areas.Any(a => a.Pv == after[0].Id || a.MoveTo is not null)));
                foreach (var (name, model) in models)
                {
                    using var lv = vg.OpenLv(name);
                    var back = await ReadAll(lv);
                    if (name == "l" && either is not null && back.AsSpan((int)(5 * Extent), 4096).SequenceEqual(either))
                        either.CopyTo(model, 5 * Extent);
                    Assert.True(model.AsSpan().SequenceEqual(back), $"round {round}: {name} differs");
                }
            }
            _pool.CloseAll();
        }
        Assert.True(resumedMidChunk >= 2, $"only {resumedMidChunk} of {round} rounds were cut in the middle of a chunk copy");
    }

    private sealed class Progress(Action<CopyProgress> report) : IProgress<CopyProgress>
    {
        public void Report(CopyProgress value) => report(value);
    }
}
