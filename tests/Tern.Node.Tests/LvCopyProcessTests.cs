// `tern lv copy FILE lv:VG/LV` and back against a cluster of two `tern node start` processes:
// the file is on the client's machine, the LV a mirror with one leg on each node, and the data
// goes through a node's API (PUT/GET /api/storage/lvs/{vg}/{lv}/data) that is not the storage
// coordinator's. The CLI is the real `tern` process; the bytes come back equal, offsets work, and
// refusals are one line that changes nothing.
using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json;

namespace Tern.Node.Tests;

[Collection("nodes")]
public sealed class LvCopyProcessTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("tern-lvcopy-").FullName;
    private readonly List<NodeProcess> _nodes = [];
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(60) };

    public void Dispose()
    {
        for (int i = _nodes.Count - 1; i >= 0; i--)
            _nodes[i].Dispose();
        _http.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    private string Home => Path.Combine(_dir, "home");

    private string Logs() => string.Join("\n---\n", _nodes.Select((n, i) => $"node-{i + 1}:\n{n.Log}"));

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
        await NodeProcess.WaitForMembersUpAsync(_http, apis, count, Logs);
        return apis;
    }

    private async Task<TernCli.Result> TernAsync(string api, params string[] args) =>
        await TernCli.RunAsync(Home, TimeSpan.FromSeconds(120), [.. args, "--cluster", api]);

    private async Task<string> OkAsync(string api, params string[] args)
    {
        var r = await TernAsync(api, args);
        Assert.True(r.Code == 0, $"tern {string.Join(' ', args)} exited {r.Code}: {r.Error}\n{Logs()}");
        return r.Output;
    }

    [Fact]
    public async Task A_file_imported_into_a_cluster_lv_through_a_nodes_api_exports_back_byte_for_byte()
    {
        Directory.CreateDirectory(Home);
        var apis = await StartClusterAsync(2);
        string api = apis[1]; // node-2: not the coordinator's node (node-1 is the oldest)
        // The coordinator answers once it has found both extent servers.
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while ((await TernAsync(api, "pv", "list")).Code != 0)
        {
            Assert.True(DateTime.UtcNow < deadline, "the storage coordinator never answered:\n" + Logs());
            await Task.Delay(500);
        }
        await OkAsync(api, "pv", "create", "pv1.img", "--size", "64M", "--host", "node-1");
        await OkAsync(api, "pv", "create", "pv2.img", "--size", "64M", "--host", "node-2");
        await OkAsync(api, "vg", "create", "vg0", "pv1.img", "pv2.img");
        await OkAsync(api, "lv", "create", "vg0/d1", "--size", "12M", "--type", "mirror");

        // An image of 10 MiB and a bit (not a whole number of chunks or sectors).
        int length = (10 << 20) + 12345;
        var image = new byte[length];
        new Random(5).NextBytes(image);
        string imagePath = Path.Combine(_dir, "disk.img");
        await File.WriteAllBytesAsync(imagePath, image);

        string imported = await OkAsync(api, "lv", "copy", imagePath, "lv:vg0/d1");
        Assert.StartsWith($"{length} bytes (", imported, StringComparison.Ordinal);
        Assert.Contains(" copied, ", imported, StringComparison.Ordinal);
        string exportPath = Path.Combine(_dir, "back.img");
        await OkAsync(api, "lv", "copy", "lv:vg0/d1", exportPath, "--count", length.ToString(CultureInfo.InvariantCulture));
        var exported = await File.ReadAllBytesAsync(exportPath);
        Assert.True(image.AsSpan().SequenceEqual(exported), "the exported bytes differ from the imported image");

        // Offsets as dd's: 100 KiB of the image from byte 4096 written at 1 MiB + 512, read back from there.
        await OkAsync(api, "lv", "copy", imagePath, "lv:vg0/d1", "--skip", "4096", "--seek", "1049088", "--count", "100K");
        string piece = Path.Combine(_dir, "piece.img");
        await OkAsync(api, "lv", "copy", "lv:vg0/d1", piece, "--skip", "1049088", "--count", "100K");
        var pieceBytes = await File.ReadAllBytesAsync(piece);
        Assert.True(image.AsSpan(4096, 100 << 10).SequenceEqual(pieceBytes), "the copy with offsets differs");
        // The whole LV through the other node's API: what node-2 wrote is what node-1 serves.
        string whole = Path.Combine(_dir, "whole.img");
        await OkAsync(apis[0], "lv", "copy", "lv:vg0/d1", whole);
        var all = await File.ReadAllBytesAsync(whole);
        Assert.Equal(12 << 20, all.Length);
        Assert.True(all.AsSpan(0, 1049088).SequenceEqual(image.AsSpan(0, 1049088)) && all.AsSpan(1049088, 100 << 10).SequenceEqual(image.AsSpan(4096, 100 << 10)),
            "node-1 serves other bytes than node-2 wrote");

        // Refusals: one line, exit 2, and the LV unchanged.
        var tooBig = Path.Combine(_dir, "big.img");
        await File.WriteAllBytesAsync(tooBig, new byte[13 << 20]);
        var refused = await TernAsync(api, "lv", "copy", tooBig, "lv:vg0/d1");
        Assert.Equal((2, ""), (refused.Code, refused.Output));
        Assert.StartsWith("tern lv copy: ", refused.Error, StringComparison.Ordinal);
        Assert.Contains("more than lv:vg0/d1 holds", refused.Error, StringComparison.Ordinal);
        Assert.Single(refused.Error.TrimEnd('\n').Split('\n'));
        var missing = await TernAsync(api, "lv", "copy", imagePath, "lv:vg0/nope");
        Assert.Equal(2, missing.Code);
        Assert.Contains("not found", missing.Error, StringComparison.Ordinal);
        await OkAsync(api, "lv", "copy", "lv:vg0/d1", exportPath, "--count", length.ToString(CultureInfo.InvariantCulture));
        var after = await File.ReadAllBytesAsync(exportPath);
        Assert.True(image.AsSpan(0, 1049088).SequenceEqual(after.AsSpan(0, 1049088)), "a refused copy changed the LV");

        // The data routes need the token like any change (these nodes run without one: reachable).
        using var size = await _http.GetAsync($"{api}/api/storage/lvs/vg0/d1/data?offset=0&length=0");
        Assert.Equal((12L << 20).ToString(CultureInfo.InvariantCulture), size.Headers.GetValues("X-Tern-Lv-Size").Single());
        using var outside = await _http.GetAsync($"{api}/api/storage/lvs/vg0/d1/data?offset={12 << 20}&length=1");
        Assert.Equal(System.Net.HttpStatusCode.BadRequest, outside.StatusCode);
        Assert.Contains("outside vg0/d1", (await outside.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("error").GetString(), StringComparison.Ordinal);
    }
}
