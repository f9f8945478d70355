// A real network partition of node processes: every node runs with --fault-injection on, so its
// Akka remoting goes through the throttler adapter, and POST /api/debug/partition blackholes the
// cluster traffic between the guest's host and the others. The extent servers' TCP connections
// are not Akka traffic: the cut-off guest keeps writing its disk, whose two mirror legs both sit
// on the majority's nodes, until the restarted twin's generation fences it. The outcome is made
// deterministic: the majority downs the victim after 3 s, the victim would down itself only
// after 60 s, long after the heal.
using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json;

namespace Tern.Node.Tests;

public sealed partial class HaDiskProcessTests
{
    // How long the cut-off node waits before its own resolver downs it (it is alone, so it downs
    // itself): long enough that the majority (3 s) has downed it, restarted the VM and fenced the
    // old incarnation well before, short enough to keep the test bounded.
    private const string VictimDownAfter = "30s";

    // node-1 and node-2 (512 MiB each, --down-after 3s) and node-3 (1 GiB, so the scheduler
    // places the guest there; --down-after 30s), all with fault injection.
    private async Task<List<string>> StartPartitionableClusterAsync()
    {
        var ports = Enumerable.Range(0, 3).Select(_ => NodeProcess.FreePort()).ToList();
        string journal = $"Data Source={Path.Combine(_dir, "cluster.db")}";
        for (int i = 0; i < 3; i++)
        {
            _nodes.Add(NodeProcess.Start("--name", $"node-{i + 1}", "--data-dir", Path.Combine(_dir, $"node-{i + 1}"),
                "--port", ports[i].ToString(CultureInfo.InvariantCulture), "--seed", $"127.0.0.1:{ports[0]}",
                "--http-port", "0", "--memory", i == 2 ? "1G" : "512M", "--journal", journal, "--down-after", i == 2 ? VictimDownAfter : "3s",
                "--fault-injection", "on"));
        }
        var apis = new List<string>();
        foreach (var n in _nodes)
            apis.Add(await n.WaitForApiAsync());
        await NodeProcess.WaitForMembersUpAsync(_http, apis, 3, Logs);
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            try
            {
                if ((await _http.GetFromJsonAsync<JsonElement[]>(apis[0] + "/api/hosts"))!.Length == 3)
                    return apis;
            }
            catch (HttpRequestException)
            {
                // the scheduler singleton is still starting
            }
            Assert.True(DateTime.UtcNow < deadline, "the scheduler did not list three hosts:\n" + Logs());
            await Task.Delay(250);
        }
    }

    // The first I/O error the node logged for generation `generation` of VM dv (bounded wait).
    private static async Task<string> LoggedDiskErrorAsync(NodeProcess node, long generation)
    {
        string marker = $"of VM dv generation {generation}: I/O error: ";
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (true)
        {
            string log = node.Log;
            int at = log.IndexOf(marker, StringComparison.Ordinal);
            if (at >= 0)
            {
                int end = log.IndexOf('\n', at);
                return log[at..(end < 0 ? log.Length : end)];
            }
            Assert.True(DateTime.UtcNow < deadline, $"no I/O error of VM dv generation {generation} in the node's log:\n{log}");
            await Task.Delay(100);
        }
    }

    private async Task<JsonElement> PartitionAsync(string api, string mode, params string[] peers)
    {
        var response = await _http.PostAsJsonAsync(api + "/api/debug/partition", new { peers, mode });
        string body = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"partition {mode} {string.Join(',', peers)} on {api}: {(int)response.StatusCode} {body}");
        return JsonDocument.Parse(body).RootElement;
    }

    [Fact]
    public async Task A_partitioned_guest_is_fenced_once_its_twin_runs_elsewhere_and_the_disk_holds_only_the_twins_records()
    {
        var clock = Stopwatch.StartNew();
        var apis = await StartPartitionableClusterAsync();
        var majority = apis.Take(2).ToList();
        await VerbAsync(apis[0], "pv", "create", "pv1.img", "--size", "64M", "--host", "node-1");
        await VerbAsync(apis[0], "pv", "create", "pv2.img", "--size", "64M", "--host", "node-2");
        await VerbAsync(apis[0], "vg", "create", "vg0", "pv1.img", "pv2.img");
        await VerbAsync(apis[0], "lv", "create", "vg0/d1", "--size", "8M", "--type", "mirror", "--mirrors", "2");
        var (victim, generation) = await CreateOnLvAsync(apis[0]);
        Assert.Equal("node-3", victim); // the most free memory; both legs are elsewhere, so every write crosses the network

        // The old incarnation's console through the victim's own API: guest and subscriber are
        // both on node-3, so the stream goes on while node-3 is cut off.
        await using var old = ConsoleStream.Open(apis[2], "dv");
        await old.WaitForAsync(t => LastAck(t) >= 40, "ACK 40 from the first incarnation");
        Assert.Equal(0, await RefusedStaleWritesAsync(majority));

        // The partition: node-3's Akka traffic to and from node-1 and node-2 is dropped, on both sides.
        var cut = await PartitionAsync(apis[2], "blackhole", "node-1", "node-2");
        Assert.Equal(2, cut.GetProperty("blackholed").GetArrayLength());
        await PartitionAsync(apis[0], "blackhole", "node-3");
        await PartitionAsync(apis[1], "blackhole", "node-3");
        long ackedBeforeCut = LastAck(old.Text);

        // The majority downs node-3 and restarts the VM on one of its nodes with a newer
        // generation; opening the LV for it raises the fence on both extent servers first.
        var (host, restarted) = await WaitForRestartAsync(apis[0], "dv", victim, generation);
        Assert.Contains(host, (string[])["node-1", "node-2"]);
        await using var twin = ConsoleStream.Open(apis[0], "dv");
        string twinText = await twin.WaitForAsync(t => Verify().IsMatch(t) && LastAck(t) > 0, "VERIFY and an ACK from the restarted twin");
        var verify = Verify().Match(twinText);
        Assert.True(verify.Groups[2].Success, $"the twin's verifier says: {verify.Value}");
        long fencedAt = long.Parse(verify.Groups[2].Value, CultureInfo.InvariantCulture);
        Assert.Equal("2", verify.Groups[3].Value);
        Assert.True(fencedAt >= ackedBeforeCut, $"the first incarnation acknowledged {ackedBeforeCut} records before the cut, the twin found {fencedAt}");

        // The old incarnation still runs behind the partition and writes; the fenced extent
        // servers refuse it (bounded wait), and the refusal reaches the guest as an I/O error.
        var deadline = DateTime.UtcNow.AddSeconds(30);
        long refused;
        while ((refused = await RefusedStaleWritesAsync(majority)) == 0)
        {
            if (DateTime.UtcNow >= deadline)
            {
                string fencing = string.Join("; ", await Task.WhenAll(majority.Select(a => _http.GetStringAsync(a + "/api/storage/fencing"))));
                Assert.Fail($"no stale write was refused within 30 s of the restart ({fencing}); the first incarnation acknowledged {ackedBeforeCut} before the cut, the twin booted on {fencedAt}; old console:\n{old.Text}\n{Logs()}");
            }
            await Task.Delay(250);
        }
        string oldText = await old.WaitForAsync(t => t.Contains("EIO seq=", StringComparison.Ordinal), "EIO in the first incarnation");
        Assert.True(LastAck(oldText) <= fencedAt, $"the first incarnation acknowledged {LastAck(oldText)} after the twin had booted on {fencedAt} records");

        // The guest's EIO is the fence's refusal, not some other failure of its disk: node-3 logs
        // the disk's error (with its causes) for the VM and generation.
        string ioError = await LoggedDiskErrorAsync(_nodes[2], generation);
        Assert.True(ioError.Contains($"refused: generation {restarted} owns it", StringComparison.Ordinal),
            $"the first incarnation's disk failed for another reason than the fence: {ioError}\n{Logs()}");
        Assert.False(_nodes[2].HasExited, "node-3 should still run (cut off) until the heal");

        // The heal. The majority removed node-3 and quarantined it, so its traffic stays refused;
        // node-3 goes (its guest with it) when its own resolver downs it, the lone side, 30 s
        // after it lost the others, and its process ends after the coordinated shutdown.
        await PartitionAsync(apis[0], "heal", "node-3");
        await PartitionAsync(apis[1], "heal", "node-3");
        var healed = await PartitionAsync(apis[2], "heal", "node-1", "node-2");
        Assert.Equal(0, healed.GetProperty("blackholed").GetArrayLength());
        using (var exit = new CancellationTokenSource(TimeSpan.FromSeconds(75)))
        {
            while (!_nodes[2].HasExited)
            {
                Assert.False(exit.IsCancellationRequested, $"node-3 did not go within 75 s of the heal:\n{_nodes[2].Log}");
                await Task.Delay(250);
            }
        }
        Assert.Equal(restarted, (await Vm(apis[0], "dv")).GetProperty("generation").GetInt64());
        await AssertRunsOnceAsync(apis[0], host);
        long twinAcked = LastAck(twin.Text);
        await twin.WaitForAsync(t => LastAck(t) >= twinAcked + 16, "the twin acknowledging after the heal");

        // A fresh boot reads every record: all of them good, the twin's after the first
        // incarnation's and none of the first incarnation's after the twin's (VERIFY would say
        // "bad seq=K boot"), and at least every record the twin acknowledged.
        var stopped = await _http.PostAsync(apis[0] + "/api/vms/dv/stop", null);
        Assert.True(stopped.IsSuccessStatusCode, await stopped.Content.ReadAsStringAsync());
        twinAcked = LastAck(twin.Text);
        var started = await _http.PostAsync(apis[0] + "/api/vms/dv/start", null);
        Assert.True(started.IsSuccessStatusCode, await started.Content.ReadAsStringAsync());
        await using var check = ConsoleStream.Open(apis[0], "dv");
        string checkText = await check.WaitForAsync(t => Verify().IsMatch(t), "VERIFY after a fresh boot");
        var final = Verify().Match(checkText);
        Assert.True(final.Groups[2].Success, $"the fresh boot's verifier says: {final.Value}");
        Assert.True(long.Parse(final.Groups[2].Value, CultureInfo.InvariantCulture) >= twinAcked, $"the twin acknowledged {twinAcked} records, the fresh boot found {final.Value}");
        Assert.Equal("3", final.Groups[3].Value);
        _output.WriteLine($"stale writes refused: {refused}; first incarnation acknowledged {LastAck(oldText)}, twin booted on {fencedAt}, acknowledged {twinAcked}; {clock.Elapsed.TotalSeconds:0} s");
    }
}
