// virtio-blk driven as a guest driver would: reads, writes, flushes and GET_ID on a temporary
// file, I/O errors from a failing backend, unsupported requests, read-only disks, indirect
// descriptors, the legacy interface, and dirty-page logging of DMA writes.
using System.Buffers.Binary;
using Tern.Machine.Devices.Virtio;
using Tern.Riscv;

namespace Tern.Machine.Tests.Virtio;

public sealed class VirtioBlkTests : IDisposable
{
    private readonly GuestMemory _mem = new(VirtioDriver.RamBase, 16 << 20);
    private readonly List<string> _files = [];

    public void Dispose()
    {
        _mem.Dispose();
        foreach (var f in _files)
            File.Delete(f);
    }

    private string TempDisk(int sectors)
    {
        string path = Path.GetTempFileName();
        _files.Add(path);
        var data = new byte[sectors * 512];
        for (int i = 0; i < data.Length; i++)
            data[i] = (byte)(i * 7 / 512);
        File.WriteAllBytes(path, data);
        return path;
    }

    // Header at h, data at d, status at s.
    internal static (ulong Header, ulong Data, ulong Status) Request(VirtioDriver drv, uint type, ulong sector, uint dataLength)
    {
        ulong h = drv.Alloc(16);
        var span = drv.Memory.Span(h, 16);
        BinaryPrimitives.WriteUInt32LittleEndian(span, type);
        BinaryPrimitives.WriteUInt64LittleEndian(span[8..], sector);
        ulong d = drv.Alloc(Math.Max(dataLength, 1u), 512);
        ulong s = drv.Alloc(1, 1);
        drv.Memory.Span(s, 1)[0] = 0xff;
        return (h, d, s);
    }

    private static byte Status(VirtioDriver drv, ulong s) => drv.Memory.Span(s, 1)[0];

    internal static (byte Status, uint Len) Do(VirtioDriver drv, uint type, ulong sector, byte[] data, bool deviceWrites)
    {
        var (h, d, s) = Request(drv, type, sector, (uint)data.Length);
        if (!deviceWrites)
            drv.Memory.Write(d, data);
        var q = drv.Queues[0];
        if (data.Length == 0)
            q.Submit(new Buffer(h, 16, false), new Buffer(s, 1, true));
        else
            q.Submit(new Buffer(h, 16, false), new Buffer(d, (uint)data.Length, deviceWrites), new Buffer(s, 1, true));
        var used = q.TakeUsed();
        Assert.Single(used);
        if (deviceWrites)
            drv.Memory.Read(d, data);
        return (Status(drv, s), used[0].Len);
    }

    [Fact]
    public void Identifies_as_a_block_device_with_capacity_in_sectors()
    {
        using var backend = new FileBlockBackend(TempDisk(64));
        var drv = new VirtioDriver(_mem, new VirtioBlk(backend));
        Assert.Equal(VirtioMmio.MagicValue, drv.Reg(0x000));
        Assert.Equal(2u, drv.Reg(0x004));
        Assert.Equal(2u, drv.Reg(0x008));
        Assert.Equal(VirtioMmio.VendorId, drv.Reg(0x00c));
        Assert.Equal(64u, drv.Reg(0x100));
        Assert.Equal(0u, drv.Reg(0x104));
        Assert.True(drv.Transport.Read(0x100, 8, out ulong cap));
        Assert.Equal(64ul, cap);
        Assert.Equal(512u, drv.Reg(0x114)); // blk_size
        ulong f = drv.Features();
        Assert.NotEqual(0ul, f & (1UL << VirtioMmio.FeatureVersion1));
        Assert.NotEqual(0ul, f & (1UL << VirtioBlk.FeatureFlush));
        Assert.Equal(0ul, f & (1UL << VirtioBlk.FeatureReadOnly));
    }

