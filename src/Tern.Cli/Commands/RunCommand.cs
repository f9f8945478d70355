// `tern run`: boots one guest on this machine, with its console on the terminal and the
// guest's exit code (SiFive finisher or HTIF) as the process exit code.
using System.CommandLine;
using Tern.Machine;
using Tern.Machine.Boot;

namespace Tern.Cli.Commands;

/// <summary>The `tern run` verb.</summary>
public static class RunCommand
{
    /// <summary>Exit code when tern itself rejects the request (bad argument, unreadable image).</summary>
    public const int UsageError = 2;

    /// <summary>Exit code when the guest did not finish (timeout or instruction limit).</summary>
    public const int GuestDidNotFinish = 124;

    /// <summary>Builds the command.</summary>
    public static Command Create()
    {
        var kernel = new Option<FileInfo?>("--kernel") { Description = "Kernel image: an ELF, or a raw image loaded at 0x80000000." };
        var snapshotOnExit = new Option<FileInfo?>("--snapshot-on-exit") { Description = "Save the whole machine to this file when the run ends (Ctrl-A S saves it at any time)." };
        var restore = new Option<FileInfo?>("--restore") { Description = "Continue the machine saved in this snapshot file (instead of --kernel)." };
        var bios = new Option<string>("--bios") { Description = "Firmware: 'none' runs the kernel directly in M-mode; a path (e.g. OpenSBI fw_jump.elf) runs it first with the kernel at 0x80200000.", DefaultValueFactory = _ => "none" };
        var initrd = new Option<FileInfo?>("--initrd") { Description = "An initial RAM disk for the kernel." };
        var append = new Option<string>("--append") { Description = "The kernel command line.", DefaultValueFactory = _ => "" };
        var disk = new Option<string[]>("--disk") { Description = "A guest disk (virtio-blk): an image file, or lv:VG/LV for a logical volume of this node's extent pool. Repeat for more disks.", AllowMultipleArgumentsPerToken = false };
        var until = new Option<string?>("--until") { Description = "Stop (exit status 0) once the guest's console has printed this text." };
        var rng = new Option<bool>("--rng") { Description = "Give the guest a virtio entropy device." };
        var legacy = new Option<bool>("--virtio-legacy") { Description = "Use the legacy (version 1) virtio-mmio interface, for old guests." };
        var smp = new Option<int>("--smp") { Description = "Number of harts (1 to 8).", DefaultValueFactory = _ => 1 };
        var mem = new Option<string>("--mem") { Description = "Guest RAM size (e.g. 256M, 1G).", DefaultValueFactory = _ => "256M" };
        var htif = new Option<bool>("--htif") { Description = "Watch the ELF's tohost symbol: exit 0 when the program writes 1, else the failing test number." };
        var clock = new Option<ClockMode>("--clock") { Description = "Guest time: host (follows the host clock) or icount (derived from instructions; deterministic).", DefaultValueFactory = _ => ClockMode.Host };
        var maxInsns = new Option<ulong>("--max-instructions") { Description = "Stop after this many instructions (0 = no limit)." };
        var timeout = new Option<double>("--timeout") { Description = "Stop after this many seconds of wall-clock time.", DefaultValueFactory = _ => 3600 };
        var stats = new Option<bool>("--stats") { Description = "Print instructions, MIPS and the exits and traps by reason (like kvm_stat) at exit." };
        var cmd = new Command("run", "Run a guest on this machine; its console is this terminal (Ctrl-A X quits).") { kernel, bios, initrd, append, smp, mem, htif, clock, maxInsns, timeout, stats, snapshotOnExit, restore, disk, rng, legacy, until };
        cmd.SetAction(parse =>
        {
            var err = parse.InvocationConfiguration.Error;
            int harts = parse.GetValue(smp);
            if (harts is < 1 or > Board.MaxHarts)
            {
                err.WriteLine($"tern run: --smp {harts}: expected 1 to {Board.MaxHarts} harts.");
                return UsageError;
            }
            if (!SizeParser.TryParse(parse.GetValue(mem)!, out ulong memBytes) || memBytes < VirtMachine.MinMemory || memBytes > VirtMachine.MaxMemory)
            {
                err.WriteLine($"tern run: --mem {parse.GetValue(mem)}: expected a size from 16M to 8G, such as 256M.");
                return UsageError;
            }
            double seconds = parse.GetValue(timeout);
            if (!(seconds > 0))
            {
                err.WriteLine("tern run: --timeout must be a positive number of seconds.");
                return UsageError;
            }
            var file = parse.GetValue(kernel);
            var restoreFile = parse.GetValue(restore);
            if ((file is null) == (restoreFile is null))
            {
                err.WriteLine("tern run: give either --kernel IMAGE or --restore SNAPSHOT.");
                return UsageError;
            }
            string[] disks = [.. (parse.GetValue(disk) ?? []).Select(d => VolumeDisk.IsVolume(d) ? d : Path.GetFullPath(d))];
            foreach (var d in disks)
            {
                if (!VolumeDisk.IsVolume(d) && !File.Exists(d))
                {
                    err.WriteLine($"tern run: --disk {d}: no such file (create one, e.g. with truncate -s 64M, or name a volume as lv:VG/LV).");
                    return UsageError;
                }
            }
            if (restoreFile is not null && !restoreFile.Exists)
            {
                err.WriteLine($"tern run: cannot read snapshot '{restoreFile.FullName}': no such file.");
                return UsageError;
            }
            string biosValue = parse.GetValue(bios)!;
            byte[]? image = file is null ? [] : ReadFile(file.FullName, "kernel", err);
            byte[]? firmware = string.Equals(biosValue, "none", StringComparison.Ordinal) ? [] : ReadFile(biosValue, "firmware (--bios)", err);
            byte[]? rd = parse.GetValue(initrd) is { } initrdFile ? ReadFile(initrdFile.FullName, "initrd", err) : [];
            if (image is null || firmware is null || rd is null)
                return UsageError;
            using var stdout = Console.OpenStandardOutput();
            GuestRunResult result;
            try
            {
                result = GuestRunner.Run(new GuestRunOptions
                {
                    Kernel = image,
                    RestoreFrom = restoreFile?.FullName,
                    SnapshotTo = parse.GetValue(snapshotOnExit)?.FullName,
                    Firmware = firmware.Length == 0 ? null : firmware,
                    Initrd = rd.Length == 0 ? null : rd,
                    BootArgs = parse.GetValue(append)!,
                    Harts = harts,
                    Disks = disks,
                    OpenDisk = OpenDisk,
                    Rng = parse.GetValue(rng),
                    StopOnOutput = parse.GetValue(until),
                    VirtioVersion = parse.GetValue(legacy) ? 1 : 2,
                    ConsoleInput = new TerminalInput(),
                    Htif = parse.GetValue(htif),
                    MemoryBytes = memBytes,
                    Clock = parse.GetValue(clock),
                    MaxInstructions = parse.GetValue(maxInsns),
                    Timeout = TimeSpan.FromSeconds(seconds),
                    ConsoleOutput = stdout,
                });
            }
            catch (InvalidImageException e)
            {
                err.WriteLine($"tern run: {file?.Name}: {e.Message}");
                return UsageError;
            }
            catch (Tern.Machine.Snapshot.InvalidSnapshotException e)
            {
                err.WriteLine($"tern run: {restoreFile?.Name}: {e.Message}");
                return UsageError;
            }
            catch (Tern.Storage.StorageException e)
            {
                err.WriteLine($"tern run: --disk: {e.Message}");
                return UsageError;
            }
            if (parse.GetValue(stats))
            {
                double mips = result.InstructionsRetired / Math.Max(result.Elapsed.TotalSeconds, 1e-9) / 1e6;
                err.WriteLine($"tern: {result.InstructionsRetired:N0} instructions in {result.Elapsed.TotalSeconds:F3} s ({mips:F1} MIPS)");
                err.Write(result.Stats.Format());
            }
            switch (result.Reason)
            {
                case ExitReason.Htif when result.ExitCode != 0:
                    err.WriteLine($"tern run: {result.Message}");
                    return result.ExitCode;
                case ExitReason.Htif or ExitReason.PowerOff or ExitReason.Quit:
                    return result.ExitCode;
                case ExitReason.Reboot:
                    err.WriteLine("tern run: the restored guest asked for a reset; without its boot images it cannot start again, so the run ends.");
                    return 0;
                default:
                    err.WriteLine($"tern run: {result.Message}");
                    return GuestDidNotFinish;
            }
        });
        return cmd;
    }

    // Files become file-backed disks; lv:VG/LV opens the volume in this node's pool (TERN_HOME).
    private static Tern.Machine.Devices.IBlockBackend OpenDisk(string spec) =>
        VolumeDisk.IsVolume(spec)
            ? VolumeDisk.OpenAsync(spec).GetAwaiter().GetResult()
            : new Tern.Machine.Devices.Virtio.FileBlockBackend(spec);

    private static byte[]? ReadFile(string path, string what, TextWriter err)
    {
        try
        {
            return File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            err.WriteLine($"tern run: cannot read {what} '{path}': {e.Message}");
            return null;
        }
    }
}
