// The virtio-mmio transport (virtio 1.2 section 4.2): the register window of one virtio slot of
// the 'virt' board. Version 2 is the modern interface; version 1 is the legacy interface
// (GuestPageSize/QueuePFN/QueueAlign, 32 feature bits), which QEMU still uses by default and
// which older guests need. A slot without a device reads DeviceID 0, as QEMU's empty slots do,
// so a driver skips it.
//
// Registers are 32-bit and must be accessed with aligned 32-bit loads and stores; other
// accesses to the register block are access faults. Configuration space (from 0x100) takes
// 1-, 2-, 4- and 8-byte aligned reads and ignores writes. Everything the guest writes is
// checked: a protocol violation (a bad queue layout, a bad descriptor, a write to a read-only
// register) sets DEVICE_NEEDS_RESET and raises a configuration-change interrupt; the device then
// ignores its queues until the driver resets it by writing 0 to Status.
//
// Requests complete synchronously inside the QueueNotify write that announces them, on the VM
// thread, so the transport never has requests in flight between two guest instructions.
using Tern.Riscv;

namespace Tern.Machine.Devices.Virtio;

/// <summary>A virtio-mmio register window with an optional device behind it.</summary>
public sealed class VirtioMmio : IMmioDevice
{
    /// <summary>Size of one slot's register window on the 'virt' board.</summary>
    public const ulong WindowSize = 0x1000;

    /// <summary>"virt" in little-endian.</summary>
    public const uint MagicValue = 0x7472_6976;

    /// <summary>Vendor ID reported, QEMU's ("QEMU" in little-endian).</summary>
    public const uint VendorId = 0x554d_4551;

    /// <summary>Feature bit: indirect descriptors.</summary>
    public const int FeatureIndirectDesc = 28;

    /// <summary>Feature bit: used_event/avail_event notification suppression.</summary>
    public const int FeatureEventIdx = 29;

    /// <summary>Feature bit: no framing assumptions (legacy interface only).</summary>
    public const int FeatureAnyLayout = 27;

    /// <summary>Feature bit: the modern (virtio 1.x) interface.</summary>
    public const int FeatureVersion1 = 32;

    /// <summary>Status bit: the guest noticed the device.</summary>
    public const uint StatusAcknowledge = 1;

    /// <summary>Status bit: the guest has a driver for the device.</summary>
    public const uint StatusDriver = 2;

    /// <summary>Status bit: the driver is ready.</summary>
    public const uint StatusDriverOk = 4;

    /// <summary>Status bit: feature negotiation is complete.</summary>
    public const uint StatusFeaturesOk = 8;

    /// <summary>Status bit set by the device after a protocol violation.</summary>
    public const uint StatusNeedsReset = 0x40;

    /// <summary>Status bit: the driver gave up on the device.</summary>
    public const uint StatusFailed = 0x80;

    /// <summary>InterruptStatus bit: a used ring was updated.</summary>
    public const uint InterruptUsedBuffer = 1;

    /// <summary>InterruptStatus bit: the configuration changed (or the device needs a reset).</summary>
    public const uint InterruptConfigChange = 2;

    private const ulong ConfigBase = 0x100;
    private const int PollAll = -1; // Guard's "queue" for IVirtioDevice.Poll

    private readonly GuestMemory _memory;
    private readonly IVirtioDevice? _device;
    private readonly Action<bool> _interrupt;
    private readonly Virtqueue[] _queues;
    private bool _line;

    private uint _status;
    private uint _deviceFeaturesSel;
    private uint _driverFeaturesSel;
    private ulong _driverFeatures;
    private uint _queueSel;
    private uint _interruptStatus;
    private uint _configGeneration;
    private uint _guestPageSize;

