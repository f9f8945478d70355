// A mirror with one leg behind a real extent server on loopback: when the server dies the leg
// fails once (the remote I/O's timeout), writes go on on the local leg without waiting for it
// again, the leg is reported degraded with its host, and when the server is back the leg is
// brought back and resynced from the regions it missed.
using System.Diagnostics;
using System.Net;
using Tern.Storage.Format;
using Tern.Storage.Remote;

namespace Tern.Storage.Tests;

public sealed class RemoteMirrorTests : IDisposable
{
    private const long Extent = 1 << 20;
    private readonly TestPool _pool = new();

    public void Dispose() => _pool.Dispose();

    [Fact]
    public async Task A_leg_whose_extent_server_dies_degrades_fast_and_is_resynced_when_it_returns()
    {
        // PV 0 is local to this node ("node-1"); PV 1 belongs to "node-2" and is reached through its extent server.
        var created = await _pool.CreatePvsAsync(2, 24 << 20, i => $"node-{i + 1}");
        var vgCreated = await VolumeGroup.CreateAsync("vg0", created, Extent);
        await vgCreated.CreateLvAsync("m", 8 * Extent, new LvLayout(SegmentType.Mirror, 2));
        Guid remoteId = created[1].Id;
        vgCreated.Dispose();
        _pool.CloseAll();

        var fences = new FenceTable(Path.Combine(_pool.Dir, "fences.json"));
        var server = await ExtentServer.StartAsync(IPAddress.Loopback, 0, fences);
        var endpoint = server.Endpoint;
        string token = server.Token;
        server.AddVolume(remoteId, FilePhysicalVolumeIo.Open(_pool.PathOf(1)));
        // The timeout is long enough for the first 8 MiB to reach the server on a loaded CI machine (1 s was
        // not), and short enough that paying it on every write would exceed the bound below. The connect
        // timeout covers the hello too (the server's thread-pool work): 500 ms could fail the first
        // connection or the probe that brings the leg back on a loaded machine; a dead server on loopback
        // refuses at once, so no step here waits it out.
        var options = new RemoteIoOptions { RequestTimeout = TimeSpan.FromSeconds(5), ConnectTimeout = TimeSpan.FromSeconds(5) };
        var remote = await PhysicalVolume.OpenAsync(await RemotePhysicalVolumeIo.ConnectAsync("node-2", endpoint, token, remoteId, options));
        var local = _pool.Track(await PhysicalVolume.OpenAsync(FilePhysicalVolumeIo.Open(_pool.PathOf(0))));
        using var vg = await VolumeGroup.OpenAsync("vg0", [local, remote]);
        using var lv = vg.OpenLv("m");
        var model = new byte[8 * Extent];
        new Random(1).NextBytes(model);
        await lv.WriteAsync(0, model);
        await lv.FlushAsync();
        Assert.Empty(vg.Degraded("m"));

        // node-2's extent server dies: the first write pays the timeout once, the next ones do not wait for it.
        await server.DisposeAsync();
        var random = new Random(2);
        var clock = Stopwatch.StartNew();
        for (int i = 0; i < 20; i++)
        {
            long off = (i % 4 * VgMetadata.RegionSize) + (random.Next(64) * 4096L);
            var block = new byte[4096];
            random.NextBytes(block);
            await lv.WriteAsync(off, block);
            block.CopyTo(model, off);
        }
        await lv.FlushAsync();
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(14), $"20 writes with a dead leg took {clock.Elapsed}: the timeout was paid again and again");
        var degraded = Assert.Single(vg.Degraded("m"));
        Assert.Equal((LegProblem.Failed, "node-2", true), (degraded.Problem, degraded.Host, degraded.Unreachable));
        Assert.True(degraded.DirtyRegions >= 1);
        var back = new byte[model.Length];
        await lv.ReadAsync(0, back);
        Assert.Equal(model, back);
        Assert.Empty(await vg.ReinstatePvsAsync()); // still away

        // It comes back on the same address: the leg is probed, brought back and resynced.
        await using var again = await ExtentServer.StartAsync(IPAddress.Loopback, endpoint.Port, fences, token);
        again.AddVolume(remoteId, FilePhysicalVolumeIo.Open(_pool.PathOf(1)));
        Assert.Equal([remote.Name], await vg.ReinstatePvsAsync());
        Assert.Equal(LegProblem.OutOfDate, Assert.Single(vg.Degraded("m")).Problem);
        await vg.ResyncAsync("m");
        Assert.Empty(vg.Degraded("m"));

        // The remote leg alone now holds everything written while it was away.
        var leg = vg.Metadata.FindLv("m")!.Segments[0].Areas.Single(a => a.Pv == remoteId);
        var data = new byte[model.Length];
        Assert.Null(await remote.ReadBlocksAsync(leg.StartExtent * Extent, data));
        Assert.Equal(model, data);
        remote.Dispose(); // while its server still runs
    }
}
