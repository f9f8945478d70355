// A 'virt' machine: RAM, 1 to 8 harts, the devices on the bus, the device tree, the guest
// clock, and the loop that runs the harts. Harts take turns in fixed instruction quanta, so
// a run is deterministic in icount mode; between quanta the loop updates timers, feeds
// console input, and sleeps when every hart waits in WFI.
using System.Diagnostics;
using Tern.Machine.Boot;
using Tern.Machine.Devices;
using Tern.Machine.Devices.Clint;
using Tern.Machine.Devices.GoldfishRtc;
using Tern.Machine.Devices.Htif;
using Tern.Machine.Devices.Plic;
using Tern.Machine.Devices.TestFinisher;
using Tern.Machine.Devices.Uart16550;
using Tern.Machine.Devices.Virtio;
using Tern.Riscv;

namespace Tern.Machine;

/// <summary>Options of a <see cref="VirtMachine"/>.</summary>
public sealed record MachineOptions
{
    /// <summary>Guest RAM size in bytes (16 MiB to 8 GiB).</summary>
    public ulong MemoryBytes { get; init; } = 256UL << 20;
    /// <summary>Number of harts (1 to 8).</summary>
    public int Harts { get; init; } = 1;
    /// <summary>How guest time advances.</summary>
    public ClockMode Clock { get; init; } = ClockMode.Host;
    /// <summary>Where the console output goes.</summary>
    public required Stream Console { get; init; }
}

/// <summary>A QEMU-'virt'-compatible RISC-V machine.</summary>
public sealed class VirtMachine : IDisposable
{
    /// <summary>Smallest accepted RAM size.</summary>
    public const ulong MinMemory = 16UL << 20;
    /// <summary>Largest accepted RAM size.</summary>
    public const ulong MaxMemory = 8UL << 30;

    // Instructions a hart runs before the next one gets its turn (and the loop looks at timers).
    private const ulong Quantum = 100_000;

    private readonly MmioBus _bus = new();
    private readonly Hart[] _harts;
    private readonly Clint _clint;
    private readonly Plic _plic;
    private readonly Uart16550 _uart;
    private readonly GoldfishRtc _rtc;
    private readonly VirtioMmio[] _virtio = new VirtioMmio[Board.VirtioSlots];
    private readonly List<IDisposable> _owned = [];
    private readonly Stream _console;
    private readonly SemaphoreSlim _wake = new(0);
    private Htif? _htif;
    private volatile bool _finished;
    private int _lastHart = -1;

    /// <summary>Builds the machine.</summary>
    public VirtMachine(MachineOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.MemoryBytes < MinMemory || options.MemoryBytes > MaxMemory || options.MemoryBytes % GuestMemory.PageSize != 0)
            throw new ArgumentOutOfRangeException(nameof(options), $"memory size {options.MemoryBytes} must be a multiple of 4 KiB between 16 MiB and 8 GiB");
        if (options.Harts is < 1 or > Board.MaxHarts)
            throw new ArgumentOutOfRangeException(nameof(options), $"{options.Harts} harts: 1 to {Board.MaxHarts} are supported");
        _console = options.Console;
        Memory = new GuestMemory(Board.RamBase, options.MemoryBytes);
        _harts = new Hart[options.Harts];
        for (int h = 0; h < _harts.Length; h++)
        {
            var hart = new Hart(h, Memory, _bus);
            hart.TrapObserver = (cause, _) => Stats.Trap(cause);
            _harts[h] = hart;
        }
        Clock = new GuestClock(options.Clock, () => InstructionsRetired);
        foreach (var hart in _harts)
            hart.ReadTime = () => Clock.Now;