    /// <summary>
    /// Creates a slot carrying <paramref name="device"/> (or an empty slot when null), DMA-ing into
    /// <paramref name="memory"/> and driving its interrupt line through <paramref name="interrupt"/>.
    /// <paramref name="version"/> is 2 (modern) or 1 (legacy).
    /// </summary>
    public VirtioMmio(GuestMemory memory, IVirtioDevice? device, Action<bool> interrupt, int version = 2)
    {
        ArgumentNullException.ThrowIfNull(memory);
        ArgumentNullException.ThrowIfNull(interrupt);
        if (version is not (1 or 2))
            throw new ArgumentOutOfRangeException(nameof(version), version, "virtio-mmio version must be 1 (legacy) or 2.");
        _memory = memory;
        _device = device;
        _interrupt = interrupt;
        Version = version;
        int count = device?.QueueCount ?? 0;
        int numMax = device?.QueueNumMax ?? 0;
        if (device is not null && (numMax <= 0 || numMax > 32768 || (numMax & (numMax - 1)) != 0))
            throw new ArgumentException($"QueueNumMax {numMax} must be a power of two up to 32768.", nameof(device));
        _queues = new Virtqueue[count];
        for (int i = 0; i < count; i++)
            _queues[i] = new Virtqueue(memory, this, i, numMax);
        device?.Attach(this);
    }

    /// <summary>1 (legacy) or 2 (modern).</summary>
    public int Version { get; }

    /// <summary>The device in this slot, or null for an empty slot.</summary>
    public IVirtioDevice? Device => _device;

    /// <summary>Guest RAM the device reads and writes.</summary>
    public GuestMemory Memory => _memory;

    /// <summary>The device status register.</summary>
    public uint Status => _status;

    /// <summary>Feature bits the driver accepted.</summary>
    public ulong DriverFeatures => _driverFeatures;

    /// <summary>InterruptStatus (bit 0 used buffer, bit 1 configuration change).</summary>
    public uint InterruptStatus => _interruptStatus;

    /// <summary>True while the driver is ready and the device is not waiting for a reset.</summary>
    public bool DriverReady => (_status & (StatusDriverOk | StatusNeedsReset)) == StatusDriverOk;

    /// <summary>Why the device last entered DEVICE_NEEDS_RESET (diagnostics), or null.</summary>
    public string? LastError { get; private set; }

    /// <summary>How many protocol violations the guest has committed on this slot.</summary>
    public long ErrorCount { get; private set; }

    /// <summary>All feature bits the slot offers: the device's plus the transport's.</summary>
    public ulong OfferedFeatures
    {
        get
        {
            if (_device is null)
                return 0;
            ulong f = _device.DeviceFeatures | (1UL << FeatureIndirectDesc) | (1UL << FeatureEventIdx);
            return Version == 2 ? f | (1UL << FeatureVersion1) : (f | (1UL << FeatureAnyLayout)) & 0xffff_ffff;
        }
    }

    /// <summary>True when the driver accepted feature <paramref name="bit"/>.</summary>
    public bool HasFeature(int bit) => (_driverFeatures & (1UL << bit)) != 0;

    /// <summary>Queue <paramref name="index"/> of the device.</summary>
    public Virtqueue Queue(int index) => _queues[index];

    /// <summary>Number of virtqueues.</summary>
    public int QueueCount => _queues.Length;

    /// <summary>
    /// Lets the device do work that no notification announces (frames arriving for virtio-net);
    /// the board's run loop calls it between instruction slices. Does nothing until the driver is ready.
    /// </summary>
    public void Poll()
    {
        if (_device is null || !DriverReady)
            return;
        Guard(PollAll);
    }

    /// <summary>
    /// The device changed its configuration space: bumps ConfigGeneration and raises a
    /// configuration-change interrupt.
    /// </summary>
    public void NotifyConfigChanged()
    {
        _configGeneration++;
        if ((_status & StatusDriverOk) != 0)
            RaiseInterrupt(InterruptConfigChange);
    }

    /// <summary>Puts the device into DEVICE_NEEDS_RESET because the guest broke the protocol.</summary>
    public void DeviceError(string reason)
    {
        ErrorCount++;
        LastError = reason;
        _status |= StatusNeedsReset;
        RaiseInterrupt(InterruptConfigChange);
    }

