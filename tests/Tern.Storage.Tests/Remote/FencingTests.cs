// Writer fencing: an LV written by generation 3 of its VM stops accepting generation 3 once
// generation 4 owns it, on every PV that holds it, local or remote, and across a restart of
// the node that keeps the fence.
using Tern.Storage.Format;
using Tern.Storage.Remote;

namespace Tern.Storage.Tests.Remote;

public sealed class FencingTests : IAsyncLifetime, IDisposable
{
    private const long Extent = 1 << 20;
    private readonly RemoteRig _rig = new();

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync() => await _rig.DisposeAsync();

    public void Dispose() => _rig.Dispose();

    [Fact]
    public void A_fence_is_persisted_and_only_ever_rises()
    {
        string path = _rig.FencePath("node-a");
        var lv = Guid.NewGuid();
        var table = new FenceTable(path);
        Assert.Equal(0, table.Get(lv));
        Assert.True(table.Raise(lv, 4));
        Assert.False(table.Raise(lv, 3));
        Assert.False(table.Raise(lv, 4));
        Assert.True(table.Admits(new WriterId(lv, 4)));
        Assert.False(table.Admits(new WriterId(lv, 3)));
        Assert.True(table.Admits(new WriterId(lv, 6))); // a newer writer raises it
        Assert.Equal(6, table.Get(lv));
        Assert.False(File.Exists(path + ".tmp"));

        var reopened = new FenceTable(path);
        Assert.Equal(6, reopened.Get(lv));
        Assert.False(reopened.Admits(new WriterId(lv, 5)));
    }

    [Fact]
    public void A_damaged_fence_file_is_refused_with_a_clear_error()
    {
        string path = _rig.FencePath("node-a");
        File.WriteAllText(path, "{\"not-a-guid\": 3}");
        var e = Assert.Throws<StorageException>(() => new FenceTable(path));
        Assert.Contains("is not a fence table", e.Message);
        File.WriteAllText(path, "{ truncated");
        Assert.Throws<StorageException>(() => new FenceTable(path));
    }

    [Fact]
    public async Task A_raise_waits_for_a_stale_write_that_is_already_running()
    {
        var fences = new FenceTable(_rig.FencePath("node-a"));
        var lv = Guid.NewGuid();
        var gated = new GatedIo(_rig.Track(FilePhysicalVolumeIo.OpenOrCreate(_rig.PathOf("slow.img"), 1 << 20)));
        var io = new FencedPhysicalVolumeIo(gated, fences);
        Task write;
        using (PvWriter.Use(new WriterId(lv, 3)))
            write = io.WriteAsync(0, new byte[] { 3, 3, 3 }).AsTask(); // admitted, then held in the io
        var raise = Task.Run(() => fences.Raise(lv, 4));
        await Task.Delay(200);
        Assert.False(raise.IsCompleted); // the raise waits for the admitted write
        gated.Release.TrySetResult();
        Assert.True(await raise);
        Assert.Equal(new byte[] { 3, 3, 3 }, _rig.ReadFile("slow.img", 0, 3)); // landed before the raise returned
        await write;
        using (PvWriter.Use(new WriterId(lv, 3)))
            await Assert.ThrowsAsync<FencedWriteException>(async () => await io.WriteAsync(0, new byte[4096]));
    }

    // Holds every write until the test releases it.
    private sealed class GatedIo(IPhysicalVolumeIo inner) : IPhysicalVolumeIo
    {
        public TaskCompletionSource Release { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public string Name => inner.Name;

        public long Length => inner.Length;

        public ValueTask ReadAsync(long offset, Memory<byte> buffer, CancellationToken cancellationToken = default) => inner.ReadAsync(offset, buffer, cancellationToken);

        public async ValueTask WriteAsync(long offset, ReadOnlyMemory<byte> data, CancellationToken cancellationToken = default)
        {
            await Release.Task;
            await inner.WriteAsync(offset, data, cancellationToken);
        }

        public ValueTask FlushAsync(CancellationToken cancellationToken = default) => inner.FlushAsync(cancellationToken);

        public void Dispose() => inner.Dispose();
    }

