// A node's settings: the precedence of binary-dir file < data-dir file < --config file <
// environment < command line, seeds as a JSON array or a comma list, one-line errors for bad
// values, and the table documented in docs/cluster.md.
using System.Collections;
using Tern.Cluster;

namespace Tern.Node.Tests;

public sealed class NodeConfigurationTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("tern-config-").FullName;

    private string BinDir => Directory.CreateDirectory(Path.Combine(_dir, "bin")).FullName;

    private NodeSettings Load(Dictionary<string, string>? flags = null, Hashtable? env = null) =>
        NodeConfiguration.Load(flags ?? [], env ?? [], BinDir);

    private string Write(string relative, string json)
    {
        string path = Path.Combine(_dir, relative);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, json);
        return path;
    }

    [Fact]
    public void Defaults_are_a_loopback_node_on_sqlite()
    {
        var s = Load();
        Assert.Equal(("node-1", "tern", "127.0.0.1", 4053, "127.0.0.1", 8080), (s.Cluster.NodeName, s.Cluster.SystemName, s.Cluster.Hostname, s.Cluster.Port, s.HttpHost, s.HttpPort));
        Assert.Equal((PersistenceKind.Sqlite, TimeSpan.FromSeconds(60), 2UL << 30), (s.Cluster.Persistence, s.Cluster.JoinTimeout, s.Cluster.MemoryBudgetBytes));
        Assert.Equal(Path.Combine("data", "node-1"), s.Cluster.DataDir);
        Assert.Null(s.Cluster.DownAfter);
        Assert.Empty(s.Cluster.Seeds);
        Assert.Null(s.ApiToken);
    }

    [Fact]
    public void Down_after_sets_the_split_brain_resolvers_stable_after()
    {
        var s = Load(env: new Hashtable { ["TERN_DOWN_AFTER"] = "3s" });
        Assert.Equal(TimeSpan.FromSeconds(3), s.Cluster.DownAfter);
        var hocon = Tern.Cluster.Hosting.TernHocon.Build(s.Cluster with { FastTimings = true });
        Assert.Equal(TimeSpan.FromSeconds(3), hocon.GetTimeSpan("akka.cluster.split-brain-resolver.stable-after"));
        Assert.Equal(TimeSpan.FromSeconds(5), Tern.Cluster.Hosting.TernHocon.Build(new Tern.Cluster.TernNodeOptions { FastTimings = true }).GetTimeSpan("akka.cluster.split-brain-resolver.stable-after"));
    }

    [Fact]
    public void Each_source_overrides_the_ones_below_it()
    {
        string data = Path.Combine(_dir, "data");
        Write("bin/appsettings.json", $$$"""{"Tern": {"Port": 1001, "HttpPort": 2001, "Memory": "1G", "ApiToken": "bin", "DataDir": "{{{data.Replace("\\", "\\\\", StringComparison.Ordinal)}}}", "ClusterName": "bin"}}""");
        Write("data/appsettings.json", """{"Tern": {"Port": 1002, "HttpPort": 2002, "Memory": "2G", "ApiToken": "data"}}""");
        string config = Write("extra.json", """{"Tern": {"Port": 1003, "HttpPort": 2003, "Memory": "3G"}}""");
        var env = new Hashtable { ["TERN_PORT"] = "1004", ["TERN_HTTP_PORT"] = "2004", ["TERN_CONFIG"] = config };
        var s = Load(new() { ["Port"] = "1005" }, env);
        Assert.Equal(1005, s.Cluster.Port);           // command line
        Assert.Equal(2004, s.HttpPort);               // environment
        Assert.Equal(3UL << 30, s.Cluster.MemoryBudgetBytes); // --config file
        Assert.Equal("data", s.ApiToken);             // data-dir file
        Assert.Equal("bin", s.Cluster.SystemName);    // file beside the binary
        Assert.Equal(data, s.Cluster.DataDir);
    }

    [Fact]
    public void Seeds_come_from_a_json_array_or_a_comma_list_of_the_strongest_source()
    {
        string config = Write("seeds.json", """{"Tern": {"Seeds": ["10.0.0.1:4053", "akka.tcp://tern@10.0.0.2:4053"]}}""");
        Assert.Equal(["10.0.0.1:4053", "akka.tcp://tern@10.0.0.2:4053"], Load(new() { ["Config"] = config }).Cluster.Seeds);
        var env = new Hashtable { ["TERN_SEEDS"] = "a:1, b:2" };
        Assert.Equal(["a:1", "b:2"], Load(new() { ["Config"] = config }, env).Cluster.Seeds);
        Assert.Equal(["c:3", "d:4"], Load(new() { ["Config"] = config, ["Seeds"] = "c:3,d:4" }, env).Cluster.Seeds);
    }

    [Fact]
    public void Postgres_persistence_takes_the_npgsql_connection_string()
    {
        var env = new Hashtable { ["TERN_PERSISTENCE"] = "postgres", ["TERN_POSTGRES_CONNECTION"] = "Host=db;Database=tern;Username=u;Password=p" };
        var s = Load(env: env).Cluster;
        Assert.Equal((PersistenceKind.Postgres, "PostgreSQL", "Host=db;Database=tern;Username=u;Password=p"), (s.Persistence, s.JournalProvider, s.EffectiveJournalConnectionString));
    }

    [Fact]
    public void A_public_hostname_is_what_a_seedless_node_advertises()
    {
        var s = Load(new() { ["Hostname"] = "0.0.0.0", ["PublicHostname"] = "tern-0.tern.tern.svc.cluster.local" }).Cluster;
        Assert.Equal("akka.tcp://tern@tern-0.tern.tern.svc.cluster.local:4053", Assert.Single(s.SeedAddresses(4053)));
    }

    [Theory]
    [InlineData("TERN_PORT", "70000", "--port (or TERN_PORT) '70000' is not a port")]
    [InlineData("TERN_HTTP_PORT", "http", "--http-port (or TERN_HTTP_PORT) 'http' is not a port")]
    [InlineData("TERN_NODE_NAME", "a b", "--name (or TERN_NODE_NAME) 'a b' is not a host name")]
    [InlineData("TERN_CLUSTER_NAME", "x.y", "--cluster-name (or TERN_CLUSTER_NAME) 'x.y' is not a cluster name")]
    [InlineData("TERN_SEEDS", "10.0.0.1", "--seed (or TERN_SEEDS) '10.0.0.1' is not a seed")]
    [InlineData("TERN_SEEDS", "h:0", "--seed (or TERN_SEEDS) 'h:0' is not a seed")]
    [InlineData("TERN_JOIN_TIMEOUT", "soon", "--join-timeout (or TERN_JOIN_TIMEOUT) 'soon' is not a duration")]
    [InlineData("TERN_DOWN_AFTER", "0s", "--down-after (or TERN_DOWN_AFTER) '0s' is not a duration")]
    [InlineData("TERN_MEMORY", "lots", "--memory (or TERN_MEMORY) 'lots' is not a size")]
    [InlineData("TERN_PERSISTENCE", "mysql", "--persistence (or TERN_PERSISTENCE) 'mysql' is not sqlite or postgres")]
    [InlineData("TERN_PERSISTENCE", "postgres", "postgres persistence needs --postgres (or TERN_POSTGRES_CONNECTION)")]
    [InlineData("TERN_HOSTNAME", "no host!", "--hostname (or TERN_HOSTNAME) 'no host!' is not a host name")]
    [InlineData("TERN_CONFIG", "/nonexistent/tern.json", "--config /nonexistent/tern.json: no such file")]
    public void A_bad_value_is_one_line_naming_the_setting(string variable, string value, string expected)
    {
        var e = Assert.Throws<NodeConfigurationException>(() => Load(env: new Hashtable { [variable] = value }));
        Assert.StartsWith(expected, e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void A_malformed_postgres_connection_string_is_refused()
    {
        var env = new Hashtable { ["TERN_PERSISTENCE"] = "postgres", ["TERN_POSTGRES_CONNECTION"] = "Hots=db;Nonsense=1" };
        var e = Assert.Throws<NodeConfigurationException>(() => Load(env: env));
        Assert.StartsWith("--postgres (or TERN_POSTGRES_CONNECTION): not an Npgsql connection string", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_settings_file_with_an_unknown_key_or_bad_json_is_refused()
    {
        string typo = Write("typo.json", """{"Tern": {"Prot": 4053}}""");
        Assert.StartsWith("unknown setting 'Tern:Prot'", Assert.Throws<NodeConfigurationException>(() => Load(new() { ["Config"] = typo })).Message, StringComparison.Ordinal);
        string broken = Write("broken.json", """{"Tern": """);
        var e = Assert.Throws<NodeConfigurationException>(() => Load(new() { ["Config"] = broken }));
        Assert.Contains("broken.json", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Theory]
    [InlineData("500ms", 500)]
    [InlineData("30s", 30_000)]
    [InlineData("2m", 120_000)]
    [InlineData("1.5", 1_500)]
    public void Durations_take_units(string text, int milliseconds)
    {
        Assert.True(NodeConfiguration.TryParseDuration(text, out var d));
        Assert.Equal(TimeSpan.FromMilliseconds(milliseconds), d);
    }

    [Fact]
    public void The_table_is_consistent_and_documented_in_docs_cluster_md()
    {
        var all = NodeConfiguration.Settings.Append(NodeConfiguration.ConfigFile).ToList();
        Assert.Equal(all.Count, all.Select(s => s.Environment).Distinct().Count());
        Assert.Equal(all.Count, all.Select(s => s.Flag).Distinct().Count());
        Assert.All(all, s => Assert.StartsWith("TERN_", s.Environment, StringComparison.Ordinal));
        string doc = File.ReadAllText(Path.Combine(DeployFiles.RepoRoot, "docs", "cluster.md"));
        foreach (var s in all.Concat(NodeConfiguration.EnvironmentOnly))
        {
            Assert.Contains($"`{s.Environment}`", doc, StringComparison.Ordinal);
            if (s.Flag.Length > 0)
                Assert.Contains($"`{s.Flag}`", doc, StringComparison.Ordinal);
        }
        Assert.Contains(NodeHealth.LivePath, doc, StringComparison.Ordinal);
        Assert.Contains(NodeHealth.ReadyPath, doc, StringComparison.Ordinal);
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);
}
