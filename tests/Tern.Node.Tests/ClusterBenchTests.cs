// `tern bench cluster` and its idle guest: the guest prints its first line and then sleeps in
// WFI between heartbeats (a busy guest would retire millions of instructions a second), and a
// small bench run against real node processes reports every figure and why it stopped.
using System.Text.Json;
using Tern.Cli;
using Tern.Cli.Commands;
using Tern.Machine;
using Tern.Machine.Boot;

namespace Tern.Node.Tests;

public sealed class IdleGuestTests
{
    [Fact]
    public void The_idle_guest_prints_a_line_then_sleeps_in_wfi_between_heartbeats()
    {
        using var console = new MemoryStream();
        using var machine = new VirtMachine(new MachineOptions { MemoryBytes = 16UL << 20, Console = console });
        machine.Boot(new BootImages { Kernel = IdleGuest.Image() });
        Assert.Equal(ExitReason.Timeout, machine.Run(0, TimeSpan.FromSeconds(1.5)));
        Assert.Equal("I\nH\n", System.Text.Encoding.ASCII.GetString(console.ToArray()));
        Assert.InRange(machine.Stats.WfiHalts, 1, 100);
        Assert.InRange(machine.InstructionsRetired, 20UL, 5_000UL);
    }
}

[Collection("nodes")]
public sealed class ClusterBenchTests
{
    [Fact]
    public void A_bounded_bench_run_reports_latency_density_memory_and_cpu()
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        int status = TernApp.Invoke(["bench", "cluster", "--guests", "3", "--runs", "2", "--window", "1", "--timeout", "300", "--json"], output, error);
        Assert.True(status == 0, $"exit {status}:\n{error}\n{output}");
        var report = JsonDocument.Parse(output.ToString()).RootElement;
        Assert.Equal(3, report.GetProperty("idle_guests").GetInt32());
        Assert.Equal("count cap (--guests 3)", report.GetProperty("stop_reason").GetString());
        var latency = report.GetProperty("create_to_first_line_ms");
        Assert.InRange(latency.GetProperty("min").GetDouble(), 0.1, 30_000);
        Assert.True(latency.GetProperty("max").GetDouble() >= latency.GetProperty("min").GetDouble());
        Assert.True(report.GetProperty("rss_before_mib").GetInt64() > 10);
        Assert.Equal(2, report.GetProperty("idle_node_cpu_percent").GetArrayLength());
        Assert.True(report.GetProperty("node_cpu_percent_with_guests").GetDouble() >= 0);
    }

    [Fact]
    public void Bad_bench_options_are_refused_with_one_line()
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        Assert.Equal(2, TernApp.Invoke(["bench", "cluster", "--guests", "0"], output, error));
        Assert.Equal("tern bench cluster: --guests 1-512, --runs 1-50, --window 1-120 s, --timeout 30-3600 s.", error.ToString().Trim());
        Assert.Equal(2, TernApp.Invoke(["bench", "cluster", "--max-rss", "lots"], output, error));
    }
}
