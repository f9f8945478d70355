// A split virtqueue as the device sees it (virtio 1.2 section 2.7): the descriptor table, the
// available ring written by the driver and the used ring written by the device, all in guest
// RAM. Every address and index read from the guest is checked before it is used: ring areas
// are validated once when the queue is enabled, descriptors each time a chain is walked, so a
// hostile driver gets a VirtioProtocolException (which the transport turns into
// DEVICE_NEEDS_RESET), never an access outside RAM or an endless walk.
using System.Buffers.Binary;
using Tern.Riscv;

namespace Tern.Machine.Devices.Virtio;

/// <summary>One split virtqueue of a virtio device.</summary>
public sealed class Virtqueue
{
    /// <summary>Descriptor flag: the chain continues at <c>next</c>.</summary>
    public const ushort DescNext = 1;

    /// <summary>Descriptor flag: the buffer is device-writable.</summary>
    public const ushort DescWrite = 2;

    /// <summary>Descriptor flag: the buffer holds a table of indirect descriptors.</summary>
    public const ushort DescIndirect = 4;

    /// <summary>Largest indirect table accepted (entries), as in QEMU.</summary>
    public const int MaxIndirectEntries = 1024;

    private const ushort AvailNoInterrupt = 1;
    private const int DescSize = 16;

    private readonly GuestMemory _memory;
    private readonly VirtioMmio _transport;
    private readonly DescriptorChain _chain;
    private bool _usedAdded;

    // The avail_event value last written to the used ring (-1: not yet), so a poll that consumed
    // nothing does not rewrite it and dirty the page again.
    private int _publishedAvailEvent = -1;

    internal Virtqueue(GuestMemory memory, VirtioMmio transport, int index, int numMax)
    {
        _memory = memory;
        _transport = transport;
        _chain = new DescriptorChain(memory);
        Index = index;
        NumMax = numMax;
        Reset();
    }

    /// <summary>The queue's index within its device.</summary>
    public int Index { get; }

    /// <summary>Largest queue size the device accepts (QueueNumMax).</summary>
    public int NumMax { get; }

    /// <summary>Queue size chosen by the driver.</summary>
    public uint Num { get; internal set; }

    /// <summary>True when the driver enabled the queue (QueueReady, or a non-zero legacy QueuePFN).</summary>
    public bool Ready { get; private set; }

    /// <summary>Guest physical address of the descriptor table.</summary>
    public ulong DescAddress { get; internal set; }

    /// <summary>Guest physical address of the available (driver) ring.</summary>
    public ulong DriverAddress { get; internal set; }

    /// <summary>Guest physical address of the used (device) ring.</summary>
    public ulong DeviceAddress { get; internal set; }

    /// <summary>Legacy QueuePFN as written by the driver (0 when not in use).</summary>
    public uint Pfn { get; internal set; }

    /// <summary>Legacy QueueAlign as written by the driver.</summary>
    public uint Align { get; internal set; }

    /// <summary>Index of the next available-ring entry the device will consume.</summary>
    public ushort LastAvail { get; private set; }

    /// <summary>The device's used index (the value last published in the used ring).</summary>
    public ushort UsedIndex { get; private set; }

    // The used index when the driver was last considered for an interrupt (VIRTIO_RING_F_EVENT_IDX).
    internal ushort SignalledUsed { get; private set; }

    internal void Reset()
    {
        Num = (uint)NumMax;
        Ready = false;
        DescAddress = DriverAddress = DeviceAddress = 0;
        Pfn = 0;
        Align = 4096;
        LastAvail = UsedIndex = SignalledUsed = 0;
        _usedAdded = false;
        _publishedAvailEvent = -1;
    }

    /// <summary>Checks the driver's queue layout against guest RAM and enables the queue.</summary>
    internal void Enable()
    {
        Validate(Num, DescAddress, DriverAddress, DeviceAddress);
        Ready = true;
        LastAvail = UsedIndex = SignalledUsed = 0;
        _usedAdded = false;
        _publishedAvailEvent = -1;
    }

    internal void Disable()
    {
        Ready = false;
        _usedAdded = false;
    }

