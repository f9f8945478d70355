// The cluster mode of a VG: a view over its own instances of the PVs that commits through a
// committer (here the writer VG of the same files, as the storage coordinator does), retries on
// compare-and-swap conflicts, and adopts versions committed elsewhere.
using Tern.Storage.Format;

namespace Tern.Storage.Tests;

public sealed class ClusterVgTests : IDisposable
{
    private const long Extent = 1 << 20;
    private readonly TestPool _pool = new();

    public void Dispose() => _pool.Dispose();

    // Commits a view's proposal on the writer VG when it was built on the writer's current version.
    private sealed class WriterCommitter(VolumeGroup writer) : IVgCommitter
    {
        public int Proposals { get; private set; }

        public Func<Task>? BeforeEach { get; init; }

        public async Task<VgMetadata> ProposeAsync(VgMetadata current, VgMetadata next, CancellationToken ct)
        {
            Proposals++;
            if (BeforeEach is not null)
                await BeforeEach();
            return await writer.CommitAsync(md => md.Seqno != current.Seqno ? throw new MetadataConflictException(md) : next, ct);
        }
    }

    private async Task<(VolumeGroup Writer, VolumeGroup View, WriterCommitter Committer)> ViewAsync(int pvs = 3, Func<int, bool>? reachable = null, Func<Task>? beforeEach = null)
    {
        var (writer, _) = await _pool.CreateVgAsync(pvs, Extent, size: 24 << 20, host: i => $"h{i}");
        var mine = await _pool.OpenPvsAsync(Enumerable.Range(0, pvs).Where(i => reachable?.Invoke(i) ?? true));
        var committer = new WriterCommitter(writer) { BeforeEach = beforeEach };
        var view = _pool.Track(VolumeGroup.OpenView(writer.Metadata, mine.ToDictionary(p => p.Id), committer));
        return (writer, view, committer);
    }

    private static async Task<VgMetadata> OnDiskAsync(TestPool pool, int pvs)
    {
        using var fresh = new TestPool();
        var opened = new List<PhysicalVolume>();
        for (int i = 0; i < pvs; i++)
            opened.Add(await PhysicalVolume.OpenAsync(FilePhysicalVolumeIo.Open(pool.PathOf(i))));
        try
        {
            Assert.All(opened, p => Assert.Equal(opened[0].Vg!.Seqno, p.Vg!.Seqno));
            return opened[0].Vg!;
        }
        finally
        {
            opened.ForEach(p => p.Dispose());
        }
    }

    [Fact]
    public async Task A_view_commits_through_its_committer_and_the_change_is_durable_on_every_pv()
    {
        var (writer, view, committer) = await ViewAsync();
        long before = writer.Metadata.Seqno;

        await view.CreateLvAsync("d1", 2 * Extent, LvLayout.Linear);

        Assert.Equal(1, committer.Proposals);
        Assert.Equal(before + 1, view.Metadata.Seqno);
        Assert.Equal(view.Metadata.Seqno, writer.Metadata.Seqno);
        Assert.NotNull(writer.Metadata.FindLv("d1"));
        var disk = await OnDiskAsync(_pool, 3);
        Assert.Equal(before + 1, disk.Seqno);
        Assert.NotNull(disk.FindLv("d1"));
    }

    [Fact]
    public async Task A_conflicting_proposal_adopts_the_newer_version_and_reapplies_the_change()
    {
        var (writer, view, committer) = await ViewAsync();
        await writer.CreateLvAsync("theirs", Extent, LvLayout.Linear);

        await view.CreateLvAsync("mine", Extent, LvLayout.Linear);

        Assert.Equal(2, committer.Proposals);
        Assert.NotNull(writer.Metadata.FindLv("theirs"));
        Assert.NotNull(writer.Metadata.FindLv("mine"));
        Assert.Same(writer.Metadata, view.Metadata);
        // Both LVs got distinct extents: the retry allocated on the newer version.
        var areas = writer.Metadata.Lvs.SelectMany(l => l.Segments).SelectMany(s => s.Areas).Select(a => (a.Pv, a.StartExtent)).ToList();
        Assert.Equal(areas.Count, areas.Distinct().Count());
    }

