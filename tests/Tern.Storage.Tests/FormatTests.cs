// The on-disk format of a physical volume: label, metadata slots, atomic commits and repair.
using Tern.Storage.Format;

namespace Tern.Storage.Tests;

public sealed class FormatTests : IDisposable
{
    private readonly TestPool _pool = new();

    public void Dispose() => _pool.Dispose();

    [Fact]
    public async Task A_created_pv_reopens_with_the_same_label_and_no_vg()
    {
        var pv = (await _pool.CreatePvsAsync(1, 16 << 20, _ => "node-1"))[0];
        var label = pv.Label;
        _pool.CloseAll();
        var again = (await _pool.OpenPvsAsync([0]))[0];
        Assert.Equal(label, again.Label);
        Assert.Equal("node-1", again.Label.Host);
        Assert.Null(again.Vg);
        Assert.Equal(0, again.Label.DataOffset % (1 << 20));
        Assert.True(again.Label.DataOffset + again.Label.DataLength <= 16 << 20);
        Assert.True(again.Label.ChecksumLength >= again.Label.DataBlocks * 4);
    }

    [Fact]
    public async Task A_file_that_is_not_a_pv_is_refused_by_name()
    {
        string path = Path.Combine(_pool.Dir, "image.raw");
        var junk = new byte[64 << 10];
        new Random(1).NextBytes(junk);
        await File.WriteAllBytesAsync(path, junk);
        using var io = FilePhysicalVolumeIo.Open(path);
        var e = await Assert.ThrowsAsync<NotAPhysicalVolumeException>(() => PhysicalVolume.OpenAsync(io));
        Assert.Contains("image.raw is not a Tern physical volume", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_damaged_label_is_detected()
    {
        await _pool.CreatePvsAsync(1);
        _pool.CloseAll();
        using (var f = new FileStream(_pool.PathOf(0), FileMode.Open))
        {
            f.Position = 40;
            f.WriteByte(0x77);
        }
        var e = await Assert.ThrowsAsync<NotAPhysicalVolumeException>(() => _pool.OpenPvsAsync([0]));
        Assert.Contains("damaged", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Commits_alternate_slots_and_the_highest_seqno_wins_on_open()
    {
        var (vg, _) = await _pool.CreateVgAsync(2);
        await vg.CreateLvAsync("a", 1 << 20, LvLayout.Linear);
        await vg.CreateLvAsync("b", 1 << 20, LvLayout.Linear);
        Assert.Equal(3, vg.Metadata.Seqno);
        _pool.CloseAll();
        var pvs = await _pool.OpenPvsAsync([0, 1]);
        foreach (var pv in pvs)
        {
            var copies = await PhysicalVolume.ReadMetadataCopiesAsync(pv.Io, pv.Label);
            Assert.Equal([2L, 3L], copies.Select(c => c.Seqno));
            Assert.NotEqual(copies[0].Slot, copies[1].Slot);
        }
        using var again = await VolumeGroup.OpenAsync("vg0", pvs);
        Assert.Equal(3, again.Metadata.Seqno);
        Assert.Equal(["a", "b"], again.Metadata.Lvs.Select(l => l.Name));
        Assert.Empty(again.Repairs);
    }

    [Fact]
    public async Task A_torn_newest_copy_falls_back_to_the_previous_one()
    {
        var (vg, pvs) = await _pool.CreateVgAsync(1);
        await vg.CreateLvAsync("a", 1 << 20, LvLayout.Linear);
        var newestSlot = pvs[0].Metadata!.Slot;
        var label = pvs[0].Label;
        _pool.CloseAll();
        using (var f = new FileStream(_pool.PathOf(0), FileMode.Open))
        {
            f.Position = label.MetadataOffset + ((long)newestSlot * label.MetadataSlotSize) + MetadataSlot.HeaderSize + 10;
            f.WriteByte(0);
        }
        var pv = (await _pool.OpenPvsAsync([0]))[0];
        Assert.Equal(1, pv.Vg!.Seqno);
        Assert.Empty(pv.Vg.Lvs);
    }

    [Fact]
    public async Task A_pv_that_missed_an_update_is_detected_and_repaired_on_open()
    {
        await _pool.CreateVgAsync(3);
        _pool.CloseAll();
        // pv2 is away while an LV is created.
        var two = await _pool.OpenPvsAsync([0, 1]);
        using (var vg = await VolumeGroup.OpenAsync("vg0", two))
        {
            Assert.Single(vg.MissingPvs);
            await vg.CommitAsync(md => md with { Lvs = [.. md.Lvs, new LvEntry { Name = "x", Id = Guid.NewGuid(), Segments = [] }] });
        }
        _pool.CloseAll();
        var all = await _pool.OpenPvsAsync([0, 1, 2]);
        Assert.Equal(1, all[2].Vg!.Seqno);
        using (var vg = await VolumeGroup.OpenAsync("vg0", all))
        {
            Assert.Equal(2, vg.Metadata.Seqno);
            var repair = Assert.Single(vg.Repairs);
            Assert.Contains("pv2.img", repair, StringComparison.Ordinal);
        }
        _pool.CloseAll();
        var reread = await _pool.OpenPvsAsync([2]);
        Assert.Equal(2, reread[0].Vg!.Seqno);
    }

    [Fact]
    public async Task A_crash_at_any_write_of_a_commit_leaves_each_pv_with_the_old_or_the_new_metadata()
    {
        // Count the writes of one LV creation, then replay it with a power cut after each of them.
        int total;
        {
            var (vg, _) = await _pool.CreateVgAsync(3);
            _pool.CloseAll();
            var counted = new List<FaultyIo>();
            var pvs = await _pool.OpenPvsAsync([0, 1, 2], (_, io) => { var f = new FaultyIo(io); counted.Add(f); return f; });
            using var vg2 = await VolumeGroup.OpenAsync("vg0", pvs);
            await vg2.CreateLvAsync("disk", 3 << 20, new LvLayout(SegmentType.Mirror, 2));
            total = counted.Sum(c => c.Writes);
            _pool.CloseAll();
            vg.Dispose();
        }
        Assert.InRange(total, 3, 100);
        for (int budget = 0; budget <= total; budget++)
        {
            foreach (var f in Directory.GetFiles(_pool.Dir))
                File.Delete(f);
            await _pool.CreateVgAsync(3);
            _pool.CloseAll();
            var crash = new CrashPoint(budget);
            var pvs = await _pool.OpenPvsAsync([0, 1, 2], (_, io) => new FaultyIo(io) { Crash = crash });
            using (var vg = await VolumeGroup.OpenAsync("vg0", pvs))
                await vg.CreateLvAsync("disk", 3 << 20, new LvLayout(SegmentType.Mirror, 2));
            _pool.CloseAll();

            var after = await _pool.OpenPvsAsync([0, 1, 2]);
            foreach (var pv in after)
            {
                var md = pv.Vg!;
                Assert.True(md.Seqno is 1 or 2, $"budget {budget}: seqno {md.Seqno}");
                Assert.Equal(md.Seqno == 2 ? 1 : 0, md.Lvs.Count);
            }
            using var reopened = await VolumeGroup.OpenAsync("vg0", after);
            long seq = reopened.Metadata.Seqno;
            Assert.All(after, pv => Assert.Equal(seq, pv.Vg!.Seqno));
            if (budget == total)
                Assert.Equal(2, seq);
            if (seq == 2)
            {
                using var lv = reopened.OpenLv("disk");
                var buf = new byte[1 << 20];
                await lv.ReadAsync(0, buf);
                Assert.All(buf, b => Assert.Equal(0, b));
            }
            _pool.CloseAll();
        }
    }
}
