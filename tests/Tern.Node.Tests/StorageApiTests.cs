// `tern pv|vg|lv|pvmove` on a cluster: POST /api/storage/verbs on a node (the storage
// coordinator runs the verb on the cluster's pool) and the CLI that sends its verbs there, with
// --cluster URL in-process and through TERN_HOME's cluster record as a real `tern` process.
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Logging;
using Tern.Cli;
using Tern.Cli.Commands;
using Tern.Cluster;
using Tern.Storage;

namespace Tern.Node.Tests;

[Collection("nodes")]
public sealed class StorageApiTests : IAsyncLifetime, IDisposable
{
    private const string Token = "s3cret";
    private readonly string _dir = Directory.CreateTempSubdirectory("tern-storage-api-").FullName;
    private WebApplication? _app;
    private HttpClient _http = null!;
    private string _api = "";

    private string Data => Path.Combine(_dir, "data");

    public async Task InitializeAsync()
    {
        _app = NodeHost.Build(new NodeSettings
        {
            Cluster = new TernNodeOptions
            {
                NodeName = "solo",
                Port = 0,
                DataDir = Data,
                MemoryBudgetBytes = 512UL << 20,
                Harts = 2,
                FastTimings = true,
                StorageVerbs = StorageCommands.Runner,
            },
            HttpPort = 0,
            ApiToken = Token,
        }, logging => logging.ClearProviders());
        await _app.StartAsync();
        _api = NodeHost.HttpAddress(_app);
        _http = new HttpClient { BaseAddress = new Uri(_api), Timeout = TimeSpan.FromSeconds(60) };
        // The coordinator is a singleton: it answers once the node is Up and it has found the extent servers.
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            using var answer = await _http.PostAsJsonAsync("/api/storage/verbs", new { args = new[] { "vg", "list" } });
            if (answer.StatusCode == HttpStatusCode.OK)
                break;
            Assert.True(DateTime.UtcNow < deadline, $"the storage coordinator never answered: {(int)answer.StatusCode} {await answer.Content.ReadAsStringAsync()}");
            await Task.Delay(200);
        }
    }

    public async Task DisposeAsync()
    {
        _http.Dispose();
        if (_app is not null)
            await _app.DisposeAsync();
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string P(string name) => Path.Combine(_dir, name);

    // The CLI in-process against the node, as `tern ARGS --cluster URL [--token T]`.
    private Task<(int Code, string Out, string Err)> Tern(bool token, params string[] args) => Task.Run(() =>
    {
        var output = new StringWriter();
        var error = new StringWriter();
        string[] extra = token ? ["--cluster", _api, "--token", Token] : ["--cluster", _api];
        int code = TernApp.Invoke([.. args, .. extra], output, error);
        return (code, output.ToString(), error.ToString());
    });

    private async Task<string> Ok(params string[] args)
    {
        var (code, output, err) = await Tern(true, args);
        Assert.True(code == 0, $"tern {string.Join(' ', args)} exited {code}: {err}");
        return output;
    }

    private async Task<(HttpStatusCode Status, JsonElement Body)> Post(object body, bool token)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/storage/verbs") { Content = JsonContent.Create(body) };
        if (token)
            request.Headers.Authorization = new("Bearer", Token);
        using var answer = await _http.SendAsync(request);
        return (answer.StatusCode, await answer.Content.ReadFromJsonAsync<JsonElement>());
    }

    [Fact]
    public async Task Verbs_sent_to_the_cluster_change_its_pool_and_print_what_one_node_prints()
    {
        for (int i = 0; i < 3; i++)
        {
            string created = await Ok("pv", "create", P($"pv{i}.img"), "--size", "64M", "--host", "solo");
            Assert.StartsWith($"Physical volume \"solo:{P($"pv{i}.img")}\" successfully created", created, StringComparison.Ordinal);
        }
        Assert.StartsWith("Volume group \"vg0\" successfully created (3 PVs", await Ok("vg", "create", "vg0", P("pv0.img"), P("pv1.img"), P("pv2.img")), StringComparison.Ordinal);
        Assert.Equal("Logical volume \"vg0/d1\" created (16.00m, mirror).\n", await Ok("lv", "create", "vg0/d1", "--size", "16M", "--type", "mirror"));
        Assert.Equal("Logical volume \"vg0/l1\" created (8.00m, linear).\n", await Ok("lv", "create", "vg0/l1", "--size", "8M"));

        // A refused verb: the cluster's exit code and its one line, nothing printed on stdout.
        var refused = await Tern(true, "lv", "create", "vg9/x", "--size", "8M");
        Assert.Equal(StorageCommands.UsageError, refused.Code);
        Assert.Equal("", refused.Out);
        Assert.StartsWith("tern lv create: ", refused.Err, StringComparison.Ordinal);
        Assert.Contains("vg9", refused.Err, StringComparison.Ordinal);
        // A copy of a file of the client's machine goes through the API, with the same checks.
        var copy = await Tern(true, "lv", "copy", P("pv0.img"), "lv:vg0/l1");
        Assert.Equal((StorageCommands.UsageError, ""), (copy.Code, copy.Out));
        Assert.Contains("more than lv:vg0/l1 holds", copy.Err, StringComparison.Ordinal);

        string[][] listings = [["pv", "list", "--json"], ["vg", "list", "--json"], ["lv", "list"], ["lv", "list", "--json"]];
        var onCluster = new List<(int, string, string)>();
        foreach (var l in listings)
            onCluster.Add(await Tern(false, l)); // listings need no token
        using (var doc = JsonDocument.Parse(onCluster[3].Item2))
        {
            var lvs = doc.RootElement.GetProperty("lvs").EnumerateArray().ToDictionary(l => l.GetProperty("lv").GetString()!);
            Assert.Equal(("mwi--", 2), (lvs["d1"].GetProperty("attr").GetString(), lvs["d1"].GetProperty("areas").GetInt32()));
            Assert.Equal(8L << 20, lvs["l1"].GetProperty("size").GetInt64());
        }

        // The same verbs on this node's files, once the node is gone, print exactly the same,
        // except that a cluster names a PV HOST:PATH (the same path may exist on several nodes).
        onCluster[0] = (onCluster[0].Item1, onCluster[0].Item2.Replace("\"pv\": \"solo:/", "\"pv\": \"/", StringComparison.Ordinal), onCluster[0].Item3);
        await DisposeAsync();
        _app = null;
        using var pool = await StoragePool.OpenAsync(Data);
        for (int i = 0; i < listings.Length; i++)
        {
            var output = new StringWriter();
            var error = new StringWriter();
            int code = await StorageCommands.RunVerbAsync(pool, listings[i], output, error, CancellationToken.None);
            Assert.Equal((code, output.ToString(), error.ToString()), onCluster[i]);
        }
    }

    [Fact]
    public async Task Changes_need_the_token_listings_do_not_and_bad_bodies_are_refused()
    {
        var list = await Post(new { args = new[] { "lv", "list", "--json" } }, token: false);
        Assert.Equal(HttpStatusCode.OK, list.Status);
        Assert.Equal((0, "{\n  \"lvs\": []\n}\n", ""), (list.Body.GetProperty("exitCode").GetInt32(), list.Body.GetProperty("stdout").GetString(), list.Body.GetProperty("stderr").GetString()));

        var create = await Post(new { args = new[] { "pv", "create", P("pvx.img"), "--size", "64M", "--host", "solo" } }, token: false);
        Assert.Equal(HttpStatusCode.Unauthorized, create.Status);
        Assert.Equal("a valid API token is required (Authorization: Bearer TOKEN)", create.Body.GetProperty("error").GetString());
        Assert.False(File.Exists(P("pvx.img")));
        var cli = await Tern(false, "pv", "create", P("pvx.img"), "--size", "64M", "--host", "solo");
        Assert.Equal((StorageCommands.UsageError, "", "tern pv create: a valid API token is required (Authorization: Bearer TOKEN)\n"), cli);
        Assert.False(File.Exists(P("pvx.img")));

        foreach (object bad in new object[] { new { args = Array.Empty<string>() }, new { verbs = new[] { "lv", "list" } }, new { args = new[] { "vm", "list" } } })
        {
            var answer = await Post(bad, token: true);
            Assert.Equal(HttpStatusCode.BadRequest, answer.Status);
            Assert.Equal("Invalid", answer.Body.GetProperty("kind").GetString());
        }
        var notJson = await _http.PostAsync("/api/storage/verbs", new StringContent("lv list", System.Text.Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.BadRequest, notJson.StatusCode);
        Assert.Equal("'vm' is not a storage verb: expected pv, vg, lv or pvmove",
            (await Post(new { args = new[] { "vm", "list" } }, token: true)).Body.GetProperty("error").GetString());
    }

    [Fact]
    public async Task A_real_tern_finds_the_cluster_through_tern_home_and_runs_its_verbs_there()
    {
        // TERN_HOME records the cluster (as `tern cluster up` does) and holds no PVs of its own.
        string home = P("home");
        new LocalCluster(Token, "journal", DateTimeOffset.UtcNow, [new LocalNode("solo", Environment.ProcessId, 0, 0, _api, Data, P("solo.log"))]).Write(home);
        var created = await TernCli.RunAsync(home, TimeSpan.FromSeconds(60), "pv", "create", P("pvr.img"), "--size", "64M", "--host", "solo");
        Assert.True(created.Code == 0, created.Error);
        Assert.StartsWith($"Physical volume \"solo:{P("pvr.img")}\" successfully created", created.Output, StringComparison.Ordinal);

        var listed = await TernCli.RunAsync(home, TimeSpan.FromSeconds(60), "pv", "list", "--json");
        Assert.True(listed.Code == 0, listed.Error);
        using var doc = JsonDocument.Parse(listed.Output);
        var pv = doc.RootElement.GetProperty("pvs").EnumerateArray().Single(p => p.GetProperty("pv").GetString() == "solo:" + P("pvr.img"));
        Assert.Equal("solo", pv.GetProperty("host").GetString());
        Assert.False(File.Exists(Path.Combine(home, "pvs.json"))); // nothing was listed in TERN_HOME itself

        var refused = await TernCli.RunAsync(home, TimeSpan.FromSeconds(60), "vg", "remove", "nope");
        Assert.Equal(StorageCommands.UsageError, refused.Code);
        Assert.StartsWith("tern vg remove: ", refused.Error, StringComparison.Ordinal);
    }
}
