// virtio-rng filling guest buffers, and two virtio-net cards exchanging frames over a
// loopback pair (each with its own guest RAM, as two guests would have).
using System.Buffers.Binary;
using Tern.Machine.Devices.Virtio;
using Tern.Riscv;

namespace Tern.Machine.Tests.Virtio;

public sealed class VirtioRngNetTests : IDisposable
{
    private readonly GuestMemory _memA = new(VirtioDriver.RamBase, 16 << 20);
    private readonly GuestMemory _memB = new(VirtioDriver.RamBase, 16 << 20);

    public void Dispose()
    {
        _memA.Dispose();
        _memB.Dispose();
    }

    [Fact]
    public void Rng_fills_device_writable_buffers()
    {
        var rng = new VirtioRng();
        var drv = new VirtioDriver(_memA, rng);
        Assert.Equal(4u, drv.Reg(0x008));
        drv.Start(1);
        ulong a = drv.Alloc(256), b = drv.Alloc(64);
        drv.Queues[0].Submit(new Buffer(a, 256, true), new Buffer(b, 64, true));
        var used = drv.Queues[0].TakeUsed();
        Assert.Equal(320u, Assert.Single(used).Len);
        Assert.Contains(_memA.Span(a, 256).ToArray(), x => x != 0);
        Assert.Contains(_memA.Span(b, 64).ToArray(), x => x != 0);
        Assert.True(drv.Line);
        Assert.Equal(320, rng.BytesProvided);
    }

    [Fact]
    public void Rng_caps_huge_requests()
    {
        var drv = new VirtioDriver(_memA, new VirtioRng());
        drv.Start(1);
        ulong a = drv.Alloc(8 << 20);
        drv.Queues[0].Submit(new Buffer(a, 8 << 20, true));
        Assert.Equal((uint)VirtioRng.MaxRequestBytes, Assert.Single(drv.Queues[0].TakeUsed()).Len);
        Assert.All(_memA.Span(a + VirtioRng.MaxRequestBytes, 4096).ToArray(), x => Assert.Equal(0, x));
    }

    private static (VirtioDriver Driver, VirtioNet Net) Nic(GuestMemory mem, INetBackend backend, int index, int version = 2)
    {
        var net = new VirtioNet(backend, VirtioNet.DefaultMac(index));
        var drv = new VirtioDriver(mem, net, version);
        drv.Start(2);
        return (drv, net);
    }

    private static byte[] Frame(int length, byte seed)
    {
        var f = new byte[length];
        for (int i = 0; i < length; i++)
            f[i] = (byte)(seed + i);
        return f;
    }

    private static void Transmit(VirtioDriver drv, byte[] frame, int header)
    {
        ulong h = drv.Alloc((ulong)header), d = drv.Alloc((ulong)frame.Length);
        drv.Memory.Write(d, frame);
        drv.Queues[VirtioNet.TransmitQueue].Submit(new Buffer(h, (uint)header, false), new Buffer(d, (uint)frame.Length, false));
        Assert.Single(drv.Queues[VirtioNet.TransmitQueue].TakeUsed());
    }

    private static ulong PostReceive(VirtioDriver drv, uint size = 1526)
    {
        ulong r = drv.Alloc(size);
        drv.Queues[VirtioNet.ReceiveQueue].Submit(new Buffer(r, size, true));
        return r;
    }

    [Fact]
    public void Net_config_holds_the_mac_and_link_up()
    {
        var (drv, _) = Nic(_memA, new LoopbackPair().A, 0);
        Assert.Equal(1u, drv.Reg(0x008));
        var mac = new byte[6];
        for (int i = 0; i < 6; i++)
        {
            Assert.True(drv.Transport.Read((ulong)(0x100 + i), 1, out ulong b));
            mac[i] = (byte)b;
        }
        Assert.Equal(VirtioNet.DefaultMac(0), mac);
        Assert.True(drv.Transport.Read(0x106, 2, out ulong status));
        Assert.Equal(1ul, status);
    }

    [Theory]
    [InlineData(2, 12)]
    [InlineData(1, 10)]
    public void Loopback_pair_carries_frames_between_two_guests(int version, int header)
    {
        var pair = new LoopbackPair();
        var (a, netA) = Nic(_memA, pair.A, 0, version);
        var (b, netB) = Nic(_memB, pair.B, 1, version);
        int wakeups = 0;
        pair.B.FrameAvailable += () => wakeups++;

        ulong rx = PostReceive(b);
        Assert.False(b.Line);
        var frame = Frame(60, 3);
        Transmit(a, frame, header);
        Assert.Equal(1, wakeups);
        Assert.Equal(1, netA.FramesSent);

        b.Transport.Poll();
        var used = b.Queues[VirtioNet.ReceiveQueue].TakeUsed();
        Assert.Equal((uint)(header + 60), Assert.Single(used).Len);
        Assert.Equal(frame, _memB.Span(rx + (ulong)header, 60).ToArray());
        if (header == 12)
            Assert.Equal(1, BinaryPrimitives.ReadUInt16LittleEndian(_memB.Span(rx + 10, 2))); // num_buffers
        Assert.True(b.Line);
        Assert.Equal(1, netB.FramesReceived);

        // A frame that arrives before a buffer waits for one; posting the buffer delivers it.
        var back = Frame(100, 9);
        Transmit(b, back, header);
        a.Transport.Poll();
        Assert.Empty(a.Queues[VirtioNet.ReceiveQueue].TakeUsed());
        ulong rxA = PostReceive(a);
        Assert.Single(a.Queues[VirtioNet.ReceiveQueue].TakeUsed());
        Assert.Equal(back, _memA.Span(rxA + (ulong)header, 100).ToArray());
    }

    [Fact]
    public void Frames_larger_than_the_receive_buffer_are_dropped()
    {
        var pair = new LoopbackPair();
        var (a, _) = Nic(_memA, pair.A, 0);
        var (b, netB) = Nic(_memB, pair.B, 1);
        PostReceive(b, 100);
        Transmit(a, Frame(200, 1), 12);
        Transmit(a, Frame(50, 2), 12);
        b.Transport.Poll();
        Assert.Equal(62u, Assert.Single(b.Queues[VirtioNet.ReceiveQueue].TakeUsed()).Len);
        Assert.Equal(1, netB.FramesDropped);
        Assert.False(b.NeedsReset);
    }

    [Fact]
    public void Idle_polling_does_not_dirty_guest_memory()
    {
        var (drv, _) = Nic(_memA, new LoopbackPair().A, 0);
        PostReceive(drv);
        drv.Transport.Poll();
        var bitmap = new ulong[_memA.DirtyWords];
        _memA.HarvestDirty(bitmap);
        for (int i = 0; i < 10; i++)
            drv.Transport.Poll();
        _memA.HarvestDirty(bitmap);
        Assert.All(bitmap, w => Assert.Equal(0ul, w));
    }

    [Fact]
    public void Loopback_queue_is_bounded()
    {
        var pair = new LoopbackPair();
        for (int i = 0; i < LoopbackPair.QueueLimit + 10; i++)
            pair.A.Send(Frame(60, (byte)i));
        Assert.Equal(10, pair.B.Dropped);
        int n = 0;
        while (pair.B.TryReceive(out _))
            n++;
        Assert.Equal(LoopbackPair.QueueLimit, n);
    }
}
