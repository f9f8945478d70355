// Real `tern node` processes that must not start or must give up: an invalid setting (exit 2,
// one line), a PostgreSQL that does not answer, a seed with nothing listening or a seed of
// another cluster (exit 1 after the join timeout, the running cluster unchanged), and
// `tern node probe`, the container health check.
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;

namespace Tern.Node.Tests;

[Collection("nodes")]
public sealed class NodeStartupTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("tern-start-").FullName;
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(30) };

    private static string S(int n) => n.ToString(System.Globalization.CultureInfo.InvariantCulture);

    private static IEnumerable<string> ErrorLines(NodeProcess node) =>
        node.Log.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Where(l => l.StartsWith("tern node", StringComparison.Ordinal));

    [Fact]
    public async Task An_invalid_environment_value_exits_with_code_2_and_one_line()
    {
        using var node = NodeProcess.Start(new Dictionary<string, string> { ["TERN_HTTP_PORT"] = "eighty" }, "--data-dir", Path.Combine(_dir, "n"));
        Assert.Equal(2, await node.WaitForExitAsync());
        Assert.Equal("tern node start: --http-port (or TERN_HTTP_PORT) 'eighty' is not a port (0-65535)", Assert.Single(ErrorLines(node)));
        Assert.False(Directory.Exists(Path.Combine(_dir, "n")), "a refused start created the data dir");
    }

    [Fact]
    public async Task A_seed_with_nothing_listening_ends_the_node_after_the_join_timeout()
    {
        int nobody = NodeProcess.FreePort();
        using var node = NodeProcess.Start("--name", "lost", "--data-dir", Path.Combine(_dir, "lost"), "--port", "0", "--http-port", "0",
            "--seed", $"127.0.0.1:{nobody}", "--join-timeout", "3s");
        Assert.Equal(1, await node.WaitForExitAsync());
        Assert.Contains($"tern node start: did not join cluster 'tern' within 3 s through seeds akka.tcp://tern@127.0.0.1:{nobody}: no seed answered", node.Log);
    }

    [Fact]
    public async Task A_node_whose_postgres_does_not_answer_exits_with_the_reason()
    {
        int nobody = NodeProcess.FreePort();
        using var node = NodeProcess.Start(new Dictionary<string, string>
        {
            ["TERN_PERSISTENCE"] = "postgres",
            ["TERN_POSTGRES_CONNECTION"] = $"Host=127.0.0.1;Port={nobody};Database=tern;Username=tern;Password=x",
        }, "--data-dir", Path.Combine(_dir, "pg"), "--port", "0", "--http-port", "0", "--join-timeout", "2s");
        Assert.Equal(1, await node.WaitForExitAsync());
        Assert.StartsWith($"tern node start: cannot use PostgreSQL at 127.0.0.1:{nobody}/tern: ", Assert.Single(ErrorLines(node)), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_seed_of_another_cluster_ends_the_node_and_leaves_that_cluster_unchanged()
    {
        int port = NodeProcess.FreePort();
        using var alpha = NodeProcess.Start("--name", "alpha-1", "--cluster-name", "alpha", "--data-dir", Path.Combine(_dir, "alpha"), "--port", S(port), "--http-port", "0");
        string api = await alpha.WaitForApiAsync();
        await WaitReadyAsync(api);
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while ((await _http.GetFromJsonAsync<JsonElement[]>(api + "/api/hosts"))!.Length != 1)
        {
            Assert.True(DateTime.UtcNow < deadline, "the alpha node never reported its host");
            await Task.Delay(200);
        }

        using var stranger = NodeProcess.Start("--name", "stranger", "--data-dir", Path.Combine(_dir, "stranger"), "--port", "0", "--http-port", "0",
            "--seed", $"127.0.0.1:{port}", "--join-timeout", "4s");
        Assert.Equal(1, await stranger.WaitForExitAsync());
        Assert.Contains($"tern node start: did not join cluster 'tern' within 4 s through seeds akka.tcp://tern@127.0.0.1:{port}", stranger.Log);

        Assert.False(alpha.HasExited);
        var after = await _http.GetFromJsonAsync<JsonElement[]>(api + "/api/hosts");
        Assert.Equal(["alpha-1"], after!.Select(h => h.GetProperty("name").GetString()));
        Assert.Equal(HttpStatusCode.OK, (await _http.GetAsync(api + NodeHealth.ReadyPath)).StatusCode);
    }

    [Fact]
    public async Task SIGTERM_makes_a_node_leave_the_cluster_within_the_kubernetes_grace_period()
    {
        string grace = DeployFiles.Yaml(DeployFiles.PathOf("k8s", "tern.yaml")).Single(d => (string?)d["kind"] == "StatefulSet")
            .Map("spec").Map("template").Map("spec").Str("terminationGracePeriodSeconds");
        int port = NodeProcess.FreePort();
        using var first = NodeProcess.Start("--name", "stay", "--data-dir", Path.Combine(_dir, "stay"), "--port", S(port), "--http-port", "0");
        string api = await first.WaitForApiAsync();
        using var second = NodeProcess.Start("--name", "leave", "--data-dir", Path.Combine(_dir, "leave"), "--port", "0", "--http-port", "0", "--seed", $"127.0.0.1:{port}");
        await second.WaitForApiAsync();
        await WaitHostsAsync(api, 2);

        var clock = System.Diagnostics.Stopwatch.StartNew();
        using (var kill = System.Diagnostics.Process.Start("kill", ["-TERM", S(second.Id)]))
            await kill.WaitForExitAsync();
        Assert.Equal(0, await second.WaitForExitAsync());
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(int.Parse(grace, System.Globalization.CultureInfo.InvariantCulture)),
            $"leaving took {clock.Elapsed.TotalSeconds:0.0} s, more than the {grace} s Kubernetes gives a pod");
        await WaitHostsAsync(api, 1);
        Assert.DoesNotContain("UNREACHABLE", first.Log, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, (await _http.GetAsync(api + NodeHealth.ReadyPath)).StatusCode);
    }

    private async Task WaitHostsAsync(string api, int count)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while ((await _http.GetFromJsonAsync<JsonElement[]>(api + "/api/hosts"))!.Length != count)
        {
            Assert.True(DateTime.UtcNow < deadline, $"{api} never listed {count} hosts");
            await Task.Delay(200);
        }
    }

    [Fact]
    public async Task Tern_node_probe_answers_0_for_a_live_node_and_1_when_nothing_listens()
    {
        int httpPort = NodeProcess.FreePort();
        var env = new Dictionary<string, string> { ["TERN_HTTP_PORT"] = S(httpPort), ["TERN_HTTP_HOST"] = "0.0.0.0" };
        using (var none = NodeProcess.StartTern(env, "node", "probe"))
        {
            Assert.Equal(1, await none.WaitForExitAsync());
            Assert.Contains($"tern node probe: http://127.0.0.1:{httpPort}{NodeHealth.LivePath}", none.Log);
        }
        using var node = NodeProcess.Start(env, "--name", "probed", "--data-dir", Path.Combine(_dir, "probed"), "--port", "0");
        await node.WaitForApiAsync();
        using var live = NodeProcess.StartTern(env, "node", "probe");
        Assert.Equal(0, await live.WaitForExitAsync());
        Assert.Contains($"http://127.0.0.1:{httpPort}{NodeHealth.LivePath}: 200", live.Log);
        using var unknown = NodeProcess.StartTern(env, "node", "probe", "--path", "/health/nonexistent");
        Assert.Equal(1, await unknown.WaitForExitAsync());
    }

    private async Task WaitReadyAsync(string api)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            try
            {
                if ((await _http.GetAsync(api + NodeHealth.ReadyPath)).StatusCode == HttpStatusCode.OK)
                    return;
            }
            catch (HttpRequestException)
            {
                // not listening yet
            }
            Assert.True(DateTime.UtcNow < deadline, $"{api} never became ready");
            await Task.Delay(200);
        }
    }

    public void Dispose()
    {
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
