// Live migration between real `tern node start` processes, driven by the real `tern` CLI:
// a heartbeat guest moves and keeps beating with a new host and a higher generation; a
// target killed (SIGKILL) mid-migration leaves the guest running on its source; a host with
// two guests drains; and a deterministic icount guest migrated three times prints exactly
// what an unmigrated twin prints, checksums of its memory and its clock included.
using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.RegularExpressions;
using Tern.Tests.Shared;

namespace Tern.Node.Tests;

[Collection("nodes")]
public sealed partial class MigrationProcessTests(Xunit.Abstractions.ITestOutputHelper log) : IDisposable
{
    private static readonly TimeSpan CliLimit = TimeSpan.FromSeconds(120);
    private readonly string _dir = Directory.CreateTempSubdirectory("tern-mig-").FullName;
    private readonly List<NodeProcess> _nodes = [];
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(60) };

    private static string Heartbeat => RepoFiles.Guest("migrate/heartbeat.elf");

    private static string Checksum => RepoFiles.Guest("migrate/checksum.elf");

    private async Task<List<string>> StartClusterAsync(int count)
    {
        var ports = Enumerable.Range(0, count).Select(_ => NodeProcess.FreePort()).ToList();
        string journal = $"Data Source={Path.Combine(_dir, "cluster.db")}";
        for (int i = 0; i < count; i++)
        {
            _nodes.Add(NodeProcess.Start("--name", $"node-{i + 1}", "--data-dir", Path.Combine(_dir, $"node-{i + 1}"),
                "--port", ports[i].ToString(CultureInfo.InvariantCulture), "--seed", $"127.0.0.1:{ports[0]}",
                "--http-port", "0", "--memory", "512M", "--journal", journal));
        }
        var apis = new List<string>();
        foreach (var n in _nodes)
            apis.Add(await n.WaitForApiAsync());
        var deadline = DateTime.UtcNow.AddSeconds(120);
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
            Assert.True(DateTime.UtcNow < deadline, "the node processes did not form a cluster:\n" + string.Join("\n---\n", _nodes.Select(n => n.Log)));
            await Task.Delay(250);
        }
    }

    private static readonly string[] BreakdownKeys =
        ["pause_ms", "state_capture_ms", "final_copy_ms", "final_pages", "ready_wait_ms", "target_apply_ms", "target_load_ms", "go_to_started_ms", "precopy_encode_ms", "precopy_write_ms", "precopy_round_wait_ms"];

    // The "breakdown" object of a migration's figures: every key a number, none negative.
    private static Dictionary<string, double> Breakdown(JsonElement figures, string text)
    {
        Assert.True(figures.TryGetProperty("breakdown", out var b) && b.ValueKind == JsonValueKind.Object, $"no breakdown in {text}");
        var parts = new Dictionary<string, double>();
        foreach (var key in BreakdownKeys)
        {
            Assert.True(b.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.Number, $"the breakdown lacks a number '{key}': {text}");
            Assert.True(v.GetDouble() >= 0, $"{key} is negative: {text}");
            parts[key] = v.GetDouble();
        }
        return parts;
    }

    private static Task<(int Code, string Output, string Error)> Tern(string api, params string[] args) => TernProcess.RunAsync(CliLimit, [.. args, "--api", api]);

    private static async Task<JsonElement> Show(string api, string vm)
    {
        var (code, output, error) = await Tern(api, "vm", "show", vm, "--json");
        Assert.True(code == 0, error);
        return JsonDocument.Parse(output).RootElement;
    }

    private async Task<string> Logs(string api, string vm)
    {
        var (code, output, error) = await Tern(api, "vm", "logs", vm);
        Assert.True(code == 0, $"tern vm logs {vm}: {error}");
        return output;
    }

    private static int LastBeat(string text) => Beats(text).DefaultIfEmpty(0).Max();

    private static List<int> Beats(string text) => BeatLine().Matches(text).Select(m => int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture)).ToList();

    [GeneratedRegex(@"beat (\d+) ok")]
    private static partial Regex BeatLine();

    private async Task WaitForBeatAsync(string api, string vm, int beat)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        string text;
        while (LastBeat(text = await Logs(api, vm)) < beat)
        {
            Assert.True(DateTime.UtcNow < deadline, $"{vm} never reached beat {beat}:\n{text}");
            await Task.Delay(250);
        }
    }

    // The hosts' own inventories (their agents' reports), once they agree with the expectation.
    private async Task<Dictionary<string, int>> WaitForGuestsAsync(string api, Dictionary<string, int> expected)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            var hosts = (await _http.GetFromJsonAsync<JsonElement[]>(api + "/api/hosts"))!;
            var guests = hosts.ToDictionary(h => h.GetProperty("name").GetString()!, h => h.GetProperty("guests").GetInt32());
            if (expected.All(e => guests.GetValueOrDefault(e.Key) == e.Value))
                return guests;
            Assert.True(DateTime.UtcNow < deadline, $"hosts report guests {JsonSerializer.Serialize(guests)}, expected {JsonSerializer.Serialize(expected)}");
            await Task.Delay(250);
        }
    }

    private async Task CreateAsync(string api, string vm, string kernel, string host, string? clock = null)
    {
        string[] args = ["vm", "create", "--name", vm, "--mem", "64M", "--kernel", kernel, "--host", host];
        var (code, _, error) = await Tern(api, clock is null ? args : [.. args, "--clock", clock]);
        Assert.True(code == 0, $"tern vm create {vm}: {error}");
    }

    [Fact]
    public async Task The_cli_migrates_a_running_guest_between_node_processes_and_drains_a_host_with_two_guests()
    {
        var apis = await StartClusterAsync(3);
        await CreateAsync(apis[0], "hb", Heartbeat, "node-1");
        await WaitForBeatAsync(apis[0], "hb", 2);

        var (code, output, error) = await Tern(apis[2], "vm", "migrate", "hb", "--to", "node-3", "--json");
        Assert.True(code == 0, $"tern vm migrate: {error}");
        var figures = JsonDocument.Parse(output).RootElement; // exactly one JSON object on stdout
        Assert.Equal(JsonValueKind.Object, figures.ValueKind);
        Assert.Equal(("completed", "node-1", "node-3"), (figures.GetProperty("status").GetString(), figures.GetProperty("from").GetString(), figures.GetProperty("to").GetString()));
        foreach (var key in new[] { "total_time_ms", "setup_time_ms", "downtime_ms", "rounds", "bytes_sent", "pages_zero", "pages_compressed", "pages_raw", "pages_delta", "dirty_rate", "bandwidth_mibps" })
            Assert.True(figures.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.Number, $"--json lacks a number '{key}': {output}");
        Assert.True(figures.GetProperty("pages_raw").GetInt64() >= 1024, "the guest's 4 MiB pattern must travel as raw pages");
        Assert.Contains("round", error); // the progress bar went to stderr

        // Where the downtime went, under the bench's keys, in the CLI's object and the API's view alike.
        var parts = Breakdown(figures, output);
        Assert.Equal(figures.GetProperty("downtime_ms").GetDouble(), parts["pause_ms"] + parts["final_copy_ms"] + parts["ready_wait_ms"] + parts["go_to_started_ms"], 6);
        Assert.Equal(figures.GetProperty("ack_wait_ms").GetDouble(), parts["ready_wait_ms"] + parts["go_to_started_ms"], 6);
        Assert.True(parts["state_capture_ms"] <= parts["final_copy_ms"] && parts["state_capture_ms"] > 0, output);
        Assert.True(parts["target_load_ms"] > 0 && parts["precopy_encode_ms"] > 0, output); // the target loaded a state; round 0 encoded pages
        var view = (await _http.GetFromJsonAsync<JsonElement>(apis[0] + "/api/vms/hb/migration")).GetProperty("figures");
        Assert.Equal(parts, Breakdown(view, view.GetRawText()));
        log.WriteLine($"tern vm migrate between node processes: downtime {figures.GetProperty("downtime_ms").GetDouble():F2} ms = " +
            string.Join(", ", parts.Select(p => $"{p.Key} {p.Value:F2}")) + $"; total {figures.GetProperty("total_time_ms").GetDouble():F1} ms");

        var shown = await Show(apis[1], "hb");
        Assert.Equal(("running", "node-3"), (shown.GetProperty("state").GetString(), shown.GetProperty("host").GetString()));
        Assert.True(shown.GetProperty("generation").GetInt64() > 1);
        await WaitForGuestsAsync(apis[0], new() { ["node-1"] = 0, ["node-2"] = 0, ["node-3"] = 1 });

        // The heartbeat goes on, on the new host, after the output from before the move.
        string before = await Logs(apis[0], "hb");
        await WaitForBeatAsync(apis[0], "hb", LastBeat(before) + 3);
        string after = await Logs(apis[1], "hb");
        Assert.DoesNotContain("BAD", after);
        var beats = Beats(after);
        Assert.Equal(Enumerable.Range(beats[0], beats.Count), beats); // consecutive: none lost or repeated

        // A second guest on node-3, then drain it: both move, node-3 takes no new guests until undrained.
        await CreateAsync(apis[0], "hb2", Heartbeat, "node-3");
        var drain = await Tern(apis[0], "host", "drain", "node-3");
        Assert.True(drain.Code == 0, $"tern host drain: {drain.Error}\n{drain.Output}");
        Assert.Matches(@"hb: node-3 -> node-[12] in [\d.]+ ms", drain.Output);
        Assert.Matches(@"hb2: node-3 -> node-[12] in [\d.]+ ms", drain.Output);
        Assert.Contains("node-3 drained: 2 migrated, 0 failed", drain.Output);
        foreach (var vm in new[] { "hb", "hb2" })
            Assert.NotEqual("node-3", (await Show(apis[0], vm)).GetProperty("host").GetString());
        await WaitForGuestsAsync(apis[0], new() { ["node-3"] = 0 });
        var list = await Tern(apis[0], "host", "list");
        Assert.Matches(@"node-3 .* true", list.Output);
        var refused = await Tern(apis[0], "vm", "create", "--name", "hb3", "--mem", "64M", "--kernel", Heartbeat, "--host", "node-3");
        Assert.Equal((2, "tern: host 'node-3' is draining and takes no new guests"), (refused.Code, refused.Error.Trim()));
        Assert.Equal(0, (await Tern(apis[0], "host", "undrain", "node-3")).Code);
        await CreateAsync(apis[0], "hb3", Heartbeat, "node-3");
        await WaitForBeatAsync(apis[0], "hb2", 2);
    }

    [Fact]
    public async Task A_target_killed_in_the_middle_of_a_migration_leaves_the_guest_running_on_its_source()
    {
        var apis = await StartClusterAsync(3);
        await CreateAsync(apis[0], "hb", Heartbeat, "node-1");
        await WaitForBeatAsync(apis[0], "hb", 2);

        // 128 KiB/s: the 4 MiB pattern takes half a minute, so the kill lands mid-stream.
        using var migrate = TernProcess.Start("vm", "migrate", "hb", "--to", "node-2", "--max-bandwidth", "128K", "--json", "--api", apis[0]);
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while ((await _http.GetFromJsonAsync<JsonElement>(apis[0] + "/api/vms/hb/migration")).GetProperty("status").GetString() != "running")
        {
            Assert.True(DateTime.UtcNow < deadline, "the migration never started: " + migrate.Error);
            await Task.Delay(100);
        }
        await Task.Delay(1000);
        _nodes[1].Kill();

        int code = await migrate.WaitAsync(CliLimit);
        var result = JsonDocument.Parse(migrate.Output).RootElement;
        Assert.Equal((1, "failed"), (code, result.GetProperty("status").GetString()));
        Assert.Contains("keeps running on the source", result.GetProperty("error").GetString());
        var shown = await Show(apis[0], "hb");
        Assert.Equal(("running", "node-1", 1L), (shown.GetProperty("state").GetString(), shown.GetProperty("host").GetString(), shown.GetProperty("generation").GetInt64()));
        string before = await Logs(apis[0], "hb");
        await WaitForBeatAsync(apis[2], "hb", LastBeat(before) + 2);
        Assert.DoesNotContain("BAD", await Logs(apis[2], "hb"));
        await WaitForGuestsAsync(apis[0], new() { ["node-1"] = 1, ["node-3"] = 0 });
    }

    [Fact]
    public async Task An_icount_guest_migrated_three_times_between_node_processes_prints_what_an_unmigrated_twin_prints()
    {
        var apis = await StartClusterAsync(2);
        await CreateAsync(apis[0], "twin", Checksum, "node-2", clock: "icount");
        await CreateAsync(apis[0], "moved", Checksum, "node-1", clock: "icount");
        using var twinLog = TernProcess.Start("vm", "logs", "twin", "--follow", "--api", apis[0]);
        using var movedLog = TernProcess.Start("vm", "logs", "moved", "--follow", "--api", apis[1]);

        var hosts = new[] { "node-2", "node-1", "node-2" };
        foreach (var to in hosts)
        {
            await Task.Delay(700);
            var (code, output, error) = await Tern(apis[0], "vm", "migrate", "moved", "--to", to, "--json");
            Assert.True(code == 0, $"migration to {to}: {error}\n{output}\n(the guest must still be running: make checksum.S run longer if it finished)");
            Assert.Equal("completed", JsonDocument.Parse(output).RootElement.GetProperty("status").GetString());
        }
        Assert.Equal(4L, (await Show(apis[1], "moved")).GetProperty("generation").GetInt64());

        Assert.Equal(0, await twinLog.WaitAsync(CliLimit));
        Assert.Equal(0, await movedLog.WaitAsync(CliLimit));
        Assert.Matches(@"round 150 sum [0-9a-f]{16} t=[0-9a-f]{16}\ndone [0-9a-f]{16}\n$", twinLog.Output);
        Assert.Equal(twinLog.Output, movedLog.Output);
        // The console ends with the guest; the controller records its end a moment later.
        var deadline = DateTime.UtcNow.AddSeconds(30);
        JsonElement twin, moved;
        while ((twin = await Show(apis[0], "twin")).GetProperty("state").GetString() == "running" | (moved = await Show(apis[0], "moved")).GetProperty("state").GetString() == "running")
        {
            Assert.True(DateTime.UtcNow < deadline, "the guests' ends were never recorded");
            await Task.Delay(250);
        }
        Assert.Equal(("stopped", "powered off with code 0"), (moved.GetProperty("state").GetString(), moved.GetProperty("lastError").GetString()));
        Assert.Equal(twin.GetProperty("lastError").GetString(), moved.GetProperty("lastError").GetString());
    }

    public void Dispose()
    {
        for (int i = _nodes.Count - 1; i >= 0; i--)
            _nodes[i].Dispose();
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
