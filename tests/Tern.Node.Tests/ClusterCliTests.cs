// `tern vm ...` and `tern host list` against an in-process node's API.
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Logging;
using Tern.Cli;
using Tern.Cluster;
using Tern.Tests.Shared;

namespace Tern.Node.Tests;

[Collection("nodes")]
public sealed class ClusterCliTests : IAsyncLifetime
{
    private readonly string _dir = Directory.CreateTempSubdirectory("tern-cli-").FullName;
    private WebApplication _app = null!;
    private string _api = "";

    public async Task InitializeAsync()
    {
        _app = NodeHost.Build(new NodeSettings
        {
            Cluster = new TernNodeOptions { NodeName = "solo", Port = 0, DataDir = _dir, MemoryBudgetBytes = 512UL << 20, Harts = 2, FastTimings = true },
            HttpPort = 0,
            ApiToken = "t",
        }, logging => logging.ClearProviders());
        await _app.StartAsync();
        _api = NodeHost.HttpAddress(_app);
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!(await Tern("host", "list")).Output.Contains("solo", StringComparison.Ordinal))
        {
            Assert.True(DateTime.UtcNow < deadline, "the node never reported its host");
            await Task.Delay(100);
        }
    }

    private Task<(int Code, string Output, string Error)> Tern(params string[] args) => Task.Run(() =>
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int code = TernApp.Invoke([.. args, "--api", _api, "--token", "t"], output, error);
        return (code, output.ToString(), error.ToString());
    });

    [Fact]
    public async Task Vm_verbs_drive_the_cluster_and_print_tables_or_json()
    {
        string kernel = Path.Combine(_dir, "ticker.elf");
        await File.WriteAllBytesAsync(kernel, TickerGuest.Elf());
        var created = await Tern("vm", "create", "--name", "web1", "--mem", "64M", "--kernel", kernel);
        Assert.Equal(0, created.Code);
        Assert.Matches(@"NAME\s+STATE\s+DESIRED\s+HOST\s+GENERATION", created.Output);
        Assert.Matches(@"web1\s+running\s+running\s+solo\s+1\s+64M", created.Output);

        var shown = await Tern("vm", "show", "web1", "--json");
        var json = JsonDocument.Parse(shown.Output).RootElement;
        Assert.Equal(("web1", "running", "solo", 1L), (json.GetProperty("name").GetString(), json.GetProperty("state").GetString(), json.GetProperty("host").GetString(), json.GetProperty("generation").GetInt64()));

        var logs = await Tern("vm", "logs", "web1");
        Assert.Equal(0, logs.Code);
        Assert.StartsWith("T\n", logs.Output);

        Assert.Matches(@"web1\s+stopped", (await Tern("vm", "stop", "web1")).Output);
        Assert.Matches(@"web1\s+running\s+running\s+solo\s+2", (await Tern("vm", "start", "web1")).Output);
        Assert.Contains("web1", (await Tern("vm", "list")).Output);
        Assert.Equal(0, (await Tern("vm", "delete", "web1")).Code);

        var missing = await Tern("vm", "show", "web1");
        Assert.Equal((2, "tern: no VM named 'web1'"), (missing.Code, missing.Error.Trim()));
        var hosts = JsonDocument.Parse((await Tern("host", "list", "--json")).Output).RootElement;
        Assert.Equal("solo", hosts[0].GetProperty("name").GetString());
    }

    [Fact]
    public async Task Vm_show_prints_where_it_runs_its_generation_and_restarts_and_a_bad_lv_disk_is_refused()
    {
        string kernel = Path.Combine(_dir, "ticker.elf");
        await File.WriteAllBytesAsync(kernel, TickerGuest.Elf());
        Assert.Equal(0, (await Tern("vm", "create", "--name", "s1", "--mem", "64M", "--kernel", kernel)).Code);
        var shown = await Tern("vm", "show", "s1");
        Assert.Equal(0, shown.Code);
        string[] lines = shown.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Contains("Host:         solo", lines);
        Assert.Contains("Generation:   1", lines);
        Assert.Contains("Restarts:     0", lines);
        Assert.Contains("Last restart: -", lines);
        Assert.Contains("Disks:        -", lines);
        var json = JsonDocument.Parse((await Tern("vm", "show", "s1", "--json")).Output).RootElement;
        Assert.Equal((0, JsonValueKind.Null), (json.GetProperty("restarts").GetInt32(), json.GetProperty("lastRestartReason").ValueKind));

        // A malformed lv: disk is refused by the CLI before anything is sent, and by the API too.
        var bad = await Tern("vm", "create", "--name", "s2", "--mem", "64M", "--kernel", kernel, "--disk", "lv:vg0");
        Assert.Equal((2, "", "tern vm create: disk 'lv:vg0': a logical volume is written lv:VG/LV, such as lv:vg0/disk1"), (bad.Code, bad.Output, bad.Error.Trim()));
        using var http = new HttpClient { BaseAddress = new Uri(_api) };
        http.DefaultRequestHeaders.Authorization = new("Bearer", "t");
        using var answer = await http.PostAsJsonAsync("/api/vms", new { name = "s2", kernel, memoryBytes = 64L << 20, disks = new[] { "lv:vg0/bad name" } });
        Assert.Equal(System.Net.HttpStatusCode.BadRequest, answer.StatusCode);
        Assert.Contains("logical volume 'bad name' is not a valid name", await answer.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal((2, "tern: no VM named 's2'"), ((await Tern("vm", "show", "s2")).Code, (await Tern("vm", "show", "s2")).Error.Trim()));
    }

    [Fact]
    public async Task A_vm_larger_than_any_host_is_refused_with_the_reason()
    {
        var refused = await Tern("vm", "create", "--name", "huge", "--mem", "4G", "--kernel", "/k");
        Assert.Equal(2, refused.Code);
        Assert.Equal("tern: needs 4096 MiB but the most free memory on any host is 512 MiB", refused.Error.Trim());
    }

    [Fact]
    public async Task Vm_migrate_refuses_what_it_cannot_do_with_a_clear_error_and_changes_nothing()
    {
        string kernel = Path.Combine(_dir, "ticker.elf");
        await File.WriteAllBytesAsync(kernel, TickerGuest.Elf());
        Assert.Equal(0, (await Tern("vm", "create", "--name", "m1", "--mem", "64M", "--kernel", kernel)).Code);

        var converge = await Tern("vm", "migrate", "m1", "--auto-converge", "maybe", "--json");
        Assert.Equal((2, "tern: auto-converge 'maybe': use on or off"), (converge.Code, converge.Error.Trim()));
        Assert.Equal("refused", JsonDocument.Parse(converge.Output).RootElement.GetProperty("status").GetString());
        var same = await Tern("vm", "migrate", "m1", "--to", "solo");
        Assert.Equal((2, "tern: VM 'm1' already runs on 'solo'"), (same.Code, same.Error.Trim()));
        var alone = await Tern("vm", "migrate", "m1");
        Assert.Equal((2, "tern: no host other than 'solo' can take guests (the others are draining or unknown)"), (alone.Code, alone.Error.Trim()));
        var badLimit = await Tern("vm", "migrate", "m1", "--downtime-limit", "soon");
        Assert.Equal(2, badLimit.Code);
        Assert.Contains("--downtime-limit 'soon' is not a duration", badLimit.Error);
        var ghost = await Tern("vm", "migrate", "ghost", "--to", "solo");
        Assert.Equal((2, "tern: no VM named 'ghost'"), (ghost.Code, ghost.Error.Trim()));
        var nothing = await Tern("vm", "migrate", "--cancel", "m1");
        Assert.Equal((2, "no migration of m1 in progress (last: refused)"), (nothing.Code, nothing.Output.Trim()));

        var shown = JsonDocument.Parse((await Tern("vm", "show", "m1", "--json")).Output).RootElement;
        Assert.Equal(("running", "solo", 1L), (shown.GetProperty("state").GetString(), shown.GetProperty("host").GetString(), shown.GetProperty("generation").GetInt64()));
    }

    public async Task DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
            // SQLite may hold the file a moment longer; it is a temp dir.
        }
    }
}
