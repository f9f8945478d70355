// Save/restore of the transport and of each device: a state saved mid-run and restored into a
// fresh device over a copy of guest RAM continues exactly like the original, and states that do
// not fit are refused without changing anything.
using System.Text.Json;
using Tern.Machine.Devices.Virtio;
using Tern.Riscv;

namespace Tern.Machine.Tests.Virtio;

public sealed class VirtioSnapshotTests : IDisposable
{
    private const ulong RamSize = 16 << 20;
    private readonly List<GuestMemory> _mems = [];

    public void Dispose()
    {
        foreach (var m in _mems)
            m.Dispose();
    }

    private GuestMemory Ram()
    {
        var m = new GuestMemory(VirtioDriver.RamBase, RamSize);
        _mems.Add(m);
        return m;
    }

    private static GuestMemory CopyRam(GuestMemory from, GuestMemory to)
    {
        for (ulong off = 0; off < RamSize; off += 1 << 20)
            to.Write(VirtioDriver.RamBase + off, from.Span(VirtioDriver.RamBase + off, 1 << 20));
        return to;
    }

    private static void AssertSameRam(GuestMemory a, GuestMemory b)
    {
        for (ulong off = 0; off < RamSize; off += 1 << 20)
            Assert.True(a.Span(VirtioDriver.RamBase + off, 1 << 20).SequenceEqual(b.Span(VirtioDriver.RamBase + off, 1 << 20)), $"RAM differs in MiB {off >> 20}");
    }

    private static string Json(object o) => JsonSerializer.Serialize(o);

    private static void Work(VirtioDriver drv, int round)
    {
        var payload = Enumerable.Range(0, 1024).Select(i => (byte)(i + round)).ToArray();
        VirtioBlkTests.Do(drv, VirtioBlk.TypeOut, (ulong)(round % 14), payload, false);
        VirtioBlkTests.Do(drv, VirtioBlk.TypeIn, (ulong)((round * 3) % 15), new byte[512], true);
        VirtioBlkTests.Do(drv, VirtioBlk.TypeFlush, 0, [], false);
    }

    [Theory]
    [InlineData(2)]
    [InlineData(1)]
    public void Blk_restored_into_a_fresh_device_continues_identically(int version)
    {
        var memA = Ram();
        var diskA = new MemoryBlockBackend(16);
        var blkA = new VirtioBlk(diskA);
        var a = new VirtioDriver(memA, blkA, version);
        a.Start(1);
        for (int i = 0; i < 7; i++)
            Work(a, i); // leaves an unacknowledged interrupt pending

        var transportState = a.Transport.Save();
        var blkState = blkA.Save();
        var memB = CopyRam(memA, Ram());
        var diskB = new MemoryBlockBackend(16);
        diskA.Data.CopyTo(diskB.Data, 0);
        var blkB = new VirtioBlk(diskB);
        var b = a.CloneOnto(memB, blkB);
        b.Transport.Restore(transportState);
        blkB.Restore(blkState);
        Assert.True(b.Line);
        Assert.Equal(Json(transportState), Json(b.Transport.Save()));
        Assert.Equal(Json(blkState), Json(blkB.Save()));

        for (int i = 7; i < 40; i++)
        {
            Work(a, i);
            Work(b, i);
        }
        AssertSameRam(memA, memB);
        Assert.Equal(diskA.Data, diskB.Data);
        Assert.Equal(Json(a.Transport.Save()), Json(b.Transport.Save()));
        Assert.Equal(Json(blkA.Save()), Json(blkB.Save()));
        Assert.Equal(a.Line, b.Line);
    }

