// The virtio-mmio transport: identification, empty slots, feature negotiation, interrupts and
// notification suppression, and how it answers a hostile driver (DEVICE_NEEDS_RESET, never a
// host exception or an access outside guest RAM).
using Tern.Machine.Devices.Virtio;
using Tern.Riscv;

namespace Tern.Machine.Tests.Virtio;

public sealed class VirtioMmioTests : IDisposable
{
    private readonly GuestMemory _mem = new(VirtioDriver.RamBase, 16 << 20);

    public void Dispose() => _mem.Dispose();

    private VirtioDriver Blk(int version = 2) => new(_mem, new VirtioBlk(new MemoryBlockBackend(16)), version);

    private static void AssertNeedsReset(VirtioDriver drv)
    {
        Assert.True(drv.NeedsReset);
        Assert.NotEqual(0u, drv.Reg(0x60) & VirtioMmio.InterruptConfigChange);
        Assert.True(drv.Line);
        Assert.NotNull(drv.Transport.LastError);
    }

    // After a device error, a reset and a fresh start make the device usable again.
    private static void AssertRecovers(VirtioDriver drv)
    {
        drv.Set(0x70, 0);
        Assert.False(drv.NeedsReset);
        Assert.False(drv.Line);
        drv.Start(1);
        Assert.Equal(VirtioBlk.StatusOk, VirtioBlkTests.Do(drv, VirtioBlk.TypeIn, 0, new byte[512], true).Status);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public void Empty_slot_reads_device_id_0_and_ignores_writes(int version)
    {
        var drv = new VirtioDriver(_mem, null, version);
        Assert.Equal(VirtioMmio.MagicValue, drv.Reg(0x000));
        Assert.Equal((uint)version, drv.Reg(0x004));
        Assert.Equal(0u, drv.Reg(0x008));
        drv.Set(0x70, 0xf);
        drv.Set(0x50, 0);
        Assert.Equal(0u, drv.Reg(0x70));
        Assert.Equal(0u, drv.Reg(0x034));
        Assert.False(drv.Line);
    }

    [Fact]
    public void Registers_need_aligned_32_bit_accesses()
    {
        var drv = Blk();
        Assert.False(drv.Transport.Read(0x000, 8, out _));
        Assert.False(drv.Transport.Read(0x002, 4, out _));
        Assert.False(drv.Transport.Write(0x070, 1, 0));
        Assert.True(drv.Transport.Read(0x100, 1, out ulong b));
        Assert.Equal(16ul, b);
        Assert.False(drv.Transport.Read(0x101, 2, out _));
        Assert.True(drv.Transport.Read(0xff0, 4, out ulong z));
        Assert.Equal(0ul, z);
    }

    [Fact]
    public void Features_without_version_1_are_accepted_like_qemu_does_for_xv6()
    {
        // xv6-riscv writes only the low feature word on a version-2 device.
        var drv = Blk();
        drv.Set(0x70, 3);
        drv.Set(0x20, drv.Reg(0x10) & ~(1u << VirtioMmio.FeatureIndirectDesc));
        drv.Set(0x70, 3 | VirtioMmio.StatusFeaturesOk);
        Assert.NotEqual(0u, drv.Reg(0x70) & VirtioMmio.StatusFeaturesOk);
        Assert.False(drv.Transport.HasFeature(VirtioMmio.FeatureVersion1));
    }

    [Fact]
    public void Features_not_offered_are_refused()
    {
        var drv = Blk();
        drv.Set(0x70, 3);
        drv.Set(0x24, 1);
        drv.Set(0x20, 1); // VERSION_1
        drv.Set(0x24, 0);
        drv.Set(0x20, 1u << 23);
        drv.Set(0x70, 3 | VirtioMmio.StatusFeaturesOk);
        Assert.Equal(0u, drv.Reg(0x70) & VirtioMmio.StatusFeaturesOk);
    }

    [Fact]
    public void Avail_flag_no_interrupt_suppresses_the_used_interrupt()
    {
        var drv = Blk();
        drv.Start(1, drop: 1UL << VirtioMmio.FeatureEventIdx);
        drv.Queues[0].SetAvailFlags(1);
        VirtioBlkTests.Do(drv, VirtioBlk.TypeIn, 0, new byte[512], true);
        Assert.False(drv.Line);
        drv.Queues[0].SetAvailFlags(0);
        VirtioBlkTests.Do(drv, VirtioBlk.TypeIn, 0, new byte[512], true);
        Assert.True(drv.Line);
    }

    [Fact]
    public void Event_idx_publishes_avail_event_and_honours_used_event()
    {
        var drv = Blk();
        drv.Start(1);
        Assert.True(drv.Transport.HasFeature(VirtioMmio.FeatureEventIdx));
        var q = drv.Queues[0];
        q.SetUsedEvent(5); // interrupt only once used idx passes 5
        for (int i = 0; i < 5; i++)
        {
            VirtioBlkTests.Do(drv, VirtioBlk.TypeIn, 0, new byte[512], true);
            Assert.False(drv.Line);
        }
        Assert.Equal(5, q.AvailEvent);
        VirtioBlkTests.Do(drv, VirtioBlk.TypeIn, 0, new byte[512], true);
        Assert.True(drv.Line);
        Assert.Equal(6, q.AvailEvent);
    }

    [Fact]
    public void Config_change_bumps_generation_and_interrupts()
    {
        var drv = Blk();
        drv.Start(1);
        uint gen = drv.Reg(0xfc);
        drv.Transport.NotifyConfigChanged();
        Assert.Equal(gen + 1, drv.Reg(0xfc));
        Assert.Equal(VirtioMmio.InterruptConfigChange, drv.Reg(0x60));
        drv.Ack();
        Assert.False(drv.Line);
    }

    [Fact]
    public void Descriptor_loop_is_a_device_error()
    {
        var drv = Blk();
        drv.Start(1);
        var q = drv.Queues[0];
        var (h, _, _) = VirtioBlkTests.Request(drv, VirtioBlk.TypeIn, 0, 512);
        q.WriteDesc(q.Desc, 0, h, 16, Virtqueue.DescNext, 1);
        q.WriteDesc(q.Desc, 1, h, 16, Virtqueue.DescNext, 0);
        q.Publish(0);
        q.Notify();
        AssertNeedsReset(drv);
        Assert.Empty(q.TakeUsed());
        // Further notifications are ignored until the reset.
        q.Notify();
        AssertRecovers(drv);
    }

    [Fact]
    public void Buffers_outside_ram_are_a_device_error()
    {
        foreach (var (addr, len) in new (ulong, uint)[] { (0x1000, 16), (VirtioDriver.RamBase + (16 << 20) - 8, 16), (ulong.MaxValue - 4, 16), (VirtioDriver.RamBase, uint.MaxValue) })
        {
            var drv = Blk();
            drv.Start(1);
            var (h, _, s) = VirtioBlkTests.Request(drv, VirtioBlk.TypeIn, 0, 512);
            drv.Queues[0].Submit(new Buffer(h, 16, false), new Buffer(addr, len, true), new Buffer(s, 1, true));
            AssertNeedsReset(drv);
            AssertRecovers(drv);
        }
    }

    [Fact]
    public void Nested_indirect_tables_are_a_device_error()
    {
        var drv = Blk();
        drv.Start(1);
        var q = drv.Queues[0];
        ulong inner = drv.Alloc(16);
        ulong outer = drv.Alloc(16);
        q.WriteDesc(outer, 0, inner, 16, Virtqueue.DescIndirect, 0);
        q.WriteDesc(q.Desc, 0, outer, 16, Virtqueue.DescIndirect, 0);
        q.Publish(0);
        q.Notify();
        AssertNeedsReset(drv);
        AssertRecovers(drv);
    }

    [Fact]
    public void Indirect_without_the_feature_is_a_device_error()
    {
        var drv = Blk();
        drv.Start(1, drop: 1UL << VirtioMmio.FeatureIndirectDesc);
        var (h, d, s) = VirtioBlkTests.Request(drv, VirtioBlk.TypeIn, 0, 512);
        var q = drv.Queues[0];
        q.Publish(q.AddIndirect(new Buffer(h, 16, false), new Buffer(d, 512, true), new Buffer(s, 1, true)));
        q.Notify();
        AssertNeedsReset(drv);
    }

    [Fact]
    public void Readable_after_writable_and_missing_header_are_device_errors()
    {
        var drv = Blk();
        drv.Start(1);
        var (h, d, s) = VirtioBlkTests.Request(drv, VirtioBlk.TypeIn, 0, 512);
        drv.Queues[0].Submit(new Buffer(h, 16, false), new Buffer(d, 512, true), new Buffer(s, 1, false));
        AssertNeedsReset(drv);
        AssertRecovers(drv);
        drv.Queues[0].Submit(new Buffer(h, 8, false), new Buffer(s, 1, true));
        AssertNeedsReset(drv);
    }

    [Fact]
    public void Available_index_running_ahead_is_a_device_error()
    {
        var drv = Blk();
        drv.Start(1);
        drv.Queues[0].AvailIndex = 1000;
        drv.Queues[0].Notify();
        AssertNeedsReset(drv);
    }

    [Theory]
    [InlineData(0u)]
    [InlineData(3u)]
    [InlineData(100u)]
    [InlineData(512u)]
    public void Bad_queue_sizes_are_device_errors(uint size)
    {
        var drv = Blk();
        drv.Set(0x70, 3);
        drv.Set(0x30, 0);
        drv.Set(0x38, size);
        AssertNeedsReset(drv);
    }

    [Theory]
    [InlineData(0x1000ul, 0x8000_2000ul, 0x8000_3000ul)] // descriptors below RAM
    [InlineData(0x8000_1008ul, 0x8000_2000ul, 0x8000_3000ul)] // descriptors not 16-aligned
    [InlineData(0x8000_1000ul, 0x8000_2001ul, 0x8000_3000ul)] // avail not 2-aligned
    [InlineData(0x8000_1000ul, 0x8000_2000ul, 0x8000_3002ul)] // used not 4-aligned
    [InlineData(0x8000_1000ul, 0x8000_2000ul, 0x80ff_fff0ul)] // used runs off the end of RAM
    [InlineData(0x8000_1000ul, 0xffff_ffff_ffff_fff0ul, 0x8000_3000ul)]
    public void Bad_ring_layouts_are_device_errors(ulong desc, ulong avail, ulong used)
    {
        var drv = Blk();
        drv.Set(0x70, 3);
        drv.Set(0x30, 0);
        drv.Set(0x38, 16);
        drv.Set(0x80, (uint)desc);
        drv.Set(0x84, (uint)(desc >> 32));
        drv.Set(0x90, (uint)avail);
        drv.Set(0x94, (uint)(avail >> 32));
        drv.Set(0xa0, (uint)used);
        drv.Set(0xa4, (uint)(used >> 32));
        drv.Set(0x44, 1);
        AssertNeedsReset(drv);
        Assert.Equal(0u, drv.Reg(0x44));
    }

    [Fact]
    public void Legacy_pfn_outside_ram_is_a_device_error()
    {
        var drv = Blk(version: 1);
        drv.Set(0x70, 3);
        drv.Set(0x28, 4096);
        drv.Set(0x30, 0);
        drv.Set(0x38, 16);
        drv.Set(0x40, 0x10); // 0x10000: below RAM
        AssertNeedsReset(drv);
        Assert.Equal(0u, drv.Reg(0x40));
    }

    [Theory]
    [InlineData(0x000)]
    [InlineData(0x008)]
    [InlineData(0x034)]
    [InlineData(0x060)]
    [InlineData(0x0fc)]
    public void Writes_to_read_only_registers_are_device_errors(int offset)
    {
        var drv = Blk();
        drv.Start(1);
        drv.Set(offset, 0x1234);
        AssertNeedsReset(drv);
        Assert.Equal(VirtioMmio.MagicValue, drv.Reg(0));
    }

    [Fact]
    public void Changing_an_enabled_queue_is_a_device_error()
    {
        var drv = Blk();
        drv.Start(1);
        drv.Set(0x30, 0);
        drv.Set(0x80, 0);
        AssertNeedsReset(drv);
    }

    [Fact]
    public void Device_writes_stay_inside_the_buffers_it_was_given()
    {
        var drv = Blk();
        drv.Start(1);
        var (h, d, _) = VirtioBlkTests.Request(drv, VirtioBlk.TypeIn, 0, 1024);
        ulong s = drv.Alloc(1);
        _mem.Span(d, 1024).Fill(0xee);
        // The data buffer is declared as 512 bytes of a 1024-byte area: the device must not touch the rest.
        drv.Queues[0].Submit(new Buffer(h, 16, false), new Buffer(d, 512, true), new Buffer(s, 1, true));
        Assert.Equal(VirtioBlk.StatusOk, _mem.Span(s, 1)[0]);
        Assert.All(_mem.Span(d + 512, 512).ToArray(), b => Assert.Equal(0xee, b));
        Assert.Equal(0, _mem.Span(d, 1)[0]);
    }
}
