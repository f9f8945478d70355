// `tern bench cluster`: an end-to-end benchmark of real node processes on loopback. It starts
// two `tern node` processes (this same tern), then measures, all bounded in time and count:
//   - the CPU an idle node uses over a fixed window (both nodes, no guests);
//   - the time from a VM creation request (what `tern vm create` sends) to the guest's first
//     console line, seen through the console stream (what `tern vm logs` reads);
//   - how many idle 64 MiB guests node-2 holds: guests are added one at a time until a count
//     cap, a cap on node-2's resident memory, too little free memory on the machine, a refusal
//     or the time budget, and the reason is reported;
//   - node-2's resident memory per idle guest (RSS growth / guests) and its CPU with them.
// The guests are IdleGuest (WFI between 1 Hz heartbeats); requests go to node-1's API and place
// guests on node-2 with an explicit host, so every creation crosses nodes.
using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Tern.Cli.Commands;

/// <summary>The `tern bench cluster` verb.</summary>
public static partial class ClusterBenchCommand
{
    private const ulong GuestBytes = 64UL << 20;

    /// <summary>Adds `cluster` to the `tern bench` command.</summary>
    public static Command WithClusterBench(Command bench)
    {
        ArgumentNullException.ThrowIfNull(bench);
        var guests = new Option<int>("--guests") { Description = "Most idle 64 MiB guests to start on one node (1-512).", DefaultValueFactory = _ => 64 };
        var maxRss = new Option<string>("--max-rss") { Description = "Stop adding guests when the node's resident memory passes this (e.g. 4G).", DefaultValueFactory = _ => "4G" };
        var reserve = new Option<string>("--reserve") { Description = "Stop adding guests when the machine has less free memory than this.", DefaultValueFactory = _ => "1G" };
        var runs = new Option<int>("--runs") { Description = "Creations timed to the first console line (1-50).", DefaultValueFactory = _ => 5 };
        var window = new Option<int>("--window") { Description = "Seconds over which CPU use is measured (1-120).", DefaultValueFactory = _ => 10 };
        var timeout = new Option<int>("--timeout") { Description = "Seconds the whole benchmark may take (30-3600).", DefaultValueFactory = _ => 900 };
        var json = new Option<bool>("--json") { Description = "Print the figures as one JSON object." };
        var cluster = new Command("cluster", "Start two node processes and measure create-to-first-line time, idle guest density, memory per guest and idle CPU.")
        {
            guests, maxRss, reserve, runs, window, timeout, json,
        };
        cluster.SetAction(async (parse, ct) =>
        {
            var err = parse.InvocationConfiguration.Error;
            var options = new Options
            {
                Guests = parse.GetValue(guests),
                Runs = parse.GetValue(runs),
                Window = TimeSpan.FromSeconds(parse.GetValue(window)),
                Timeout = TimeSpan.FromSeconds(parse.GetValue(timeout)),
            };
            if (options.Guests is < 1 or > 512 || options.Runs is < 1 or > 50 || parse.GetValue(window) is < 1 or > 120 || parse.GetValue(timeout) is < 30 or > 3600)
            {
                err.WriteLine("tern bench cluster: --guests 1-512, --runs 1-50, --window 1-120 s, --timeout 30-3600 s.");
                return RunCommand.UsageError;
            }
            if (!SizeParser.TryParse(parse.GetValue(maxRss)!, out ulong rssCap) || !SizeParser.TryParse(parse.GetValue(reserve)!, out ulong reserveBytes))
            {
                err.WriteLine("tern bench cluster: --max-rss and --reserve are sizes (e.g. 4G, 512M).");
                return RunCommand.UsageError;
            }
            options.MaxRssBytes = rssCap;
            options.ReserveBytes = reserveBytes;
            using var budget = CancellationTokenSource.CreateLinkedTokenSource(ct);
            budget.CancelAfter(options.Timeout);
            Report report;
            try
            {
                report = await RunAsync(options, err, budget.Token);
            }
            catch (OperationCanceledException) when (!ct.IsCancellationRequested)
            {
                err.WriteLine($"tern bench cluster: did not finish within {options.Timeout.TotalSeconds:0} s (--timeout).");
                return 1;
            }
            catch (BenchException e)
            {
                err.WriteLine($"tern bench cluster: {e.Message}");
                return 1;
            }
            Print(report, parse.GetValue(json), parse.InvocationConfiguration.Output);
            return 0;
        });
        bench.Subcommands.Add(cluster);
        return bench;
    }

