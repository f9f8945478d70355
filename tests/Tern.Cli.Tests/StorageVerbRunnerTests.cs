// The storage verbs as a StorageVerbRunner (what a cluster's coordinator runs on the cluster's
// pool) print exactly what the CLI prints on one node, refuse what needs this machine's files,
// and leave the pool open; `lv list` names the missing leg of a degraded mirror; and the CLI
// sends its verbs to a cluster when told to (--cluster) or when TERN_HOME records one.
using System.Text.Json;
using Tern.Cli.Commands;
using Tern.Storage;
using Tern.Tests.Shared;

namespace Tern.Cli.Tests;

[Collection(TernHomeCollection.Name)]
public sealed class StorageVerbRunnerTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("tern-storage-runner-").FullName;
    private readonly string? _savedHome = Environment.GetEnvironmentVariable("TERN_HOME");

    public StorageVerbRunnerTests() => Environment.SetEnvironmentVariable("TERN_HOME", Home);

    private string Home => Path.Combine(_dir, "home");

    public void Dispose()
    {
        Environment.SetEnvironmentVariable("TERN_HOME", _savedHome);
        Directory.Delete(_dir, recursive: true);
    }

    private string P(string name) => Path.Combine(_dir, name);

    private static (int Code, string Out, string Err) Tern(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int code = TernApp.Invoke(args, output, error);
        return (code, output.ToString(), error.ToString());
    }

    private static string Ok(params string[] args)
    {
        var (code, output, err) = Tern(args);
        Assert.True(code == 0, $"tern {string.Join(' ', args)} exited {code}: {err}");
        return output;
    }

    private static async Task<(int Code, string Out, string Err)> Run(StoragePool pool, params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int code = await StorageCommands.Runner(pool, args, output, error, CancellationToken.None);
        return (code, output.ToString(), error.ToString());
    }

    // Three PVs on three hosts, a VG over them and a 2-way mirror.
    private void MirroredLv()
    {
        for (int i = 0; i < 3; i++)
            Ok("pv", "create", P($"pv{i}.img"), "--size", "64M", "--host", $"node-{i + 1}");
        Ok("vg", "create", "vg0", P("pv0.img"), P("pv1.img"), P("pv2.img"));
        Ok("lv", "create", "vg0/m1", "--size", "16M", "--type", "mirror");
        Ok("lv", "create", "vg0/l1", "--size", "8M");
    }

    [Fact]
    public async Task The_runner_prints_what_the_cli_prints_for_every_listing_and_keeps_the_pool_open()
    {
        MirroredLv();
        string[][] verbs = [["pv", "list"], ["pv", "list", "--json"], ["vg", "list"], ["vg", "list", "--json"], ["lv", "list"], ["lv", "list", "--json"]];
        var expected = verbs.Select(v => Tern(v)).ToList();
        using var pool = await StoragePool.OpenAsync(Home);
        for (int i = 0; i < verbs.Length; i++)
        {
            var got = await Run(pool, verbs[i]); // the same pool for every verb, as the coordinator keeps it
            Assert.Equal(expected[i], got);
            Assert.Equal(0, got.Code);
        }
        // A change through the runner is seen by the next verb on the same pool and by the CLI.
        var created = await Run(pool, "lv", "create", "vg0/l2", "--size", "4M");
        Assert.Equal((0, "Logical volume \"vg0/l2\" created (4.00m, linear).\n", ""), created);
        Assert.Contains("\"l2\"", (await Run(pool, "lv", "list", "--json")).Out, StringComparison.Ordinal);
        pool.Dispose();
        Assert.Contains("\"l2\"", Ok("lv", "list", "--json"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_runner_refuses_copies_to_or_from_files_and_changes_nothing()
    {
        MirroredLv();
        File.WriteAllBytes(P("image.raw"), new byte[1 << 20]);
        using var pool = await StoragePool.OpenAsync(Home);
        string before = (await Run(pool, "lv", "list", "--json")).Out;

        var copyIn = await Run(pool, "lv", "copy", P("image.raw"), "lv:vg0/l1");
        Assert.Equal(StorageCommands.UsageError, copyIn.Code);
        Assert.Equal("tern lv copy: a copy between a file and a logical volume runs on one node only: on a cluster, both sides must be logical volumes (lv:VG/LV)\n", copyIn.Err);
        var copyOut = await Run(pool, "lv", "copy", "lv:vg0/l1", P("out.raw"));
        Assert.Equal(StorageCommands.UsageError, copyOut.Code);
        Assert.False(File.Exists(P("out.raw")));

        // Options only the CLI has are not verbs' options on the cluster.
        var cluster = await Run(pool, "lv", "list", "--cluster", "http://127.0.0.1:1");
        Assert.NotEqual(0, cluster.Code);
        Assert.Contains("--cluster", cluster.Err, StringComparison.Ordinal);

        // A client's @PATH is an argument, not a response file read on the machine that runs the verb.
        File.WriteAllText(P("args.rsp"), "vg0/l1");
        var rsp = await Run(pool, "lv", "remove", "@" + P("args.rsp"));
        Assert.Equal(StorageCommands.UsageError, rsp.Code);
        Assert.Contains("is not a logical volume name", rsp.Err, StringComparison.Ordinal);

        Assert.Equal(before, (await Run(pool, "lv", "list", "--json")).Out);

        // Between two logical volumes a copy runs on the cluster.
        var copy = await Run(pool, "lv", "copy", "lv:vg0/l1", "lv:vg0/m1");
        Assert.Equal(0, copy.Code);
        Assert.Contains("bytes (8.00m) copied", copy.Out, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_runner_creates_a_pv_for_the_named_host()
    {
        using var pool = await StoragePool.OpenAsync(Home);
        var created = await Run(pool, "pv", "create", P("pv5.img"), "--size", "64M", "--host", "node-2");
        Assert.Equal(0, created.Code);
        using var doc = JsonDocument.Parse((await Run(pool, "pv", "list", "--json")).Out);
        var row = doc.RootElement.GetProperty("pvs").EnumerateArray().Single();
        Assert.Equal((P("pv5.img"), "node-2"), (row.GetProperty("pv").GetString(), row.GetProperty("host").GetString()));
    }

    [Fact]
    public void Lv_list_marks_a_mirror_whose_leg_is_missing_and_names_the_leg_and_its_host()
    {
        MirroredLv();
        using (var healthy = JsonDocument.Parse(Ok("lv", "list", "--json")))
        {
            var m1 = healthy.RootElement.GetProperty("lvs").EnumerateArray().Single(l => l.GetProperty("lv").GetString() == "m1");
            Assert.Equal("mwi--", m1.GetProperty("attr").GetString());
            Assert.Equal(JsonValueKind.Null, m1.GetProperty("degraded").ValueKind);
        }
        Assert.DoesNotContain("Degraded", Ok("lv", "list"), StringComparison.Ordinal);

        // Lose the file of the mirror's second leg.
        string[] legs;
        using (var doc = JsonDocument.Parse(Ok("lv", "list", "--json")))
            legs = [.. doc.RootElement.GetProperty("lvs").EnumerateArray().Single(l => l.GetProperty("lv").GetString() == "m1").GetProperty("devices").EnumerateArray().Select(d => d.GetString()!)];
        Assert.Equal(2, legs.Length);
        string lost = legs[1];
        string lostHost = $"node-{int.Parse(Path.GetFileNameWithoutExtension(lost)[2..], System.Globalization.CultureInfo.InvariantCulture) + 1}";
        File.Delete(lost);

        var (code, table, err) = Tern("lv", "list");
        Assert.Equal(0, code);
        Assert.Contains(lost, err, StringComparison.Ordinal); // the pool's warning about the missing file
        string row = table.Split('\n').Single(l => l.TrimStart().StartsWith("m1 ", StringComparison.Ordinal));
        Assert.Contains("mwi-p", row, StringComparison.Ordinal);
        Assert.Contains("Degraded", table.Split('\n')[0], StringComparison.Ordinal);
        Assert.EndsWith($"{lostHost}:{lost} (missing)", row.TrimEnd(), StringComparison.Ordinal);

        using var after = JsonDocument.Parse(Tern("lv", "list", "--json").Out);
        var lvs = after.RootElement.GetProperty("lvs").EnumerateArray().ToDictionary(l => l.GetProperty("lv").GetString()!);
        var degraded = lvs["m1"].GetProperty("degraded").EnumerateArray().Single();
        Assert.Equal((lost, lostHost, "missing"), (degraded.GetProperty("pv").GetString(), degraded.GetProperty("host").GetString(), degraded.GetProperty("state").GetString()));
        Assert.Equal("mwi-p", lvs["m1"].GetProperty("attr").GetString());
        Assert.Equal(0, lvs["m1"].GetProperty("syncPercent").GetDouble());
        // A volume with no leg on the lost PV is not degraded.
        bool l1OnLost = lvs["l1"].GetProperty("devices").EnumerateArray().Any(d => d.GetString() == lost);
        Assert.Equal(l1OnLost, lvs["l1"].GetProperty("degraded").ValueKind == JsonValueKind.Array);
    }

    [Fact]
    public void With_a_cluster_the_verbs_go_to_its_api_and_never_touch_local_files()
    {
        MirroredLv();
        // Nothing listens on the recorded node's API: the verb fails with the cluster's address,
        // instead of quietly running on this machine's pool.
        string dead = $"http://127.0.0.1:{FreePort()}";
        new LocalCluster("tok", "j", DateTimeOffset.UtcNow, [new LocalNode("node-1", 999_999, 1, 2, dead, P("n1"), P("n1.log"))]).Write(Home);
        var (code, output, err) = Tern("lv", "list");
        Assert.Equal((StorageCommands.IoError, ""), (code, output));
        Assert.StartsWith($"tern lv list: cannot reach the cluster at {dead}", err, StringComparison.Ordinal);

        var remove = Tern("lv", "remove", "vg0/l1");
        Assert.Equal(StorageCommands.IoError, remove.Code);
        LocalCluster.Remove(Home);
        Assert.Contains("\"l1\"", Ok("lv", "list", "--json"), StringComparison.Ordinal); // still there

        var explicitUrl = Tern("pv", "list", "--cluster", dead);
        Assert.Equal(StorageCommands.IoError, explicitUrl.Code);
        Assert.StartsWith($"tern pv list: cannot reach the cluster at {dead}", explicitUrl.Err, StringComparison.Ordinal);

        var badUrl = Tern("vg", "list", "--cluster", "node-1:8080");
        Assert.Equal((StorageCommands.UsageError, "", "tern vg list: --cluster node-1:8080: expected a node's API address such as http://127.0.0.1:8080\n"), badUrl);
    }

    [Fact]
    public void A_damaged_cluster_record_is_reported_instead_of_acting_on_local_files()
    {
        MirroredLv();
        File.WriteAllText(LocalCluster.RecordPath(Home), "{ not json");
        var (code, output, err) = Tern("lv", "remove", "vg0/l1");
        Assert.Equal((StorageCommands.UsageError, ""), (code, output));
        Assert.StartsWith("tern lv remove: ", err, StringComparison.Ordinal);
        Assert.Contains("is damaged", err, StringComparison.Ordinal);
        File.Delete(LocalCluster.RecordPath(Home));
        Assert.Contains("\"l1\"", Ok("lv", "list", "--json"), StringComparison.Ordinal);
    }

    private static int FreePort()
    {
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        return ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
    }
}
