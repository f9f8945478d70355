// The test-only partition endpoint of two in-process nodes: off by default (404, plain akka.tcp);
// with --fault-injection on, token-guarded, bad peers refused before anything changes, and a
// blackhole that really cuts the Akka traffic (the peer becomes unreachable) until the heal.
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Logging;
using Tern.Cluster;

namespace Tern.Node.Tests;

[Collection("nodes")]
public sealed class PartitionApiTests : IAsyncLifetime, IDisposable
{
    private const string Token = "s3cret";
    private readonly string _dir = Directory.CreateTempSubdirectory("tern-partition-").FullName;
    private readonly List<WebApplication> _apps = [];
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(30) };

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        for (int i = _apps.Count - 1; i >= 0; i--)
        {
            await _apps[i].StopAsync();
            await _apps[i].DisposeAsync();
        }
        Directory.Delete(_dir, recursive: true);
    }

    public void Dispose() => _http.Dispose();

    // Nodes of one cluster in this process; node-1 is the seed. Nobody is downed within a test (60 s).
    private async Task<List<string>> StartAsync(int count, bool faultInjection)
    {
        var ports = Enumerable.Range(0, count).Select(_ => NodeProcess.FreePort()).ToList();
        var apis = new List<string>();
        for (int i = 0; i < count; i++)
        {
            var app = NodeHost.Build(new NodeSettings
            {
                Cluster = new TernNodeOptions
                {
                    NodeName = $"node-{i + 1}",
                    Port = ports[i],
                    Seeds = [$"127.0.0.1:{ports[0]}"],
                    DataDir = Path.Combine(_dir, $"node-{i + 1}"),
                    JournalConnectionString = $"Data Source={Path.Combine(_dir, "cluster.db")}",
                    MemoryBudgetBytes = 256UL << 20,
                    Harts = 2,
                    FastTimings = true,
                    DownAfter = TimeSpan.FromSeconds(60),
                    FaultInjection = faultInjection,
                    StopOnProcessSignal = false,
                },
                HttpPort = 0,
                ApiToken = Token,
            }, logging => logging.ClearProviders());
            _apps.Add(app);
            await app.StartAsync();
            apis.Add(NodeHost.HttpAddress(app));
        }
        await NodeProcess.WaitForMembersUpAsync(_http, apis, count, () => "(in-process nodes)", seconds: 60);
        return apis;
    }

    private async Task<(HttpStatusCode Status, JsonElement Body)> PostAsync(string api, object body, string? token = Token)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, api + "/api/debug/partition") { Content = JsonContent.Create(body) };
        if (token is not null)
            request.Headers.Authorization = new("Bearer", token);
        using var response = await _http.SendAsync(request);
        return (response.StatusCode, JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.Clone());
    }

    // node `api`'s view of member `name`: its reachability, waited for (bounded).
    private async Task UntilReachableAsync(string api, string name, bool reachable, int seconds)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        string seen = "nothing";
        while (true)
        {
            var members = (await _http.GetFromJsonAsync<JsonElement[]>(api + "/api/cluster/members"))!;
            var member = members.FirstOrDefault(m => m.GetProperty("name").GetString() == name);
            seen = string.Join(", ", members.Select(m => $"{m.GetProperty("name").GetString()} {m.GetProperty("status").GetString()} reachable={m.GetProperty("reachable").GetBoolean()}"));
            if (member.ValueKind == JsonValueKind.Object && member.GetProperty("reachable").GetBoolean() == reachable)
                return;
            Assert.True(DateTime.UtcNow < deadline, $"{name} did not become {(reachable ? "reachable" : "unreachable")} from {api} within {seconds} s; members: {seen}");
            await Task.Delay(200);
        }
    }

    [Fact]
    public async Task Without_fault_injection_the_endpoint_is_not_there_and_addresses_are_plain_akka_tcp()
    {
        var apis = await StartAsync(1, faultInjection: false);
        var (status, body) = await PostAsync(apis[0], new { peers = new[] { "node-2" }, mode = "blackhole" });
        Assert.Equal(HttpStatusCode.NotFound, status);
        Assert.Contains("fault injection is off", body.GetProperty("error").GetString(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.NotFound, (await _http.GetAsync(apis[0] + "/api/debug/partition")).StatusCode);
        var self = (await _http.GetFromJsonAsync<JsonElement[]>(apis[0] + "/api/cluster/members"))!.Single();
        Assert.StartsWith("akka.tcp://tern@127.0.0.1:", self.GetProperty("address").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_blackhole_cuts_the_peer_off_until_the_heal_and_bad_requests_change_nothing()
    {
        var apis = await StartAsync(2, faultInjection: true);
        var members = (await _http.GetFromJsonAsync<JsonElement[]>(apis[0] + "/api/cluster/members"))!;
        Assert.All(members, m => Assert.StartsWith("akka.trttl.tcp://tern@127.0.0.1:", m.GetProperty("address").GetString(), StringComparison.Ordinal));

        // Refused, changing nothing: no token, an unknown host, this node itself, a bad mode.
        Assert.Equal(HttpStatusCode.Unauthorized, (await PostAsync(apis[0], new { peers = new[] { "node-2" }, mode = "blackhole" }, token: null)).Status);
        var (unknown, why) = await PostAsync(apis[0], new { peers = new[] { "node-2", "node-9" }, mode = "blackhole" });
        Assert.Equal(HttpStatusCode.BadRequest, unknown);
        Assert.Equal("no host named 'node-9' in the cluster (peers: node-2)", why.GetProperty("error").GetString());
        var (self, selfWhy) = await PostAsync(apis[0], new { peers = new[] { "node-1" }, mode = "blackhole" });
        Assert.Equal(HttpStatusCode.BadRequest, self);
        Assert.Contains("is this node", selfWhy.GetProperty("error").GetString(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.BadRequest, (await PostAsync(apis[0], new { peers = new[] { "node-2" }, mode = "drop" })).Status);
        var listed = await _http.GetFromJsonAsync<JsonElement>(apis[0] + "/api/debug/partition");
        Assert.Equal(0, listed.GetProperty("blackholed").GetArrayLength());
        await UntilReachableAsync(apis[0], "node-2", reachable: true, seconds: 5);

        // The cut, on node-1 only (both directions there): each side's failure detector gives up on the other.
        var (cut, cutBody) = await PostAsync(apis[0], new { peers = new[] { "node-2" }, mode = "blackhole" });
        Assert.Equal(HttpStatusCode.OK, cut);
        var peer = Assert.Single(cutBody.GetProperty("blackholed").EnumerateArray());
        Assert.Equal("node-2", peer.GetProperty("name").GetString());
        await UntilReachableAsync(apis[0], "node-2", reachable: false, seconds: 30);
        await UntilReachableAsync(apis[1], "node-1", reachable: false, seconds: 30);

        // The heal, by address this time: both see each other again.
        string address = peer.GetProperty("address").GetString()!;
        string hostPort = address[(address.IndexOf('@', StringComparison.Ordinal) + 1)..];
        var (healed, healedBody) = await PostAsync(apis[0], new { peers = new[] { hostPort }, mode = "heal" });
        Assert.Equal(HttpStatusCode.OK, healed);
        Assert.Equal(0, healedBody.GetProperty("blackholed").GetArrayLength());
        await UntilReachableAsync(apis[0], "node-2", reachable: true, seconds: 30);
        await UntilReachableAsync(apis[1], "node-1", reachable: true, seconds: 30);
        Assert.Equal(2, (await _http.GetFromJsonAsync<JsonElement[]>(apis[1] + "/api/cluster/members"))!.Count(m => m.GetProperty("status").GetString() == "up"));
    }
}
