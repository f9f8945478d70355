// A host's capacity includes its physical volumes: those listed in the node's data dir (its
// storage home), each with its VG, size and free bytes, in GET /api/hosts and `tern host list`.
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Logging;
using Tern.Cli;
using Tern.Cluster;
using Tern.Storage;

namespace Tern.Node.Tests;

[Collection("nodes")]
public sealed class HostPvTests : IAsyncLifetime, IDisposable
{
    private const long Mib = 1L << 20;
    private readonly string _dir = Directory.CreateTempSubdirectory("tern-pvs-").FullName;
    private WebApplication _app = null!;
    private HttpClient _http = null!;
    private long _pv1Data;

    public async Task InitializeAsync()
    {
        // A PV made before the node starts, as `TERN_HOME=DATA-DIR tern pv create` makes one.
        using (var pool = await StoragePool.OpenAsync(_dir))
            _pv1Data = (await pool.CreatePvAsync(Path.Combine(_dir, "pv1.img"), 64 * Mib, "solo")).Label.DataLength;
        _app = NodeHost.Build(new NodeSettings
        {
            Cluster = new TernNodeOptions { NodeName = "solo", Port = 0, DataDir = _dir, MemoryBudgetBytes = 512UL << 20, Harts = 2, FastTimings = true },
            HttpPort = 0,
        }, logging => logging.ClearProviders());
        await _app.StartAsync();
        _http = new HttpClient { BaseAddress = new Uri(NodeHost.HttpAddress(_app)), Timeout = TimeSpan.FromSeconds(60) };
    }

    private async Task<JsonElement[]> WaitForPvs(Func<JsonElement[], bool> condition)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            var hosts = await _http.GetFromJsonAsync<JsonElement[]>("/api/hosts");
            if (hosts is { Length: 1 } && hosts[0].TryGetProperty("pvs", out var pvs) && condition([.. pvs.EnumerateArray()]))
                return [.. pvs.EnumerateArray()];
            Assert.True(DateTime.UtcNow < deadline, $"the host never reported the expected PVs: {JsonSerializer.Serialize(hosts)}");
            await Task.Delay(200);
        }
    }

    [Fact]
    public async Task Hosts_report_their_pvs_with_vg_size_and_free_and_follow_changes()
    {
        string pv1 = Path.Combine(_dir, "pv1.img");
        var first = (await WaitForPvs(p => p.Length == 1)).Single();
        Assert.Equal((pv1, JsonValueKind.Null, _pv1Data, _pv1Data),
            (first.GetProperty("path").GetString(), first.GetProperty("vg").ValueKind, first.GetProperty("sizeBytes").GetInt64(), first.GetProperty("freeBytes").GetInt64()));

        // A second PV, a VG over both and an 8 MiB LV, made while the node runs.
        string pv2 = Path.Combine(_dir, "pv2.img");
        using (var pool = await StoragePool.OpenAsync(_dir))
        {
            await pool.CreatePvAsync(pv2, 64 * Mib, "solo");
            var vg = await pool.CreateVgAsync("vg0", [pv1, pv2], 4 * Mib);
            await vg.CreateLvAsync("disk", 8 * Mib, LvLayout.Linear);
        }
        var pvs = await WaitForPvs(p => p.Length == 2 && p.All(x => x.GetProperty("vg").ValueKind == JsonValueKind.String)
            && p.Sum(x => x.GetProperty("sizeBytes").GetInt64() - x.GetProperty("freeBytes").GetInt64()) > 0);
        Assert.All(pvs, p => Assert.Equal("vg0", p.GetProperty("vg").GetString()));
        Assert.Equal([pv1, pv2], pvs.Select(p => p.GetProperty("path").GetString()).Order());
        long size = pvs.Sum(p => p.GetProperty("sizeBytes").GetInt64());
        long free = pvs.Sum(p => p.GetProperty("freeBytes").GetInt64());
        Assert.Equal(8 * Mib, size - free);
        Assert.All(pvs, p => Assert.Equal(0, p.GetProperty("sizeBytes").GetInt64() % (4 * Mib)));

        var output = new StringWriter();
        Assert.Equal(0, TernApp.Invoke(["host", "list", "--api", _http.BaseAddress!.ToString()], output, new StringWriter()));
        Assert.Matches(@"PVS\s+PV SIZE\s+PV FREE\n", output.ToString());
        Assert.Matches($@"\nsolo\s.*\s2\s+{size / Mib}M\s+{free / Mib}M\n", output.ToString());
    }

    [Fact]
    public async Task A_listed_pv_that_cannot_be_read_is_left_out_and_the_others_still_reported()
    {
        await WaitForPvs(p => p.Length == 1);
        string pv3 = Path.Combine(_dir, "pv3.img");
        using (var pool = await StoragePool.OpenAsync(_dir))
            await pool.CreatePvAsync(pv3, 64 * Mib, "solo");
        // List a file that is not a PV beside the real ones, as a damaged disk would look.
        string bad = Path.Combine(_dir, "bad.img");
        await File.WriteAllBytesAsync(bad, new byte[8192]);
        var list = JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(_dir, "pvs.json"))).RootElement.GetProperty("pvs").EnumerateArray().Select(e => e.GetString()!).ToList();
        await File.WriteAllTextAsync(Path.Combine(_dir, "pvs.json"), JsonSerializer.Serialize(new { pvs = list.Append(bad) }));
        var pvs = await WaitForPvs(p => p.Any(x => x.GetProperty("path").GetString() == pv3));
        Assert.Equal([Path.Combine(_dir, "pv1.img"), pv3], pvs.Select(p => p.GetProperty("path").GetString()).Order());
    }

    public void Dispose() => _http.Dispose();

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