    // Runs the device's work for one queue (or its poll), turning a protocol violation into
    // DEVICE_NEEDS_RESET, then raises the used-buffer interrupt if the driver wants one.
    private void Guard(int queue)
    {
        try
        {
            if (queue == PollAll)
                _device!.Poll();
            else
                _device!.QueueNotify(queue);
        }
        catch (VirtioProtocolException e)
        {
            DeviceError(e.Message);
        }
        SignalUsed();
    }

    private void SignalUsed()
    {
        bool any = false;
        foreach (var q in _queues)
            any |= q.TakeInterrupt();
        if (any)
            RaiseInterrupt(InterruptUsedBuffer);
    }

    private void RaiseInterrupt(uint bits)
    {
        _interruptStatus |= bits;
        UpdateLine();
    }

    private void UpdateLine()
    {
        bool level = _interruptStatus != 0;
        if (level != _line)
        {
            _line = level;
            _interrupt(level);
        }
    }

    /// <inheritdoc/>
    public bool Read(ulong offset, int size, out ulong value)
    {
        value = 0;
        if (offset >= ConfigBase)
            return ReadConfig(offset - ConfigBase, size, out value);
        if (size != 4 || (offset & 3) != 0)
            return false;
        value = ReadRegister((int)offset);
        return true;
    }

    private uint ReadRegister(int offset)
    {
        if (offset == 0x000)
            return MagicValue;
        if (offset == 0x004)
            return (uint)Version;
        if (offset == 0x00c)
            return VendorId;
        if (_device is null)
            return 0; // an empty slot: DeviceID 0 and nothing else
        var q = SelectedQueue;
        return offset switch
        {
            0x008 => _device.DeviceId,
            0x010 => _deviceFeaturesSel < 2 ? (uint)(OfferedFeatures >> (int)(32 * _deviceFeaturesSel)) : 0,
            0x034 => q is null ? 0 : (uint)q.NumMax,
            0x040 when Version == 1 => q?.Pfn ?? 0,
            0x044 when Version == 2 => q is { Ready: true } ? 1u : 0,
            0x060 => _interruptStatus,
            0x070 => _status,
            0x0b0 or 0x0b4 => 0xffff_ffff, // no shared memory regions: length -1
            0x0fc => _configGeneration,
            _ => 0, // write-only and reserved registers read as zero
        };
    }

    private Virtqueue? SelectedQueue => _queueSel < (uint)_queues.Length ? _queues[_queueSel] : null;

    private bool ReadConfig(ulong offset, int size, out ulong value)
    {
        value = 0;
        if (size is not (1 or 2 or 4 or 8) || (offset & (ulong)(size - 1)) != 0)
            return false;
        if (_device is null)
            return true;
        var config = _device.Config;
        for (int i = size - 1; i >= 0; i--)
        {
            ulong at = offset + (ulong)i;
            value = (value << 8) | (at < (ulong)config.Length ? config[(int)at] : 0u);
        }
        return true;
    }

    /// <inheritdoc/>
    public bool Write(ulong offset, int size, ulong value)
    {
        if (offset >= ConfigBase)
            return size is 1 or 2 or 4 or 8 && (offset & (ulong)(size - 1)) == 0; // configuration writes are ignored
        if (size != 4 || (offset & 3) != 0)
            return false;
        if (_device is null)
            return true; // an empty slot ignores writes
        try
        {
            WriteRegister((int)offset, (uint)value);
        }
        catch (VirtioProtocolException e)
        {
            DeviceError(e.Message);
        }
        return true;
    }

