// Runs the project's ISA test programs (src/guests/bin/isa/*.elf, built from src/guests/isa/*.S)
// through GuestRunner with HTIF on: the same path as `tern run --htif`. Each program writes 1 to
// tohost on success or (n << 1) | 1 when test n fails, and prints what went wrong on the UART.
using Tern.Machine;

namespace Tern.Riscv.Tests.Isa;

public class IsaTests
{
    // Generous: the programs run well under a million instructions each.
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);
    private const ulong MaxInstructions = 100_000_000;

    private static readonly string GuestBin = Path.Combine(FindRepoRoot(), "src", "guests", "bin");

    /// <summary>Every ISA program, by file name (a new .S file becomes a new case).</summary>
    public static TheoryData<string> Programs()
    {
        var data = new TheoryData<string>();
        foreach (var path in Directory.GetFiles(Path.Combine(GuestBin, "isa"), "*.elf").Order(StringComparer.Ordinal))
        {
            data.Add(Path.GetFileName(path));
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Programs))]
    public void Isa_program_passes(string program)
    {
        var result = Run(Path.Combine("isa", program));
        Assert.True(result.Reason == ExitReason.Htif && result.ExitCode == 0, Describe(program, result));
    }

    [Fact]
    public void There_are_isa_programs_to_run()
    {
        // Guards against the theory silently running nothing (e.g. bin/ not committed).
        string dir = Path.Combine(GuestBin, "isa");
        Assert.True(Directory.GetFiles(dir, "*.elf").Length >= 8, $"expected the ISA programs in {dir}");
    }

    [Fact]
    public void A_failing_program_reports_its_test_number()
    {
        // isa-fail/fail.S fails test 3 on purpose: proves a failure is not reported as a pass.
        var result = Run(Path.Combine("isa-fail", "fail.elf"));
        Assert.True(result.Reason == ExitReason.Htif && result.ExitCode == 3, Describe("fail.elf", result));
        Assert.Contains("FAIL: test 3", result.ConsoleOutput, StringComparison.Ordinal);
    }

    private static GuestRunResult Run(string relativePath) =>
        GuestRunner.Run(new GuestRunOptions
        {
            Kernel = File.ReadAllBytes(Path.Combine(GuestBin, relativePath)),
            Htif = true,
            Timeout = Timeout,
            MaxInstructions = MaxInstructions,
        });

    private static string Describe(string program, GuestRunResult result)
    {
        string test = result.Reason == ExitReason.Htif && result.ExitCode != 0
            ? $"failing test number {result.ExitCode}"
            : $"exit code {result.ExitCode}";
        return $"{program}: {result.Reason}, {test} ({result.Message}); " +
               $"{result.InstructionsRetired} instructions retired.\nConsole output:\n{result.ConsoleOutput}";
    }

    private static string FindRepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Cluster.sln")))
            {
                return dir.FullName;
            }
        }
        throw new InvalidOperationException($"Cluster.sln not found above {AppContext.BaseDirectory}");
    }
}
