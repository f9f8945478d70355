// `tern node start`: runs this process as one host of a Tern cluster (Akka node, hypervisor,
// HTTP API) until Ctrl-C or SIGTERM, which leave the cluster gracefully. Every flag has an
// environment variable for containers (deploy/, k8s/); a flag wins over its variable.
using System.CommandLine;
using Tern.Cluster;
using Tern.Node;

namespace Tern.Cli.Commands;

/// <summary>The `tern node` verbs.</summary>
public static class NodeCommand
{
    /// <summary>Builds the command.</summary>
    public static Command Create()
    {
        var name = new Option<string?>("--name") { Description = "Host name, unique in the cluster (env TERN_NODE_NAME; default node-1)." };
        var dataDir = new Option<string?>("--data-dir") { Description = "Directory for this node's files (env TERN_DATA_DIR; default ./data/NAME)." };
        var hostname = new Option<string?>("--hostname") { Description = "Address remoting binds to and advertises (env TERN_HOSTNAME; default 127.0.0.1)." };
        var port = new Option<int?>("--port") { Description = "Remoting port (env TERN_PORT; default 4053)." };
        var seeds = new Option<string[]>("--seed") { Description = "A seed node as host:port or akka.tcp://tern@host:port; repeatable (env TERN_SEEDS, comma-separated). None: this node starts a new cluster.", AllowMultipleArgumentsPerToken = true };
        var httpHost = new Option<string?>("--http-host") { Description = "Address of the HTTP API (env TERN_HTTP_HOST; default 127.0.0.1)." };
        var httpPort = new Option<int?>("--http-port") { Description = "Port of the HTTP API (env TERN_HTTP_PORT; default 8080)." };
        var memory = new Option<string?>("--memory") { Description = "Memory this host gives guests in total, e.g. 2G (env TERN_MEMORY; default 2G)." };
        var token = new Option<string?>("--api-token") { Description = "Token required on mutating API calls (env TERN_API_TOKEN; default none)." };
        var journal = new Option<string?>("--journal") { Description = "SQLite connection string shared by the cluster's nodes (env TERN_JOURNAL; default DATA-DIR/tern.db)." };
        var start = new Command("start", "Run this process as a node of a Tern cluster.") { name, dataDir, hostname, port, seeds, httpHost, httpPort, memory, token, journal };
        start.SetAction(async (parse, ct) =>
        {
            var err = parse.InvocationConfiguration.Error;
            var output = parse.InvocationConfiguration.Output;
            string nodeName = parse.GetValue(name) ?? Env("TERN_NODE_NAME") ?? "node-1";
            string memoryText = parse.GetValue(memory) ?? Env("TERN_MEMORY") ?? "2G";
            if (!SizeParser.TryParse(memoryText, out ulong memoryBytes) || memoryBytes == 0)
            {
                err.WriteLine($"tern node start: --memory '{memoryText}' is not a size (e.g. 512M, 2G).");
                return RunCommand.UsageError;
            }
            int? remotingPort = parse.GetValue(port) ?? EnvInt("TERN_PORT");
            int? apiPort = parse.GetValue(httpPort) ?? EnvInt("TERN_HTTP_PORT");
            if (remotingPort is < 0 or > 65535 || apiPort is < 0 or > 65535)
            {
                err.WriteLine("tern node start: ports must be between 0 and 65535.");
                return RunCommand.UsageError;
            }
            var seedList = parse.GetValue(seeds) is { Length: > 0 } given ? given
                : (Env("TERN_SEEDS") ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            var settings = new NodeSettings
            {
                Cluster = new TernNodeOptions
                {
                    NodeName = nodeName,
                    DataDir = parse.GetValue(dataDir) ?? Env("TERN_DATA_DIR") ?? Path.Combine("data", nodeName),
                    Hostname = parse.GetValue(hostname) ?? Env("TERN_HOSTNAME") ?? "127.0.0.1",
                    Port = remotingPort ?? 4053,
                    Seeds = seedList,
                    MemoryBudgetBytes = memoryBytes,
                    JournalConnectionString = parse.GetValue(journal) ?? Env("TERN_JOURNAL"),
                    GuestIoSampleEvery = NodeTelemetry.GuestIoSampleEvery(),
                },
                HttpHost = parse.GetValue(httpHost) ?? Env("TERN_HTTP_HOST") ?? "127.0.0.1",
                HttpPort = apiPort ?? 8080,
                ApiToken = parse.GetValue(token) ?? Env("TERN_API_TOKEN"),
            };
            if (NodeTelemetry.CheckEnvironment() is { } bad)
            {
                err.WriteLine($"tern node start: {bad}.");
                return RunCommand.UsageError;
            }
            if (NodeHost.CheckListenAddresses(settings) is { } problem)
            {
                err.WriteLine($"tern node start: {problem}");
                return 1;
            }
            try
            {
                await NodeHost.RunAsync(settings, output, ct);
                return 0;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or Akka.Configuration.ConfigurationException or AggregateException)
            {
                err.WriteLine($"tern node start: the node failed to start: {e.GetBaseException().Message}");
                return 1;
            }
        });
        return new Command("node", "Run a node of a Tern cluster.") { start };
    }

    private static string? Env(string name) => Environment.GetEnvironmentVariable(name) is { Length: > 0 } v ? v : null;

    private static int? EnvInt(string name) => Env(name) is { } v && int.TryParse(v, out int n) ? n : null;
}