    [Fact]
    public void Reads_writes_flushes_and_gets_id_on_a_file()
    {
        string path = TempDisk(64);
        using (var backend = new FileBlockBackend(path, id: "disk-0"))
        {
            var drv = new VirtioDriver(_mem, new VirtioBlk(backend));
            drv.Start(1);

            var buf = new byte[1024];
            var (st, len) = Do(drv, VirtioBlk.TypeIn, 2, buf, deviceWrites: true);
            Assert.Equal(VirtioBlk.StatusOk, st);
            Assert.Equal(1025u, len);
            Assert.Equal((byte)(2 * 7), buf[0]);
            Assert.Equal((byte)(3 * 7), buf[512]);
            Assert.True(drv.Line);
            drv.Ack();
            Assert.False(drv.Line);

            var payload = Enumerable.Range(0, 512).Select(i => (byte)(i ^ 0x5a)).ToArray();
            (st, len) = Do(drv, VirtioBlk.TypeOut, 10, payload, deviceWrites: false);
            Assert.Equal(VirtioBlk.StatusOk, st);
            Assert.Equal(1u, len);

            (st, _) = Do(drv, VirtioBlk.TypeFlush, 0, [], deviceWrites: false);
            Assert.Equal(VirtioBlk.StatusOk, st);

            var id = new byte[VirtioBlk.IdLength];
            (st, len) = Do(drv, VirtioBlk.TypeGetId, 0, id, deviceWrites: true);
            Assert.Equal(VirtioBlk.StatusOk, st);
            Assert.Equal(21u, len);
            Assert.Equal("disk-0", System.Text.Encoding.ASCII.GetString(id).TrimEnd('\0'));

            var back = new byte[512];
            (st, _) = Do(drv, VirtioBlk.TypeIn, 10, back, deviceWrites: true);
            Assert.Equal(payload, back);
        }
        Assert.Equal(Enumerable.Range(0, 512).Select(i => (byte)(i ^ 0x5a)).ToArray(), File.ReadAllBytes(path).AsSpan(10 * 512, 512).ToArray());
    }

    [Fact]
    public void Failing_backend_reports_ioerr_and_unknown_types_unsupp()
    {
        var backend = new MemoryBlockBackend(16) { Fail = true };
        var blk = new VirtioBlk(backend);
        var drv = new VirtioDriver(_mem, blk);
        drv.Start(1);
        Assert.Equal(VirtioBlk.StatusIoError, Do(drv, VirtioBlk.TypeIn, 0, new byte[512], true).Status);
        Assert.Equal(VirtioBlk.StatusIoError, Do(drv, VirtioBlk.TypeOut, 0, new byte[512], false).Status);
        Assert.Equal(VirtioBlk.StatusIoError, Do(drv, VirtioBlk.TypeFlush, 0, [], false).Status);
        Assert.Equal(VirtioBlk.StatusUnsupported, Do(drv, 11, 0, new byte[16], false).Status); // DISCARD
        backend.Fail = false;
        Assert.Equal(VirtioBlk.StatusIoError, Do(drv, VirtioBlk.TypeIn, 16, new byte[512], true).Status); // past the end
        Assert.Equal(VirtioBlk.StatusIoError, Do(drv, VirtioBlk.TypeIn, 15, new byte[1024], true).Status); // straddles the end
        Assert.Equal(VirtioBlk.StatusIoError, Do(drv, VirtioBlk.TypeIn, ulong.MaxValue, new byte[512], true).Status);
        Assert.Equal(VirtioBlk.StatusIoError, Do(drv, VirtioBlk.TypeIn, 0, new byte[100], true).Status); // not whole sectors
        Assert.Equal(VirtioBlk.StatusOk, Do(drv, VirtioBlk.TypeIn, 15, new byte[512], true).Status);
        Assert.False(drv.NeedsReset);
        Assert.Equal(8, blk.Failures);
    }

    [Fact]
    public void Read_only_disk_offers_ro_and_refuses_writes()
    {
        var backend = new MemoryBlockBackend(16, readOnly: true);
        var drv = new VirtioDriver(_mem, new VirtioBlk(backend));
        Assert.NotEqual(0ul, drv.Features() & (1UL << VirtioBlk.FeatureReadOnly));
        drv.Start(1);
        Assert.Equal(VirtioBlk.StatusIoError, Do(drv, VirtioBlk.TypeOut, 0, new byte[512], false).Status);
        Assert.All(backend.Data, b => Assert.Equal(0, b));
    }

