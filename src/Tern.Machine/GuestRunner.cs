// Runs one guest program to completion: the code path shared by `tern run`, the ISA test
// suite and the differential tests.
namespace Tern.Machine;

/// <summary>How guest time advances.</summary>
public enum ClockMode
{
    /// <summary>Guest time follows the host's monotonic clock.</summary>
    Host,
    /// <summary>Guest time is derived from retired instructions: runs are deterministic.</summary>
    Icount,
}

/// <summary>Why a guest run ended.</summary>
public enum ExitReason
{
    /// <summary>The guest powered off through the SiFive test finisher.</summary>
    PowerOff,
    /// <summary>The guest wrote an exit value to HTIF tohost.</summary>
    Htif,
    /// <summary>The instruction limit was reached.</summary>
    InstructionLimit,
    /// <summary>The wall-clock timeout was reached.</summary>
    Timeout,
    /// <summary>The user quit (Ctrl-A X) or the host stopped the machine.</summary>
    Quit,
    /// <summary>The guest asked for a reset (finisher 0x7777); GuestRunner boots it again.</summary>
    Reboot,
    /// <summary>The host asked Run to return (<see cref="VirtMachine.Interrupt"/>); the guest can continue.</summary>
    Yielded,
}

/// <summary>What to run and how.</summary>
public sealed record GuestRunOptions
{
    /// <summary>The kernel image: an ELF (detected by its magic) or a raw image loaded at RAM base. Not used with <see cref="RestoreFrom"/>.</summary>
    public byte[] Kernel { get; init; } = [];
    /// <summary>Continue the machine saved in this snapshot file instead of booting.</summary>
    public string? RestoreFrom { get; init; }
    /// <summary>Save a snapshot here when the run ends (and on a console request).</summary>
    public string? SnapshotTo { get; init; }
    /// <summary>Firmware to run first (e.g. OpenSBI fw_jump.elf); null runs the kernel directly in M-mode.</summary>
    public byte[]? Firmware { get; init; }
    /// <summary>An initial RAM disk.</summary>
    public byte[]? Initrd { get; init; }
    /// <summary>The kernel command line.</summary>
    public string BootArgs { get; init; } = "";
    /// <summary>Number of harts.</summary>
    public int Harts { get; init; } = 1;
    /// <summary>Disks, attached as virtio-blk devices in slots 0, 1, ...: image files, or whatever <see cref="OpenDisk"/> understands.</summary>
    public IReadOnlyList<string> Disks { get; init; } = [];
    /// <summary>Opens a disk named in <see cref="Disks"/> (e.g. a logical volume); null opens files. Disposable backends are disposed with the machine.</summary>
    public Func<string, Devices.IBlockBackend>? OpenDisk { get; init; }
    /// <summary>Attach a virtio entropy device (after the disks).</summary>
    public bool Rng { get; init; }
    /// <summary>virtio-mmio register interface: 2 (modern) or 1 (legacy, for old guests).</summary>
    public int VirtioVersion { get; init; } = 2;
    /// <summary>Watch the ELF's tohost symbol (RISC-V test convention).</summary>
    public bool Htif { get; init; }
    /// <summary>Guest RAM size in bytes.</summary>
    public ulong MemoryBytes { get; init; } = 256UL << 20;
    /// <summary>Stop after this many retired instructions (0 = no limit).</summary>
    public ulong MaxInstructions { get; init; }
    /// <summary>Stop after this much wall-clock time.</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromMinutes(10);
    /// <summary>How guest time advances.</summary>
    public ClockMode Clock { get; init; } = ClockMode.Host;
    /// <summary>Where the guest's UART (and HTIF console) output goes; null collects it into the result.</summary>
    public Stream? ConsoleOutput { get; init; }
    /// <summary>End the run (as <see cref="ExitReason.Quit"/>, exit code 0) once the console has printed this text.</summary>
    public string? StopOnOutput { get; init; }
    /// <summary>Feeds the guest's console, if given.</summary>
    public IConsoleInput? ConsoleInput { get; init; }
}

/// <summary>A source of console input for a running machine (a terminal, a test script).</summary>
public interface IConsoleInput
{
    /// <summary>Starts delivering input to <paramref name="machine"/>; disposing stops it.</summary>
    IDisposable Subscribe(VirtMachine machine);
}

/// <summary>The outcome of a guest run.</summary>
public sealed record GuestRunResult(
    ExitReason Reason,
    int ExitCode,
    string ConsoleOutput,
    ulong InstructionsRetired,
    TimeSpan Elapsed,
    string Message,
    MachineStats Stats);