    [Fact]
    public async Task A_change_whose_check_fails_on_the_newer_version_is_refused_and_commits_nothing()
    {
        var (writer, view, _) = await ViewAsync();
        await writer.CreateLvAsync("same", Extent, LvLayout.Linear);
        long seqno = writer.Metadata.Seqno;

        var e = await Assert.ThrowsAsync<StorageException>(() => view.CreateLvAsync("same", Extent, LvLayout.Linear));

        Assert.Contains("already exists", e.Message, StringComparison.Ordinal);
        Assert.Equal(seqno, writer.Metadata.Seqno);
    }

    [Fact]
    public async Task Proposals_are_bounded_when_the_vg_keeps_changing_under_the_view()
    {
        VolumeGroup? writer = null;
        int n = 0;
        var (w, view, committer) = await ViewAsync(beforeEach: () => writer!.CreateLvAsync($"busy{n++}", 4096, LvLayout.Linear));
        writer = w;

        var e = await Assert.ThrowsAsync<MetadataConflictException>(() => view.CreateLvAsync("never", Extent, LvLayout.Linear));

        Assert.Equal(VolumeGroup.MaxProposals, committer.Proposals);
        Assert.Equal(writer.Metadata.Seqno, e.Newer.Seqno);
        Assert.Null(writer.Metadata.FindLv("never"));
    }

    [Fact]
    public async Task An_adopted_version_is_what_open_lvs_map_through_and_older_versions_are_ignored()
    {
        var (writer, view, _) = await ViewAsync();
        await writer.CreateLvAsync("d1", Extent, LvLayout.Linear);
        var old = view.Metadata;
        Assert.True(view.Adopt(writer.Metadata));
        using var lv = view.OpenLv("d1");
        Assert.Equal(Extent, lv.Length);

        await writer.ExtendLvAsync("d1", 3 * Extent);
        Assert.True(view.Adopt(writer.Metadata));
        Assert.False(view.Adopt(old));
        Assert.Equal(3 * Extent, lv.Length);

        // The grown part is usable through the view and lands where the writer maps it.
        var data = new byte[8192];
        new Random(5).NextBytes(data);
        await lv.WriteAsync((2 * Extent) + 4096, data);
        await lv.FlushAsync();
        await writer.ReloadTagsAsync([lv.Entry.Id]);
        using var back = writer.OpenLv("d1");
        var read = new byte[8192];
        await back.ReadAsync((2 * Extent) + 4096, read);
        Assert.Equal(data, read);
    }

    [Fact]
    public async Task Write_intent_marks_of_a_view_mirror_are_committed_through_the_committer()
    {
        var (writer, _, _) = await ViewAsync();
        var entry = await writer.CreateLvAsync("m", 2 * Extent, new LvLayout(SegmentType.Mirror, 2));
        var seg = Assert.Single(entry.Segments);
        int missing = (int)writer.Metadata.Pvs.ToList().FindIndex(p => p.Id == seg.Areas[1].Pv);
        var pvs = await _pool.OpenPvsAsync(Enumerable.Range(0, 3).Where(i => i != missing));
        var committer = new WriterCommitter(writer);
        var view = _pool.Track(VolumeGroup.OpenView(writer.Metadata, pvs.ToDictionary(p => p.Id), committer));

        using (var lv = view.OpenLv("m"))
        {
            await lv.WriteAsync(VgMetadata.RegionSize / 2, new byte[4096]);
            await lv.FlushAsync();
        }

        Assert.True(committer.Proposals >= 1);
        var leg = writer.Metadata.FindLv("m")!.Segments[0].Areas[1];
        Assert.Equal([0L], leg.DirtyRegions);
        Assert.Equal([0L], (await OnDiskAsync(_pool, 3)).FindLv("m")!.Segments[0].Areas[1].DirtyRegions);
    }

