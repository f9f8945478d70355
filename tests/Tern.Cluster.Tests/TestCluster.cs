// Several Tern nodes in this process, each a generic host composed exactly as Tern.Node
// composes one, joined on loopback with tightened timings. Messages between nodes go through
// the real serializer; serialize-messages stays off here because Akka's own sharding and
// persistence internals are not meant to pass through it (the actor tests turn it on).
using System.Net;
using System.Net.Sockets;
using Akka.Actor;
using Akka.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Tern.Cluster.Actors;
using Tern.Cluster.Hosting;
using Tern.Cluster.Protocol;

namespace Tern.Cluster.Tests;

internal sealed class TestCluster : IAsyncDisposable
{
    private readonly List<IHost> _hosts = [];
    private readonly HashSet<int> _stopped = [];

    private TestCluster(string dataDir) => DataDir = dataDir;

    public string DataDir { get; }

    public IReadOnlyList<ActorSystem> Systems => _hosts.Select(h => h.Services.GetRequiredService<ActorSystem>()).ToList();

    public static async Task<TestCluster> StartAsync(string dataDir, int nodes = 3, ulong memoryBudgetMib = 512, Func<TernNodeOptions, TernNodeOptions>? configure = null)
    {
        var cluster = new TestCluster(dataDir);
        var ports = Enumerable.Range(0, nodes).Select(_ => FreePort()).ToList();
        string seed = $"127.0.0.1:{ports[0]}";
        try
        {
            for (int i = 0; i < nodes; i++)
            {
                var options = new TernNodeOptions
                {
                    NodeName = $"node-{i + 1}",
                    Port = ports[i],
                    Seeds = [seed],
                    DataDir = Path.Combine(dataDir, $"node-{i + 1}"),
                    JournalConnectionString = $"Data Source={Path.Combine(dataDir, "cluster.db")}",
                    MemoryBudgetBytes = memoryBudgetMib << 20,
                    Harts = 2,
                    ReportInterval = TimeSpan.FromMilliseconds(200),
                    GuestTimeout = TimeSpan.FromSeconds(10),
                    FastTimings = true,
                };
                options = configure?.Invoke(options) ?? options;
                var builder = Host.CreateApplicationBuilder();
                builder.Logging.ClearProviders();
                if (Environment.GetEnvironmentVariable("TERN_TEST_LOG") is not null)
                    builder.Logging.AddSimpleConsole();
                builder.Services.AddAkka(options.SystemName, b => b.AddTernNode(options));
                var host = builder.Build();
                await host.StartAsync();
                cluster._hosts.Add(host);
            }
            await cluster.WaitUntilReadyAsync(nodes);
            return cluster;
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }
    }

    // Stops one node (it leaves the cluster gracefully, taking its guests with it); its index stays, unusable.
    public async Task StopNodeAsync(int node)
    {
        using var stopping = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await _hosts[node].StopAsync(stopping.Token);
        _stopped.Add(node);
    }

    public IActorRef Region(int node) => ActorRegistry.For(Systems[node]).Get<VmControllerRegion>();

    public IActorRef Scheduler(int node) => ActorRegistry.For(Systems[node]).Get<SchedulerProxy>();

    public Task<object> Ask(int node, IWithVmId message) => Region(node).Ask<object>(message, TimeSpan.FromSeconds(20));

    public async Task<VmStatus> Expect(int node, IWithVmId message) =>
        await Ask(node, message) switch
        {
            VmStatus s => s,
            var other => throw new Xunit.Sdk.XunitException($"expected a VmStatus for {message}, got {other}"),
        };

    public async Task<HostList> HostsAsync(int node = 0) => await Scheduler(node).Ask<HostList>(new GetHosts(), TimeSpan.FromSeconds(10));

    public async Task<VmStatus> WaitForAsync(string vm, Func<VmStatus, bool> condition, int node = 0)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        VmStatus? last = null;
        while (DateTime.UtcNow < deadline)
        {
            if (await Ask(node, new GetVm(vm)) is VmStatus s)
            {
                last = s;
                if (condition(s))
                    return s;
            }
            await Task.Delay(50);
        }
        throw new TimeoutException($"VM {vm} never reached the expected state; last: {last}");
    }

    private async Task WaitUntilReadyAsync(int nodes)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (DateTime.UtcNow < deadline)
        {
            bool allUp = Systems.All(s => Akka.Cluster.Cluster.Get(s).State.Members.Count(m => m.Status == Akka.Cluster.MemberStatus.Up) == nodes);
            if (allUp)
            {
                try
                {
                    if ((await HostsAsync()).Hosts.Count == nodes)
                        return;
                }
                catch (AskTimeoutException)
                {
                    // the singleton is still starting
                }
            }
            await Task.Delay(100);
        }
        throw new TimeoutException($"the {nodes} nodes did not form a cluster in 30 s");
    }

    private static int FreePort() => Tern.Tests.Shared.FreePorts.Next();

    // Newest first: the oldest holds the singletons and the shard coordinator, so stopping it last avoids hand-overs.
    public async ValueTask DisposeAsync()
    {
        for (int i = _hosts.Count - 1; i >= 0; i--)
        {
            using var stopping = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            if (!_stopped.Contains(i))
                await _hosts[i].StopAsync(stopping.Token);
            _hosts[i].Dispose();
        }
        _hosts.Clear();
    }
}