    internal void Validate(uint num, ulong desc, ulong driver, ulong device)
    {
        if (num == 0 || num > (uint)NumMax || (num & (num - 1)) != 0)
            throw new VirtioProtocolException($"queue {Index}: size {num} is not a power of two in 1..{NumMax}");
        if (desc % 16 != 0 || driver % 2 != 0 || device % 4 != 0)
            throw new VirtioProtocolException($"queue {Index}: misaligned ring (desc 0x{desc:x}, driver 0x{driver:x}, device 0x{device:x})");
        // The ring sizes include the event-index words, whether or not the feature is negotiated.
        if (!_memory.Contains(desc, DescSize * (ulong)num) ||
            !_memory.Contains(driver, 6 + (2 * (ulong)num)) ||
            !_memory.Contains(device, 6 + (8 * (ulong)num)))
            throw new VirtioProtocolException($"queue {Index}: ring outside guest RAM (desc 0x{desc:x}, driver 0x{driver:x}, device 0x{device:x})");
    }

    private ushort ReadU16(ulong address) => BinaryPrimitives.ReadUInt16LittleEndian(_memory.Span(address, 2));

    private void WriteU16(ulong address, ushort value)
    {
        BinaryPrimitives.WriteUInt16LittleEndian(_memory.Span(address, 2), value);
        _memory.NoteWritten(address, 2);
    }

    private ushort AvailIndex()
    {
        ushort idx = ReadU16(DriverAddress + 2);
        if ((ushort)(idx - LastAvail) > Num)
            throw new VirtioProtocolException($"queue {Index}: available index {idx} is more than {Num} ahead of {LastAvail}");
        return idx;
    }

    /// <summary>True when the driver has made a chain available that the device has not consumed.</summary>
    public bool HasAvailable => Ready && AvailIndex() != LastAvail;

    /// <summary>
    /// Takes the next available chain, walking and validating its descriptors. The returned object
    /// is reused by the next call. Null when the ring is empty.
    /// </summary>
    public DescriptorChain? Pop()
    {
        if (!Ready || AvailIndex() == LastAvail)
            return null;
        ushort head = ReadU16(DriverAddress + 4 + (2 * (ulong)(LastAvail % Num)));
        LastAvail++;
        Walk(head);
        return _chain;
    }

    /// <summary>Gives the chain last popped back to the ring (the device could not use it yet).</summary>
    public void Unpop() => LastAvail--;

    private void Walk(ushort head)
    {
        if (head >= Num)
            throw new VirtioProtocolException($"queue {Index}: head descriptor {head} out of range 0..{Num - 1}");
        _chain.Clear(head);
        bool indirect = false, sawWritable = false;
        bool indirectAllowed = _transport.HasFeature(VirtioMmio.FeatureIndirectDesc);
        ulong table = DescAddress;
        uint tableSize = Num;
        uint i = head;
        int count = 0;
        while (true)
        {
            if (i >= tableSize)
                throw new VirtioProtocolException($"queue {Index}: descriptor index {i} out of range 0..{tableSize - 1}");
            var d = _memory.Span(table + (i * DescSize), DescSize);
            ulong addr = BinaryPrimitives.ReadUInt64LittleEndian(d);
            uint len = BinaryPrimitives.ReadUInt32LittleEndian(d[8..]);
            ushort flags = BinaryPrimitives.ReadUInt16LittleEndian(d[12..]);
            ushort next = BinaryPrimitives.ReadUInt16LittleEndian(d[14..]);
            if ((flags & DescIndirect) != 0)
            {
                if (!indirectAllowed)
                    throw new VirtioProtocolException($"queue {Index}: indirect descriptor without VIRTIO_F_INDIRECT_DESC");
                if (indirect)
                    throw new VirtioProtocolException($"queue {Index}: indirect table inside an indirect table");
                if ((flags & DescNext) != 0 || count != 0)
                    throw new VirtioProtocolException($"queue {Index}: indirect descriptor chained to others");
                if (len == 0 || len % DescSize != 0 || len / DescSize > MaxIndirectEntries)
                    throw new VirtioProtocolException($"queue {Index}: indirect table of {len} bytes");
                if (!_memory.Contains(addr, len))
                    throw new VirtioProtocolException($"queue {Index}: indirect table 0x{addr:x}+{len} outside guest RAM");
                indirect = true;
                table = addr;
                tableSize = len / DescSize;
                i = 0;
                continue;
            }
            if (++count > tableSize)
                throw new VirtioProtocolException($"queue {Index}: descriptor chain longer than {tableSize} (a loop?)");
            if (!_memory.Contains(addr, len))
                throw new VirtioProtocolException($"queue {Index}: buffer 0x{addr:x}+{len} outside guest RAM");
            bool writable = (flags & DescWrite) != 0;
            if (writable)
                sawWritable = true;
            else if (sawWritable)
                throw new VirtioProtocolException($"queue {Index}: device-readable buffer after a writable one");
            _chain.Add(addr, len, writable);
            if ((flags & DescNext) == 0)
                return;
            i = next;
        }
    }