    [Fact]
    public async Task A_view_refuses_changes_that_write_metadata_slots_itself()
    {
        var (writer, view, committer) = await ViewAsync();
        var e = await Assert.ThrowsAsync<StorageException>(() => view.RemoveAsync());
        Assert.Contains("storage coordinator", e.Message, StringComparison.Ordinal);
        Assert.Equal(0, committer.Proposals);
        Assert.Equal(1, writer.Metadata.Seqno);
    }

    [Fact]
    public async Task A_clean_close_of_one_pv_instance_leaves_the_write_intent_of_another_for_crash_recovery()
    {
        // Two LVs on one PV, written by two instances of the PV (two nodes in a cluster).
        await _pool.CreateVgAsync(1, 4 * Extent, size: 32 << 20);
        _pool.CloseAll();
        var first = await PhysicalVolume.OpenAsync(FilePhysicalVolumeIo.Open(_pool.PathOf(0)));
        using (var setup = await VolumeGroup.OpenAsync("vg0", [first]))
        {
            await setup.CreateLvAsync("a", 4 * Extent, LvLayout.Linear);
            await setup.CreateLvAsync("b", 4 * Extent, LvLayout.Linear);
        }
        var mine = await PhysicalVolume.OpenAsync(FilePhysicalVolumeIo.Open(_pool.PathOf(0)));
        var writer = await VolumeGroup.OpenAsync("vg0", [first]);
        var view = VolumeGroup.OpenView(writer.Metadata, new Dictionary<Guid, PhysicalVolume> { [mine.Id] = mine }, new WriterCommitter(writer));
        var a = view.OpenLv("a");
        await a.WriteAsync(0, Enumerable.Repeat((byte)7, 4096).ToArray()); // armed, not flushed
        using (var b = writer.OpenLv("b"))
        {
            await b.WriteAsync(0, Enumerable.Repeat((byte)9, 4096).ToArray());
            await b.FlushAsync();
        }
        writer.Dispose();
        first.Dispose(); // clean close of the other instance

        mine.Io.Dispose(); // the view's node dies: nothing of it is flushed or closed
        using var reopened = await PhysicalVolume.OpenAsync(FilePhysicalVolumeIo.Open(_pool.PathOf(0)));
        long regionOfA = (writer.Metadata.FindLv("a")!.Segments[0].Areas[0].StartExtent * 4 * Extent) / PvLabel.TagRegionSize;
        Assert.Contains(regionOfA, reopened.RecoveredRegionList);
    }

    [Fact]
    public void Metadata_json_round_trips_and_damaged_bytes_are_a_storage_error()
    {
        var md = new VgMetadata { Name = "vg0", Id = Guid.NewGuid(), Seqno = 7, ExtentSize = Extent, Pvs = [new PvEntry { Id = Guid.NewGuid(), Host = "h", Path = "/p", Extents = 3 }], Lvs = [] };
        var back = VgMetadataJson.Deserialize(VgMetadataJson.Serialize(md));
        Assert.Equal(md.Seqno, back.Seqno);
        Assert.Equal(md.Pvs[0], back.Pvs[0]);
        Assert.Throws<StorageException>(() => VgMetadataJson.Deserialize("{not json"u8));
    }

    [Fact]
    public async Task A_pool_over_a_provider_finds_creates_and_removes_pvs_as_on_one_node()
    {
        using var pool = await StoragePool.OpenAsync(await FilePvProvider.OpenAsync(_pool.Dir));
        var pv = await pool.CreatePvAsync(Path.Combine(_pool.Dir, "a.img"), 8 << 20, "h1");
        Assert.Same(pv, pool.FindPv(Path.Combine(_pool.Dir, "a.img")));
        Assert.Equal(_pool.Dir, pool.Home);
        await pool.RemovePvAsync(Path.Combine(_pool.Dir, "a.img"));
        Assert.Empty(pool.Pvs);
        var e = Assert.Throws<NotAPhysicalVolumeException>(() => pool.FindPv(Path.Combine(_pool.Dir, "a.img")));
        Assert.Contains("not a Tern physical volume", e.Message, StringComparison.Ordinal);
    }
}