    [Fact]
    public async Task A_local_pv_fences_stale_writers_like_a_remote_one()
    {
        var fences = new FenceTable(_rig.FencePath("node-a"));
        var lv = Guid.NewGuid();
        var io = new FencedPhysicalVolumeIo(_rig.Track(FilePhysicalVolumeIo.OpenOrCreate(_rig.PathOf("local.img"), 1 << 20)), fences);
        await io.WriteAsync(0, new byte[] { 1 }); // no writer: metadata, verbs
        using (PvWriter.Use(new WriterId(lv, 3)))
            await io.WriteAsync(1, new byte[] { 3 });
        Assert.True(fences.Raise(lv, 4));
        using (PvWriter.Use(new WriterId(lv, 3)))
        {
            var e = await Assert.ThrowsAsync<FencedWriteException>(async () => await io.WriteAsync(1, new byte[] { 33 }));
            Assert.StartsWith($"write by generation 3 of LV {lv} refused: generation 4 owns it", e.Message);
            Assert.Equal(4, e.OwnerGeneration);
            await Assert.ThrowsAsync<FencedWriteException>(async () => await io.FlushAsync());
        }
        using (PvWriter.Use(new WriterId(lv, 4)))
            await io.WriteAsync(2, new byte[] { 4 });
        await io.WriteAsync(3, new byte[] { 9 }); // writes with no writer are still admitted
        Assert.Equal(2, io.RefusedStaleWrites);
        Assert.Equal(new byte[] { 1, 3, 4, 9 }, _rig.ReadFile("local.img", 0, 4));
    }

    // Two PV files on two nodes, each served by its node's extent server, with a mirrored LV
    // across them; "node-x" and "node-y" each open the VG through their own clients.
    private async Task<(ExtentServer A, ExtentServer B, Guid PvA, Guid PvB)> TwoServersAsync()
    {
        var pvA = await _rig.CreatePvFileAsync("a.img", "node-a");
        var pvB = await _rig.CreatePvFileAsync("b.img", "node-b");
        var a = await _rig.StartServerAsync("node-a", [(pvA, "a.img")]);
        var b = await _rig.StartServerAsync("node-b", [(pvB, "b.img")]);
        return (a, b, pvA, pvB);
    }

    private async Task<VolumeGroup> OpenVgAsync(ExtentServer a, ExtentServer b, Guid pvA, Guid pvB)
    {
        var pvs = new List<PhysicalVolume>
        {
            _rig.Track(await PhysicalVolume.OpenAsync(await RemotePhysicalVolumeIo.ConnectAsync("node-a", a.Endpoint, a.Token, pvA))),
            _rig.Track(await PhysicalVolume.OpenAsync(await RemotePhysicalVolumeIo.ConnectAsync("node-b", b.Endpoint, b.Token, pvB))),
        };
        return pvs[0].Vg is null ? _rig.Track(await VolumeGroup.CreateAsync("vg0", pvs, Extent)) : _rig.Track(await VolumeGroup.OpenAsync("vg0", pvs));
    }

    [Fact]
    public async Task A_stale_generation_cannot_write_a_mirror_that_a_newer_one_owns()
    {
        var (a, b, pvA, pvB) = await TwoServersAsync();
        var vgX = await OpenVgAsync(a, b, pvA, pvB);
        var entry = await vgX.CreateLvAsync("m", 4 * Extent, new LvLayout(SegmentType.Mirror, 2));
        Assert.Equal(2, entry.Segments[0].Areas.Select(x => x.Pv).Distinct().Count());
        var size = (int)(4 * Extent);

        // Generation 3 on node x writes everything.
        using var lv3 = vgX.OpenLv("m");
        lv3.Writer = new WriterId(entry.Id, 3);
        await lv3.WriteAsync(0, RemoteRig.Pattern(size, 3));
        await lv3.FlushAsync();

        // The VM restarts on node y as generation 4: the coordinator fences the LV on every server.
        Assert.True(a.Fences.Raise(entry.Id, 4));
        Assert.True(b.Fences.Raise(entry.Id, 4));
        var vgY = await OpenVgAsync(a, b, pvA, pvB);
        using var lv4 = vgY.OpenLv("m");
        lv4.Writer = new WriterId(entry.Id, 4);

        var stale = await Assert.ThrowsAsync<FencedWriteException>(async () => await lv3.WriteAsync(0, RemoteRig.Pattern(8192, 33)));
        Assert.Equal(4, stale.OwnerGeneration);
        await lv4.WriteAsync(0, RemoteRig.Pattern(size, 4));
        await lv4.FlushAsync();
        await Assert.ThrowsAsync<FencedWriteException>(async () => await lv3.WriteAsync(Extent, RemoteRig.Pattern(8192, 34)));
        await Assert.ThrowsAsync<FencedWriteException>(async () => await lv3.FlushAsync());
        Assert.True(a.RefusedStaleWrites + b.RefusedStaleWrites >= 3);
        // Refusals are not failures: the stale writer did not take legs out of service.
        Assert.All(vgX.Pvs.Values, pv => Assert.False(pv.Failed));

        // The disk holds generation 4's data only, on both legs.
        var vgZ = await OpenVgAsync(a, b, pvA, pvB);
        using var check = vgZ.OpenLv("m");
        var back = new byte[size];
        await check.ReadAsync(0, back);
        Assert.Equal(RemoteRig.Pattern(size, 4), back);
        var scrub = await check.ScrubAsync();
        Assert.Equal(0, scrub.Repaired + scrub.Resynced + scrub.Unrepairable);
    }

