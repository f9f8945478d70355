// A minimal guest-side virtio driver for the tests: it lays out split virtqueues in a
// GuestMemory, negotiates features and pokes the transport's registers through IMmioDevice,
// the way Linux's virtio_mmio driver does (modern and legacy).
using System.Buffers.Binary;
using Tern.Machine.Devices.Virtio;
using Tern.Riscv;

namespace Tern.Machine.Tests.Virtio;

internal sealed class VirtioDriver
{
    public const ulong RamBase = 0x8000_0000;

    // Rings and buffers come from [RamBase + 1 MiB, ...); the first MiB is left for tests.
    private ulong _next = RamBase + 0x10_0000;

    public VirtioDriver(GuestMemory memory, IVirtioDevice? device, int version = 2)
    {
        Memory = memory;
        Transport = new VirtioMmio(memory, device, level => Line = level, version);
    }

    /// <summary>A driver for an existing transport (its interrupt line is not observed).</summary>
    public VirtioDriver(GuestMemory memory, VirtioMmio transport)
    {
        Memory = memory;
        Transport = transport;
    }

    public GuestMemory Memory { get; }

    public VirtioMmio Transport { get; }

    public bool Line { get; private set; }

    public List<DriverQueue> Queues { get; } = [];

    public uint Reg(int offset)
    {
        Assert.True(Transport.Read((ulong)offset, 4, out ulong v));
        return (uint)v;
    }

    public void Set(int offset, uint value) => Assert.True(Transport.Write((ulong)offset, 4, value));

    public ulong Alloc(ulong size, ulong align = 16)
    {
        _next = (_next + align - 1) & ~(align - 1);
        ulong a = _next;
        _next += size;
        Memory.Span(a, (int)size).Clear(); // like kzalloc: a reused driver never sees stale rings
        return a;
    }

    public ulong Features()
    {
        Set(0x14, 0);
        ulong lo = Reg(0x10);
        Set(0x14, 1);
        return lo | ((ulong)Reg(0x10) << 32);
    }

    /// <summary>Brings the device up: reset, negotiate (offered features minus <paramref name="drop"/>), queues, DRIVER_OK.</summary>
    public void Start(int queues, uint size = 16, ulong drop = 0)
    {
        Set(0x70, 0);
        Set(0x70, VirtioMmio.StatusAcknowledge | VirtioMmio.StatusDriver);
        ulong accept = Features() & ~drop;
        Set(0x24, 0);
        Set(0x20, (uint)accept);
        Set(0x24, 1);
        Set(0x20, (uint)(accept >> 32));
        if (Transport.Version == 2)
        {
            Set(0x70, VirtioMmio.StatusAcknowledge | VirtioMmio.StatusDriver | VirtioMmio.StatusFeaturesOk);
            Assert.NotEqual(0u, Reg(0x70) & VirtioMmio.StatusFeaturesOk);
        }
        else
        {
            Set(0x28, 4096);
        }
        Queues.Clear();
        for (int i = 0; i < queues; i++)
            Queues.Add(SetupQueue(i, size));
        Set(0x70, Reg(0x70) | VirtioMmio.StatusDriverOk);
        Assert.Equal(0u, Reg(0x70) & VirtioMmio.StatusNeedsReset);
    }

    public DriverQueue SetupQueue(int index, uint size)
    {
        Set(0x30, (uint)index);
        Assert.True(Reg(0x34) >= size);
        Set(0x38, size);
        if (Transport.Version == 2)
        {
            Assert.Equal(0u, Reg(0x44));
            ulong desc = Alloc(16 * size, 16);
            ulong avail = Alloc(6 + (2 * size), 2);
            ulong used = Alloc(6 + (8 * size), 4);
            Set(0x80, (uint)desc);
            Set(0x84, (uint)(desc >> 32));
            Set(0x90, (uint)avail);
            Set(0x94, (uint)(avail >> 32));
            Set(0xa0, (uint)used);
            Set(0xa4, (uint)(used >> 32));
            Set(0x44, 1);
            Assert.Equal(1u, Reg(0x44));
            return new DriverQueue(this, index, size, desc, avail, used);
        }
        Assert.Equal(0u, Reg(0x40));
        Set(0x3c, 4096);
        ulong usedOffset = ((16 * size) + 6 + (2 * size) + 4095) & ~4095UL;
        ulong baseAddr = Alloc(usedOffset + 6 + (8 * size), 4096);
        Set(0x40, (uint)(baseAddr / 4096));
        Assert.Equal((uint)(baseAddr / 4096), Reg(0x40));
        return new DriverQueue(this, index, size, baseAddr, baseAddr + (16 * size), baseAddr + usedOffset);
    }

    public void Ack()
    {
        Set(0x64, Reg(0x60));
    }

    public bool NeedsReset => (Reg(0x70) & VirtioMmio.StatusNeedsReset) != 0;

    /// <summary>The same driver (allocator and queue bookkeeping) over another RAM and transport, as after a restore.</summary>
    public VirtioDriver CloneOnto(GuestMemory memory, IVirtioDevice? device)
    {
        var d = new VirtioDriver(memory, device, Transport.Version) { _next = _next };
        foreach (var q in Queues)
            d.Queues.Add(q.CloneFor(d));
        return d;
    }
}

internal readonly record struct Buffer(ulong Address, uint Length, bool Writable);

internal sealed class DriverQueue(VirtioDriver driver, int index, uint size, ulong desc, ulong avail, ulong used)
{
    private ushort _nextDesc;
    private ushort _availIdx;
    private ushort _lastUsed;

