// High availability with real `tern node start` processes on loopback: the disk-verifier guest
// (src/guests/diskverify) writes checksummed records and prints ACK N once they are flushed; its
// host is killed with SIGKILL; the cluster downs the host (--down-after 3s), restarts the VM on a
// surviving host with a higher generation, and the verifier finds every acknowledged record. The
// VM never runs twice: the hosts' own inventories and the generation are checked throughout.
using System.Globalization;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Tern.Tests.Shared;

namespace Tern.Node.Tests;

[Collection("nodes")]
public sealed partial class HaDiskProcessTests(Xunit.Abstractions.ITestOutputHelper output) : IDisposable
{
    private readonly Xunit.Abstractions.ITestOutputHelper _output = output;
    private readonly string _dir = Directory.CreateTempSubdirectory("tern-ha-").FullName;
    private readonly List<NodeProcess> _nodes = [];
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(60) };

    public void Dispose()
    {
        for (int i = _nodes.Count - 1; i >= 0; i--)
            _nodes[i].Dispose();
        _http.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    private static string Verifier => RepoFiles.Guest("diskverify/diskverify.elf");

    [GeneratedRegex(@"^ACK (\d+)$", RegexOptions.Multiline)]
    private static partial Regex Ack();

    [GeneratedRegex(@"VERIFY (ok last=(\d+) boot=(\d+)|bad [^\n]*)\n")]
    private static partial Regex Verify();

    private static long LastAck(string text) => Ack().Matches(text).Select(m => long.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture)).DefaultIfEmpty(0).Max();

    private async Task<List<string>> StartClusterAsync(int count)
    {
        var ports = Enumerable.Range(0, count).Select(_ => NodeProcess.FreePort()).ToList();
        string journal = $"Data Source={Path.Combine(_dir, "cluster.db")}";
        for (int i = 0; i < count; i++)
        {
            _nodes.Add(NodeProcess.Start("--name", $"node-{i + 1}", "--data-dir", Path.Combine(_dir, $"node-{i + 1}"),
                "--port", ports[i].ToString(CultureInfo.InvariantCulture), "--seed", $"127.0.0.1:{ports[0]}",
                "--http-port", "0", "--memory", "512M", "--journal", journal, "--down-after", "3s"));
        }
        var apis = new List<string>();
        foreach (var n in _nodes)
            apis.Add(await n.WaitForApiAsync());
        var deadline = DateTime.UtcNow.AddSeconds(90);
        while (true)
        {
            try
            {
                if ((await _http.GetFromJsonAsync<JsonElement[]>(apis[0] + "/api/hosts"))!.Length == count)
                {
                    await NodeProcess.WaitForMembersUpAsync(_http, apis, count, () => string.Join("\n---\n", _nodes.Select(n => n.Log)));
                    return apis;
                }
            }
            catch (HttpRequestException)
            {
                // the scheduler singleton is still starting
            }
            Assert.True(DateTime.UtcNow < deadline, "the node processes did not form a cluster:\n" + Logs());
            await Task.Delay(250);
        }
    }

    private string Logs() => string.Join("\n---\n", _nodes.Select((n, i) => $"node-{i + 1}:\n{n.Log}"));

    private async Task<JsonElement> Vm(string api, string name) => await _http.GetFromJsonAsync<JsonElement>($"{api}/api/vms/{name}");

    // Waits until the VM runs on a host other than `not` with a generation above `above`; returns (host, generation).
    private async Task<(string Host, long Generation)> WaitForRestartAsync(string api, string name, string not, long above)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        string seen = "nothing";
        while (true)
        {
            try
            {
                var vm = await Vm(api, name);
                seen = vm.ToString();
                if (vm.GetProperty("state").GetString() == "running" && vm.GetProperty("host").GetString() is { } host && host != not
                    && vm.GetProperty("generation").GetInt64() is var generation && generation > above)
                {
                    return (host, generation);
                }
            }
            catch (HttpRequestException)
            {
                // the controller is moving to a surviving node
            }
            Assert.True(DateTime.UtcNow < deadline, $"{name} was not restarted off {not} within 60 s; last seen {seen}:\n{Logs()}");
            await Task.Delay(250);
        }
    }

    // The hosts' own reports: the VM counts once, on `host`, and nowhere else (bounded: 30 s to settle).
    private async Task AssertRunsOnceAsync(string api, string host)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        var guests = new Dictionary<string, int>();
        while (true)
        {
            try
            {
                var hosts = (await _http.GetFromJsonAsync<JsonElement[]>(api + "/api/hosts"))!;
                guests = hosts.ToDictionary(h => h.GetProperty("name").GetString()!, h => h.GetProperty("guests").GetInt32());
                if (guests.Values.Sum() == 1 && guests.GetValueOrDefault(host) == 1)
                    return;
            }
            catch (HttpRequestException)
            {
                // the scheduler singleton is moving off a lost node
            }
            Assert.True(DateTime.UtcNow < deadline, $"hosts report guests {JsonSerializer.Serialize(guests)}; the VM should run once, on {host}");
            await Task.Delay(250);
        }
    }

    [Fact]
    public async Task A_guest_whose_host_is_killed_restarts_elsewhere_and_finds_every_acknowledged_record()
    {
        // The disk is a file every node process on this machine reaches (shared storage).
        string disk = Path.Combine(_dir, "dv.img");
        using (var f = File.Create(disk))
            f.SetLength(8 << 20);
        var apis = await StartClusterAsync(3);
        // Placed by the scheduler (a VM created with --host stays pinned to that host).
        var created = await _http.PostAsJsonAsync(apis[0] + "/api/vms", new { name = "dv", kernel = Verifier, memoryBytes = 64UL << 20, disks = new[] { disk } });
        Assert.True(created.IsSuccessStatusCode, await created.Content.ReadAsStringAsync());
        var first = await Vm(apis[0], "dv");
        long generation = first.GetProperty("generation").GetInt64();
        string victim = first.GetProperty("host").GetString()!;
        int killed = int.Parse(victim["node-".Length..], CultureInfo.InvariantCulture) - 1;
        string api = apis[(killed + 1) % apis.Count]; // a surviving node's API
        await AssertRunsOnceAsync(api, victim);

        await using var console = ConsoleStream.Open(api, "dv");
        await console.WaitForAsync(t => LastAck(t) >= 40, "ACK 40");
        Assert.Contains("VERIFY ok last=0 boot=1", console.Text, StringComparison.Ordinal);
        _nodes[killed].Kill();
        long acked = LastAck(console.Text);

        var (host, restarted) = await WaitForRestartAsync(api, "dv", victim, generation);
        await AssertRunsOnceAsync(api, host);
        await using var after = ConsoleStream.Open(api, "dv");
        string text = await after.WaitForAsync(t => Verify().IsMatch(t) && LastAck(t) > 0, "VERIFY and an ACK");
        var verify = Verify().Match(text);
        Assert.True(verify.Groups[2].Success, $"the restarted verifier says: {verify.Value}");
        long last = long.Parse(verify.Groups[2].Value, CultureInfo.InvariantCulture);
        Assert.True(last >= acked, $"{acked} records were acknowledged before the kill, the restarted guest found {last}");
        Assert.Equal("2", verify.Groups[3].Value);
        Assert.True(LastAck(text) > last);
        Assert.Equal(restarted, (await Vm(api, "dv")).GetProperty("generation").GetInt64());
        await AssertRunsOnceAsync(api, host);
    }

    // ---- the same on the cluster's pool: a 2-way mirror with legs on node-2 and node-3 ----

    private async Task<string> VerbAsync(string api, params string[] args)
    {
        var response = await _http.PostAsJsonAsync(api + "/api/storage/verbs", new { args });
        string body = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"tern {string.Join(' ', args)}: {(int)response.StatusCode} {body}");
        var result = JsonDocument.Parse(body).RootElement;
        Assert.True(result.GetProperty("exitCode").GetInt32() == 0, $"tern {string.Join(' ', args)} exited {result.GetProperty("exitCode")}: {result.GetProperty("stderr")}");
        return result.GetProperty("stdout").GetString()!;
    }

    // PVs on node-2 and node-3 (in their data dirs), vg0 across them, and vg0/d1: a mirror whose
    // two legs are on those two hosts. node-1, the oldest member, holds the storage coordinator.
    private async Task MirrorAsync(string api)
    {
        await VerbAsync(api, "pv", "create", "pv2.img", "--size", "64M", "--host", "node-2");
        await VerbAsync(api, "pv", "create", "pv3.img", "--size", "64M", "--host", "node-3");
        await VerbAsync(api, "vg", "create", "vg0", "pv2.img", "pv3.img");
        await VerbAsync(api, "lv", "create", "vg0/d1", "--size", "8M", "--type", "mirror", "--mirrors", "2");
    }

    private async Task<(string Host, long Generation)> CreateOnLvAsync(string api, string? host = null)
    {
        var created = await _http.PostAsJsonAsync(api + "/api/vms", new { name = "dv", kernel = Verifier, memoryBytes = 64UL << 20, disks = new[] { "lv:vg0/d1" }, host });
        Assert.True(created.IsSuccessStatusCode, await created.Content.ReadAsStringAsync());
        var vm = await Vm(api, "dv");
        return (vm.GetProperty("host").GetString()!, vm.GetProperty("generation").GetInt64());
    }

    private static int Index(string host) => int.Parse(host["node-".Length..], CultureInfo.InvariantCulture) - 1;

    private async Task<long> RefusedStaleWritesAsync(IEnumerable<string> apis)
    {
        long total = 0;
        foreach (var api in apis)
            total += (await _http.GetFromJsonAsync<JsonElement>(api + "/api/storage/fencing")).GetProperty("refusedStaleWrites").GetInt64();
        return total;
    }

    // The restarted (or restarted-by-hand) verifier's check: every acknowledged record is there.
    private static async Task<long> VerifiedAsync(ConsoleStream console, long acked)
    {
        string text = await console.WaitForAsync(t => Verify().IsMatch(t), "VERIFY");
        var verify = Verify().Match(text);
        Assert.True(verify.Groups[2].Success, $"the verifier says: {verify.Value}");
        long last = long.Parse(verify.Groups[2].Value, CultureInfo.InvariantCulture);
        Assert.True(last >= acked, $"{acked} records were acknowledged, the verifier found {last}");
        return last;
    }

    [Fact]
    public async Task A_guest_on_a_mirrored_lv_whose_host_is_killed_restarts_elsewhere_with_every_acknowledged_record()
    {
        var apis = await StartClusterAsync(3);
        await MirrorAsync(apis[0]);
        var (victim, generation) = await CreateOnLvAsync(apis[0]);
        string api = apis[(Index(victim) + 1) % 3];
        await using var console = ConsoleStream.Open(api, "dv");
        await console.WaitForAsync(t => LastAck(t) >= 40, "ACK 40");
        _nodes[Index(victim)].Kill();
        long acked = LastAck(console.Text);

        var (host, _) = await WaitForRestartAsync(api, "dv", victim, generation);
        await AssertRunsOnceAsync(api, host);
        await using var after = ConsoleStream.Open(api, "dv");
        long last = await VerifiedAsync(after, acked);
        await after.WaitForAsync(t => LastAck(t) > last, "an ACK after the restart");
        Assert.DoesNotContain("EIO", after.Text, StringComparison.Ordinal);
    }

    // A verb refused only until the coordinator has heard that the VM let its disk go (the
    // close is a message of its own): asked again while refused as in use, for 15 s at most.
    private async Task VerbOnceReleasedAsync(string api, params string[] args)
    {
        var deadline = DateTime.UtcNow.AddSeconds(15);
        while (true)
        {
            var response = await _http.PostAsJsonAsync(api + "/api/storage/verbs", new { args });
            string body = await response.Content.ReadAsStringAsync();
            Assert.True(response.IsSuccessStatusCode, $"tern {string.Join(' ', args)}: {(int)response.StatusCode} {body}");
            var result = JsonDocument.Parse(body).RootElement;
            if (result.GetProperty("exitCode").GetInt32() == 0)
                return;
            Assert.True(result.GetProperty("stderr").GetString()!.Contains("in use by VM", StringComparison.Ordinal) && DateTime.UtcNow < deadline,
                $"tern {string.Join(' ', args)} exited {result.GetProperty("exitCode")}: {result.GetProperty("stderr")}");
            await Task.Delay(250);
        }
    }

    [Fact]
    public async Task A_guest_on_an_lv_with_a_snapshot_whose_host_is_killed_restarts_elsewhere_and_its_store_holds_every_acknowledged_record()
    {
        var apis = await StartClusterAsync(3);
        await MirrorAsync(apis[0]);
        var (first, _) = await CreateOnLvAsync(apis[0]);
        string api = apis[(Index(first) + 1) % 3];
        await using (var console = ConsoleStream.Open(api, "dv"))
            await console.WaitForAsync(t => LastAck(t) >= 40, "ACK 40");

        // The VM stops; its LV gets a snapshot, so from now on the guest writes through the
        // snapshot store (blocks shared with the snapshot remapped, the mappings journalled).
        var stopped = await _http.PostAsync(api + "/api/vms/dv/stop", null);
        Assert.True(stopped.IsSuccessStatusCode, await stopped.Content.ReadAsStringAsync());
        await VerbOnceReleasedAsync(api, "lv", "snapshot", "vg0/d1", "--name", "s1");
        var started = await _http.PostAsync(api + "/api/vms/dv/start", null);
        Assert.True(started.IsSuccessStatusCode, await started.Content.ReadAsStringAsync());
        var vm = await Vm(api, "dv");
        string victim = vm.GetProperty("host").GetString()!;
        long generation = vm.GetProperty("generation").GetInt64();
        api = apis[(Index(victim) + 1) % 3];
        await using var console2 = ConsoleStream.Open(api, "dv");
        long snapped = await VerifiedAsync(console2, 40);
        await console2.WaitForAsync(t => LastAck(t) >= snapped + 40, "40 records acknowledged through the snapshot store");

        // Its host is killed mid-write; the next generation, elsewhere, opens the store from the
        // journal on the PVs and finds every acknowledged record.
        _nodes[Index(victim)].Kill();
        long acked = LastAck(console2.Text);
        var (host, _) = await WaitForRestartAsync(api, "dv", victim, generation);
        await AssertRunsOnceAsync(api, host);
        await using var after = ConsoleStream.Open(api, "dv");
        long last = await VerifiedAsync(after, acked);
        await after.WaitForAsync(t => LastAck(t) > last + 16, "ACKs after the restart");
        Assert.DoesNotContain("EIO", after.Text, StringComparison.Ordinal);

        // Released, the store is the coordinator's again: removing the snapshot dissolves it from
        // the mappings the guests journalled, and a fresh boot on the plain LV finds every record.
        acked = LastAck(after.Text);
        stopped = await _http.PostAsync(api + "/api/vms/dv/stop", null);
        Assert.True(stopped.IsSuccessStatusCode, await stopped.Content.ReadAsStringAsync());
        await VerbOnceReleasedAsync(api, "lv", "remove", "vg0/s1");
        started = await _http.PostAsync(api + "/api/vms/dv/start", null);
        Assert.True(started.IsSuccessStatusCode, await started.Content.ReadAsStringAsync());
        await using var plain = ConsoleStream.Open(api, "dv");
        await VerifiedAsync(plain, acked);
    }

    [Fact]
    public async Task A_guest_keeps_acknowledging_when_a_node_holding_a_mirror_leg_is_killed()
    {
        var apis = await StartClusterAsync(3);
        await MirrorAsync(apis[0]);
        var (host, generation) = await CreateOnLvAsync(apis[0], "node-1");
        await using var console = ConsoleStream.Open(apis[0], "dv");
        await console.WaitForAsync(t => LastAck(t) >= 40, "ACK 40");
        _nodes[2].Kill(); // node-3: a leg, not the guest's host, not the coordinator's node
        long acked = LastAck(console.Text);
        await console.WaitForAsync(t => LastAck(t) >= acked + 80, "80 more records acknowledged with one leg");
        Assert.DoesNotContain("EIO", console.Text, StringComparison.Ordinal);
        var vm = await Vm(apis[0], "dv");
        Assert.Equal((host, generation), (vm.GetProperty("host").GetString()!, vm.GetProperty("generation").GetInt64()));
        await AssertRunsOnceAsync(apis[0], "node-1");
        string lvs = await VerbAsync(apis[1], "lv", "list", "--json");
        Assert.Contains("node-3", JsonDocument.Parse(lvs).RootElement.GetProperty("lvs").EnumerateArray().Single(l => l.GetProperty("lv").GetString() == "d1").GetProperty("degraded").ToString(), StringComparison.Ordinal);
    }


    [Fact]
    public async Task Killing_the_coordinators_node_leaves_the_guest_writing_and_a_new_coordinator_opens_its_next_generation()
    {
        var apis = await StartClusterAsync(3);
        await MirrorAsync(apis[0]);
        await CreateOnLvAsync(apis[0], "node-2");
        await using var console = ConsoleStream.Open(apis[1], "dv");
        await console.WaitForAsync(t => LastAck(t) >= 40, "ACK 40");
        _nodes[0].Kill(); // node-1: the oldest member, where the coordinator singleton runs; no leg, not the guest's host
        long acked = LastAck(console.Text);
        await console.WaitForAsync(t => LastAck(t) >= acked + 40, "40 more records acknowledged without the coordinator");

        // The coordinator comes back on a survivor (recovered from the PVs): verbs work, and the
        // VM's next generation opens its LV through it and finds every acknowledged record.
        await VerbAsync(apis[1], "lv", "list");
        var stopped = await _http.PostAsync(apis[1] + "/api/vms/dv/stop", null);
        Assert.True(stopped.IsSuccessStatusCode, await stopped.Content.ReadAsStringAsync());
        acked = LastAck(console.Text);
        var started = await _http.PostAsync(apis[1] + "/api/vms/dv/start", null);
        Assert.True(started.IsSuccessStatusCode, await started.Content.ReadAsStringAsync());
        await AssertRunsOnceAsync(apis[1], "node-2");
        await using var after = ConsoleStream.Open(apis[1], "dv");
        long last = await VerifiedAsync(after, acked);
        await after.WaitForAsync(t => LastAck(t) > last, "an ACK from the new generation");
    }

    [Fact]
    public async Task A_partitioned_guest_is_restarted_elsewhere_and_after_the_heal_its_disk_holds_only_good_records()
    {
        var apis = await StartClusterAsync(3);
        await MirrorAsync(apis[0]);
        var (victim, generation) = await CreateOnLvAsync(apis[0]);
        var survivors = apis.Where((_, i) => i != Index(victim)).ToList();
        string api = survivors[0];
        await using var console = ConsoleStream.Open(api, "dv");
        await console.WaitForAsync(t => LastAck(t) >= 40, "ACK 40");

        // The partition: the guest's host is frozen (SIGSTOP) mid-run, its guest with it.
        _nodes[Index(victim)].Pause();
        long acked = LastAck(console.Text);
        var (host, restarted) = await WaitForRestartAsync(api, "dv", victim, generation);
        await AssertRunsOnceAsync(api, host);
        await using var after = ConsoleStream.Open(api, "dv");
        long last = await VerifiedAsync(after, acked);
        await after.WaitForAsync(t => LastAck(t) >= last + 40, "40 ACKs from the new incarnation");
        long refusedBefore = await RefusedStaleWritesAsync(survivors);

        // The heal: the old incarnation runs again and its next batch (overdue) goes out with the
        // old generation; extent servers that the new generation fenced refuse it; its host,
        // downed, leaves. How many writes are refused depends on how far the old guest gets
        // before its host shuts down, so the count is reported, and the disk is what is checked.
        _nodes[Index(victim)].Resume();
        await Task.Delay(TimeSpan.FromSeconds(5));
        _output.WriteLine($"stale writes refused after the heal: {await RefusedStaleWritesAsync(survivors) - refusedBefore} (victim {victim})");
        long healed = LastAck(after.Text);
        await after.WaitForAsync(t => LastAck(t) >= healed + 16, "the new incarnation acknowledging after the heal");
        Assert.Equal(restarted, (await Vm(api, "dv")).GetProperty("generation").GetInt64());
        await AssertRunsOnceAsync(api, host);

        // A fresh boot checks every record on the disk: only good ones, none from the old boot.
        acked = LastAck(after.Text);
        Assert.True((await _http.PostAsync(api + "/api/vms/dv/stop", null)).IsSuccessStatusCode);
        Assert.True((await _http.PostAsync(api + "/api/vms/dv/start", null)).IsSuccessStatusCode);
        await using var check = ConsoleStream.Open(api, "dv");
        await VerifiedAsync(check, acked);
    }

    // A VM's console through the API's server-sent events, read in the background.
    private sealed class ConsoleStream : IAsyncDisposable
    {
        private readonly HttpClient _http = new() { Timeout = Timeout.InfiniteTimeSpan };
        private readonly CancellationTokenSource _stop = new();
        private readonly StringBuilder _text = new();
        private Task _pump = Task.CompletedTask;

        public static ConsoleStream Open(string api, string vm)
        {
            var stream = new ConsoleStream();
            stream._pump = stream.PumpAsync($"{api}/api/vms/{vm}/console");
            return stream;
        }

        public string Text
        {
            get
            {
                lock (_text)
                    return _text.ToString();
            }
        }

        // Until the VM's console answers (it may be restarting), then every line of output.
        private async Task PumpAsync(string url)
        {
            while (!_stop.IsCancellationRequested)
            {
                try
                {
                    using var response = await _http.GetAsync(url, HttpCompletionOption.ResponseHeadersRead, _stop.Token);
                    if (!response.IsSuccessStatusCode)
                    {
                        await Task.Delay(250, _stop.Token);
                        continue;
                    }
                    using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(_stop.Token));
                    while (await reader.ReadLineAsync(_stop.Token) is { } line)
                    {
                        if (line.StartsWith("data: ", StringComparison.Ordinal) && JsonSerializer.Deserialize<string>(line[6..]) is { } data)
                        {
                            lock (_text)
                                _text.Append(data);
                        }
                    }
                    return; // the console ended
                }
                catch (Exception e) when (e is HttpRequestException or IOException)
                {
                    await Task.Delay(250, _stop.Token);
                }
            }
        }

        public async Task<string> WaitForAsync(Func<string, bool> done, string what)
        {
            var deadline = DateTime.UtcNow.AddSeconds(45);
            while (!done(Text))
            {
                Assert.True(DateTime.UtcNow < deadline, $"the console never showed {what}:\n{Text}");
                await Task.Delay(100);
            }
            return Text;
        }

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync();
            try
            {
                await _pump;
            }
            catch (OperationCanceledException)
            {
                // stopped
            }
            _stop.Dispose();
            _http.Dispose();
        }
    }
}
