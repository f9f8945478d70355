// Three real `tern node start` processes on loopback: placement, stop/start, and a full
// restart that brings the VM specs back; and the clear errors of a node that cannot start.
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Tern.Tests.Shared;

namespace Tern.Node.Tests;

[Collection("nodes")]
public sealed class MultiProcessTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("tern-mp-").FullName;
    private readonly List<NodeProcess> _nodes = [];
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(60) };

    private async Task<List<string>> StartClusterAsync(int count = 3)
    {
        var ports = Enumerable.Range(0, count).Select(_ => NodeProcess.FreePort()).ToList();
        string journal = $"Data Source={Path.Combine(_dir, "cluster.db")}";
        var nodes = new List<NodeProcess>();
        for (int i = 0; i < count; i++)
        {
            var node = NodeProcess.Start("--name", $"node-{i + 1}", "--data-dir", Path.Combine(_dir, $"node-{i + 1}"),
                "--port", ports[i].ToString(System.Globalization.CultureInfo.InvariantCulture), "--seed", $"127.0.0.1:{ports[0]}",
                "--http-port", "0", "--memory", "512M", "--journal", journal);
            _nodes.Add(node);
            nodes.Add(node);
        }
        var apis = new List<string>();
        foreach (var n in nodes)
            apis.Add(await n.WaitForApiAsync());
        var deadline = DateTime.UtcNow.AddSeconds(120);
        while (true)
        {
            try
            {
                var hosts = await _http.GetFromJsonAsync<JsonElement[]>(apis[0] + "/api/hosts");
                if (hosts!.Length == count)
                    break;
            }
            catch (HttpRequestException)
            {
                // the scheduler singleton is still starting
            }
            Assert.True(DateTime.UtcNow < deadline, "the node processes did not form a cluster:\n" + string.Join("\n---\n", nodes.Select(n => n.Log)));
            await Task.Delay(250);
        }
        await NodeProcess.WaitForMembersUpAsync(_http, apis, count, () => string.Join("\n---\n", nodes.Select(n => n.Log)));
        return apis;
    }

    private void StopAll()
    {
        for (int i = _nodes.Count - 1; i >= 0; i--)
            _nodes[i].Dispose();
        _nodes.Clear();
    }

    private async Task<JsonElement> Vm(string api, string name) => await _http.GetFromJsonAsync<JsonElement>($"{api}/api/vms/{name}");

    [Fact]
    public async Task Three_node_processes_place_run_stop_start_and_keep_specs_across_a_full_restart()
    {
        string kernel = Path.Combine(_dir, "ticker.elf");
        await File.WriteAllBytesAsync(kernel, TickerGuest.Elf());
        var apis = await StartClusterAsync();

        var created = await _http.PostAsJsonAsync(apis[1] + "/api/vms", new { name = "web1", kernel, memoryBytes = 64UL << 20, host = "node-3" });
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        Assert.Equal("node-3", (await created.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("host").GetString());
        var hosts = (await _http.GetFromJsonAsync<JsonElement[]>(apis[0] + "/api/hosts"))!;
        Assert.Equal(64L << 20, hosts.Single(h => h.GetProperty("name").GetString() == "node-3").GetProperty("usedMemoryBytes").GetInt64());
        Assert.Equal(3, hosts.Select(h => h.GetProperty("processId").GetInt32()).Distinct().Count());

        var auto = await _http.PostAsJsonAsync(apis[2] + "/api/vms", new { name = "web2", kernel, memoryBytes = 64UL << 20 });
        Assert.NotEqual("node-3", (await auto.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("host").GetString());

        var stopped = await (await _http.PostAsync(apis[0] + "/api/vms/web1/stop", null)).Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal("stopped", stopped.GetProperty("state").GetString());
        var started = await (await _http.PostAsync(apis[0] + "/api/vms/web1/start", null)).Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal(("running", 2L), (started.GetProperty("state").GetString(), started.GetProperty("generation").GetInt64()));
        await _http.PostAsync(apis[0] + "/api/vms/web1/stop", null);

        StopAll();
        apis = await StartClusterAsync();
        var back = await Vm(apis[2], "web1");
        Assert.Equal(("stopped", 2L, 64L << 20), (back.GetProperty("state").GetString(), back.GetProperty("generation").GetInt64(), back.GetProperty("memoryBytes").GetInt64()));
        // web2 was running when the cluster stopped: it comes back by itself as a new generation.
        var deadline = DateTime.UtcNow.AddSeconds(90);
        JsonElement web2;
        // Until its controller has probed the old host, web2 may still report generation 1 as running.
        while ((web2 = await Vm(apis[0], "web2")).GetProperty("state").GetString() != "running" || web2.GetProperty("generation").GetInt64() < 2)
        {
            Assert.True(DateTime.UtcNow < deadline, $"web2 did not come back: {web2}");
            await Task.Delay(250);
        }
        Assert.Equal(2L, web2.GetProperty("generation").GetInt64());
        // That was a restart (its generation was lost with the cluster); web1's starts were the user's.
        Assert.Equal(1, web2.GetProperty("restarts").GetInt32());
        Assert.StartsWith("generation 1 lost: ", web2.GetProperty("lastRestartReason").GetString(), StringComparison.Ordinal);
        Assert.Equal(0, (await Vm(apis[0], "web1")).GetProperty("restarts").GetInt32());
        var again = await (await _http.PostAsync(apis[1] + "/api/vms/web1/start", null)).Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal(("running", 3L, "node-3"), (again.GetProperty("state").GetString(), again.GetProperty("generation").GetInt64(), again.GetProperty("host").GetString()));
    }

    [Fact]
    public async Task Storage_verbs_from_a_real_tern_create_pvs_on_the_named_node_and_place_mirror_legs_on_two_hosts()
    {
        var apis = await StartClusterAsync(2);
        string home = Path.Combine(_dir, "client"); // a client machine's TERN_HOME: no PVs, no cluster record
        string pv1 = Path.Combine(_dir, "pvs", "a.img"), pv2 = Path.Combine(_dir, "pvs", "b.img");
        Directory.CreateDirectory(Path.GetDirectoryName(pv1)!);

        // The coordinator singleton may still be finding the extent servers: retry the first verb (bounded).
        var deadline = DateTime.UtcNow.AddSeconds(90);
        TernCli.Result created;
        while ((created = await TernCli.RunAsync(home, TimeSpan.FromSeconds(60), "pv", "create", pv2, "--size", "64M", "--host", "node-2", "--cluster", apis[0])).Code != 0)
        {
            Assert.True(DateTime.UtcNow < deadline, $"pv create never succeeded: {created}");
            await Task.Delay(500);
        }
        Assert.StartsWith($"Physical volume \"node-2:{pv2}\" successfully created", created.Output, StringComparison.Ordinal);
        // node-2 made the file and lists it in its own data dir; node-1 does not.
        Assert.True(File.Exists(pv2));
        Assert.Contains(pv2, File.ReadAllText(Path.Combine(_dir, "node-2", "pvs.json")), StringComparison.Ordinal);
        Assert.DoesNotContain(pv2, File.Exists(Path.Combine(_dir, "node-1", "pvs.json")) ? File.ReadAllText(Path.Combine(_dir, "node-1", "pvs.json")) : "", StringComparison.Ordinal);

        async Task<string> Ok(params string[] args)
        {
            var r = await TernCli.RunAsync(home, TimeSpan.FromSeconds(60), [.. args, "--cluster", apis[1]]);
            Assert.True(r.Code == 0, $"tern {string.Join(' ', args)}: {r}");
            return r.Output;
        }
        await Ok("pv", "create", pv1, "--size", "64M", "--host", "node-1");
        await Ok("vg", "create", "vg0", $"node-1:{pv1}", $"node-2:{pv2}");
        Assert.Equal("Logical volume \"vg0/m1\" created (8.00m, mirror).\n", await Ok("lv", "create", "vg0/m1", "--size", "8M", "--type", "mirror"));

        using var pvs = JsonDocument.Parse(await Ok("pv", "list", "--json"));
        Assert.Equal(new[] { "node-1", "node-2" }, pvs.RootElement.GetProperty("pvs").EnumerateArray().Select(p => p.GetProperty("host").GetString()!).Order().ToArray());
        using var lvs = JsonDocument.Parse(await Ok("lv", "list", "--json"));
        var m1 = lvs.RootElement.GetProperty("lvs").EnumerateArray().Single();
        Assert.Equal(("mwi--", JsonValueKind.Null), (m1.GetProperty("attr").GetString(), m1.GetProperty("degraded").ValueKind));
        Assert.Equal(new[] { $"node-1:{pv1}", $"node-2:{pv2}" }, m1.GetProperty("devices").EnumerateArray().Select(d => d.GetString()!).Order().ToArray());

        // A refused verb comes back with the cluster's exit code and its one line.
        var refused = await TernCli.RunAsync(home, TimeSpan.FromSeconds(60), "pv", "create", pv2, "--size", "64M", "--host", "node-3", "--cluster", apis[0]);
        Assert.Equal(2, refused.Code);
        Assert.StartsWith("tern pv create: ", refused.Error, StringComparison.Ordinal);
        Assert.Equal("", refused.Output);
    }

    [Fact]
    public async Task A_node_on_a_busy_port_exits_with_a_clear_error()
    {
        using var busy = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        busy.Start();
        int port = ((IPEndPoint)busy.LocalEndpoint).Port;
        using var node = NodeProcess.Start("--name", "n", "--data-dir", Path.Combine(_dir, "n"), "--port", port.ToString(System.Globalization.CultureInfo.InvariantCulture), "--http-port", "0");
        Assert.NotEqual(0, await node.WaitForExitAsync());
        Assert.Contains($"tern node start: cannot listen on 127.0.0.1:{port}", node.Log);
    }

    public void Dispose()
    {
        StopAll();
        _http.Dispose();
        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
            // a killed node may still hold its files for a moment; it is a temp dir
        }
    }
}