        _clint = new Clint(_harts, Clock) { TimerChanged = StopAll };
        _plic = new Plic(_harts);
        _uart = new Uart16550(_console, level => _plic.SetLevel(Board.UartIrq, level));
        // Wall time starts at the host's; in icount mode at a fixed instant, so runs are reproducible.
        long wallStart = options.Clock == ClockMode.Icount ? IcountEpochNanoseconds : DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() * 1_000_000;
        _rtc = new GoldfishRtc(() => wallStart + (long)(Clock.Now * (1_000_000_000 / Board.TimebaseFrequency)), level => _plic.SetLevel(Board.RtcIrq, level));
        for (int slot = 0; slot < Board.VirtioSlots; slot++)
            _virtio[slot] = new VirtioMmio(Memory, null, VirtioInterrupt(slot));

        _bus.Observer = Stats.MmioAccess;
        _bus.Map(Board.TestBase, Board.TestSize, new TestFinisher(PowerOff, () => Finish(ExitReason.Reboot, 0)), "test-finisher");
        _bus.Map(Board.RtcBase, Board.RtcSize, _rtc, "rtc");
        _bus.Map(Board.ClintBase, Board.ClintSize, _clint, "clint");
        _bus.Map(Board.PlicBase, Board.PlicSize, _plic, "plic");
        _bus.Map(Board.UartBase, Board.UartSize, _uart, "uart");
        for (int slot = 0; slot < Board.VirtioSlots; slot++)
        {
            int s = slot;
            _bus.Map(Board.VirtioSlotBase(slot), Board.VirtioStride, new SlotProxy(() => _virtio[s]), $"virtio{slot}");
        }
    }

    /// <summary>Where the RTC starts in icount mode: 2026-01-01T00:00:00Z.</summary>
    public const long IcountEpochNanoseconds = 1_767_225_600L * 1_000_000_000;

    /// <summary>Guest RAM.</summary>
    public GuestMemory Memory { get; }

    /// <summary>Hart 0.</summary>
    public Hart Hart => _harts[0];

    /// <summary>All harts.</summary>
    public IReadOnlyList<Hart> Harts => _harts;

    /// <summary>The guest clock.</summary>
    public GuestClock Clock { get; }

    /// <summary>Exit and trap counters.</summary>
    public MachineStats Stats { get; } = new();

    /// <summary>The console UART.</summary>
    public Uart16550 Uart => _uart;

    /// <summary>The interrupt controller.</summary>
    public Plic Plic => _plic;

    /// <summary>Instructions retired by all harts.</summary>
    public ulong InstructionsRetired
    {
        get
        {
            ulong sum = 0;
            foreach (var h in _harts)
                sum += h.InstructionsRetired;
            return sum;
        }
    }

    /// <summary>Why the last run ended.</summary>
    public ExitReason? Exit { get; private set; }

    /// <summary>The exit code the guest reported (finisher or HTIF).</summary>
    public int ExitCode { get; private set; }

    /// <summary>
    /// Plugs <paramref name="device"/> into virtio slot <paramref name="slot"/> (at 0x1000_1000 +
    /// 0x1000 × slot, PLIC source 1 + slot) with the modern (2) or legacy (1) register interface.
    /// Call before the guest runs. <paramref name="owned"/> (e.g. a disk file) is disposed with the machine.
    /// </summary>
    public void AttachVirtio(int slot, IVirtioDevice device, int version = 2, IDisposable? owned = null)
    {
        if (slot is < 0 or >= Board.VirtioSlots)
            throw new ArgumentOutOfRangeException(nameof(slot), slot, $"virtio slots are 0..{Board.VirtioSlots - 1}");
        if (_virtio[slot].Device is not null)
            throw new InvalidOperationException($"virtio slot {slot} already holds a device");
        _virtio[slot] = new VirtioMmio(Memory, device, VirtioInterrupt(slot), version);
        if (device is VirtioNet { Backend: var backend })
            backend.FrameAvailable += () => _wake.Release();
        if (owned is not null)
            _owned.Add(owned);
    }

    /// <summary>The virtio slots (empty ones hold a transport without a device).</summary>
    public IReadOnlyList<VirtioMmio> VirtioSlots => _virtio;

    /// <summary>The interrupt line of virtio slot <paramref name="slot"/>, for the device plugged there.</summary>
    public Action<bool> VirtioInterrupt(int slot) => level => _plic.SetLevel(Board.VirtioIrq + slot, level);

    /// <summary>Queues console input (from any thread) and wakes an idle guest.</summary>
    public void ConsoleInput(ReadOnlySpan<byte> bytes)
    {
        _uart.Enqueue(bytes);
        _wake.Release();
    }

    /// <summary>
    /// Loads the boot images like QEMU's 'virt' board. Without firmware, the kernel (ELF, or raw at
    /// RAM base) runs in M-mode; with firmware (e.g. OpenSBI fw_jump/fw_dynamic), the firmware runs
    /// first and the kernel (ELF, or raw at 0x8020_0000) follows. The device tree goes near the top
    /// of RAM; every hart starts with a0 = hart id, a1 = device tree, a2 = fw_dynamic information.
    /// </summary>
    public void Boot(BootImages images)
    {
        ArgumentNullException.ThrowIfNull(images);
        ulong entry;
        ulong kernelEntry;
        ElfImage? kernelElf = null;
        if (images.Firmware is { } firmware)
        {
            entry = LoadImage(firmware, Board.RamBase, "firmware", out _);
            kernelEntry = LoadImage(images.Kernel, Board.KernelBase, "kernel", out kernelElf);
        }
        else
        {
            entry = kernelEntry = LoadImage(images.Kernel, Board.RamBase, "kernel", out kernelElf);
        }

        (ulong, ulong)? initrd = null;
        if (images.Initrd is { } rd)
        {
            // Far enough above the kernel that its decompression and bss do not reach it (QEMU's rule).
            ulong start = Board.KernelBase + Math.Min(Memory.Size / 2, 128UL << 20);
            if (!Memory.Contains(start, (ulong)rd.Length))
                throw new InvalidImageException($"initrd of {rd.Length} bytes does not fit in guest RAM above 0x{start:x}");
            Memory.Write(start, rd);
            initrd = (start, start + (ulong)rd.Length);
        }

        byte[] dtb = DeviceTree.Build(new DeviceTreeConfig { MemoryBytes = Memory.Size, Harts = _harts.Length, BootArgs = images.BootArgs, Initrd = initrd });
        ulong top = Math.Min(Memory.Base + Memory.Size, 3UL << 30);
        ulong dtbAddress = (top - (ulong)dtb.Length) & ~((2UL << 20) - 1);
        if (initrd is { } r && dtbAddress < r.Item2)
            throw new InvalidImageException("the initrd leaves no room for the device tree; give the guest more memory");
        Memory.Write(dtbAddress, dtb);

        // struct fw_dynamic_info (OpenSBI, version 2): magic, version, next_addr, next_mode (S), options, boot_hart.
        ulong info = dtbAddress - 64;
        var infoBytes = new byte[48];
        BitConverter.TryWriteBytes(infoBytes.AsSpan(0), 0x4942534FUL);
        BitConverter.TryWriteBytes(infoBytes.AsSpan(8), 2UL);
        BitConverter.TryWriteBytes(infoBytes.AsSpan(16), kernelEntry);
        BitConverter.TryWriteBytes(infoBytes.AsSpan(24), 1UL);
        Memory.Write(info, infoBytes);

        foreach (var hart in _harts)
        {
            hart.Pc = entry;
            hart.SetX(10, hart.HartId);
            hart.SetX(11, dtbAddress);
            hart.SetX(12, info);
        }
        DeviceTreeAddress = dtbAddress;

        if (images.Htif)
        {
            if (kernelElf is null || !kernelElf.TryGetSymbol("tohost", out ulong tohost))
                throw new InvalidImageException("--htif needs an ELF kernel with a 'tohost' symbol");
            ulong? fromhost = kernelElf.TryGetSymbol("fromhost", out ulong fh) ? fh : null;
            _htif = new Htif(Memory, tohost, fromhost, _console, code => Finish(ExitReason.Htif, code));
            Memory.WatchedWrite = _htif.OnWrite;
        }
    }

    /// <summary>Where the device tree was placed.</summary>
    public ulong DeviceTreeAddress { get; private set; }

    /// <summary>Loads a kernel without firmware (the `--bios none` path).</summary>
    public void LoadKernel(byte[] image, bool htif) => Boot(new BootImages { Kernel = image, Htif = htif });

    private ulong LoadImage(byte[] image, ulong rawAddress, string what, out ElfImage? elf)
    {
        elf = null;
        if (image.Length >= 2 && image[0] == 0x1F && image[1] == 0x8B)
            image = Gunzip(image, what);
        if (ElfImage.IsElf(image))
        {
            elf = ElfImage.Parse(image);
            foreach (var seg in elf.Segments)
            {
                if (!Memory.Contains(seg.PhysicalAddress, seg.MemorySize))
                    throw new InvalidImageException($"{what}: segment at 0x{seg.PhysicalAddress:x} (0x{seg.MemorySize:x} bytes) does not fit in guest RAM 0x{Memory.Base:x}-0x{Memory.Base + Memory.Size - 1:x}");
                Memory.Write(seg.PhysicalAddress, seg.Data.Span);
                Memory.Span(seg.PhysicalAddress + (ulong)seg.Data.Length, (int)(seg.MemorySize - (ulong)seg.Data.Length)).Clear();
            }
            return elf.Entry;
        }
        if (!Memory.Contains(rawAddress, (ulong)image.Length))
            throw new InvalidImageException($"{what}: raw image of {image.Length} bytes does not fit in guest RAM at 0x{rawAddress:x}");
        Memory.Write(rawAddress, image);
        return rawAddress;
    }

    // A gzip-compressed kernel (Image.gz) is unpacked on the host, up to the size of guest RAM.
    private byte[] Gunzip(byte[] image, string what)
    {
        try
        {
            using var gz = new System.IO.Compression.GZipStream(new MemoryStream(image), System.IO.Compression.CompressionMode.Decompress);
            using var output = new MemoryStream();
            var buffer = new byte[1 << 16];
            int n;
            while ((n = gz.Read(buffer)) > 0)
            {
                output.Write(buffer, 0, n);
                if ((ulong)output.Length > Memory.Size)
                    throw new InvalidImageException($"{what}: gzip image unpacks to more than the guest's {Memory.Size} bytes of RAM");
            }
            return output.ToArray();
        }
        catch (InvalidDataException e)
        {
            throw new InvalidImageException($"{what}: corrupt gzip image ({e.Message})");
        }
    }

    private void PowerOff(int code) => Finish(ExitReason.PowerOff, code);

    /// <summary>Called on the machine's thread, between quanta, after <see cref="RequestSnapshot"/>.</summary>
    public Action<VirtMachine>? SnapshotRequested { get; set; }

    private volatile bool _snapshotRequested;

    /// <summary>Asks for <see cref="SnapshotRequested"/> at the next quantum boundary. Safe from any thread.</summary>
    public void RequestSnapshot()
    {
        _snapshotRequested = true;
        StopAll();
        _wake.Release();
    }

    private volatile bool _yieldRequested;

    /// <summary>
    /// Makes <see cref="Run"/> return <see cref="ExitReason.Yielded"/> at the next block boundary,
    /// from any thread; calling Run again continues the guest exactly where it was.
    /// </summary>
    public void Interrupt()
    {
        _yieldRequested = true;
        StopAll();
        _wake.Release();
    }

    /// <summary>Stops the machine from any thread; Run returns <see cref="ExitReason.Quit"/>.</summary>
    public void Quit() => Finish(ExitReason.Quit, 0);

    private void Finish(ExitReason reason, int code)
    {
        if (_finished)
            return;
        _finished = true;
        Exit = reason;
        ExitCode = code;
        StopAll();
        _wake.Release();
    }

    private void StopAll()
    {
        foreach (var h in _harts)
            h.RequestStop();
    }

    /// <summary>Runs until the guest powers off, or a limit is reached.</summary>
    public ExitReason Run(ulong maxInstructions, TimeSpan timeout)
    {
        var watch = Stopwatch.StartNew();
        ulong start = InstructionsRetired;
        while (!_finished)
        {
            if (_yieldRequested)
            {
                _yieldRequested = false;
                return ExitReason.Yielded;
            }
            if (_snapshotRequested)
            {
                _snapshotRequested = false;
                SnapshotRequested?.Invoke(this);
            }
            _uart.Poll();
            _rtc.Poll();
            foreach (var slot in _virtio)
                slot.Poll();
            _clint.UpdateTimers();
            foreach (var hart in _harts)
                hart.UpdateTimer();
            ulong budget = Quantum;
            ulong deadline = NextTimerDeadline();
            if (Clock.Mode == ClockMode.Icount && deadline != ulong.MaxValue)
                budget = Math.Clamp(Clock.InstructionsUntil(deadline), 1, Quantum);
            if (maxInstructions != 0)
            {
                ulong done = InstructionsRetired - start;
                if (done >= maxInstructions)
                    return Finished(ExitReason.InstructionLimit);
                budget = Math.Min(budget, maxInstructions - done);
            }
            bool anyRan = false;
            for (int h = 0; h < _harts.Length && !_finished && !_yieldRequested; h++)
            {
                var hart = _harts[h];
                if (hart.WaitingForInterrupt && !hart.HasWakeupInterrupt)
                    continue;
                if (_lastHart != h && _harts.Length > 1)
                {
                    hart.ClearReservation();
                    _lastHart = h;
                }
                var stop = hart.Run(budget);
                anyRan = true;
                if (stop == StopReason.WaitForInterrupt)
                    Stats.WfiHalts++;
            }
            if (!anyRan && !_finished)
                WaitForInterrupt(watch, timeout);
            if (watch.Elapsed > timeout && !_finished)
                return Finished(ExitReason.Timeout);
        }
        return Exit!.Value;
    }

    private ExitReason Finished(ExitReason reason)
    {
        Exit = reason;
        return reason;
    }

    // The next moment a timer fires: a CLINT mtimecmp or an Sstc stimecmp still in the future.
    private ulong NextTimerDeadline()
    {
        ulong next = _clint.NextDeadline;
        ulong now = Clock.Now;
        foreach (var hart in _harts)
        {
            if (hart.SupervisorTimerDeadline is { } t && t > now && t < next)
                next = t;
        }
        return next;
    }

    // Every hart sleeps in WFI: wait for the next timer deadline or console input; in icount
    // mode, time jumps to the deadline instead.
    private void WaitForInterrupt(Stopwatch watch, TimeSpan timeout)
    {
        ulong deadline = NextTimerDeadline();
        if (Clock.Mode == ClockMode.Icount && deadline != ulong.MaxValue)
        {
            Clock.SkipTo(deadline);
            return;
        }
        double ms = MaxIdleWaitMs;
        ulong now = Clock.Now;
        if (deadline != ulong.MaxValue)
            ms = deadline <= now ? 0 : (deadline - now) * 1000.0 / Board.TimebaseFrequency;
        if (_rtc.Alarm >= 0)
            ms = Math.Min(ms, 10);
        ms = Math.Min(ms, Math.Max(0, (timeout - watch.Elapsed).TotalMilliseconds));
        if (ms >= 0.05 && !_uart.HasInput)
            _wake.Wait(TimeSpan.FromMilliseconds(Math.Min(ms, MaxIdleWaitMs)));
    }

    // The longest an idle machine sleeps before looking again. Everything that needs the machine
    // wakes it at once (console input, network frames, Interrupt, Quit, snapshot requests) and timer
    // deadlines are computed, so this is only a backstop; at 50 ms it cost every idle guest 20
    // wake-ups a second, measurable on a host of 64 idle guests (docs/benchmarks/cluster.md).
    private const double MaxIdleWaitMs = 1000;

    /// <summary>Captures everything but RAM. Call while the machine is not running.</summary>
    public Snapshot.MachineState CaptureState() => new(
        new Snapshot.MachineShape(Memory.Size, _harts.Length, Clock.Mode),
        Clock.Save(),
        Array.ConvertAll(_harts, h => h.Save()),
        _clint.Save(),
        _plic.Save(),
        _uart.Save(),
        _rtc.Save(),
        Stats.Save(),
        Array.ConvertAll(_virtio, SaveSlot));

    private static Snapshot.VirtioSlotState SaveSlot(VirtioMmio slot) => new(
        slot.Save(),
        (slot.Device as VirtioBlk)?.Save(),
        (slot.Device as VirtioNet)?.Save(),
        (slot.Device as VirtioRng)?.Save());

    /// <summary>Loads a state captured by <see cref="CaptureState"/> into this (not running) machine of the same shape.</summary>
    public void RestoreState(Snapshot.MachineState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        if (state.Shape != new Snapshot.MachineShape(Memory.Size, _harts.Length, Clock.Mode))
            throw new ArgumentException($"state is for {state.Shape}, this machine is {Memory.Size} bytes, {_harts.Length} harts, {Clock.Mode} clock");
        Clock.Restore(state.Clock);
        for (int h = 0; h < _harts.Length; h++)
            _harts[h].Restore(state.Harts[h]);
        _plic.Restore(state.Plic);
        _clint.Restore(state.Clint);
        _uart.Restore(state.Uart);
        _rtc.Restore(state.Rtc);
        Stats.Restore(state.Stats);
        for (int i = 0; i < Board.VirtioSlots; i++)
            RestoreSlot(i, state.Virtio[i]);
        _lastHart = -1;
    }

    // RAM must already hold the saved rings: the transport checks its queue addresses against it.
    private void RestoreSlot(int index, Snapshot.VirtioSlotState saved)
    {
        var slot = _virtio[index];
        string have = slot.Device?.GetType().Name ?? "nothing";
        string want = saved.Blk is not null ? nameof(VirtioBlk) : saved.Net is not null ? nameof(VirtioNet) : saved.Rng is not null ? nameof(VirtioRng) : "nothing";
        if (have != want)
            throw new ArgumentException($"virtio slot {index} held {want} when saved but holds {have} now: attach the same devices (e.g. the same --disk) when restoring");
        switch (slot.Device)
        {
            case VirtioBlk blk: blk.Restore(saved.Blk!); break;
            case VirtioNet net: net.Restore(saved.Net!); break;
            case VirtioRng rng: rng.Restore(saved.Rng!); break;
        }
        slot.Restore(saved.Transport);
    }

    /// <summary>Frees guest RAM and the devices' host resources.</summary>
    public void Dispose()
    {
        foreach (var o in _owned)
            o.Dispose();
        foreach (var h in _harts)
            h.Dispose();
        Memory.Dispose();
        _wake.Dispose();
    }

    // Lets a slot's device be replaced after the bus is built.
    private sealed class SlotProxy(Func<IMmioDevice> device) : IMmioDevice
    {
        public bool Read(ulong offset, int size, out ulong value) => device().Read(offset, size, out value);

        public bool Write(ulong offset, int size, ulong value) => device().Write(offset, size, value);
    }
}

/// <summary>What a machine boots.</summary>
public sealed record BootImages
{
    /// <summary>Firmware (e.g. OpenSBI), or null to run the kernel directly in M-mode.</summary>
    public byte[]? Firmware { get; init; }
    /// <summary>The kernel: an ELF, or a raw image.</summary>
    public required byte[] Kernel { get; init; }
    /// <summary>An initial RAM disk, if any.</summary>
    public byte[]? Initrd { get; init; }
    /// <summary>The kernel command line.</summary>
    public string BootArgs { get; init; } = "";
    /// <summary>Watch the kernel ELF's tohost symbol.</summary>
    public bool Htif { get; init; }
}
