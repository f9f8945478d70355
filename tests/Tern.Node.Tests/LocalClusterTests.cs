// `tern cluster up|status|down` through the real CLI: detached node processes that later
// commands find through TERN_HOME, and the errors that must leave nothing running.
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Tern.Tests.Shared;

namespace Tern.Node.Tests;

[Collection("nodes")]
public sealed class LocalClusterTests : IDisposable
{
    private static readonly TimeSpan Slow = TimeSpan.FromSeconds(180);
    private readonly string _home = Directory.CreateTempSubdirectory("tern-home-").FullName;

    private Task<TernCli.Result> Tern(params string[] args) => TernCli.RunAsync(_home, Slow, args);

    private static string Num(int n) => n.ToString(CultureInfo.InvariantCulture);

    private List<int> RecordedPids()
    {
        string record = Path.Combine(_home, "cluster.json");
        if (!File.Exists(record))
            return [];
        using var json = JsonDocument.Parse(File.ReadAllText(record));
        return json.RootElement.GetProperty("nodes").EnumerateArray().Select(n => n.GetProperty("pid").GetInt32()).ToList();
    }

    // Every process whose command line names this test's TERN_HOME: the nodes `up` started.
    private List<int> NodeProcesses() => Directory.EnumerateDirectories("/proc")
        .Select(d => int.TryParse(Path.GetFileName(d), out int pid) ? pid : 0)
        .Where(pid => pid > 0 && pid != Environment.ProcessId)
        .Where(pid =>
        {
            try
            {
                return File.ReadAllText($"/proc/{pid}/cmdline").Contains(_home, StringComparison.Ordinal);
            }
            catch (IOException)
            {
                return false;
            }
        })
        .ToList();

    [Fact]
    public async Task Cluster_up_runs_detached_nodes_that_vm_and_host_commands_find_and_down_stops_them()
    {
        int basePort = TernCli.FreePortRange(6);
        var up = await Tern("cluster", "up", "--nodes", "3", "--base-port", Num(basePort), "--memory", "512M");
        Assert.True(up.Code == 0, up.Output + up.Error);
        Assert.Contains($"tern cluster: 3 nodes up; API http://127.0.0.1:{basePort + 1}", up.Output);
        var pids = RecordedPids();
        Assert.Equal(3, pids.Count);
        Assert.Equal(pids.Order(), NodeProcesses().Order());
        if (!OperatingSystem.IsWindows())
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(_home, "cluster.json")));

        // No --api, no --token: the record in TERN_HOME says where the cluster is and gives the token.
        var hosts = await Tern("host", "list", "--json");
        Assert.Equal(0, hosts.Code);
        var names = JsonDocument.Parse(hosts.Output).RootElement.EnumerateArray().Select(h => h.GetProperty("name").GetString()).Order().ToList();
        Assert.Equal(["node-1", "node-2", "node-3"], names);
        var table = await Tern("host", "list");
        Assert.Matches(@"node-2\s+akka\.tcp://tern@127\.0\.0\.1:" + Num(basePort + 2), table.Output);

        string kernel = Path.Combine(_home, "ticker.elf");
        await File.WriteAllBytesAsync(kernel, TickerGuest.Elf());
        var created = await Tern("vm", "create", "--name", "web1", "--mem", "32M", "--kernel", kernel, "--host", "node-2");
        Assert.True(created.Code == 0, created.Error);
        Assert.Matches(@"web1\s+running\s+running\s+node-2\s+1", created.Output);
        var logs = await Tern("vm", "logs", "web1");
        Assert.Equal(0, logs.Code);
        Assert.StartsWith("T\n", logs.Output);

        // node-1's event log (the record's API) heard of the start on node-2, wherever its controller runs.
        var events = await Tern("events", "--json");
        Assert.Contains(events.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement),
            e => e.GetProperty("kind").GetString() == "vm.started" && e.GetProperty("vm").GetString() == "web1" && e.GetProperty("host").GetString() == "node-2");

        // An explicit --api wins over the record (and without the record's token, a mutating call is refused).
        var explicitApi = await Tern("vm", "stop", "web1", "--api", $"http://127.0.0.1:{basePort + 5}");
        Assert.Equal((2, "tern: a valid API token is required (Authorization: Bearer TOKEN)"), (explicitApi.Code, explicitApi.Error.Trim()));

        var status = await Tern("cluster", "status");
        Assert.Equal(3, status.Output.Split('\n').Count(l => System.Text.RegularExpressions.Regex.IsMatch(l, @"^node-\d\s+\d+\s+up\s")));

        var again = await Tern("cluster", "up", "--nodes", "3", "--base-port", Num(basePort));
        Assert.Equal(2, again.Code);
        Assert.StartsWith($"tern cluster up: a cluster is already up in {_home}", again.Error);
        Assert.Equal(pids.Order(), NodeProcesses().Order());

        var down = await Tern("cluster", "down");
        Assert.True(down.Code == 0, down.Output + down.Error);
        Assert.Contains("node-1: left the cluster and stopped", down.Output);
        Assert.Empty(NodeProcesses());
        Assert.False(File.Exists(Path.Combine(_home, "cluster.json")));
        var gone = await Tern("cluster", "down");
        Assert.Equal((2, $"tern cluster down: no cluster is recorded in {_home}."), (gone.Code, gone.Error.Trim()));
    }

    [Fact]
    public async Task Cluster_up_on_a_busy_port_starts_nothing()
    {
        int basePort = TernCli.FreePortRange(4);
        using var busy = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, basePort + 3);
        busy.Start();
        var up = await Tern("cluster", "up", "--nodes", "2", "--base-port", Num(basePort));
        Assert.Equal(2, up.Code);
        Assert.Equal($"tern cluster up: port {basePort + 3} (API of node-2) is in use on 127.0.0.1; choose another --base-port.", up.Error.Trim());
        Assert.Empty(NodeProcesses());
        Assert.False(File.Exists(Path.Combine(_home, "cluster.json")));
    }

    [Fact]
    public async Task A_node_that_cannot_start_fails_the_whole_cluster_with_its_log()
    {
        // A file where node-2's data directory should be: node-2 cannot start.
        Directory.CreateDirectory(Path.Combine(_home, "cluster"));
        await File.WriteAllTextAsync(Path.Combine(_home, "cluster", "node-2"), "not a directory");
        int basePort = TernCli.FreePortRange(4);
        var up = await Tern("cluster", "up", "--nodes", "2", "--base-port", Num(basePort), "--timeout", "90");
        Assert.Equal(1, up.Code);
        var lines = up.Error.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.StartsWith("tern cluster up: node-2 (pid ", lines[0]);
        Assert.Contains("stopped before the cluster was up; nothing was left running. The end of " + Path.Combine(_home, "cluster", "node-2.log"), lines[0]);
        Assert.Contains(lines.Skip(1), l => l.StartsWith("  | ", StringComparison.Ordinal) && l.Contains("node-2", StringComparison.Ordinal));
        Assert.Empty(NodeProcesses());
        Assert.False(File.Exists(Path.Combine(_home, "cluster.json")));
    }

    public void Dispose()
    {
        foreach (int pid in NodeProcesses())
        {
            try
            {
                using var p = Process.GetProcessById(pid);
                p.Kill();
                p.WaitForExit(10_000);
            }
            catch (ArgumentException)
            {
                // already gone
            }
        }
        try
        {
            Directory.Delete(_home, recursive: true);
        }
        catch (IOException)
        {
            // a node may hold its files for a moment; it is a temp dir
        }
    }
}