    [Fact]
    public void Request_split_across_odd_descriptors_and_an_indirect_table()
    {
        var backend = new MemoryBlockBackend(16);
        for (int i = 0; i < backend.Data.Length; i++)
            backend.Data[i] = (byte)(i / 3);
        var drv = new VirtioDriver(_mem, new VirtioBlk(backend));
        drv.Start(1);
        var q = drv.Queues[0];
        var (h, d, s) = Request(drv, VirtioBlk.TypeIn, 1, 1024);
        // Header split 10+6, data split 100+924, status byte at the end of the last data buffer.
        ulong tail = drv.Alloc(925);
        q.Publish(q.AddIndirect(new Buffer(h, 10, false), new Buffer(h + 10, 6, false), new Buffer(d, 100, true), new Buffer(tail, 925, true)));
        q.Notify();
        var used = q.TakeUsed();
        Assert.Single(used);
        Assert.Equal(1025u, used[0].Len);
        Assert.Equal(VirtioBlk.StatusOk, _mem.Span(tail + 924, 1)[0]);
        Assert.Equal(backend.Data.AsSpan(512, 100).ToArray(), _mem.Span(d, 100).ToArray());
        Assert.Equal(backend.Data.AsSpan(612, 924).ToArray(), _mem.Span(tail, 924).ToArray());
        _ = s;
    }

    [Fact]
    public void Legacy_interface_serves_requests_through_queue_pfn()
    {
        var backend = new MemoryBlockBackend(16);
        backend.Data[512 * 3] = 0xab;
        var drv = new VirtioDriver(_mem, new VirtioBlk(backend), version: 1);
        Assert.Equal(1u, drv.Reg(0x004));
        ulong f = drv.Features();
        Assert.Equal(0ul, f >> 32); // no VERSION_1 on the legacy interface
        Assert.NotEqual(0ul, f & (1UL << VirtioMmio.FeatureAnyLayout));
        drv.Start(1, size: 128);
        var buf = new byte[512];
        Assert.Equal(VirtioBlk.StatusOk, Do(drv, VirtioBlk.TypeIn, 3, buf, true).Status);
        Assert.Equal(0xab, buf[0]);
        Assert.Equal(VirtioBlk.StatusOk, Do(drv, VirtioBlk.TypeOut, 4, Enumerable.Repeat((byte)0xcd, 512).ToArray(), false).Status);
        Assert.Equal(0xcd, backend.Data[512 * 4 + 511]);
        Assert.True(drv.Line);
        // A PFN of 0 disables the queue; the driver can set it up again.
        drv.Set(0x30, 0);
        drv.Set(0x40, 0);
        Assert.Equal(0u, drv.Reg(0x40));
        Assert.False(drv.NeedsReset);
    }

    [Fact]
    public void Dma_writes_mark_guest_pages_dirty()
    {
        var backend = new MemoryBlockBackend(16);
        var drv = new VirtioDriver(_mem, new VirtioBlk(backend));
        drv.Start(1);
        var (h, d, s) = Request(drv, VirtioBlk.TypeIn, 0, 8192);
        var bitmap = new ulong[_mem.DirtyWords];
        _mem.HarvestDirty(bitmap);
        drv.Queues[0].Submit(new Buffer(h, 16, false), new Buffer(d, 8192, true), new Buffer(s, 1, true));
        int page(ulong a) => (int)((a - _mem.Base) >> GuestMemory.PageShift);
        Assert.True(_mem.IsDirty(page(d)));
        Assert.True(_mem.IsDirty(page(d + 4096)));
        Assert.True(_mem.IsDirty(page(s)));
        Assert.True(_mem.IsDirty(page(drv.Queues[0].Used)));
        Assert.False(_mem.IsDirty(page(h) + 64)); // far away: untouched
    }

    [Fact]
    public void Requests_never_stay_in_flight_after_a_notification()
    {
        var blk = new VirtioBlk(new MemoryBlockBackend(16));
        var drv = new VirtioDriver(_mem, blk);
        drv.Start(1);
        for (int i = 0; i < 5; i++)
            Do(drv, VirtioBlk.TypeIn, (ulong)i, new byte[512], true);
        Assert.Equal(0, blk.InFlight);
        Assert.Equal(5, blk.Reads);
    }
}
