// A volume group whose PVs are all on extent servers: the pool's whole feature set (create,
// linear and mirrored LVs, checksums, read repair, scrub, reopen) works unchanged over the
// remote data path.
using Tern.Storage.Format;
using Tern.Storage.Remote;

namespace Tern.Storage.Tests.Remote;

public sealed class RemoteVolumeGroupTests : IAsyncLifetime, IDisposable
{
    private const long Extent = 1 << 20;
    private readonly RemoteRig _rig = new();
    private ExtentServer _a = null!, _b = null!;
    private Guid _pvA, _pvB;

    public async Task InitializeAsync()
    {
        _pvA = await _rig.CreatePvFileAsync("a.img", "node-a");
        _pvB = await _rig.CreatePvFileAsync("b.img", "node-b");
        _a = await _rig.StartServerAsync("node-a", [(_pvA, "a.img")]);
        _b = await _rig.StartServerAsync("node-b", [(_pvB, "b.img")]);
    }

    public async Task DisposeAsync() => await _rig.DisposeAsync();

    public void Dispose() => _rig.Dispose();

    // The caller closes the PVs (a VG does not own its PVs).
    private async Task<List<PhysicalVolume>> OpenPvsAsync(RemoteIoOptions? options = null) =>
    [
        await PhysicalVolume.OpenAsync(await _rig.ConnectAsync("node-a", _a, _pvA, options)),
        await PhysicalVolume.OpenAsync(await _rig.ConnectAsync("node-b", _b, _pvB, options)),
    ];

    [Fact]
    public async Task Linear_and_mirrored_lvs_over_two_extent_servers_write_read_scrub_and_reopen()
    {
        var pvs = await OpenPvsAsync();
        Assert.Equal($"node-a:{_pvA}", pvs[0].Name);
        var model = new Dictionary<string, byte[]>();
        using (var vg = await VolumeGroup.CreateAsync("vg0", pvs, Extent))
        {
            await vg.CreateLvAsync("lin", 6 * Extent, LvLayout.Linear);
            var mirror = await vg.CreateLvAsync("mir", 4 * Extent, new LvLayout(SegmentType.Mirror, 2));
            Assert.Equal(["node-a", "node-b"], mirror.Segments[0].Areas.Select(x => vg.Metadata.Pvs.Single(p => p.Id == x.Pv).Host).Order());
            foreach (var name in new[] { "lin", "mir" })
            {
                using var lv = vg.OpenLv(name);
                var data = RemoteRig.Pattern((int)lv.Length, name.Length);
                await lv.WriteAsync(0, data);
                // An unaligned overwrite: read-modify-write through the servers.
                var patch = RemoteRig.Pattern(10000, 99);
                await lv.WriteAsync(12345, patch);
                patch.CopyTo(data, 12345);
                await lv.FlushAsync();
                var back = new byte[data.Length];
                await lv.ReadAsync(0, back);
                Assert.Equal(data, back);
                var scrub = await lv.ScrubAsync();
                Assert.Equal(lv.Length / LogicalVolume.BlockSize, scrub.BlocksChecked);
                Assert.Equal(0, scrub.Repaired + scrub.Unrepairable + scrub.Resynced);
                model[name] = data;
            }

            // Damage one leg's copy behind the server's back: a read through the servers repairs it.
            var leg = vg.Metadata.FindLv("mir")!.Segments[0].Areas[1];
            var file = leg.Pv == _pvA ? "a.img" : "b.img";
            var label = vg.Pvs[leg.Pv].Label;
            long at = label.DataOffset + (leg.StartExtent * Extent) + 8192;
            using (var f = new FileStream(_rig.PathOf(file), FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite))
            {
                f.Position = at;
                f.WriteByte((byte)(model["mir"][8192] ^ 0xFF));
            }
            using var mir = vg.OpenLv("mir");
            var block = new byte[4096];
            for (int i = 0; i < 2; i++)
            {
                // Whichever leg serves the read, a scrub finds and repairs the bad copy.
                await mir.ReadAsync(8192, block);
                Assert.Equal(model["mir"].AsSpan(8192, 4096).ToArray(), block);
            }
            var result = await mir.ScrubAsync();
            Assert.Equal(0, result.Unrepairable);
            var repaired = Assert.Single(mir.IntegrityEvents);
            Assert.True(repaired.Repaired);
            Assert.Equal(8192, repaired.LvOffset);
            Assert.Equal(model["mir"][8192], _rig.ReadFile(file, at, 1)[0]);
        }
        foreach (var pv in pvs)
            pv.Dispose();

        // Reopen everything through fresh connections: the VG and both LVs are intact.
        var reopened = await OpenPvsAsync();
        foreach (var pv in reopened)
            _rig.Track(pv);
        using var again = await VolumeGroup.OpenAsync("vg0", reopened);
        Assert.Empty(again.Repairs);
        foreach (var (name, data) in model)
        {
            using var lv = again.OpenLv(name);
            var back = new byte[data.Length];
            await lv.ReadAsync(0, back);
            Assert.Equal(data, back);
        }
    }

    [Fact]
    public async Task A_mirror_keeps_writing_when_the_server_of_one_leg_dies()
    {
        // A dead server's closed socket fails the leg at once; the timeout only has to let the first
        // writes through on a loaded machine.
        var pvs = await OpenPvsAsync(new RemoteIoOptions { RequestTimeout = TimeSpan.FromSeconds(5) });
        foreach (var pv in pvs)
            _rig.Track(pv);
        using var vg = await VolumeGroup.CreateAsync("vg0", pvs, Extent);
        await vg.CreateLvAsync("mir", 2 * Extent, new LvLayout(SegmentType.Mirror, 2));
        using var lv = vg.OpenLv("mir");
        var data = RemoteRig.Pattern((int)lv.Length, 5);
        await lv.WriteAsync(0, data);
        await lv.FlushAsync();

        await _b.DisposeAsync();
        var more = RemoteRig.Pattern(65536, 6);
        await lv.WriteAsync(0, more);
        await lv.FlushAsync();
        more.CopyTo(data, 0);
        Assert.True(pvs[1].Failed);
        var legB = vg.Metadata.FindLv("mir")!.Segments[0].Areas.Single(x => x.Pv == _pvB);
        Assert.Contains(0L, legB.DirtyRegions ?? []);
        var back = new byte[data.Length];
        await lv.ReadAsync(0, back);
        Assert.Equal(data, back);
    }
}
