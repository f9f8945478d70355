// `tern cluster up|down|status`: a local cluster of `tern node` processes on loopback ports.
// `up` starts N detached nodes (each in its own session, output to a log file, data dir
// TERN_HOME/cluster/node-I, one shared journal and API token), waits until they are one
// cluster, and records them in TERN_HOME/cluster.json; `down` asks each to leave (SIGTERM,
// newest first), kills what is still running after a timeout, and removes the record.
using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text.Json;

namespace Tern.Cli.Commands;

/// <summary>The `tern cluster` verbs.</summary>
public static class ClusterCommands
{
    /// <summary>Default first port: node I uses BASE + 2(I-1) for remoting and the next port for its API.</summary>
    public const int DefaultBasePort = 4150;

    /// <summary>Builds the command.</summary>
    public static Command Create()
    {
        var cluster = new Command("cluster", "A local cluster of node processes on this machine (state in TERN_HOME, default ~/.tern).");
        cluster.Subcommands.Add(Up());
        cluster.Subcommands.Add(Down());
        cluster.Subcommands.Add(Status());
        return cluster;
    }

    private static Command Up()
    {
        var nodes = new Option<int>("--nodes") { Description = "How many nodes (1 to 16).", DefaultValueFactory = _ => 3 };
        var basePort = new Option<int>("--base-port") { Description = $"First port: node I listens on BASE+2(I-1) (cluster) and BASE+2(I-1)+1 (API) on 127.0.0.1 (default {DefaultBasePort}).", DefaultValueFactory = _ => DefaultBasePort };
        var memory = new Option<string>("--memory") { Description = "Memory each node gives its guests, e.g. 1G.", DefaultValueFactory = _ => "1G" };
        var timeout = new Option<double>("--timeout") { Description = "Seconds to wait for the nodes to form a cluster.", DefaultValueFactory = _ => 120 };
        var up = new Command("up", "Start N node processes and wait until they form one cluster.") { nodes, basePort, memory, timeout };
        up.SetAction((parse, ct) => UpAsync(parse.GetValue(nodes), parse.GetValue(basePort), parse.GetValue(memory)!, parse.GetValue(timeout),
            parse.InvocationConfiguration.Output, parse.InvocationConfiguration.Error, ct));
        return up;
    }

    private static Command Down()
    {
        var timeout = new Option<double>("--timeout") { Description = "Seconds each node gets to leave the cluster before it is killed.", DefaultValueFactory = _ => 30 };
        var down = new Command("down", "Stop the local cluster's nodes (graceful leave, then kill) and remove its record.") { timeout };
        down.SetAction((parse, ct) => DownAsync(parse.GetValue(timeout), parse.InvocationConfiguration.Output, parse.InvocationConfiguration.Error, ct));
        return down;
    }

    private static Command Status()
    {
        var json = new Option<bool>("--json") { Description = "Print the record as JSON (without the token)." };
        var status = new Command("status", "Show the local cluster's nodes.") { json };
        status.SetAction((parse, ct) => StatusAsync(parse.GetValue(json), parse.InvocationConfiguration.Output, parse.InvocationConfiguration.Error, ct));
        return status;
    }

