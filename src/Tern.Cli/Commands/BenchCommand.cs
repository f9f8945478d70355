// `tern bench cpu`: runs the project's CPU-bound guest (embedded in tern, or --kernel) and
// reports guest instructions retired, seconds and MIPS; with --qemu, runs the same ELF on
// qemu-system-riscv64 (TCG) and prints both side by side with the ratio.
using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Tern.Machine;

namespace Tern.Cli.Commands;

/// <summary>The `tern bench` verbs.</summary>
public static class BenchCommand
{
    /// <summary>Name of the embedded CPU benchmark guest.</summary>
    public const string CpuBenchResource = "cpubench.elf";

    /// <summary>Builds the command.</summary>
    public static Command Create()
    {
        var kernel = new Option<FileInfo?>("--kernel") { Description = "Benchmark this ELF instead of the embedded CPU-bound guest." };
        var runs = new Option<int>("--runs") { Description = "Timed runs (the best is reported).", DefaultValueFactory = _ => 3 };
        var qemu = new Option<bool>("--qemu") { Description = "Also run the ELF on qemu-system-riscv64 (TCG) and print the ratio." };
        var json = new Option<bool>("--json") { Description = "Print the figures as one JSON object." };
        var cpu = new Command("cpu", "Measure guest MIPS on a CPU-bound guest program.") { kernel, runs, qemu, json };
        cpu.SetAction(parse =>
        {
            var err = parse.InvocationConfiguration.Error;
            var output = parse.InvocationConfiguration.Output;
            int n = parse.GetValue(runs);
            if (n is < 1 or > 100)
            {
                err.WriteLine("tern bench cpu: --runs must be between 1 and 100.");
                return RunCommand.UsageError;
            }
            byte[] image;
            string name;
            var file = parse.GetValue(kernel);
            if (file is null)
            {
                image = LoadEmbedded(CpuBenchResource);
                name = CpuBenchResource;
            }
            else
            {
                try
                {
                    image = File.ReadAllBytes(file.FullName);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    err.WriteLine($"tern bench cpu: cannot read '{file.FullName}': {e.Message}");
                    return RunCommand.UsageError;
                }
                name = file.Name;
            }

            GuestRunResult? best = null;
            for (int i = 0; i < n; i++)
            {
                var r = GuestRunner.Run(new GuestRunOptions { Kernel = image, Clock = ClockMode.Icount, Timeout = TimeSpan.FromMinutes(10) });
                if (r.Reason != ExitReason.PowerOff || r.ExitCode != 0)
                {
                    err.WriteLine($"tern bench cpu: the benchmark guest did not finish cleanly: {r.Message}");
                    return 1;
                }
                if (best is null || r.Elapsed < best.Elapsed)
                    best = r;
            }
            double ternSeconds = best!.Elapsed.TotalSeconds;
            double ternMips = best.InstructionsRetired / ternSeconds / 1e6;
            double? qemuSeconds = null;
            if (parse.GetValue(qemu))
            {
                qemuSeconds = QemuSeconds(image, n, err);
                if (qemuSeconds is null)
                    return 1;
            }
            double? qemuMips = qemuSeconds is { } qs ? best.InstructionsRetired / qs / 1e6 : null;
            if (parse.GetValue(json))
            {
                output.WriteLine(JsonSerializer.Serialize(new Dictionary<string, object?>
                {
                    ["guest"] = name,
                    ["instructions"] = best.InstructionsRetired,
                    ["tern_seconds"] = Math.Round(ternSeconds, 4),
                    ["tern_mips"] = Math.Round(ternMips, 1),
                    ["qemu_seconds"] = qemuSeconds is { } s ? Math.Round(s, 4) : null,
                    ["qemu_mips"] = qemuMips is { } m ? Math.Round(m, 1) : null,
                    ["tern_to_qemu"] = qemuMips is { } q ? Math.Round(ternMips / q, 3) : null,
                }));
                return 0;
            }
            output.WriteLine($"guest          {name}");
            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"instructions   {best.InstructionsRetired:N0}"));
            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"tern           {ternSeconds,8:F3} s  {ternMips,8:F1} MIPS   (best of {n}, interpreter)"));
            if (qemuSeconds is { } qsec)
            {
                output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"qemu (TCG)     {qsec,8:F3} s  {qemuMips,8:F1} MIPS   (best of {n}, start-up subtracted)"));
                output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"tern / qemu    {ternMips / qemuMips!.Value:F3}"));
            }
            return 0;
        });
        var bench = new Command("bench", "Benchmarks.");
        bench.Subcommands.Add(cpu);
        bench.Subcommands.Add(MigrateBenchCommand.Create());
        return bench;
    }

    /// <summary>Reads an embedded guest image.</summary>
    public static byte[] LoadEmbedded(string name)
    {
        using var s = typeof(BenchCommand).Assembly.GetManifestResourceStream(name)
            ?? throw new InvalidOperationException($"embedded guest '{name}' is missing from this build");
        using var ms = new MemoryStream();
        s.CopyTo(ms);
        return ms.ToArray();
    }

    // QEMU's wall time for the guest, minus its own start-up and shutdown (measured with a guest
    // that powers off at once), best of n.
    private static double? QemuSeconds(byte[] image, int n, TextWriter err)
    {
        string dir = Directory.CreateTempSubdirectory("tern-bench-").FullName;
        try
        {
            string elf = Path.Combine(dir, "guest.elf");
            File.WriteAllBytes(elf, image);
            string idle = Path.Combine(dir, "off.bin");
            // lui t0,0x100 ; lui t1,0x5 ; addi t1,t1,0x555 ; sw t1,0(t0) ; j .
            File.WriteAllBytes(idle, [0xB7, 0x02, 0x10, 0x00, 0x37, 0x53, 0x00, 0x00, 0x13, 0x03, 0x53, 0x55, 0x23, 0xA0, 0x62, 0x00, 0x6F, 0x00, 0x00, 0x00]);
            double startup = double.MaxValue, total = double.MaxValue;
            for (int i = 0; i < n; i++)
            {
                startup = Math.Min(startup, RunQemu(idle, err) ?? double.NaN);
                total = Math.Min(total, RunQemu(elf, err) ?? double.NaN);
            }
            return double.IsNaN(startup) || double.IsNaN(total) ? null : Math.Max(total - startup, 1e-6);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private static double? RunQemu(string kernel, TextWriter err)
    {
        var psi = new ProcessStartInfo("qemu-system-riscv64")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var a in new[] { "-machine", "virt", "-bios", "none", "-nographic", "-monitor", "none", "-serial", "stdio", "-m", "256M", "-kernel", kernel })
            psi.ArgumentList.Add(a);
        var watch = Stopwatch.StartNew();
        Process p;
        try
        {
            p = Process.Start(psi)!;
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            err.WriteLine($"tern bench cpu: cannot start qemu-system-riscv64 ({e.Message}); install Debian's qemu-system-misc.");
            return null;
        }
        using (p)
        {
            _ = p.StandardOutput.ReadToEndAsync();
            _ = p.StandardError.ReadToEndAsync();
            if (!p.WaitForExit(TimeSpan.FromMinutes(10)))
            {
                p.Kill(entireProcessTree: true);
                err.WriteLine("tern bench cpu: qemu did not finish within 10 minutes.");
                return null;
            }
            watch.Stop();
            if (p.ExitCode != 0)
            {
                err.WriteLine($"tern bench cpu: qemu exited with {p.ExitCode}.");
                return null;
            }
            return watch.Elapsed.TotalSeconds;
        }
    }
}