    private sealed class Options
    {
        public int Guests { get; init; }

        public int Runs { get; init; }

        public TimeSpan Window { get; init; }

        public TimeSpan Timeout { get; init; }

        public ulong MaxRssBytes { get; set; }

        public ulong ReserveBytes { get; set; }
    }

    private sealed record Report(
        double IdleCpuNode1, double IdleCpuNode2, List<double> FirstLineMs, List<double> CreateMs,
        int Guests, string StopReason, long RssBeforeBytes, long RssAfterBytes, double CpuWithGuests, double WindowSeconds, int Processors);

    internal sealed class BenchException(string message) : Exception(message);

    private static async Task<Report> RunAsync(Options options, TextWriter err, CancellationToken ct)
    {
        string dir = Directory.CreateTempSubdirectory("tern-bench-cluster-").FullName;
        var nodes = new List<ChildNode>();
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(60) };
        try
        {
            string kernel = Path.Combine(dir, "idle.bin");
            await File.WriteAllBytesAsync(kernel, IdleGuest.Image(), ct);
            int seedPort = FreePort();
            string journal = $"Data Source={Path.Combine(dir, "cluster.db")}";
            string node2Memory = $"{(ulong)(options.Guests + 1) * GuestBytes >> 20}M";
            nodes.Add(ChildNode.Start("node-1", dir, seedPort, seedPort, "512M", journal));
            nodes.Add(ChildNode.Start("node-2", dir, FreePort(), seedPort, node2Memory, journal));
            string api = await nodes[0].ApiAsync(ct);
            await nodes[1].ApiAsync(ct);
            await WaitForHostsAsync(http, api, 2, nodes, ct);
            err.WriteLine($"bench: two nodes up (pids {nodes[0].Pid}, {nodes[1].Pid}); settling, then {options.Window.TotalSeconds:0} s of idle CPU");
            await Task.Delay(TimeSpan.FromSeconds(3), ct);
            var idle = await CpuAsync(nodes, options.Window, ct);

            var firstLine = new List<double>();
            var create = new List<double>();
            for (int i = 0; i < options.Runs; i++)
            {
                string name = $"lat-{i + 1}";
                var watch = Stopwatch.StartNew();
                await CreateAsync(http, api, name, kernel, ct);
                create.Add(watch.Elapsed.TotalMilliseconds);
                await FirstLineAsync(http, api, name, ct);
                firstLine.Add(watch.Elapsed.TotalMilliseconds);
                using var deleted = await http.DeleteAsync($"{api}/api/vms/{name}", ct);
                if (!deleted.IsSuccessStatusCode)
                    throw new BenchException($"could not delete {name}: {(int)deleted.StatusCode} {await deleted.Content.ReadAsStringAsync(ct)}");
            }
            err.WriteLine($"bench: create to first line, {options.Runs} runs: median {Median(firstLine):0} ms");

            await Task.Delay(TimeSpan.FromSeconds(2), ct);
            long rssBefore = nodes[1].Rss();
            int count = 0;
            string reason = $"count cap (--guests {options.Guests})";
            while (count < options.Guests)
            {
                if (nodes[1].Rss() > (long)options.MaxRssBytes)
                {
                    reason = $"node-2 resident memory passed --max-rss {options.MaxRssBytes >> 20} MiB";
                    break;
                }
                if (AvailableMemory() is { } free && free < (long)options.ReserveBytes)
                {
                    reason = $"the machine had {free >> 20} MiB free, under --reserve {options.ReserveBytes >> 20} MiB";
                    break;
                }
                string name = $"idle-{count + 1}";
                if (await TryCreateAsync(http, api, name, kernel, ct) is { } refused)
                {
                    reason = $"node-2 refused guest {count + 1}: {refused}";
                    break;
                }
                await FirstLineAsync(http, api, name, ct);
                count++;
                if (count % 8 == 0)
                    err.WriteLine($"bench: {count} idle guests on node-2, RSS {nodes[1].Rss() >> 20} MiB");
            }
            await Task.Delay(TimeSpan.FromSeconds(3), ct);
            long rssAfter = nodes[1].Rss();
            err.WriteLine($"bench: {count} idle guests ({reason}); {options.Window.TotalSeconds:0} s of CPU with them");
            var loaded = await CpuAsync(nodes, options.Window, ct);
            return new Report(idle[0], idle[1], firstLine, create, count, reason, rssBefore, rssAfter, loaded[1], options.Window.TotalSeconds, Environment.ProcessorCount);
        }
        finally
        {
            foreach (var node in nodes)
                node.Dispose();
            try
            {
                Directory.Delete(dir, recursive: true);
            }
            catch (IOException)
            {
                // a killed node may hold its files a moment longer; it is a temp dir
            }
        }
    }

    // CPU time used by each node over the window, as a percentage of one core.
    private static async Task<double[]> CpuAsync(List<ChildNode> nodes, TimeSpan window, CancellationToken ct)
    {
        var before = nodes.Select(n => n.CpuTime()).ToArray();
        var watch = Stopwatch.StartNew();
        await Task.Delay(window, ct);
        double seconds = watch.Elapsed.TotalSeconds;
        return nodes.Select((n, i) => (n.CpuTime() - before[i]).TotalSeconds / seconds * 100).ToArray();
    }

    private static async Task CreateAsync(HttpClient http, string api, string name, string kernel, CancellationToken ct)
    {
        if (await TryCreateAsync(http, api, name, kernel, ct) is { } refused)
            throw new BenchException($"could not create {name}: {refused}");
    }

    private static async Task<string?> TryCreateAsync(HttpClient http, string api, string name, string kernel, CancellationToken ct)
    {
        using var response = await http.PostAsJsonAsync($"{api}/api/vms", new { name, kernel, memoryBytes = GuestBytes, host = "node-2" }, ct);
        if (response.IsSuccessStatusCode)
            return null;
        string body = await response.Content.ReadAsStringAsync(ct);
        string reason = body;
        try
        {
            reason = JsonDocument.Parse(body).RootElement.GetProperty("error").GetString() ?? body;
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException)
        {
            // not the API's error shape: report the body as it is
        }
        return $"{(int)response.StatusCode} {reason}";
    }

    // Reads the console stream (server-sent events, the output so far first) until a whole line has arrived.
    private static async Task FirstLineAsync(HttpClient http, string api, string name, CancellationToken ct)
    {
        using var bounded = CancellationTokenSource.CreateLinkedTokenSource(ct);
        bounded.CancelAfter(TimeSpan.FromSeconds(30));
        try
        {
            using var response = await http.GetAsync($"{api}/api/vms/{name}/console", HttpCompletionOption.ResponseHeadersRead, bounded.Token);
            if (!response.IsSuccessStatusCode)
                throw new BenchException($"console of {name}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync(bounded.Token)}");
            using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(bounded.Token));
            string text = "";
            while (await reader.ReadLineAsync(bounded.Token) is { } line)
            {
                if (line.StartsWith("event: end", StringComparison.Ordinal))
                    throw new BenchException($"{name} ended before printing a line");
                if (line.StartsWith("data: ", StringComparison.Ordinal))
                    text += JsonSerializer.Deserialize<string>(line["data: ".Length..]);
                if (text.Contains('\n', StringComparison.Ordinal))
                    return;
            }
            throw new BenchException($"the console stream of {name} ended before a whole line");
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            throw new BenchException($"{name} printed no line within 30 s");
        }
    }

    private static async Task WaitForHostsAsync(HttpClient http, string api, int count, List<ChildNode> nodes, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow.AddSeconds(120);
        while (true)
        {
            try
            {
                if ((await http.GetFromJsonAsync<JsonElement[]>($"{api}/api/hosts", ct))!.Length == count)
                    return;
            }
            catch (HttpRequestException)
            {
                // the scheduler singleton is still starting
            }
            if (DateTime.UtcNow > deadline)
                throw new BenchException("the nodes did not form a cluster within 120 s:\n" + string.Join("\n", nodes.Select(n => n.LogTail())));
            await Task.Delay(250, ct);
        }
    }

    // MemAvailable from /proc/meminfo, or null where there is none.
    private static long? AvailableMemory()
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/meminfo"))
            {
                if (line.StartsWith("MemAvailable:", StringComparison.Ordinal))
                    return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024;
            }
        }
        catch (IOException)
        {
            // not Linux
        }
        return null;
    }

    internal static double Median(List<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[sorted.Count / 2 - 1] + sorted[sorted.Count / 2]) / 2;
    }

    private static void Print(Report r, bool json, TextWriter output)
    {
        double perGuestMib = r.Guests == 0 ? 0 : (r.RssAfterBytes - r.RssBeforeBytes) / (double)r.Guests / (1 << 20);
        if (json)
        {
            output.WriteLine(JsonSerializer.Serialize(new Dictionary<string, object>
            {
                ["idle_node_cpu_percent"] = new[] { Math.Round(r.IdleCpuNode1, 2), Math.Round(r.IdleCpuNode2, 2) },
                ["create_to_first_line_ms"] = new { min = Math.Round(r.FirstLineMs.Min(), 1), median = Math.Round(Median(r.FirstLineMs), 1), max = Math.Round(r.FirstLineMs.Max(), 1) },
                ["create_call_ms"] = new { median = Math.Round(Median(r.CreateMs), 1) },
                ["idle_guests"] = r.Guests,
                ["stop_reason"] = r.StopReason,
                ["rss_before_mib"] = r.RssBeforeBytes >> 20,
                ["rss_after_mib"] = r.RssAfterBytes >> 20,
                ["rss_per_guest_mib"] = Math.Round(perGuestMib, 2),
                ["node_cpu_percent_with_guests"] = Math.Round(r.CpuWithGuests, 2),
                ["window_s"] = r.WindowSeconds,
                ["processors"] = r.Processors,
            }));
            return;
        }
        var c = CultureInfo.InvariantCulture;
        output.WriteLine(string.Create(c, $"idle node CPU ({r.WindowSeconds:0} s)        node-1 {r.IdleCpuNode1,6:F2} %   node-2 {r.IdleCpuNode2,6:F2} %   (of one core; {r.Processors} cores)"));
        output.WriteLine(string.Create(c, $"create -> first console line    min {r.FirstLineMs.Min(),7:F1} ms   median {Median(r.FirstLineMs),7:F1} ms   max {r.FirstLineMs.Max(),7:F1} ms   ({r.FirstLineMs.Count} runs; create call median {Median(r.CreateMs):F1} ms)"));
        output.WriteLine(string.Create(c, $"idle 64 MiB guests on node-2    {r.Guests}   stopped by: {r.StopReason}"));
        output.WriteLine(string.Create(c, $"node-2 RSS                      {r.RssBeforeBytes >> 20} MiB -> {r.RssAfterBytes >> 20} MiB   = {perGuestMib:F2} MiB per idle guest"));
        output.WriteLine(string.Create(c, $"node-2 CPU with {r.Guests} idle guests  {r.CpuWithGuests,6:F2} % of one core over {r.WindowSeconds:0} s"));
    }

    internal static int FreePort()
    {
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        return ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
    }

    // A `tern node start` child process of this same tern (the apphost, or dotnet tern.dll).
    internal sealed partial class ChildNode : IDisposable
    {
        private readonly Process _process;
        private readonly Queue<string> _tail = new();
        private readonly TaskCompletionSource<string> _api = new(TaskCreationOptions.RunContinuationsAsynchronously);

        private ChildNode(Process process) => _process = process;

        public int Pid => _process.Id;

        public static ChildNode Start(string name, string dir, int port, int seedPort, string memory, string journal, params string[] extra)
        {
            // The tern apphost runs itself; anything else (dotnet tern.dll, a test host) runs tern.dll through dotnet.
            string self = Environment.ProcessPath ?? "dotnet";
            bool apphost = Path.GetFileNameWithoutExtension(self) == "tern";
            string program = apphost ? self : Path.GetFileNameWithoutExtension(self) == "dotnet" ? self : Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet";
            var psi = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            if (!apphost)
                psi.ArgumentList.Add(typeof(ClusterBenchCommand).Assembly.Location);
            foreach (var a in new[]
            {
                "node", "start", "--name", name, "--data-dir", Path.Combine(dir, name), "--port", port.ToString(CultureInfo.InvariantCulture),
                "--seed", $"127.0.0.1:{seedPort}", "--http-port", "0", "--memory", memory, "--journal", journal,
            })
            {
                psi.ArgumentList.Add(a);
            }
            foreach (var a in extra)
                psi.ArgumentList.Add(a);
            psi.Environment["Logging__LogLevel__Default"] = "Warning";
            psi.Environment.Remove("OTEL_EXPORTER_OTLP_ENDPOINT"); // measure the node, not an exporter
            var node = new ChildNode(Process.Start(psi) ?? throw new BenchException($"could not start {program}"));
            node._process.OutputDataReceived += (_, e) => node.Line(e.Data);
            node._process.ErrorDataReceived += (_, e) => node.Line(e.Data);
            node._process.BeginOutputReadLine();
            node._process.BeginErrorReadLine();
            node._process.EnableRaisingEvents = true;
            node._process.Exited += (_, _) => node._api.TrySetException(new BenchException($"{name} exited with {node._process.ExitCode}:\n{node.LogTail()}"));
            return node;
        }

        public async Task<string> ApiAsync(CancellationToken ct)
        {
            try
            {
                return await _api.Task.WaitAsync(TimeSpan.FromSeconds(60), ct);
            }
            catch (TimeoutException)
            {
                throw new BenchException($"a node did not start within 60 s:\n{LogTail()}");
            }
        }

        /// <summary>Ends the node at once with SIGKILL (a host that dies: no leaving, no goodbye).</summary>
        public void Kill() => _process.Kill(entireProcessTree: false);

        public bool HasExited => _process.HasExited;

        public TimeSpan CpuTime()
        {
            _process.Refresh();
            return _process.TotalProcessorTime;
        }

        public long Rss()
        {
            _process.Refresh();
            return _process.WorkingSet64;
        }

        public string LogTail()
        {
            lock (_tail)
                return string.Join('\n', _tail);
        }

        private void Line(string? line)
        {
            if (line is null)
                return;
            lock (_tail)
            {
                _tail.Enqueue(line);
                if (_tail.Count > 20)
                    _tail.Dequeue();
            }
            if (ApiLine().Match(line) is { Success: true } m)
                _api.TrySetResult(m.Groups[1].Value);
        }

        [GeneratedRegex(@"API (http://\S+),")]
        private static partial Regex ApiLine();

        public void Dispose()
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                _process.WaitForExit(10_000);
            }
            _process.Dispose();
        }
    }
}
