// Debian's OpenSBI boots on the board and hands over to an S-mode kernel of ours, which
// starts the other harts through SBI HSM (IPIs waking harts in WFI) and shuts down with SRST.
using Tern.Tests.Shared;

namespace Tern.Machine.Tests;

public class FirmwareBootTests
{
    private static GuestRunResult Boot(string firmware, int harts, ClockMode clock = ClockMode.Icount) => GuestRunner.Run(new GuestRunOptions
    {
        Firmware = File.ReadAllBytes(RepoFiles.HostFile(firmware, "opensbi")),
        Kernel = File.ReadAllBytes(RepoFiles.Guest("sbi/smp.elf")),
        Harts = harts,
        Clock = clock,
        Timeout = TimeSpan.FromSeconds(60),
    });

    [Theory]
    [InlineData(RepoFiles.FwJump, 1)]
    [InlineData(RepoFiles.FwJump, 4)]
    [InlineData(RepoFiles.FwDynamic, 2)]
    [InlineData(RepoFiles.FwJump, 8)]
    public void OpenSbi_boots_the_kernel_and_every_hart_checks_in(string firmware, int harts)
    {
        var r = Boot(firmware, harts);
        Assert.True(r.Reason == ExitReason.PowerOff && r.ExitCode == 0, $"{r.Message}\n{r.ConsoleOutput}");
        Assert.Contains("OpenSBI", r.ConsoleOutput, StringComparison.Ordinal);
        Assert.Contains($"Platform HART Count       : {harts}", r.ConsoleOutput, StringComparison.Ordinal);
        Assert.Contains("tern-sbi: hello from S-mode", r.ConsoleOutput, StringComparison.Ordinal);
        Assert.Contains($"tern-sbi: secondary harts started: {harts - 1}", r.ConsoleOutput, StringComparison.Ordinal);
        Assert.True(r.Stats.Exceptions[9] > 0, "the kernel's SBI calls are counted as ecalls from S");
    }

    [Fact]
    public void Icount_runs_of_a_multi_hart_boot_are_identical()
    {
        var a = Boot(RepoFiles.FwJump, 4);
        var b = Boot(RepoFiles.FwJump, 4);
        Assert.Equal(a.InstructionsRetired, b.InstructionsRetired);
        Assert.Equal(a.ConsoleOutput, b.ConsoleOutput);
    }
}
