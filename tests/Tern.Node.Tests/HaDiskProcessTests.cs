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
public sealed partial class HaDiskProcessTests : IDisposable
{
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
                    return apis;
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
        while (true)
        {
            var hosts = (await _http.GetFromJsonAsync<JsonElement[]>(api + "/api/hosts"))!;
            var guests = hosts.ToDictionary(h => h.GetProperty("name").GetString()!, h => h.GetProperty("guests").GetInt32());
            if (guests.Values.Sum() == 1 && guests.GetValueOrDefault(host) == 1)
                return;
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