    [Fact]
    public void Net_and_rng_states_round_trip()
    {
        var mem = Ram();
        var pair = new LoopbackPair();
        var net = new VirtioNet(pair.A, VirtioNet.DefaultMac(3));
        var drv = new VirtioDriver(mem, net);
        drv.Start(2);
        drv.Queues[1].Submit(new Buffer(drv.Alloc(72), 72, false));
        var saved = net.Save();
        var fresh = new VirtioNet(new LoopbackPair().A, VirtioNet.DefaultMac(0));
        fresh.Restore(saved);
        Assert.Equal(VirtioNet.DefaultMac(3), fresh.Mac.ToArray());
        Assert.Equal(Json(saved), Json(fresh.Save()));
        Assert.Equal(1, fresh.FramesSent);

        var rng = new VirtioRng();
        var rdrv = new VirtioDriver(Ram(), rng);
        rdrv.Start(1);
        rdrv.Queues[0].Submit(new Buffer(rdrv.Alloc(32), 32, true));
        var fresh2 = new VirtioRng();
        fresh2.Restore(rng.Save());
        Assert.Equal(32, fresh2.BytesProvided);
        Assert.Throws<ArgumentException>(() => fresh2.Restore(new VirtioRngState(-1)));
        Assert.Throws<ArgumentException>(() => fresh.Restore(new VirtioNetState(new byte[5], 0, 0, 0)));
    }

    [Fact]
    public void Net_restored_mid_traffic_keeps_delivering()
    {
        var memA = Ram();
        var pair = new LoopbackPair();
        var netA = new VirtioNet(pair.A, VirtioNet.DefaultMac(0));
        var a = new VirtioDriver(memA, netA);
        a.Start(2);
        ulong rx1 = a.Alloc(1526), rx2 = a.Alloc(1526);
        a.Queues[0].Submit(new Buffer(rx1, 1526, true));
        a.Queues[0].Submit(new Buffer(rx2, 1526, true));
        pair.B.Send(new byte[] { 1, 2, 3, 4 });
        a.Transport.Poll();
        Assert.Single(a.Queues[0].TakeUsed());

        // Move the guest: a fresh NIC on the same backend endpoint, over a copy of RAM.
        var memB = CopyRam(memA, Ram());
        var netB = new VirtioNet(pair.A, VirtioNet.DefaultMac(9));
        var b = a.CloneOnto(memB, netB);
        b.Transport.Restore(a.Transport.Save());
        netB.Restore(netA.Save());
        pair.B.Send(new byte[] { 5, 6, 7, 8, 9 });
        b.Transport.Poll();
        Assert.Equal(17u, Assert.Single(b.Queues[0].TakeUsed()).Len);
        Assert.Equal(new byte[] { 5, 6, 7, 8, 9 }, memB.Span(rx2 + 12, 5).ToArray());
    }

    [Fact]
    public void Mismatched_states_are_refused_and_change_nothing()
    {
        var mem = Ram();
        var drv = new VirtioDriver(mem, new VirtioBlk(new MemoryBlockBackend(16)));
        drv.Start(1);
        var good = drv.Transport.Save();
        var rngSlot = new VirtioMmio(mem, new VirtioRng(), _ => { });
        Assert.Throws<ArgumentException>(() => rngSlot.Restore(good)); // another device type
        var legacy = new VirtioMmio(mem, new VirtioBlk(new MemoryBlockBackend(16)), _ => { }, version: 1);
        Assert.Throws<ArgumentException>(() => legacy.Restore(good));

        var fresh = new VirtioDriver(mem, new VirtioBlk(new MemoryBlockBackend(16)));
        var before = Json(fresh.Transport.Save());
        var q = good.Queues[0];
        Assert.Throws<ArgumentException>(() => fresh.Transport.Restore(good with { Queues = [q with { Num = 3 }] }));
        Assert.Throws<ArgumentException>(() => fresh.Transport.Restore(good with { Queues = [q with { Desc = 0x10 }] }));
        Assert.Throws<ArgumentException>(() => fresh.Transport.Restore(good with { Queues = [q, q] }));
        Assert.Throws<ArgumentException>(() => fresh.Transport.Restore(good with { InterruptStatus = 4 }));
        Assert.Equal(before, Json(fresh.Transport.Save()));

        var blk = new VirtioBlk(new MemoryBlockBackend(16));
        Assert.Throws<ArgumentException>(() => blk.Restore(new VirtioBlkState(32, false, 0, 0, 0, 0)));
        Assert.Throws<ArgumentException>(() => blk.Restore(new VirtioBlkState(16, true, 0, 0, 0, 0)));
    }
}
