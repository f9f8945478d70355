// Runs a raw image on qemu-system-riscv64 (virt machine, no firmware) and captures the UART.
// QEMU is the reference implementation for the differential tests.
using System.Diagnostics;

namespace Tern.Riscv.Tests.Differential;

/// <summary>The outcome of one QEMU run: UART output, exit code, and whatever QEMU itself printed.</summary>
internal sealed record QemuResult(string Output, int ExitCode, bool TimedOut, string Chatter, TimeSpan Elapsed);

/// <summary>Locates and runs qemu-system-riscv64.</summary>
internal static class Qemu
{
    public const string ExecutableName = "qemu-system-riscv64";

    private static readonly Lazy<string?> Path_ = new(Locate);

    /// <summary>
    /// The path of qemu-system-riscv64: $TERN_QEMU if set, else the first one on PATH. Fails the
    /// calling test with install instructions when it is missing: the suite must not silently skip.
    /// </summary>
    public static string Executable => Path_.Value ?? throw new Xunit.Sdk.XunitException(
        $"{ExecutableName} was not found on PATH (or in $TERN_QEMU). The differential tests compare Tern " +
        "against QEMU and cannot run without it: install it with `apt-get install qemu-system-misc` " +
        "(Debian/Ubuntu), then re-run.");

    private static string? Locate()
    {
        string? env = Environment.GetEnvironmentVariable("TERN_QEMU");
        if (!string.IsNullOrEmpty(env) && File.Exists(env))
        {
            return env;
        }

        foreach (string dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator))
        {
            if (dir.Length == 0)
            {
                continue;
            }

            string candidate = Path.Combine(dir, ExecutableName);
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        return null;
    }

    /// <summary>
    /// Runs <paramref name="image"/> (loaded at 0x80000000 and entered in M-mode, as `-bios none`
    /// does for a non-ELF kernel) and returns the UART output. The process is killed after
    /// <paramref name="timeout"/>.
    /// </summary>
    public static QemuResult Run(byte[] image, TimeSpan timeout)
    {
        string exe = Executable;
        string stem = Path.Combine(Path.GetTempPath(), $"tern-diff-{Environment.ProcessId}-{Guid.NewGuid():N}");
        string file = stem + ".bin";
        string serial = stem + ".out";
        File.WriteAllBytes(file, image);
        try
        {
            var psi = new ProcessStartInfo(exe)
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                RedirectStandardInput = true,
                UseShellExecute = false,
            };
            foreach (string arg in new[]
            {
                "-machine", "virt", "-bios", "none", "-m", "128M", "-smp", "1",
                "-display", "none", "-monitor", "none", "-nodefaults",
                // The UART goes to a file, not a pipe: QEMU's 16550 drops bytes when a pipe stays
                // full for a few retries (seen under load), and a file write never blocks that way.
                "-serial", "file:" + serial,
                "-kernel", file,
            })
            {
                psi.ArgumentList.Add(arg);
            }

            var sw = Stopwatch.StartNew();
            using var process = Process.Start(psi) ?? throw new InvalidOperationException("could not start " + exe);
            process.StandardInput.Close();
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            bool exited = process.WaitForExit(timeout);
            if (!exited)
            {
                try
                {
                    process.Kill(entireProcessTree: true);
                }
                catch (InvalidOperationException)
                {
                    // Exited meanwhile.
                }

                process.WaitForExit();
            }

            process.WaitForExit();
            string output = File.Exists(serial) ? File.ReadAllText(serial) : "";
            string chatter = stdout.GetAwaiter().GetResult() + stderr.GetAwaiter().GetResult();
            return new QemuResult(output, exited ? process.ExitCode : -1, !exited, chatter, sw.Elapsed);
        }
        finally
        {
            File.Delete(file);
            File.Delete(serial);
        }
    }
}