    private static async Task<int> UpAsync(int count, int basePort, string memory, double timeoutSeconds, TextWriter output, TextWriter err, CancellationToken ct)
    {
        string home = LocalCluster.Home();
        if (count is < 1 or > 16)
            return Refuse(err, $"--nodes {count}: expected 1 to 16.");
        if (basePort < 1024 || basePort + (2 * count) - 1 > 65535)
            return Refuse(err, $"--base-port {basePort}: the ports {basePort}-{basePort + (2 * count) - 1} must lie between 1024 and 65535.");
        if (!SizeParser.TryParse(memory, out ulong memoryBytes) || memoryBytes < (16UL << 20))
            return Refuse(err, $"--memory '{memory}' is not a size of at least 16M (e.g. 1G).");
        if (!(timeoutSeconds > 0))
            return Refuse(err, "--timeout must be a positive number of seconds.");
        LocalCluster? existing;
        try
        {
            existing = LocalCluster.Read(home);
        }
        catch (InvalidDataException e)
        {
            return Refuse(err, e.Message);
        }
        if (existing is not null)
        {
            if (existing.Nodes.Any(LocalCluster.IsRunning))
                return Refuse(err, $"a cluster is already up in {home} ({string.Join(", ", existing.Nodes.Where(LocalCluster.IsRunning).Select(n => $"{n.Name} pid {n.Pid}"))}); run 'tern cluster down' first.");
            LocalCluster.Remove(home); // every node of the old record is gone: the record is stale
        }
        for (int i = 0; i < 2 * count; i++)
        {
            int port = basePort + i;
            if (!PortFree(port))
                return Refuse(err, $"port {port} ({(i % 2 == 0 ? "cluster" : "API")} of node-{(i / 2) + 1}) is in use on 127.0.0.1; choose another --base-port.");
        }

        string root = Path.GetFullPath(Path.Combine(home, "cluster"));
        Directory.CreateDirectory(root);
        string token = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));
        string journal = $"Data Source={Path.Combine(root, "tern.db")}";
        var started = new List<LocalNode>();
        try
        {
            for (int i = 0; i < count; i++)
            {
                string name = $"node-{i + 1}";
                int port = basePort + (2 * i);
                var node = new LocalNode(name, 0, port, port + 1, $"http://127.0.0.1:{port + 1}", Path.Combine(root, name), Path.Combine(root, name + ".log"));
                int pid = Spawn(node.Log, "node", "start", "--name", name, "--data-dir", node.DataDir, "--port", Num(port),
                    "--http-port", Num(port + 1), "--seed", $"127.0.0.1:{basePort}", "--memory", memory, "--api-token", token, "--journal", journal);
                started.Add(node with { Pid = pid });
            }
            output.WriteLine($"tern cluster: started {count} node{(count == 1 ? "" : "s")} ({string.Join(", ", started.Select(n => $"{n.Name} pid {n.Pid}"))}); waiting for the cluster");
            output.Flush();
            if (await WaitUntilUpAsync(started, TimeSpan.FromSeconds(timeoutSeconds), ct) is { } failure)
            {
                KillAll(started);
                err.WriteLine($"tern cluster up: {failure.Reason}; nothing was left running. The end of {failure.Node.Log}:");
                foreach (string line in Tail(failure.Node.Log, 12))
                    err.WriteLine("  | " + line);
                return 1;
            }
        }
        catch (OperationCanceledException)
        {
            KillAll(started);
            err.WriteLine("tern cluster up: interrupted; the nodes started so far were stopped.");
            return 130;
        }
        catch (Exception e) when (e is IOException or System.ComponentModel.Win32Exception or InvalidOperationException)
        {
            KillAll(started);
            err.WriteLine($"tern cluster up: cannot start a node: {e.Message}");
            return 1;
        }
        new LocalCluster(token, journal, DateTimeOffset.UtcNow, started).Write(home);
        output.WriteLine($"tern cluster: {count} node{(count == 1 ? "" : "s")} up; API {started[0].Api}; recorded in {LocalCluster.RecordPath(home)}");
        output.Write(NodeTable(started, _ => "up"));
        return 0;
    }

    private sealed record Failure(LocalNode Node, string Reason);

    // Up means: every node's API says it is an Up member, and the scheduler knows every host.
    private static async Task<Failure?> WaitUntilUpAsync(IReadOnlyList<LocalNode> nodes, TimeSpan timeout, CancellationToken ct)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            ct.ThrowIfCancellationRequested();
            if (nodes.FirstOrDefault(n => !LocalCluster.Exists(n.Pid)) is { } dead)
                return new(dead, $"{dead.Name} (pid {dead.Pid}) stopped before the cluster was up");
            LocalNode? waitingFor = null;
            foreach (var n in nodes)
            {
                if (!await ReadyAsync(http, n, ct))
                {
                    waitingFor = n;
                    break;
                }
            }
            if (waitingFor is null)
            {
                try
                {
                    var hosts = await http.GetFromJsonAsync<JsonElement[]>(nodes[0].Api + "/api/hosts", ct);
                    if (hosts is not null && nodes.All(n => hosts.Any(h => h.GetProperty("name").GetString() == n.Name)))
                        return null;
                }
                catch (Exception e) when (e is HttpRequestException or TaskCanceledException or JsonException)
                {
                    // the scheduler singleton is still starting
                }
                waitingFor = nodes[0];
            }
            if (DateTime.UtcNow > deadline)
                return new(waitingFor, $"{waitingFor.Name} did not join the cluster within {timeout.TotalSeconds:0} s");
            await Task.Delay(250, ct);
        }
    }

    private static async Task<bool> ReadyAsync(HttpClient http, LocalNode node, CancellationToken ct)
    {
        try
        {
            using var response = await http.GetAsync(node.Api + "/health/ready", ct);
            return response.IsSuccessStatusCode;
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException && !ct.IsCancellationRequested)
        {
            return false;
        }
    }

    private static async Task<int> DownAsync(double timeoutSeconds, TextWriter output, TextWriter err, CancellationToken ct)
    {
        string home = LocalCluster.Home();
        LocalCluster? cluster;
        try
        {
            cluster = LocalCluster.Read(home);
        }
        catch (InvalidDataException e)
        {
            return Refuse(err, e.Message, "down");
        }
        if (cluster is null)
            return Refuse(err, $"no cluster is recorded in {home}.", "down");
        if (!(timeoutSeconds > 0))
            return Refuse(err, "--timeout must be a positive number of seconds.", "down");
        // Newest first: the oldest node holds the singletons, so they move at most once.
        foreach (var node in cluster.Nodes.Reverse())
        {
            if (!LocalCluster.IsRunning(node))
            {
                output.WriteLine($"{node.Name}: was not running");
                continue;
            }
            Signal(node.Pid, "TERM");
            var deadline = DateTime.UtcNow.AddSeconds(timeoutSeconds);
            while (LocalCluster.IsRunning(node) && DateTime.UtcNow < deadline)
                await Task.Delay(100, CancellationToken.None);
            if (LocalCluster.IsRunning(node))
            {
                Signal(node.Pid, "KILL");
                while (LocalCluster.IsRunning(node))
                    await Task.Delay(50, CancellationToken.None);
                output.WriteLine($"{node.Name}: did not leave within {timeoutSeconds:0} s; killed");
            }
            else
            {
                output.WriteLine($"{node.Name}: left the cluster and stopped");
            }
            output.Flush();
        }
        LocalCluster.Remove(home);
        output.WriteLine($"tern cluster: down; removed {LocalCluster.RecordPath(home)} (data stays in {Path.Combine(home, "cluster")})");
        return 0;
    }

    private static async Task<int> StatusAsync(bool json, TextWriter output, TextWriter err, CancellationToken ct)
    {
        string home = LocalCluster.Home();
        LocalCluster? cluster;
        try
        {
            cluster = LocalCluster.Read(home);
        }
        catch (InvalidDataException e)
        {
            return Refuse(err, e.Message, "status");
        }
        if (cluster is null)
            return Refuse(err, $"no cluster is recorded in {home}.", "status");
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        var states = new Dictionary<string, string>();
        foreach (var n in cluster.Nodes)
            states[n.Name] = !LocalCluster.IsRunning(n) ? "gone" : await ReadyAsync(http, n, ct) ? "up" : "starting";
        if (json)
        {
            var view = cluster.Nodes.Select(n => new { n.Name, n.Pid, state = states[n.Name], n.Api, n.Port, n.HttpPort, n.DataDir, n.Log });
            output.WriteLine(JsonSerializer.Serialize(new { started = cluster.Started, nodes = view }, new JsonSerializerOptions(JsonSerializerDefaults.Web) { WriteIndented = true }));
        }
        else
        {
            output.Write(NodeTable(cluster.Nodes, n => states[n.Name]));
        }
        return 0;
    }

    private static string NodeTable(IEnumerable<LocalNode> nodes, Func<LocalNode, string> state)
    {
        var rows = new List<string[]> { new[] { "NAME", "PID", "STATE", "API", "CLUSTER PORT", "LOG" } };
        rows.AddRange(nodes.Select(n => new[] { n.Name, Num(n.Pid), state(n), n.Api, Num(n.Port), n.Log }));
        var widths = rows[0].Select((_, i) => rows.Max(r => r[i].Length)).ToArray();
        var text = new System.Text.StringBuilder();
        foreach (var r in rows)
            text.AppendLine(string.Join("  ", r.Select((c, i) => c.PadRight(widths[i]))).TrimEnd());
        return text.ToString();
    }

    // Starts `tern ARGS` in a session of its own (so Ctrl-C in this terminal does not reach it
    // and it outlives this process), stdin from /dev/null, stdout and stderr to the log.
    private static int Spawn(string log, params string[] args)
    {
        var psi = new ProcessStartInfo("/bin/sh") { UseShellExecute = false, RedirectStandardOutput = true };
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add("log=$1; shift; setsid \"$@\" > \"$log\" 2>&1 < /dev/null & echo $!");
        psi.ArgumentList.Add("sh");
        psi.ArgumentList.Add(log);
        foreach (string a in TernCommandLine())
            psi.ArgumentList.Add(a);
        foreach (string a in args)
            psi.ArgumentList.Add(a);
        using var shell = Process.Start(psi) ?? throw new InvalidOperationException("cannot start /bin/sh");
        string pid = shell.StandardOutput.ReadToEnd().Trim();
        shell.WaitForExit();
        return int.TryParse(pid, NumberStyles.None, CultureInfo.InvariantCulture, out int n)
            ? n
            : throw new InvalidOperationException($"the shell did not report the node's pid (said '{pid}')");
    }

    /// <summary>How to run this tern again: its apphost, or `dotnet tern.dll`.</summary>
    internal static IReadOnlyList<string> TernCommandLine()
    {
        string dll = typeof(TernApp).Assembly.Location;
        string apphost = Path.Combine(Path.GetDirectoryName(dll)!, OperatingSystem.IsWindows() ? "tern.exe" : "tern");
        if (File.Exists(apphost))
            return [apphost];
        return [Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host ? host : "dotnet", dll];
    }

    private static void Signal(int pid, string signal)
    {
        var psi = new ProcessStartInfo("/bin/sh") { UseShellExecute = false, RedirectStandardError = true };
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add("kill -" + signal + " \"$1\"");
        psi.ArgumentList.Add("sh");
        psi.ArgumentList.Add(Num(pid));
        using var kill = Process.Start(psi);
        kill?.WaitForExit();
    }

    private static void KillAll(IEnumerable<LocalNode> nodes)
    {
        foreach (var n in nodes.Where(n => LocalCluster.Exists(n.Pid)))
            Signal(n.Pid, "KILL");
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (nodes.Any(n => LocalCluster.Exists(n.Pid)) && DateTime.UtcNow < deadline)
            Thread.Sleep(50);
    }

    private static bool PortFree(int port)
    {
        try
        {
            using var listener = new TcpListener(IPAddress.Loopback, port);
            listener.Start();
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    private static IEnumerable<string> Tail(string path, int lines)
    {
        try
        {
            return File.ReadAllLines(path).TakeLast(lines);
        }
        catch (IOException)
        {
            return ["(no log)"];
        }
    }

    private static int Refuse(TextWriter err, string message, string verb = "up")
    {
        err.WriteLine($"tern cluster {verb}: {message}");
        return RunCommand.UsageError;
    }

    private static string Num(int n) => n.ToString(CultureInfo.InvariantCulture);
}
