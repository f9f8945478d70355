// Runs a generated image on Tern through the same entry point as `tern run`.
using Tern.Machine;

namespace Tern.Riscv.Tests.Differential;

/// <summary>Runs raw images on Tern.</summary>
internal static class TernHost
{
    /// <summary>Runs <paramref name="image"/> deterministically (icount clock) with generous limits.</summary>
    public static GuestRunResult Run(byte[] image) => GuestRunner.Run(new GuestRunOptions
    {
        Kernel = image,
        Clock = ClockMode.Icount,
        MemoryBytes = 128UL << 20,
        MaxInstructions = 200_000_000,
        Timeout = TimeSpan.FromSeconds(60),
    });

    /// <summary>A one-line summary of how a run ended.</summary>
    public static string Describe(GuestRunResult r) =>
        $"{r.Reason} (exit code {r.ExitCode}, {r.InstructionsRetired:N0} instructions, {r.Elapsed.TotalMilliseconds:F0} ms): {r.Message}";
}
