// A 'virt' machine: RAM, harts, the devices on the bus, the guest clock, and the loop that
// runs the harts in slices between which timers are updated and WFI sleeps are served.
using System.Diagnostics;
using Tern.Machine.Boot;
using Tern.Machine.Devices.Clint;
using Tern.Machine.Devices.Htif;
using Tern.Machine.Devices.TestFinisher;
using Tern.Machine.Devices.Uart16550;
using Tern.Riscv;

namespace Tern.Machine;

/// <summary>Options of a <see cref="VirtMachine"/>.</summary>
public sealed record MachineOptions
{
    /// <summary>Guest RAM size in bytes (16 MiB to 8 GiB).</summary>
    public ulong MemoryBytes { get; init; } = 256UL << 20;
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

    private const ulong SliceInstructions = 200_000;

    private readonly MmioBus _bus = new();
    private readonly Hart _hart;
    private readonly Clint _clint;
    private readonly Stream _console;
    private Htif? _htif;
    private bool _finished;

    /// <summary>Builds the machine.</summary>
    public VirtMachine(MachineOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.MemoryBytes < MinMemory || options.MemoryBytes > MaxMemory || options.MemoryBytes % GuestMemory.PageSize != 0)
            throw new ArgumentOutOfRangeException(nameof(options), $"memory size {options.MemoryBytes} must be a multiple of 4 KiB between 16 MiB and 8 GiB");
        _console = options.Console;
        Memory = new GuestMemory(Board.RamBase, options.MemoryBytes);
        _hart = new Hart(0, Memory, _bus);
        Clock = new GuestClock(options.Clock, () => _hart.InstructionsRetired);
        _hart.ReadTime = () => Clock.Now;
        _clint = new Clint([_hart], Clock) { TimerChanged = _hart.RequestStop };
        _bus.Map(Board.TestBase, Board.TestSize, new TestFinisher(PowerOff, () => PowerOff(0)));
        _bus.Map(Board.ClintBase, Board.ClintSize, _clint);
        _bus.Map(Board.UartBase, Board.UartSize, new Uart16550(_console));
    }

    /// <summary>Guest RAM.</summary>
    public GuestMemory Memory { get; }

    /// <summary>Hart 0.</summary>
    public Hart Hart => _hart;

    /// <summary>The guest clock.</summary>
    public GuestClock Clock { get; }

    /// <summary>Why the last run ended.</summary>
    public ExitReason? Exit { get; private set; }

    /// <summary>The exit code the guest reported (finisher or HTIF).</summary>
    public int ExitCode { get; private set; }

    /// <summary>
    /// Loads a kernel: an ELF (segments at their physical addresses) or a raw image at RAM base.
    /// Sets pc to the entry point, a0 to the hart id. With <paramref name="htif"/>, watches the ELF's tohost symbol.
    /// </summary>
    public void LoadKernel(byte[] image, bool htif)
    {
        ArgumentNullException.ThrowIfNull(image);
        if (ElfImage.IsElf(image))
        {
            var elf = ElfImage.Parse(image);
            foreach (var seg in elf.Segments)
            {
                if (!Memory.Contains(seg.PhysicalAddress, seg.MemorySize))
                    throw new InvalidImageException($"segment at 0x{seg.PhysicalAddress:x} (0x{seg.MemorySize:x} bytes) does not fit in guest RAM 0x{Memory.Base:x}-0x{Memory.Base + Memory.Size - 1:x}");
                Memory.Write(seg.PhysicalAddress, seg.Data.Span);
                Memory.Span(seg.PhysicalAddress + (ulong)seg.Data.Length, (int)(seg.MemorySize - (ulong)seg.Data.Length)).Clear();
            }
            _hart.Pc = elf.Entry;
            if (htif)
            {
                if (!elf.TryGetSymbol("tohost", out ulong tohost))
                    throw new InvalidImageException("--htif needs a 'tohost' symbol, and the ELF has none");
                ulong? fromhost = elf.TryGetSymbol("fromhost", out ulong f) ? f : null;
                _htif = new Htif(Memory, tohost, fromhost, _console, code => Finish(ExitReason.Htif, code));
                Memory.WatchedWrite = _htif.OnWrite;
            }
        }
        else
        {
            if (htif)
                throw new InvalidImageException("--htif needs an ELF image with a 'tohost' symbol");
            if ((ulong)image.Length > Memory.Size)
                throw new InvalidImageException($"raw image of {image.Length} bytes does not fit in {Memory.Size} bytes of RAM");
            Memory.Write(Board.RamBase, image);
            _hart.Pc = Board.RamBase;
        }
        _hart.SetX(10, 0);
    }

    private void PowerOff(int code) => Finish(ExitReason.PowerOff, code);

    private void Finish(ExitReason reason, int code)
    {
        if (_finished)
            return;
        _finished = true;
        Exit = reason;
        ExitCode = code;
        _hart.RequestStop();
    }

    /// <summary>Runs until the guest powers off, or a limit is reached.</summary>
    public ExitReason Run(ulong maxInstructions, TimeSpan timeout)
    {
        var watch = Stopwatch.StartNew();
        ulong start = _hart.InstructionsRetired;
        while (!_finished)
        {
            _clint.UpdateTimers();
            ulong budget = SliceInstructions;
            if (Clock.Mode == ClockMode.Icount && _clint.NextDeadline != ulong.MaxValue)
                budget = Math.Clamp(Clock.InstructionsUntil(_clint.NextDeadline), 1, SliceInstructions);
            if (maxInstructions != 0)
            {
                ulong done = _hart.InstructionsRetired - start;
                if (done >= maxInstructions)
                    return Finished(ExitReason.InstructionLimit);
                budget = Math.Min(budget, maxInstructions - done);
            }
            var stop = _hart.Run(budget);
            if (stop == StopReason.WaitForInterrupt)
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

    // Sleeps until the next timer deadline; in icount mode time jumps there instead.
    private void WaitForInterrupt(Stopwatch watch, TimeSpan timeout)
    {
        ulong deadline = _clint.NextDeadline;
        if (Clock.Mode == ClockMode.Icount)
        {
            if (deadline != ulong.MaxValue)
                Clock.SkipTo(deadline);
            else
                Thread.Sleep(TimeSpan.FromMilliseconds(Math.Min(50, Math.Max(0, (timeout - watch.Elapsed).TotalMilliseconds))));
            return;
        }
        ulong now = Clock.Now;
        if (deadline <= now)
            return;
        double ms = deadline == ulong.MaxValue ? 50 : (deadline - now) * 1000.0 / Board.TimebaseFrequency;
        ms = Math.Min(ms, Math.Max(0, (timeout - watch.Elapsed).TotalMilliseconds));
        if (ms >= 1)
            Thread.Sleep(TimeSpan.FromMilliseconds(Math.Min(ms, 50)));
    }

    /// <summary>Frees guest RAM.</summary>
    public void Dispose()
    {
        _hart.Dispose();
        Memory.Dispose();
    }
}
