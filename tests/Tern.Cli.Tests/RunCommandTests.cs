// `tern run` as a user meets it: exit codes, and one-line errors for bad input that change nothing.
using System.Diagnostics;
using Tern.Tests.Shared;

namespace Tern.Cli.Tests;

public sealed class RunCommandTests : IDisposable
{
    private const ulong Ram = 0x8000_0000;
    private readonly string _dir = Directory.CreateTempSubdirectory("tern-cli-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Write(string name, byte[] bytes)
    {
        string path = Path.Combine(_dir, name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    private static (int Code, string Out, string Err) Tern(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int code = TernApp.Invoke(args, output, error);
        return (code, output.ToString(), error.ToString());
    }

    // Writes `value` to tohost (at RAM + 0x1000) and spins.
    private string HtifProgram(int value) => Write($"htif{value}.elf", ElfBuilder.Build(Ram,
        ElfBuilder.Words(Enc.Auipc(5, 1), Enc.Addi(6, 0, value), Enc.Sd(5, 6, 0), Enc.Jal(0, 0)), Ram,
        new Dictionary<string, ulong> { ["tohost"] = Ram + 0x1000 }, extraMemory: 0x2000));

    // Powers off through the SiFive finisher with exit code 42.
    private string Exit42Program() => Write("exit42.elf", ElfBuilder.Build(Ram,
        ElfBuilder.Words(Enc.Lui(5, 0x100), Enc.Lui(6, 0x2A3), Enc.Addi(6, 6, 0x333), Enc.Sw(5, 6, 0), Enc.Jal(0, 0)), Ram));

    [Fact]
    public void Finisher_code_is_the_exit_code()
    {
        Assert.Equal(42, Tern("run", "--bios", "none", "--kernel", Exit42Program(), "--mem", "64M").Code);
    }

    [Fact]
    public void Htif_pass_exits_0_and_failure_exits_with_the_test_number()
    {
        Assert.Equal(0, Tern("run", "--htif", "--kernel", HtifProgram(1)).Code);
        var (code, _, err) = Tern("run", "--htif", "--kernel", HtifProgram((7 << 1) | 1));
        Assert.Equal(7, code);
        Assert.Contains("FAIL: test 7", err, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("--mem", "12X", "--mem 12X")]
    [InlineData("--mem", "8M", "16M to 8G")]
    [InlineData("--mem", "-5", "--mem -5")]
    [InlineData("--timeout", "0", "--timeout")]
    [InlineData("--bios", "/nonexistent/fw_jump.elf", "--bios")]
    public void Bad_arguments_get_a_one_line_error_and_status_2(string option, string value, string expected)
    {
        var (code, _, err) = Tern("run", "--kernel", Exit42Program(), option, value);
        Assert.Equal(2, code);
        Assert.Contains(expected, err, StringComparison.Ordinal);
        Assert.Single(err.Trim().Split('\n'));
    }

    [Fact]
    public void Missing_and_malformed_kernels_are_refused_with_the_reason()
    {
        var (code, _, err) = Tern("run", "--kernel", Path.Combine(_dir, "nope.elf"));
        Assert.Equal(2, code);
        Assert.Contains("cannot read kernel", err, StringComparison.Ordinal);

        var broken = File.ReadAllBytes(Exit42Program());
        broken[18] = 62; // x86-64
        (code, _, err) = Tern("run", "--kernel", Write("x86.elf", broken));
        Assert.Equal(2, code);
        Assert.Contains("not RISC-V", err, StringComparison.Ordinal);

        (code, _, err) = Tern("run", "--htif", "--kernel", Write("raw.bin", [0x13, 0, 0, 0]));
        Assert.Equal(2, code);
        Assert.Contains("needs an ELF", err, StringComparison.Ordinal);
    }

    [Fact]
    public void Guest_that_never_finishes_reports_the_limit_with_status_124()
    {
        string spin = Write("spin.elf", ElfBuilder.Build(Ram, ElfBuilder.Words(Enc.Jal(0, 0)), Ram));
        var (code, _, err) = Tern("run", "--kernel", spin, "--max-instructions", "100000");
        Assert.Equal(124, code);
        Assert.Contains("instruction limit", err, StringComparison.Ordinal);
    }

    [Fact]
    public void The_built_tern_process_reports_htif_results_through_its_exit_status()
    {
        string dll = Path.Combine(AppContext.BaseDirectory, "tern.dll");
        Assert.True(File.Exists(dll), $"{dll} is missing");
        foreach (var (value, expected) in new[] { (1, 0), ((3 << 1) | 1, 3) })
        {
            var psi = new ProcessStartInfo("dotnet") { RedirectStandardError = true, RedirectStandardOutput = true };
            foreach (var a in new[] { dll, "run", "--htif", "--kernel", HtifProgram(value) })
                psi.ArgumentList.Add(a);
            using var p = Process.Start(psi)!;
            _ = p.StandardOutput.ReadToEndAsync();
            _ = p.StandardError.ReadToEndAsync();
            Assert.True(p.WaitForExit(TimeSpan.FromSeconds(60)), "tern did not exit");
            Assert.Equal(expected, p.ExitCode);
        }
    }
}