    [Fact]
    public async Task A_stale_writers_partial_write_over_the_newer_generations_data_is_refused_as_fenced_not_reported_as_corrupt()
    {
        var (a, b, pvA, pvB) = await TwoServersAsync();
        var vgX = await OpenVgAsync(a, b, pvA, pvB);
        var entry = await vgX.CreateLvAsync("m", 2 * Extent, new LvLayout(SegmentType.Mirror, 2));
        using var lv3 = vgX.OpenLv("m");
        lv3.Writer = new WriterId(entry.Id, 3);
        await lv3.WriteAsync(0, RemoteRig.Pattern(8192, 3));
        await lv3.FlushAsync();

        // Generation 4 owns the LV and rewrites the first block on both legs (with its checksums,
        // which generation 3's PVs do not know).
        Assert.True(a.Fences.Raise(entry.Id, 4));
        Assert.True(b.Fences.Raise(entry.Id, 4));
        var vgY = await OpenVgAsync(a, b, pvA, pvB);
        using var lv4 = vgY.OpenLv("m");
        lv4.Writer = new WriterId(entry.Id, 4);
        await lv4.WriteAsync(0, RemoteRig.Pattern(4096, 4));
        await lv4.FlushAsync();
        long before = a.RefusedStaleWrites + b.RefusedStaleWrites;

        // Generation 3 writes one sector of that block: its read-modify-write reads generation 4's
        // data, which fails generation 3's checksums on every copy. That is the fence, not corruption.
        var stale = await Assert.ThrowsAsync<FencedWriteException>(async () => await lv3.WriteAsync(512, RemoteRig.Pattern(512, 33)));
        Assert.Equal(4, stale.OwnerGeneration);
        Assert.True(a.RefusedStaleWrites + b.RefusedStaleWrites > before, "the servers did not count the stale writer's refusal");
        Assert.Empty(lv3.IntegrityEvents);
        Assert.All(vgX.Pvs.Values, pv => Assert.False(pv.Failed));

        // Generation 4's block is whole on both legs.
        var back = new byte[4096];
        await lv4.ReadAsync(0, back);
        Assert.Equal(RemoteRig.Pattern(4096, 4), back);
        var scrub = await lv4.ScrubAsync();
        Assert.Equal(0, scrub.Repaired + scrub.Resynced + scrub.Unrepairable);
    }

    [Fact]
    public async Task The_first_write_of_a_newer_generation_fences_the_older_one_on_its_own()
    {
        var (a, b, pvA, pvB) = await TwoServersAsync();
        var vg = await OpenVgAsync(a, b, pvA, pvB);
        var entry = await vg.CreateLvAsync("l", 2 * Extent, LvLayout.Linear);
        using var lv3 = vg.OpenLv("l");
        lv3.Writer = new WriterId(entry.Id, 3);
        using var lv5 = vg.OpenLv("l");
        lv5.Writer = new WriterId(entry.Id, 5);
        await lv3.WriteAsync(0, new byte[4096]);
        await lv5.WriteAsync(0, new byte[4096]);
        await Assert.ThrowsAsync<FencedWriteException>(async () => await lv3.WriteAsync(0, new byte[4096]));
        var holder = entry.Segments[0].Areas[0].Pv == pvA ? a : b;
        Assert.Equal(5, holder.Fences.Get(entry.Id));
    }

    [Fact]
    public async Task A_fence_survives_a_restart_of_the_extent_server()
    {
        var (a, b, pvA, pvB) = await TwoServersAsync();
        var vg = await OpenVgAsync(a, b, pvA, pvB);
        var entry = await vg.CreateLvAsync("l", 2 * Extent, LvLayout.Linear);
        var holderPv = entry.Segments[0].Areas[0].Pv;
        var (server, node, file) = holderPv == pvA ? (a, "node-a", "a.img") : (b, "node-b", "b.img");
        Assert.True(server.Fences.Raise(entry.Id, 7));
        int port = server.Endpoint.Port;
        string token = server.Token;
        await server.DisposeAsync();

        // The node comes back: its new server reads the same fence file.
        var again = await _rig.StartServerAsync(node, [(holderPv, file)], port, token);
        Assert.Equal(7, again.Fences.Get(entry.Id));
        using var io = await RemotePhysicalVolumeIo.ConnectAsync(node, again.Endpoint, again.Token, holderPv);
        using (PvWriter.Use(new WriterId(entry.Id, 6)))
            await Assert.ThrowsAsync<FencedWriteException>(async () => await io.WriteAsync(1 << 20, new byte[4096]));
        using (PvWriter.Use(new WriterId(entry.Id, 7)))
            await io.WriteAsync(1 << 20, new byte[4096]);
        Assert.Equal(1, again.RefusedStaleWrites);
    }
}
