// Differential tests: seeded random programs run on QEMU (the reference) and on Tern must print
// identical register dumps. One class per extension group, so a failure names the group; each
// seed is one image of 100 independent sequences (one QEMU launch, one Tern run). Set
// TERN_DIFF_IMAGES=N to run N images per group instead of the default 6.
using Tern.Machine;

namespace Tern.Riscv.Tests.Differential;

/// <summary>Generates, runs on both emulators and compares.</summary>
internal static class DifferentialCheck
{
    public const int SequencesPerImage = 100;

    /// <summary>Images per group in a normal run: 6 x 100 sequences x 7 groups = 4,200 sequences.</summary>
    public const int DefaultImagesPerGroup = 6;

    /// <summary>
    /// The seeds of group <paramref name="group"/>: group * 1000 + 1..N, where N is
    /// DefaultImagesPerGroup or $TERN_DIFF_IMAGES (for a longer soak run).
    /// </summary>
    public static TheoryData<int> Seeds(int group)
    {
        int n = int.TryParse(Environment.GetEnvironmentVariable("TERN_DIFF_IMAGES"), out int v) && v > 0 ? Math.Min(v, 999) : DefaultImagesPerGroup;
        var data = new TheoryData<int>();
        for (int i = 1; i <= n; i++)
        {
            data.Add((group * 1000) + i);
        }

        return data;
    }

    private static readonly TimeSpan QemuTimeout = TimeSpan.FromSeconds(60);

    public static void Run(string group, Ext extensions, int seed)
    {
        GeneratedProgram program = ProgramGenerator.Generate(seed, extensions, SequencesPerImage);

        QemuResult qemu = Qemu.Run(program.Image, QemuTimeout);
        if (qemu.TimedOut)
        {
            Assert.Fail($"QEMU did not finish group {group} seed {seed} within {QemuTimeout.TotalSeconds:F0} s (killed).");
        }

        List<DumpLine> reference = DumpComparison.Parse(qemu.Output);
        string? broken = DumpComparison.CheckWellFormed(program, reference);
        if (broken != null || qemu.ExitCode != 0)
        {
            Assert.Fail($"The QEMU reference run of group {group} seed {seed} is not a complete dump (a generator bug, not a Tern bug): "
                + $"{broken ?? "exit code " + qemu.ExitCode}. QEMU printed: {qemu.Chatter.Trim()}");
        }

        GuestRunResult tern;
        try
        {
            tern = TernHost.Run(program.Image);
        }
        catch (Exception e)
        {
            Assert.Fail($"Tern threw while running group {group} seed {seed}: {e}");
            return;
        }

        string info = TernHost.Describe(tern);
        string? mismatch = DumpComparison.Compare(program, group, reference, DumpComparison.Parse(tern.ConsoleOutput), info);
        if (mismatch != null)
        {
            Assert.Fail(mismatch + SaveImages(program, group));
        }

        Assert.True(tern.Reason == ExitReason.PowerOff && tern.ExitCode == 0,
            $"group {group} seed {seed}: dumps match but Tern did not power off cleanly: {info}");
    }

    /// <summary>Writes the failing image to the temp directory and says how to rerun it on both sides.</summary>
    private static string SaveImages(GeneratedProgram program, string group)
    {
        try
        {
            string path = Path.Combine(Path.GetTempPath(), $"tern-diff-{group}-{program.Seed}.bin");
            File.WriteAllBytes(path, program.Image);
            return $"\nImage saved to {path}; rerun it with `tern run --kernel {path} --clock icount` and "
                + $"`{Qemu.ExecutableName} -machine virt -bios none -nographic -m 128M -kernel {path}`.";
        }
        catch (IOException e)
        {
            return "\n(could not save the image: " + e.Message + ")";
        }
    }
}

/// <summary>RV64I only: ALU, shifts, lui/auipc, loads/stores, forward branches and jumps.</summary>
public sealed class DifferentialRv64iTests
{
    public static TheoryData<int> Seeds => DifferentialCheck.Seeds(1);

    [Theory]
    [MemberData(nameof(Seeds))]
    public void Rv64i_matches_qemu(int seed) => DifferentialCheck.Run("RV64I", Ext.I, seed);
}

/// <summary>RV64I + M: multiply/divide including division by zero and overflow.</summary>
public sealed class DifferentialMTests
{
    public static TheoryData<int> Seeds => DifferentialCheck.Seeds(2);

    [Theory]
    [MemberData(nameof(Seeds))]
    public void M_matches_qemu(int seed) => DifferentialCheck.Run("M", Ext.I | Ext.M, seed);
}

/// <summary>RV64I + A: AMOs and LR/SC pairs on the scratch area.</summary>
public sealed class DifferentialATests
{
    public static TheoryData<int> Seeds => DifferentialCheck.Seeds(3);

    [Theory]
    [MemberData(nameof(Seeds))]
    public void A_matches_qemu(int seed) => DifferentialCheck.Run("A", Ext.I | Ext.A, seed);
}

/// <summary>RV64I + C: compressed ALU ops, loads/stores and forward control flow.</summary>
public sealed class DifferentialCTests
{
    public static TheoryData<int> Seeds => DifferentialCheck.Seeds(4);

    [Theory]
    [MemberData(nameof(Seeds))]
    public void C_matches_qemu(int seed) => DifferentialCheck.Run("C", Ext.I | Ext.C, seed);
}

/// <summary>RV64I + F: single precision, NaN boxing, rounding modes, fflags.</summary>
public sealed class DifferentialFTests
{
    public static TheoryData<int> Seeds => DifferentialCheck.Seeds(5);

    [Theory]
    [MemberData(nameof(Seeds))]
    public void F_matches_qemu(int seed) => DifferentialCheck.Run("F", Ext.I | Ext.F, seed);
}

/// <summary>RV64I + F + D: double precision and conversions between the formats.</summary>
public sealed class DifferentialDTests
{
    public static TheoryData<int> Seeds => DifferentialCheck.Seeds(6);

    [Theory]
    [MemberData(nameof(Seeds))]
    public void D_matches_qemu(int seed) => DifferentialCheck.Run("D", Ext.I | Ext.F | Ext.D, seed);
}

/// <summary>Everything at once (RV64GC), including compressed FP loads/stores.</summary>
public sealed class DifferentialMixedTests
{
    public static TheoryData<int> Seeds => DifferentialCheck.Seeds(7);

    [Theory]
    [MemberData(nameof(Seeds))]
    public void Rv64gc_matches_qemu(int seed) => DifferentialCheck.Run("RV64GC", Ext.All, seed);
}
