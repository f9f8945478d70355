// Several Tern nodes in this process (the "embedded" mode of the demo): each a node host
// built exactly as `tern node start` builds one (cluster, hypervisor, HTTP API), with its own
// data dir, one shared journal, remoting and API on free loopback ports, tightened cluster
// timings. Disposing stops them newest first (the oldest holds the singletons, so they move
// at most once) and deletes the data.
using System.Net.Http.Json;
using System.Text.Json;
using Akka.Actor;
using Akka.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Tern.Cluster;
using Tern.Cluster.Actors;
using Tern.Node;

namespace Tern.Cli.Commands;

/// <summary>An in-process cluster of Tern nodes.</summary>
public sealed class EmbeddedCluster : IAsyncDisposable
{
    private readonly List<WebApplication> _nodes = [];

    private EmbeddedCluster(string dataDir, string token)
    {
        DataDir = dataDir;
        Token = token;
        Http = new HttpClient { Timeout = TimeSpan.FromSeconds(60) };
        Http.DefaultRequestHeaders.Authorization = new("Bearer", token);
    }

    /// <summary>Where the nodes keep their files (deleted on dispose).</summary>
    public string DataDir { get; }

    /// <summary>The API token every node requires on mutating calls.</summary>
    public string Token { get; }

    /// <summary>A client that carries the token; give it full URLs from <see cref="Api"/>.</summary>
    public HttpClient Http { get; }

    /// <summary>The API address of each node, node-1 first.</summary>
    public IReadOnlyList<string> Api => _nodes.Select(NodeHost.HttpAddress).ToList();

    /// <summary>The actor system of node <paramref name="index"/> (0-based).</summary>
    public ActorSystem System(int index) => _nodes[index].Services.GetRequiredService<ActorSystem>();

    /// <summary>The VM controllers' shard region as seen from node <paramref name="index"/>.</summary>
    public IActorRef VmRegion(int index) => ActorRegistry.For(System(index)).Get<VmControllerRegion>();

    /// <summary>Starts <paramref name="count"/> nodes named node-1.. in <paramref name="dataDir"/> and waits until the scheduler knows them all.</summary>
    public static async Task<EmbeddedCluster> StartAsync(int count, string dataDir, ulong memoryPerNode, TimeSpan timeout, CancellationToken ct)
    {
        var cluster = new EmbeddedCluster(dataDir, Convert.ToHexStringLower(global::System.Security.Cryptography.RandomNumberGenerator.GetBytes(16)));
        try
        {
            Directory.CreateDirectory(dataDir);
            string? seed = null;
            for (int i = 0; i < count; i++)
            {
                string name = $"node-{i + 1}";
                var app = NodeHost.Build(new NodeSettings
                {
                    Cluster = new TernNodeOptions
                    {
                        NodeName = name,
                        Port = 0,
                        Seeds = seed is null ? [] : [seed],
                        DataDir = Path.Combine(dataDir, name),
                        JournalConnectionString = $"Data Source={Path.Combine(dataDir, "tern.db")}",
                        MemoryBudgetBytes = memoryPerNode,
                        ReportInterval = TimeSpan.FromMilliseconds(250),
                        FastTimings = true,
                        StopOnProcessSignal = false,
                        StorageVerbs = StorageCommands.Runner,
                    },
                    HttpPort = 0,
                    ApiToken = cluster.Token,
                }, logging =>
                {
                    logging.ClearProviders();
                    // The demo owns Ctrl-C and SIGTERM: a node's default console lifetime would
                    // stop it behind the demo's back (and swallow the signal).
                    logging.Services.AddSingleton<IHostLifetime, HostedByCaller>();
                });
                await app.StartAsync(ct);
                cluster._nodes.Add(app);
                seed ??= $"127.0.0.1:{Akka.Cluster.Cluster.Get(cluster.System(0)).SelfAddress.Port}";
            }
            await cluster.WaitForHostsAsync(count, timeout, ct);
            return cluster;
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }
    }

    private async Task WaitForHostsAsync(int count, TimeSpan timeout, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            try
            {
                var hosts = await Http.GetFromJsonAsync<JsonElement[]>(Api[0] + "/api/hosts", ct);
                if (hosts?.Length == count)
                    return;
            }
            catch (HttpRequestException)
            {
                // the scheduler singleton is still starting
            }
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"the {count} embedded nodes did not form a cluster within {timeout.TotalSeconds:0} s");
            await Task.Delay(100, ct);
        }
    }

    /// <inheritdoc/>
    public async ValueTask DisposeAsync()
    {
        // Akka writes its last words ("Remoting shut down") straight to the console once the
        // loggers are gone; they are not the demo's output.
        var console = Console.Out;
        Console.SetOut(TextWriter.Null);
        try
        {
            await StopNodesAsync();
        }
        finally
        {
            Console.SetOut(console);
        }
        Http.Dispose();
        try
        {
            Directory.Delete(DataDir, recursive: true);
        }
        catch (IOException)
        {
            // SQLite may hold the journal a moment longer; the next demo clears the directory first
        }
    }

    private async Task StopNodesAsync()
    {
        for (int i = _nodes.Count - 1; i >= 0; i--)
        {
            using var stopping = new CancellationTokenSource(TimeSpan.FromSeconds(15));
            try
            {
                await _nodes[i].StopAsync(stopping.Token);
            }
            catch (OperationCanceledException)
            {
                // it had its chance to leave; disposing ends it
            }
            await _nodes[i].DisposeAsync();
        }
        _nodes.Clear();
    }

    // A host lifetime that leaves starting and stopping to whoever owns the cluster.
    private sealed class HostedByCaller : IHostLifetime
    {
        public Task WaitForStartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}
