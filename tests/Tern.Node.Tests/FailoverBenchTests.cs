// `tern bench failover` with tiny settings against real node processes: one run, one guest on a
// mirrored LV; its JSON must hold every phase, each non-negative and in the order they happen,
// and the guest must have come back on a survivor in a newer generation. The guest is the disk
// verifier: it was acknowledging records when its host was killed, and the new generation's
// VERIFY found every acknowledged record before its first new ACK.
using System.Text.Json;
using Tern.Cli;

namespace Tern.Node.Tests;

[Collection("nodes")]
public sealed class FailoverBenchTests
{
    [Fact]
    public void A_one_run_failover_bench_reports_ordered_non_negative_phases_and_the_guest_back_on_a_survivor()
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        int status = TernApp.Invoke(["bench", "failover", "--guests", "1", "--plain", "0", "--runs", "1", "--down-after", "2s", "--timeout", "120", "--json"], output, error);
        Assert.True(status == 0, $"exit {status}:\n{error}\n{output}");
        var report = JsonDocument.Parse(output.ToString()).RootElement;
        Assert.Equal(2000, report.GetProperty("down_after_ms").GetDouble());
        var run = Assert.Single(report.GetProperty("run_details").EnumerateArray());
        var guest = Assert.Single(run.GetProperty("guests").EnumerateArray());
        Assert.True(guest.GetProperty("disk").GetBoolean());
        Assert.NotEqual("node-2", guest.GetProperty("host").GetString());
        Assert.True(guest.GetProperty("generation").GetInt64() >= 2);

        // The guest (the disk verifier) was writing when its host died: it had acknowledged
        // records, and the next generation found every one of them intact, then acknowledged more.
        long lastAck = guest.GetProperty("last_ack_before_kill").GetInt64();
        Assert.True(lastAck >= 24, $"the guest had acknowledged only {lastAck} records before the kill: {guest}");
        Assert.Matches(@"^VERIFY ok last=\d+ boot=\d+$", guest.GetProperty("verify").GetString());
        long verified = guest.GetProperty("verified_last").GetInt64();
        Assert.True(verified >= lastAck, $"VERIFY found records up to {verified}, but {lastAck} were acknowledged: {guest}");
        Assert.True(guest.GetProperty("intact").GetBoolean());
        Assert.True(guest.GetProperty("first_new_ack").GetInt64() > verified, $"{guest}");
        double firstAck = guest.GetProperty("first_ack_ms").GetDouble();
        Assert.True(firstAck >= guest.GetProperty("started_ms").GetDouble() - 500, $"the first new ACK came before the restart: {guest}");
        Assert.True(report.GetProperty("acked_records_intact").GetBoolean());
        Assert.Equal(firstAck, report.GetProperty("first_ack_ms").GetProperty("median").GetDouble());

        double[] phases =
        [
            run.GetProperty("unreachable_ms").GetDouble(), run.GetProperty("removed_ms").GetDouble(),
            guest.GetProperty("lost_ms").GetDouble(), guest.GetProperty("placed_ms").GetDouble(),
            guest.GetProperty("started_ms").GetDouble(), guest.GetProperty("console_ms").GetDouble(),
        ];
        Assert.True(phases[0] > 0, $"unreachable after {phases[0]} ms");
        // Causal within one actor: unreachable before removed (node-1), lost, placed, started (the
        // controller), console after placement. Removed (node-1's view) and lost (the controller's
        // node's view of the same removal) and started/console come from two vantage points, so
        // they may swap by a gossip round or a message hop.
        (int Before, int After, double Slack)[] order = [(0, 1, 0), (1, 2, 500), (2, 3, 0), (3, 4, 0), (3, 5, 0), (4, 5, 500)];
        foreach (var (before, after, slack) in order)
            Assert.True(phases[after] + slack >= phases[before], $"phase {after} ({phases[after]} ms) came before phase {before} ({phases[before]} ms): {run}");
        // The resolver waits at least its stable-after between unreachability and the removal.
        Assert.True(phases[1] - phases[0] >= 1000, $"removed {phases[1] - phases[0]} ms after unreachable, with --down-after 2s");

        var summary = report.GetProperty("summary_ms");
        foreach (var phase in report.GetProperty("phases").EnumerateArray())
        {
            var s = summary.GetProperty(phase.GetString()!);
            Assert.True(s.GetProperty("median").GetDouble() >= 0 && s.GetProperty("max").GetDouble() >= s.GetProperty("median").GetDouble(), $"{phase}: {s}");
        }
    }

    [Fact]
    public void Bad_failover_bench_options_are_refused_with_one_line()
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        Assert.Equal(2, TernApp.Invoke(["bench", "failover", "--nodes", "2"], output, error));
        Assert.Equal("tern bench failover: --nodes 3-5, --guests 0-16, --plain 0-16 (at least one guest), --runs 1-20, --timeout 60-3600 s.", error.ToString().Trim());
        using var error2 = new StringWriter();
        Assert.Equal(2, TernApp.Invoke(["bench", "failover", "--down-after", "soon"], output, error2));
        Assert.Equal("tern bench failover: --down-after 'soon' is not a duration from 500ms to 10m (e.g. 5s).", error2.ToString().Trim());
        Assert.Equal("", output.ToString());
    }
}