/// <summary>Runs a guest program from start to exit.</summary>
public static class GuestRunner
{
    /// <summary>Builds a machine, loads the kernel, runs it and reports how it ended.</summary>
    public static GuestRunResult Run(GuestRunOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var collected = options.ConsoleOutput is null ? new MemoryStream() : null;
        Stream console = options.ConsoleOutput ?? collected!;
        VirtMachine? running = null;
        if (options.StopOnOutput is { } milestone)
            console = new OutputWatchStream(console, milestone, () => running?.Quit());
        var watch = System.Diagnostics.Stopwatch.StartNew();
        var machine = Create(options, console);
        ulong retiredBeforeReboots = 0;
        ExitReason reason;
        try
        {
            while (true)
            {
                running = machine;
                if (options.SnapshotTo is { } path)
                    machine.SnapshotRequested = m => SaveSnapshot(m, path);
                if (options.MaxInstructions != 0 && retiredBeforeReboots >= options.MaxInstructions)
                {
                    reason = ExitReason.InstructionLimit;
                    break;
                }
                ulong limit = options.MaxInstructions == 0 ? 0 : options.MaxInstructions - retiredBeforeReboots;
                using (options.ConsoleInput?.Subscribe(machine))
                    reason = machine.Run(limit, options.Timeout - watch.Elapsed);
                if (reason != ExitReason.Reboot || options.RestoreFrom is not null)
                    break;
                // A reset starts the same machine afresh: new harts, devices and RAM, the same boot images.
                retiredBeforeReboots += machine.InstructionsRetired;
                machine.Dispose();
                machine = Create(options, console);
            }
        }
        catch
        {
            machine.Dispose();
            throw;
        }
        using var finished = machine;
        watch.Stop();
        if (options.SnapshotTo is { } snapshotPath)
            SaveSnapshot(machine, snapshotPath);
        console.Flush();
        string text = collected is null ? "" : System.Text.Encoding.UTF8.GetString(collected.ToArray());
        string message = reason switch
        {
            ExitReason.Htif when machine.ExitCode == 0 => "PASS",
            ExitReason.Htif => $"FAIL: test {machine.ExitCode}",
            ExitReason.PowerOff => $"powered off with code {machine.ExitCode}",
            ExitReason.Quit => "quit",
            ExitReason.Reboot => "the guest asked for a reset",
            ExitReason.Yielded => "yielded to the host",
            ExitReason.InstructionLimit => $"instruction limit reached at pc 0x{machine.Hart.Pc:x}",
            _ => $"timed out at pc 0x{machine.Hart.Pc:x}",
        };
        int code = reason is ExitReason.Htif or ExitReason.PowerOff or ExitReason.Quit ? machine.ExitCode : -1;
        return new GuestRunResult(reason, code, text, retiredBeforeReboots + machine.InstructionsRetired, watch.Elapsed, message, machine.Stats);
    }

    private static VirtMachine Create(GuestRunOptions options, Stream console)
    {
        if (options.RestoreFrom is { } file)
        {
            using var input = File.OpenRead(file);
            return Snapshot.SnapshotFile.Load(input, console, m => AttachDevices(m, options));
        }
        var machine = new VirtMachine(new MachineOptions { MemoryBytes = options.MemoryBytes, Clock = options.Clock, Console = console, Harts = options.Harts });
        try
        {
            AttachDevices(machine, options);
            machine.Boot(new BootImages { Firmware = options.Firmware, Kernel = options.Kernel, Initrd = options.Initrd, BootArgs = options.BootArgs, Htif = options.Htif });
            return machine;
        }
        catch
        {
            machine.Dispose();
            throw;
        }
    }

    private static void AttachDevices(VirtMachine machine, GuestRunOptions options)
    {
        int slot = 0;
        foreach (string disk in options.Disks)
        {
            var backend = options.OpenDisk?.Invoke(disk) ?? new Devices.Virtio.FileBlockBackend(disk);
            machine.AttachVirtio(slot++, new Devices.Virtio.VirtioBlk(backend), options.VirtioVersion, backend as IDisposable);
        }
        if (options.Rng)
            machine.AttachVirtio(slot, new Devices.Virtio.VirtioRng(), options.VirtioVersion);
    }

    // Written to a temporary file first and renamed, so an interrupted save never leaves a torn snapshot.
    private static void SaveSnapshot(VirtMachine machine, string path)
    {
        string temp = path + ".tmp";
        using (var output = File.Create(temp))
            Snapshot.SnapshotFile.Save(machine, output);
        File.Move(temp, path, overwrite: true);
    }
}