    public int Index => index;

    public uint Size => size;

    public ulong Desc => desc;

    public ulong Avail => avail;

    public ulong Used => used;

    private GuestMemory Mem => driver.Memory;

    public DriverQueue CloneFor(VirtioDriver other) =>
        new(other, index, size, desc, avail, used) { _nextDesc = _nextDesc, _availIdx = _availIdx, _lastUsed = _lastUsed };

    public void WriteDesc(ulong table, int i, ulong addr, uint len, ushort flags, ushort next)
    {
        var d = Mem.Span(table + (ulong)(16 * i), 16);
        BinaryPrimitives.WriteUInt64LittleEndian(d, addr);
        BinaryPrimitives.WriteUInt32LittleEndian(d[8..], len);
        BinaryPrimitives.WriteUInt16LittleEndian(d[12..], flags);
        BinaryPrimitives.WriteUInt16LittleEndian(d[14..], next);
    }

    /// <summary>Writes a chain into the descriptor table (direct) and returns its head.</summary>
    public ushort AddChain(params Buffer[] buffers)
    {
        ushort head = _nextDesc;
        for (int i = 0; i < buffers.Length; i++)
        {
            ushort me = (ushort)((head + i) % size);
            ushort next = (ushort)((head + i + 1) % size);
            ushort flags = (ushort)((buffers[i].Writable ? Virtqueue.DescWrite : 0) | (i + 1 < buffers.Length ? Virtqueue.DescNext : 0));
            WriteDesc(desc, me, buffers[i].Address, buffers[i].Length, flags, next);
        }
        _nextDesc = (ushort)((head + buffers.Length) % size);
        return head;
    }

    /// <summary>Writes an indirect table holding <paramref name="buffers"/> and one descriptor pointing at it.</summary>
    public ushort AddIndirect(params Buffer[] buffers)
    {
        ulong table = driver.Alloc((ulong)(16 * buffers.Length), 16);
        for (int i = 0; i < buffers.Length; i++)
        {
            ushort flags = (ushort)((buffers[i].Writable ? Virtqueue.DescWrite : 0) | (i + 1 < buffers.Length ? Virtqueue.DescNext : 0));
            WriteDesc(table, i, buffers[i].Address, buffers[i].Length, flags, (ushort)(i + 1));
        }
        ushort head = _nextDesc;
        WriteDesc(desc, head, table, (uint)(16 * buffers.Length), Virtqueue.DescIndirect, 0);
        _nextDesc = (ushort)((head + 1) % size);
        return head;
    }

    public void Publish(ushort head)
    {
        BinaryPrimitives.WriteUInt16LittleEndian(Mem.Span(avail + 4 + (2 * (ulong)(_availIdx % size)), 2), head);
        _availIdx++;
        BinaryPrimitives.WriteUInt16LittleEndian(Mem.Span(avail + 2, 2), _availIdx);
    }

    public void Notify() => driver.Set(0x50, (uint)index);

    public ushort Submit(params Buffer[] buffers)
    {
        ushort head = AddChain(buffers);
        Publish(head);
        Notify();
        return head;
    }

    public ushort UsedIndex => BinaryPrimitives.ReadUInt16LittleEndian(Mem.Span(used + 2, 2));

    public List<(uint Id, uint Len)> TakeUsed()
    {
        var r = new List<(uint, uint)>();
        while (_lastUsed != UsedIndex)
        {
            var e = Mem.Span(used + 4 + (8 * (ulong)(_lastUsed % size)), 8);
            r.Add((BinaryPrimitives.ReadUInt32LittleEndian(e), BinaryPrimitives.ReadUInt32LittleEndian(e[4..])));
            _lastUsed++;
        }
        return r;
    }

    public ushort AvailIndex
    {
        get => _availIdx;
        set
        {
            _availIdx = value;
            BinaryPrimitives.WriteUInt16LittleEndian(Mem.Span(avail + 2, 2), value);
        }
    }

    public void SetUsedEvent(ushort value) =>
        BinaryPrimitives.WriteUInt16LittleEndian(Mem.Span(avail + 4 + (2 * (ulong)size), 2), value);

    public ushort AvailEvent => BinaryPrimitives.ReadUInt16LittleEndian(Mem.Span(used + 4 + (8 * (ulong)size), 2));

    public void SetAvailFlags(ushort flags) => BinaryPrimitives.WriteUInt16LittleEndian(Mem.Span(avail, 2), flags);
}

/// <summary>A block backend in a byte array, with failure injection.</summary>
internal sealed class MemoryBlockBackend(int sectors, bool readOnly = false, string id = "tern-test-disk") : Tern.Machine.Devices.IBlockBackend
{
    public byte[] Data { get; } = new byte[sectors * 512];

    public bool Fail { get; set; }

    public int FlushCount { get; private set; }

    public long Length => Data.Length;

    public bool ReadOnly => readOnly;

    public string Id => id;

    public bool Read(long offset, Span<byte> destination)
    {
        if (Fail)
            return false;
        Data.AsSpan((int)offset, destination.Length).CopyTo(destination);
        return true;
    }

    public bool Write(long offset, ReadOnlySpan<byte> data)
    {
        if (Fail)
            return false;
        data.CopyTo(Data.AsSpan((int)offset));
        return true;
    }

    public bool Flush()
    {
        FlushCount++;
        return !Fail;
    }
}