    private void WriteRegister(int offset, uint v)
    {
        var q = SelectedQueue;
        switch (offset)
        {
            case 0x000 or 0x004 or 0x008 or 0x00c or 0x010 or 0x034 or 0x060 or 0x0b0 or 0x0b4 or 0x0b8 or 0x0bc or 0x0fc:
                throw new VirtioProtocolException($"write of 0x{v:x} to read-only register 0x{offset:x3}");
            case 0x014:
                _deviceFeaturesSel = v;
                break;
            case 0x020:
                WriteDriverFeatures(v);
                break;
            case 0x024:
                _driverFeaturesSel = v;
                break;
            case 0x028 when Version == 1:
                _guestPageSize = v;
                break;
            case 0x030:
                _queueSel = v;
                break;
            case 0x038:
                if (q is null)
                    break;
                if (q.Ready)
                    throw new VirtioProtocolException($"QueueNum written while queue {q.Index} is enabled");
                if (v == 0 || v > (uint)q.NumMax || (v & (v - 1)) != 0)
                    throw new VirtioProtocolException($"queue {q.Index}: size {v} is not a power of two in 1..{q.NumMax}");
                q.Num = v;
                break;
            case 0x03c when Version == 1:
                if (q is null)
                    break;
                if (v == 0 || (v & (v - 1)) != 0)
                    throw new VirtioProtocolException($"queue {q.Index}: QueueAlign {v} is not a power of two");
                q.Align = v;
                break;
            case 0x040 when Version == 1:
                if (q is not null)
                    WriteLegacyPfn(q, v);
                break;
            case 0x044 when Version == 2:
                if (q is null)
                    break;
                if ((v & 1) == 0)
                    q.Disable();
                else if (!q.Ready)
                    q.Enable();
                break;
            case 0x050:
                if (v < (uint)_queues.Length && DriverReady && _queues[v].Ready)
                    Guard((int)v);
                break;
            case 0x064:
                _interruptStatus &= ~v;
                UpdateLine();
                break;
            case 0x070:
                WriteStatus(v);
                break;
            case 0x080 or 0x084 or 0x090 or 0x094 or 0x0a0 or 0x0a4 when Version == 2:
                if (q is null)
                    break;
                if (q.Ready)
                    throw new VirtioProtocolException($"queue {q.Index}: ring address written while the queue is enabled");
                WriteQueueAddress(q, offset, v);
                break;
            default:
                break; // registers that do not exist (in this version) ignore writes, as in QEMU
        }
    }

    private static ulong SetHalf(ulong old, bool high, uint v) =>
        high ? (old & 0xffff_ffff) | ((ulong)v << 32) : (old & ~0xffff_ffffUL) | v;

    private static void WriteQueueAddress(Virtqueue q, int offset, uint v)
    {
        bool high = (offset & 4) != 0;
        switch (offset & ~4)
        {
            case 0x080:
                q.DescAddress = SetHalf(q.DescAddress, high, v);
                break;
            case 0x090:
                q.DriverAddress = SetHalf(q.DriverAddress, high, v);
                break;
            default:
                q.DeviceAddress = SetHalf(q.DeviceAddress, high, v);
                break;
        }
    }

    private void WriteLegacyPfn(Virtqueue q, uint pfn)
    {
        if (pfn == 0)
        {
            q.Reset();
            return;
        }
        if (q.Ready)
            throw new VirtioProtocolException($"queue {q.Index}: QueuePFN written while the queue is enabled");
        if (_guestPageSize == 0 || (_guestPageSize & (_guestPageSize - 1)) != 0)
            throw new VirtioProtocolException($"QueuePFN written with GuestPageSize {_guestPageSize}");
        ulong desc = (ulong)pfn * _guestPageSize;
        ulong avail = desc + (16 * (ulong)q.Num);
        ulong used = (avail + 6 + (2 * (ulong)q.Num) + q.Align - 1) & ~((ulong)q.Align - 1);
        q.DescAddress = desc;
        q.DriverAddress = avail;
        q.DeviceAddress = used;
        q.Enable();
        q.Pfn = pfn;
    }

    private void WriteDriverFeatures(uint v)
    {
        if ((_status & StatusFeaturesOk) != 0 || _driverFeaturesSel >= 2)
            return; // features are frozen once accepted; words beyond 64 bits do not exist
        int shift = (int)(32 * _driverFeaturesSel);
        _driverFeatures = (_driverFeatures & ~(0xffff_ffffUL << shift)) | ((ulong)v << shift);
        if (Version == 1)
            _driverFeatures &= OfferedFeatures; // legacy has no FEATURES_OK: unknown bits are ignored
    }