    /// <summary>Returns the chain with head <paramref name="head"/> to the driver, reporting <paramref name="written"/> bytes written.</summary>
    public void Push(ushort head, uint written)
    {
        ulong elem = DeviceAddress + 4 + (8 * (ulong)(UsedIndex % Num));
        var span = _memory.Span(elem, 8);
        BinaryPrimitives.WriteUInt32LittleEndian(span, head);
        BinaryPrimitives.WriteUInt32LittleEndian(span[4..], written);
        _memory.NoteWritten(elem, 8);
        UsedIndex++;
        WriteU16(DeviceAddress + 2, UsedIndex);
        _usedAdded = true;
    }

    /// <summary>
    /// Called after a batch of work: publishes avail_event (with EVENT_IDX) and decides whether the
    /// driver wants a used-buffer interrupt for the entries added since the last decision.
    /// </summary>
    internal bool TakeInterrupt()
    {
        if (!Ready)
            return false;
        bool eventIdx = _transport.HasFeature(VirtioMmio.FeatureEventIdx);
        if (eventIdx && _publishedAvailEvent != LastAvail)
        {
            WriteU16(DeviceAddress + 4 + (8 * (ulong)Num), LastAvail);
            _publishedAvailEvent = LastAvail;
        }
        if (!_usedAdded)
            return false;
        _usedAdded = false;
        ushort old = SignalledUsed;
        SignalledUsed = UsedIndex;
        if (eventIdx)
        {
            ushort usedEvent = ReadU16(DriverAddress + 4 + (2 * (ulong)Num));
            return (ushort)(UsedIndex - usedEvent - 1) < (ushort)(UsedIndex - old);
        }
        return (ReadU16(DriverAddress) & AvailNoInterrupt) == 0;
    }

    internal VirtqueueState Save() =>
        new(Num, Ready, DescAddress, DriverAddress, DeviceAddress, Pfn, Align, LastAvail, UsedIndex, SignalledUsed);

    internal void CheckRestorable(VirtqueueState s)
    {
        if (s.Num == 0 || s.Num > (uint)NumMax || (s.Num & (s.Num - 1)) != 0)
            throw new ArgumentException($"queue {Index}: saved size {s.Num} is invalid for QueueNumMax {NumMax}.");
        if (s.Align == 0 || (s.Align & (s.Align - 1)) != 0)
            throw new ArgumentException($"queue {Index}: saved QueueAlign {s.Align} is not a power of two.");
        if (s.Ready)
        {
            try
            {
                Validate(s.Num, s.Desc, s.Driver, s.Device);
            }
            catch (VirtioProtocolException e)
            {
                throw new ArgumentException($"Saved virtqueue does not fit guest RAM: {e.Message}", e);
            }
        }
    }

    internal void Load(VirtqueueState s)
    {
        Num = s.Num;
        Ready = s.Ready;
        DescAddress = s.Desc;
        DriverAddress = s.Driver;
        DeviceAddress = s.Device;
        Pfn = s.Pfn;
        Align = s.Align;
        LastAvail = s.LastAvail;
        UsedIndex = s.UsedIndex;
        SignalledUsed = s.SignalledUsed;
        _usedAdded = false;
        _publishedAvailEvent = -1;
    }
}
