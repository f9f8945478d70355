// `tern demo` through the real CLI: an embedded three-node cluster boots a guest, shows its
// heartbeat and the tables, and ends (on time or on Ctrl-C) with nothing left behind.
using System.Diagnostics;
using System.Text.RegularExpressions;

namespace Tern.Node.Tests;

[Collection("nodes")]
public sealed class DemoTests : IDisposable
{
    private static readonly TimeSpan Slow = TimeSpan.FromSeconds(180);
    private readonly string _home = Directory.CreateTempSubdirectory("tern-demo-").FullName;

    private static void AssertTables(string output)
    {
        Assert.Matches(new Regex(@"^Hosts:\nNAME\s+ADDRESS\s+PID\s+MEMORY\s+USED\s+HARTS\s+GUESTS", RegexOptions.Multiline), output);
        foreach (string node in new[] { "node-1", "node-2", "node-3" })
            Assert.Matches(new Regex($@"^{node}\s+akka\.tcp://tern@127\.0\.0\.1:\d+\s+\d+\s+1024M", RegexOptions.Multiline), output);
        Assert.Matches(new Regex(@"^Guests:\nNAME\s+STATE\s+DESIRED\s+HOST\s+GENERATION", RegexOptions.Multiline), output);
        Assert.Matches(new Regex(@"^demo\s+running\s+running\s+node-[123]\s+1\s", RegexOptions.Multiline), output);
    }

    [Fact]
    public async Task Demo_boots_linux_shows_its_heartbeat_and_the_tables_and_ends_clean()
    {
        Assert.True(File.Exists("/usr/lib/riscv64-linux-gnu/opensbi/generic/fw_jump.elf"), "Debian's opensbi package is needed (.ci/run installs it)");
        var demo = await TernCli.RunAsync(_home, Slow, "demo", "--duration", "30");
        Assert.True(demo.Code == 0, demo.Output + demo.Error);
        Assert.Contains("tern demo: booting Linux", demo.Output);
        Assert.Matches(new Regex(@"^  demo \| tern-heartbeat 1 uptime=", RegexOptions.Multiline), demo.Output);
        Assert.Matches(new Regex(@"^  demo \| tern-heartbeat 3 uptime=", RegexOptions.Multiline), demo.Output);
        AssertTables(demo.Output);
        // Then a live migration to another host, its figures, and the heartbeat counting on there.
        var moved = Regex.Match(demo.Output, @"^tern demo: migrated demo: (node-\d) -> (node-\d) \(generation 2\)\ntern demo:   total_time_ms +\d+", RegexOptions.Multiline);
        Assert.True(moved.Success, demo.Output);
        Assert.NotEqual(moved.Groups[1].Value, moved.Groups[2].Value);
        Assert.Matches(new Regex(@"^tern demo:   downtime_ms +[\d.]+$", RegexOptions.Multiline), demo.Output);
        var beats = Regex.Matches(demo.Output[moved.Index..], @"^  demo \| tern-heartbeat (\d+) ", RegexOptions.Multiline).Select(m => int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture)).ToList();
        Assert.True(beats.Count >= 2, demo.Output);
        Assert.True(beats.Zip(beats.Skip(1)).All(p => p.Item2 > p.Item1), string.Join(' ', beats)); // counting on, never repeated or reset
        Assert.EndsWith("tern demo: stopping the cluster\n", demo.Output);
        Assert.False(Directory.Exists(Path.Combine(_home, "demo")), "the demo's data was left behind");
        Assert.Equal("", demo.Error);
    }

    [Fact]
    // SIGTERM rather than SIGINT: a test runner started in the background hands its children an
    // ignored SIGINT. Both reach the demo the same way (System.CommandLine's cancellation).
    public async Task Demo_with_the_heartbeat_guest_stops_cleanly_when_interrupted()
    {
        using var process = TernCli.Start(_home, "demo", "--guest", "heartbeat", "--duration", "120");
        var output = new System.Text.StringBuilder();
        var sawTables = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var sawThirdBeat = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var reading = Task.Run(async () =>
        {
            while (await process.StandardOutput.ReadLineAsync() is { } line)
            {
                lock (output)
                    output.AppendLine(line);
                if (line.StartsWith("Guests:", StringComparison.Ordinal))
                    sawTables.TrySetResult();
                if (line.EndsWith("  demo | tern-heartbeat 3", StringComparison.Ordinal))
                    sawThirdBeat.TrySetResult();
            }
        });
        var error = process.StandardError.ReadToEndAsync();
        // Interrupted once it has printed its tables and a few heartbeats (waited for: a fixed
        // pause after the tables may come too early on a loaded machine).
        await sawTables.Task.WaitAsync(Slow);
        await sawThirdBeat.Task.WaitAsync(Slow);
        using (var interrupt = Process.Start("/bin/sh", ["-c", $"kill -TERM {process.Id}"]))
            await interrupt.WaitForExitAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await process.WaitForExitAsync(timeout.Token);
        await reading;
        string text;
        lock (output)
            text = output.ToString();
        Assert.Equal(130, process.ExitCode);
        Assert.Contains("tern demo: booting the heartbeat guest", text);
        Assert.Contains("  demo | tern-heartbeat 3\n", text);
        AssertTables(text);
        Assert.Contains("tern demo: interrupted; stopping the cluster", text);
        Assert.Equal("", await error);
        Assert.False(Directory.Exists(Path.Combine(_home, "demo")), "the demo's data was left behind");
    }

    [Fact]
    public async Task Demo_refuses_a_bad_duration_in_one_line()
    {
        var demo = await TernCli.RunAsync(_home, Slow, "demo", "--duration", "-3");
        Assert.Equal((2, "tern demo: --duration must be a number of seconds between 0 and 86400."), (demo.Code, demo.Error.Trim()));
        Assert.False(Directory.Exists(Path.Combine(_home, "demo")));
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(_home, recursive: true);
        }
        catch (IOException)
        {
            // a temp dir
        }
    }
}