    private void WriteStatus(uint v)
    {
        if (v == 0)
        {
            Reset();
            return;
        }
        v &= 0xff & ~StatusNeedsReset;
        if ((v & StatusFeaturesOk) != 0 && (_status & StatusFeaturesOk) == 0 && !FeaturesAcceptable())
            v &= ~StatusFeaturesOk; // the driver re-reads Status and sees the features refused
        bool becameReady = (v & StatusDriverOk) != 0 && (_status & StatusDriverOk) == 0;
        _status = v | (_status & StatusNeedsReset);
        if (becameReady && DriverReady)
        {
            for (int i = 0; i < _queues.Length && DriverReady; i++)
            {
                if (_queues[i].Ready)
                    Guard(i);
            }
        }
    }

    // Only features the device offered. VERSION_1 is not required: QEMU accepts a modern driver
    // without it, and xv6-riscv relies on that (it writes only the low feature word).
    private bool FeaturesAcceptable() => (_driverFeatures & ~OfferedFeatures) == 0;

    private void Reset()
    {
        _status = 0;
        _deviceFeaturesSel = _driverFeaturesSel = 0;
        _driverFeatures = 0;
        _queueSel = 0;
        foreach (var q in _queues)
            q.Reset();
        _interruptStatus = 0;
        UpdateLine();
        _device?.Reset();
        // GuestPageSize survives: Linux writes it once at probe, before the first reset.
    }

    /// <summary>Captures the transport's registers and queue state (the device's own state is saved by the device).</summary>
    public VirtioMmioState Save() => new(
        Version, _device?.DeviceId ?? 0, _status, _deviceFeaturesSel, _driverFeaturesSel, _driverFeatures,
        _queueSel, _interruptStatus, _configGeneration, _guestPageSize,
        Array.ConvertAll(_queues, q => q.Save()));

    /// <summary>
    /// Loads a state captured by <see cref="Save"/> (after guest RAM has been restored, since ring
    /// addresses are checked against it). Refuses, changing nothing, a state from another kind of
    /// slot or one whose queues do not fit.
    /// </summary>
    public void Restore(VirtioMmioState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        ArgumentNullException.ThrowIfNull(state.Queues);
        if (state.Version != Version)
            throw new ArgumentException($"Saved virtio-mmio version {state.Version} differs from this slot's {Version}.", nameof(state));
        if (state.DeviceId != (_device?.DeviceId ?? 0))
            throw new ArgumentException($"Saved virtio device ID {state.DeviceId} differs from this slot's {_device?.DeviceId ?? 0}.", nameof(state));
        if (state.Queues.Length != _queues.Length)
            throw new ArgumentException($"Saved state has {state.Queues.Length} queues; the device has {_queues.Length}.", nameof(state));
        if ((state.InterruptStatus & ~(InterruptUsedBuffer | InterruptConfigChange)) != 0 || state.Status > 0xff)
            throw new ArgumentException("Saved virtio-mmio status or interrupt bits are invalid.", nameof(state));
        for (int i = 0; i < _queues.Length; i++)
            _queues[i].CheckRestorable(state.Queues[i] ?? throw new ArgumentException($"Saved queue {i} is missing.", nameof(state)));

        _status = state.Status;
        _deviceFeaturesSel = state.DeviceFeaturesSel;
        _driverFeaturesSel = state.DriverFeaturesSel;
        _driverFeatures = state.DriverFeatures;
        _queueSel = state.QueueSel;
        _interruptStatus = state.InterruptStatus;
        _configGeneration = state.ConfigGeneration;
        _guestPageSize = state.GuestPageSize;
        for (int i = 0; i < _queues.Length; i++)
            _queues[i].Load(state.Queues[i]);
        _line = state.InterruptStatus == 0; // the opposite of the new level, so UpdateLine drives the line
        UpdateLine();
    }
}
