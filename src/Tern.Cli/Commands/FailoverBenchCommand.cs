// `tern bench failover`: how long a cluster of real node processes on loopback takes to notice
// that a host died and to have its guests running elsewhere. Each run starts N `tern node`
// processes (this same tern), builds a VG with one PV on every node, gives each disk guest a
// 2-way mirrored LV (`lv:vg0/dK`, legs on two distinct hosts) and adds guests without disks,
// places them all on node-2 (it has the most free memory), then SIGKILLs node-2 and times, from
// the kill, as seen from node-1 (the seed: scheduler, storage coordinator, its API).
// The disk guests run the disk verifier (src/guests/diskverify, built into tern): they append
// checksummed records and print ACK N once records 1..N are flushed, so they are writing when
// node-2 dies; after the restart the verifier prints VERIFY (every record on the disk checked)
// and goes on acknowledging. Per disk guest the bench reports the last ACK it saw before the
// kill, the VERIFY line of the new generation (intact: `ok` with last >= that ACK), and when the
// first new ACK came. Phases:
//   unreachable  node-2 gone from the scheduler's hosts (GET /api/hosts, polled every 50 ms)
//   removed      the split-brain resolver downed it and the leader removed it (event host.left)
//   lost         the VM's controller recorded its generation lost (event vm.lost)
//   placed       the controller placed the next generation on a survivor (event vm.placed)
//   started      that host reported the guest running (event vm.started)
//   console      the guest's first console output, read through the API as `tern vm logs` does
// Event times are taken where the event happened (ms, same machine clock). Every run is a fresh
// cluster; processes and temp dirs are removed at the end, on failure and on Ctrl-C.
using System.Collections.Concurrent;
using System.CommandLine;
using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.RegularExpressions;
using static Tern.Cli.Commands.ClusterBenchCommand;

namespace Tern.Cli.Commands;

/// <summary>The `tern bench failover` verb.</summary>
public static partial class FailoverBenchCommand
{
    private const ulong GuestBytes = 64UL << 20;
    private const string Victim = "node-2";

    /// <summary>Akka.NET's failure-detector defaults, which `tern node` keeps (docs/cluster.md).</summary>
    private const string FailureDetector = "akka.cluster.failure-detector: heartbeat-interval 1 s, acceptable-heartbeat-pause 3 s, threshold 8 (Akka.NET defaults)";

    /// <summary>The phases, in the order they happen.</summary>
    private static readonly string[] Phases = ["unreachable", "removed", "lost", "placed", "started", "console"];

    /// <summary>Embedded resource name of the disk verifier (src/guests/bin/diskverify/diskverify.elf).</summary>
    public const string VerifierResource = "diskverify.elf";

    /// <summary>ACKs every disk guest must have printed before the kill: three flushed batches of eight records.</summary>
    private const long AcksBeforeKill = 24;

    [GeneratedRegex(@"^ACK (\d+)\r?\n", RegexOptions.Multiline)]
    private static partial Regex AckLine();

    [GeneratedRegex(@"VERIFY (?:ok last=(\d+) boot=\d+|bad[^\n]*)\r?\n")]
    private static partial Regex VerifyLine();

    /// <summary>Adds `failover` to the `tern bench` command.</summary>
    public static Command WithFailoverBench(Command bench)
    {
        ArgumentNullException.ThrowIfNull(bench);
        var nodes = new Option<int>("--nodes") { Description = "Node processes per run (3-5).", DefaultValueFactory = _ => 3 };
        var guests = new Option<int>("--guests") { Description = "Guests with a 2-way mirrored LV as their disk (0-16).", DefaultValueFactory = _ => 2 };
        var plain = new Option<int>("--plain") { Description = "Guests without disks (0-16).", DefaultValueFactory = _ => 1 };
        var runs = new Option<int>("--runs") { Description = "Runs, each on a fresh cluster (1-20).", DefaultValueFactory = _ => 3 };
        var downAfter = new Option<string?>("--down-after") { Description = "The nodes' --down-after (split-brain resolver stable-after), e.g. 5s; default: the node's (20s)." };
        var timeout = new Option<int>("--timeout") { Description = "Seconds the whole benchmark may take (60-3600).", DefaultValueFactory = _ => 900 };
        var json = new Option<bool>("--json") { Description = "Print the figures as one JSON object." };
        var failover = new Command("failover", "Kill a node running guests (SIGKILL) and time detection, removal and the restart of its guests elsewhere.")
        {
            nodes, guests, plain, runs, downAfter, timeout, json,
        };
        failover.SetAction(async (parse, ct) =>
        {
            var err = parse.InvocationConfiguration.Error;
            var options = new Options(parse.GetValue(nodes), parse.GetValue(guests), parse.GetValue(plain), parse.GetValue(runs), parse.GetValue(downAfter), TimeSpan.FromSeconds(parse.GetValue(timeout)));
            if (options.Nodes is < 3 or > 5 || options.Guests is < 0 or > 16 || options.Plain is < 0 or > 16 || options.Guests + options.Plain == 0
                || options.Runs is < 1 or > 20 || options.Timeout.TotalSeconds is < 60 or > 3600)
            {
                err.WriteLine("tern bench failover: --nodes 3-5, --guests 0-16, --plain 0-16 (at least one guest), --runs 1-20, --timeout 60-3600 s.");
                return RunCommand.UsageError;
            }
            if (options.DownAfter is { } d && (ParseDuration(d) is not { } span || span < TimeSpan.FromMilliseconds(500) || span > TimeSpan.FromMinutes(10)))
            {
                err.WriteLine($"tern bench failover: --down-after '{d}' is not a duration from 500ms to 10m (e.g. 5s).");
                return RunCommand.UsageError;
            }
            using var budget = CancellationTokenSource.CreateLinkedTokenSource(ct);
            budget.CancelAfter(options.Timeout);
            var results = new List<RunResult>();
            try
            {
                for (int i = 0; i < options.Runs; i++)
                {
                    var r = await RunOnceAsync(options, err, budget.Token);
                    err.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"bench: run {i + 1}: unreachable after {r.UnreachableMs:0} ms, removed after {r.RemovedMs:0} ms, last guest's console after {r.Guests.Max(g => g.ConsoleMs):0} ms"));
                    foreach (var g in r.Guests.Where(g => g.Disk))
                    {
                        err.WriteLine(string.Create(CultureInfo.InvariantCulture,
                            $"bench: run {i + 1}: {g.Vm}: ACK {g.LastAckBeforeKill} before the kill, then {g.Verify} on {g.Host}, ACK {g.FirstNewAck} after {g.FirstAckMs:0} ms"));
                    }
                    results.Add(r);
                }
            }
            catch (OperationCanceledException) when (!ct.IsCancellationRequested)
            {
                err.WriteLine($"tern bench failover: did not finish within {options.Timeout.TotalSeconds:0} s (--timeout).");
                return 1;
            }
            catch (BenchException e)
            {
                err.WriteLine($"tern bench failover: {e.Message}");
                return 1;
            }
            Print(options, results, parse.GetValue(json), parse.InvocationConfiguration.Output);
            // The figures stand, but a lost acknowledged record is a failure of the cluster.
            if (results.SelectMany(r => r.Guests).Where(g => g.Intact == false).ToList() is { Count: > 0 } lost)
            {
                err.WriteLine("tern bench failover: acknowledged records lost: " + string.Join("; ", lost.Select(g =>
                    $"{g.Vm} (ACK {g.LastAckBeforeKill} before the kill, then '{g.Verify}')")));
                return 1;
            }
            return 0;
        });
        bench.Subcommands.Add(failover);
        return bench;
    }

    private sealed record Options(int Nodes, int Guests, int Plain, int Runs, string? DownAfter, TimeSpan Timeout)
    {
        public TimeSpan StableAfter => DownAfter is { } d ? ParseDuration(d)!.Value : TimeSpan.FromSeconds(20);
    }

    /// <summary>
    /// One guest's restart, in milliseconds from the kill. Disk guests also: the last ACK seen
    /// before the kill, the new generation's VERIFY line, the last record it found intact, and its
    /// first ACK after the VERIFY (the number and when it came).
    /// </summary>
    private sealed record GuestResult(string Vm, bool Disk, string Host, long Generation, double LostMs, double PlacedMs, double StartedMs, double ConsoleMs,
        long? LastAckBeforeKill = null, string? Verify = null, long? VerifiedLast = null, long? FirstNewAck = null, double? FirstAckMs = null)
    {
        /// <summary>Every acknowledged record intact: VERIFY ok, up to at least the last ACK before the kill.</summary>
        public bool? Intact => Disk ? VerifiedLast is { } last && last >= (LastAckBeforeKill ?? 0) : null;
    }

    private sealed record RunResult(double UnreachableMs, double RemovedMs, IReadOnlyList<GuestResult> Guests);

    /// <summary>A cluster event as the API streams it.</summary>
    private sealed record Event(DateTimeOffset Time, string Kind, string? Vm, string? Host, long Generation, string? Detail);

    [GeneratedRegex(@"^(\d+(?:\.\d+)?)(ms|s|m)$")]
    private static partial Regex DurationPattern();

    private static TimeSpan? ParseDuration(string text)
    {
        var m = DurationPattern().Match(text.Trim());
        if (!m.Success)
            return null;
        double value = double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
        return m.Groups[2].Value switch
        {
            "ms" => TimeSpan.FromMilliseconds(value),
            "s" => TimeSpan.FromSeconds(value),
            _ => TimeSpan.FromMinutes(value),
        };
    }

    private static async Task<RunResult> RunOnceAsync(Options options, TextWriter err, CancellationToken ct)
    {
        string dir = Directory.CreateTempSubdirectory("tern-bench-failover-").FullName;
        var nodes = new List<ChildNode>();
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(60) };
        using var stopWatchers = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var watchers = new List<Task>();
        try
        {
            string kernel = Path.Combine(dir, "idle.bin");
            await File.WriteAllBytesAsync(kernel, IdleGuest.Image(), ct);
            string verifier = Path.Combine(dir, VerifierResource);
            await File.WriteAllBytesAsync(verifier, VerifierImage(), ct);
            int total = options.Guests + options.Plain;
            // node-2 always has the most free memory, so the scheduler puts every guest there; the
            // others together have room for all of them after the kill.
            ulong mib = GuestBytes >> 20;
            string[] memory = [.. Enumerable.Range(1, options.Nodes).Select(i => i switch
            {
                1 => "256M",
                2 => $"{2 * (ulong)total * mib + 1024}M",
                _ => $"{(ulong)total * mib + mib}M",
            })];
            string[] extra = options.DownAfter is { } d ? ["--down-after", d] : [];
            int seedPort = FreePort();
            string journal = $"Data Source={Path.Combine(dir, "cluster.db")}";
            for (int i = 0; i < options.Nodes; i++)
                nodes.Add(ChildNode.Start($"node-{i + 1}", dir, i == 0 ? seedPort : FreePort(), seedPort, memory[i], journal, extra));
            string api = await nodes[0].ApiAsync(ct);
            var apis = new List<string> { api };
            foreach (var n in nodes.Skip(1))
                apis.Add(await n.ApiAsync(ct));
            await WaitForHostsAsync(http, apis, options.Nodes, nodes, ct);

            var vms = new List<(string Name, bool Disk)>();
            if (options.Guests > 0)
            {
                int pvMib = 16 * options.Guests + 32;
                for (int i = 1; i <= options.Nodes; i++)
                    await VerbAsync(http, api, ct, "pv", "create", $"pv{i}.img", "--size", $"{pvMib}M", "--host", $"node-{i}");
                await VerbAsync(http, api, ct, ["vg", "create", "vg0", .. Enumerable.Range(1, options.Nodes).Select(i => $"pv{i}.img")]);
                for (int k = 1; k <= options.Guests; k++)
                {
                    await VerbAsync(http, api, ct, "lv", "create", $"vg0/d{k}", "--size", "8M", "--type", "mirror", "--mirrors", "2");
                    vms.Add(($"d{k}", true));
                }
            }
            for (int k = 1; k <= options.Plain; k++)
                vms.Add(($"p{k}", false));
            var generations = new Dictionary<string, long>();
            foreach (var (name, disk) in vms)
            {
                using var created = await http.PostAsJsonAsync($"{api}/api/vms",
                    new { name, kernel = disk ? verifier : kernel, memoryBytes = GuestBytes, disks = disk ? new[] { $"lv:vg0/{name}" } : [] }, ct);
                if (!created.IsSuccessStatusCode)
                    throw new BenchException($"could not create {name}: {(int)created.StatusCode} {await created.Content.ReadAsStringAsync(ct)}");
                var vm = await http.GetFromJsonAsync<JsonElement>($"{api}/api/vms/{name}", ct);
                string host = vm.GetProperty("host").GetString() ?? "";
                if (vm.GetProperty("state").GetString() != "running" || host != Victim)
                    throw new BenchException($"{name} is {vm.GetProperty("state")} on '{host}', not running on {Victim}: {vm}");
                generations[name] = vm.GetProperty("generation").GetInt64();
            }
            // The disk guests write while node-2 dies: each has acknowledged a few batches first,
            // and their consoles are followed up to the kill (the last ACK seen then was acknowledged).
            var acks = new ConcurrentDictionary<string, long>();
            using var stopAcks = CancellationTokenSource.CreateLinkedTokenSource(ct);
            var ackWatchers = vms.Where(v => v.Disk).Select(v => FollowAcksAsync(http, api, v.Name, acks, stopAcks.Token)).ToList();
            var writingBy = DateTime.UtcNow.AddSeconds(60);
            while (vms.Where(v => v.Disk).Any(v => acks.GetValueOrDefault(v.Name) < AcksBeforeKill))
            {
                if (DateTime.UtcNow > writingBy)
                    throw new BenchException($"the disk guests did not all acknowledge {AcksBeforeKill} records within 60 s: "
                        + string.Join(", ", vms.Where(v => v.Disk).Select(v => $"{v.Name} ACK {acks.GetValueOrDefault(v.Name)}")));
                await Task.Delay(50, ct);
            }
            err.WriteLine($"bench: {options.Nodes} nodes up, {options.Guests} guests on mirrored LVs (writing) and {options.Plain} without disks running on {Victim}; killing it");

            var events = new ConcurrentQueue<Event>();
            var connected = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            watchers.Add(WatchEventsAsync(api, events, connected, stopWatchers.Token));
            await connected.Task.WaitAsync(TimeSpan.FromSeconds(30), ct);
            await Task.Delay(TimeSpan.FromSeconds(1), ct); // a host report or two after the last start

            var killed = DateTimeOffset.UtcNow;
            nodes[1].Kill();
            var lastAcks = vms.Where(v => v.Disk).ToDictionary(v => v.Name, v => acks.GetValueOrDefault(v.Name));
            await stopAcks.CancelAsync();
            await Task.WhenAll(ackWatchers);
            double Since(DateTimeOffset t) => Math.Max(0, (t - killed).TotalMilliseconds);

            // Bounded: detection (a few seconds), the resolver's stable-after, the restarts.
            using var runBudget = CancellationTokenSource.CreateLinkedTokenSource(ct);
            runBudget.CancelAfter(options.StableAfter + TimeSpan.FromSeconds(180));
            var unreachable = UnreachableAsync(http, api, runBudget.Token);
            var guests = vms.Select(v => GuestAsync(http, api, v.Name, v.Disk ? lastAcks[v.Name] : null, generations[v.Name], events, Since, runBudget.Token)).ToList();
            double unreachableMs;
            GuestResult[] results;
            try
            {
                unreachableMs = Since(await unreachable);
                results = await Task.WhenAll(guests);
            }
            catch (OperationCanceledException) when (!ct.IsCancellationRequested)
            {
                throw new BenchException($"the guests were not all running elsewhere within {(options.StableAfter + TimeSpan.FromSeconds(180)).TotalSeconds:0} s of the kill; events seen: "
                    + string.Join(", ", events.Select(e => $"{e.Kind} {e.Vm} {e.Host} {e.Generation}")));
            }
            // The controllers may restart the guests a moment before node-1's event log records
            // the removal (two vantage points of one gossip): wait for it, bounded.
            var removedBy = DateTime.UtcNow.AddSeconds(15);
            Event? removed;
            while ((removed = events.FirstOrDefault(e => e.Kind == "host.left" && e.Host == Victim)) is null && DateTime.UtcNow < removedBy)
                await Task.Delay(100, ct);
            if (removed is null)
                throw new BenchException($"{Victim} was never reported removed (host.left) within 15 s of its guests' restart");
            return new RunResult(unreachableMs, Since(removed.Time), results);
        }
        finally
        {
            await stopWatchers.CancelAsync();
            foreach (var w in watchers)
            {
                try
                {
                    await w;
                }
                catch (Exception e) when (e is OperationCanceledException or HttpRequestException or IOException)
                {
                    // the watcher ended with the run
                }
            }
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

    private static async Task VerbAsync(HttpClient http, string api, CancellationToken ct, params string[] args)
    {
        using var response = await http.PostAsJsonAsync($"{api}/api/storage/verbs", new { args }, ct);
        string body = await response.Content.ReadAsStringAsync(ct);
        if (!response.IsSuccessStatusCode)
            throw new BenchException($"tern {string.Join(' ', args)}: {(int)response.StatusCode} {body}");
        var result = JsonDocument.Parse(body).RootElement;
        if (result.GetProperty("exitCode").GetInt32() != 0)
            throw new BenchException($"tern {string.Join(' ', args)} exited {result.GetProperty("exitCode")}: {result.GetProperty("stderr").GetString()?.Trim()}");
    }

    // The time node-1's scheduler stops listing the victim (it drops a host when it becomes unreachable).
    private static async Task<DateTimeOffset> UnreachableAsync(HttpClient http, string api, CancellationToken ct)
    {
        while (true)
        {
            var hosts = await http.GetFromJsonAsync<JsonElement[]>($"{api}/api/hosts", ct);
            var now = DateTimeOffset.UtcNow;
            if (!hosts!.Any(h => h.GetProperty("name").GetString() == Victim))
                return now;
            await Task.Delay(50, ct);
        }
    }

    // One guest's way back: its events (a newer generation than the one killed), then its console
    // (a disk guest's: up to its VERIFY line and its first ACK after it).
    private static async Task<GuestResult> GuestAsync(HttpClient http, string api, string vm, long? lastAck, long killedGeneration,
        ConcurrentQueue<Event> events, Func<DateTimeOffset, double> since, CancellationToken ct)
    {
        bool disk = lastAck is not null;
        Event? Find(string kind) => events.FirstOrDefault(e => e.Vm == vm && e.Kind == kind && e.Generation >= killedGeneration
            && (kind == "vm.lost" ? e.Generation == killedGeneration : e.Generation > killedGeneration));
        while (Find("vm.placed") is null)
            await Task.Delay(20, ct);
        var console = ConsoleAsync(http, api, vm, disk, ct);
        Event? started;
        while ((started = Find("vm.started")) is null || Find("vm.lost") is null || !console.IsCompleted)
        {
            // A restart that fails leaves the VM failed: report it with its reason instead of waiting.
            if (Find("vm.failed") is { } failed)
                throw new BenchException($"{vm} generation {failed.Generation} failed to start on {failed.Host}: {failed.Detail}");
            await Task.Delay(20, ct);
        }
        var placed = Find("vm.placed")!;
        var lost = Find("vm.lost")!;
        var seen = await console;
        return new GuestResult(vm, disk, started.Host ?? "", started.Generation, since(lost.Time), since(placed.Time), since(started.Time), since(seen.FirstOutput),
            lastAck, seen.Verify, seen.VerifiedLast, seen.FirstAck, seen.FirstAckTime is { } t ? since(t) : null);
    }

    // The disk verifier, as built into tern.
    private static byte[] VerifierImage()
    {
        using var resource = typeof(FailoverBenchCommand).Assembly.GetManifestResourceStream(VerifierResource)
            ?? throw new BenchException($"tern was built without its {VerifierResource} resource");
        using var bytes = new MemoryStream();
        resource.CopyTo(bytes);
        return bytes.ToArray();
    }

    // Follows a disk guest's console until cancelled, keeping the highest ACK it printed.
    private static async Task FollowAcksAsync(HttpClient http, string api, string vm, ConcurrentDictionary<string, long> acks, CancellationToken ct)
    {
        try
        {
            await ReadConsoleAsync(http, api, vm, text =>
            {
                foreach (Match m in AckLine().Matches(text))
                    acks.AddOrUpdate(vm, long.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture), (_, old) => Math.Max(old, long.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture)));
                return false;
            }, ct);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // the kill: what was seen up to here is the last ACK before it
        }
    }

    /// <summary>What a restarted guest's console showed: its first output, and a verifier's VERIFY line and first ACK after it.</summary>
    private sealed record ConsoleSeen(DateTimeOffset FirstOutput, string? Verify, long? VerifiedLast, long? FirstAck, DateTimeOffset? FirstAckTime);

    // A restarted guest's console: the time its first output arrived; for the verifier, also its
    // VERIFY line and the first ACK after it (a VERIFY bad ends the watch: it writes no more).
    private static async Task<ConsoleSeen> ConsoleAsync(HttpClient http, string api, string vm, bool verifier, CancellationToken ct)
    {
        DateTimeOffset? first = null;
        ConsoleSeen? seen = null;
        await ReadConsoleAsync(http, api, vm, text =>
        {
            var now = DateTimeOffset.UtcNow;
            first ??= now;
            if (!verifier)
            {
                seen = new ConsoleSeen(first.Value, null, null, null, null);
                return true;
            }
            var verify = VerifyLine().Match(text);
            if (!verify.Success)
                return false;
            if (!verify.Groups[1].Success)
            {
                seen = new ConsoleSeen(first.Value, verify.Value.Trim(), null, null, null);
                return true;
            }
            long last = long.Parse(verify.Groups[1].Value, CultureInfo.InvariantCulture);
            var ack = AckLine().Matches(text[(verify.Index + verify.Length)..]).Select(m => long.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture)).FirstOrDefault(n => n > last);
            if (ack == 0)
                return false;
            seen = new ConsoleSeen(first.Value, verify.Value.Trim(), last, ack, now);
            return true;
        }, ct);
        return seen!;
    }

    // Reads a VM's console through the API (asked again until it answers: the new generation may
    // still be booting), handing the text so far (of the current connection, whose backlog
    // replays the generation's output) to `done` after each piece, until it returns true.
    private static async Task ReadConsoleAsync(HttpClient http, string api, string vm, Func<string, bool> done, CancellationToken ct)
    {
        while (true)
        {
            using (var attempt = CancellationTokenSource.CreateLinkedTokenSource(ct))
            {
                attempt.CancelAfter(TimeSpan.FromSeconds(10)); // a stream from a host that died says nothing more: ask again
                try
                {
                    using var response = await http.GetAsync($"{api}/api/vms/{vm}/console", HttpCompletionOption.ResponseHeadersRead, attempt.Token);
                    if (response.IsSuccessStatusCode)
                    {
                        var text = new System.Text.StringBuilder();
                        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(attempt.Token));
                        while (await reader.ReadLineAsync(attempt.Token) is { } line)
                        {
                            if (line.StartsWith("event: end", StringComparison.Ordinal))
                                break;
                            if (line.StartsWith("data: ", StringComparison.Ordinal) && JsonSerializer.Deserialize<string>(line["data: ".Length..]) is { Length: > 0 } piece)
                            {
                                text.Append(piece);
                                if (done(text.ToString()))
                                    return;
                            }
                        }
                    }
                }
                catch (Exception e) when (e is HttpRequestException or IOException || (e is OperationCanceledException && !ct.IsCancellationRequested))
                {
                    // not running yet, or its console moved: ask again
                }
            }
            await Task.Delay(50, ct);
        }
    }

    // Follows node-1's event stream (history first) into `events`.
    private static async Task WatchEventsAsync(string api, ConcurrentQueue<Event> events, TaskCompletionSource connected, CancellationToken ct)
    {
        using var stream = new HttpClient { Timeout = Timeout.InfiniteTimeSpan };
        using var response = await stream.GetAsync($"{api}/api/events", HttpCompletionOption.ResponseHeadersRead, ct);
        response.EnsureSuccessStatusCode();
        connected.TrySetResult();
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(ct));
        while (await reader.ReadLineAsync(ct) is { } line)
        {
            if (!line.StartsWith("data: ", StringComparison.Ordinal))
                continue;
            var e = JsonDocument.Parse(line["data: ".Length..]).RootElement;
            events.Enqueue(new Event(
                DateTimeOffset.Parse(e.GetProperty("time").GetString()!, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal),
                e.GetProperty("kind").GetString()!,
                e.TryGetProperty("vm", out var v) ? v.GetString() : null,
                e.TryGetProperty("host", out var h) ? h.GetString() : null,
                e.GetProperty("generation").GetInt64(),
                e.TryGetProperty("detail", out var detail) ? detail.GetString() : null));
        }
    }

    // Formed: the scheduler lists every host and every node sees every member Up and reachable
    // (the split-brain resolver counts only Up members: a kill before then is another experiment).
    private static async Task WaitForHostsAsync(HttpClient http, List<string> apis, int count, List<ChildNode> nodes, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow.AddSeconds(120);
        while (true)
        {
            try
            {
                if ((await http.GetFromJsonAsync<JsonElement[]>($"{apis[0]}/api/hosts", ct))!.Length == count && await AllUpAsync(http, apis, count, ct))
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

    private static async Task<bool> AllUpAsync(HttpClient http, List<string> apis, int count, CancellationToken ct)
    {
        foreach (string api in apis)
        {
            var members = (await http.GetFromJsonAsync<JsonElement[]>($"{api}/api/cluster/members", ct))!;
            if (members.Length != count || !members.All(m => m.GetProperty("status").GetString() == "up" && m.GetProperty("reachable").GetBoolean()))
                return false;
        }
        return true;
    }

    // Per phase: every sample across runs (per run for the host phases, per guest for the others).
    private static Dictionary<string, List<double>> Samples(List<RunResult> runs, Func<GuestResult, bool> which) => new()
    {
        ["unreachable"] = [.. runs.Select(r => r.UnreachableMs)],
        ["removed"] = [.. runs.Select(r => r.RemovedMs)],
        ["lost"] = [.. runs.SelectMany(r => r.Guests).Where(which).Select(g => g.LostMs)],
        ["placed"] = [.. runs.SelectMany(r => r.Guests).Where(which).Select(g => g.PlacedMs)],
        ["started"] = [.. runs.SelectMany(r => r.Guests).Where(which).Select(g => g.StartedMs)],
        ["console"] = [.. runs.SelectMany(r => r.Guests).Where(which).Select(g => g.ConsoleMs)],
    };

    private static void Print(Options options, List<RunResult> runs, bool json, TextWriter output)
    {
        var all = Samples(runs, _ => true);
        var disk = Samples(runs, g => g.Disk);
        var plain = Samples(runs, g => !g.Disk);
        object? Summary(List<double> s) => s.Count == 0 ? null : new { median = Math.Round(Median(s), 1), max = Math.Round(s.Max(), 1) };
        if (json)
        {
            output.WriteLine(JsonSerializer.Serialize(new Dictionary<string, object?>
            {
                ["nodes"] = options.Nodes,
                ["disk_guests"] = options.Guests,
                ["plain_guests"] = options.Plain,
                ["runs"] = runs.Count,
                ["down_after_ms"] = options.StableAfter.TotalMilliseconds,
                ["down_after_source"] = options.DownAfter is null ? "node default" : "--down-after",
                ["failure_detector"] = FailureDetector,
                ["phases"] = Phases,
                ["summary_ms"] = Phases.ToDictionary(p => p, p => Summary(all[p])),
                ["disk_guests_ms"] = Phases.ToDictionary(p => p, p => Summary(disk[p])),
                ["plain_guests_ms"] = Phases.ToDictionary(p => p, p => Summary(plain[p])),
                ["first_ack_ms"] = Summary([.. runs.SelectMany(r => r.Guests).Where(g => g.FirstAckMs is not null).Select(g => g.FirstAckMs!.Value)]),
                ["acked_records_intact"] = runs.SelectMany(r => r.Guests).Where(g => g.Disk).All(g => g.Intact == true),
                ["run_details"] = runs.Select(r => new
                {
                    victim = Victim,
                    unreachable_ms = Math.Round(r.UnreachableMs, 1),
                    removed_ms = Math.Round(r.RemovedMs, 1),
                    guests = r.Guests.Select(g => new
                    {
                        vm = g.Vm,
                        disk = g.Disk,
                        host = g.Host,
                        generation = g.Generation,
                        lost_ms = Math.Round(g.LostMs, 1),
                        placed_ms = Math.Round(g.PlacedMs, 1),
                        started_ms = Math.Round(g.StartedMs, 1),
                        console_ms = Math.Round(g.ConsoleMs, 1),
                        last_ack_before_kill = g.LastAckBeforeKill,
                        verify = g.Verify,
                        verified_last = g.VerifiedLast,
                        intact = g.Intact,
                        first_new_ack = g.FirstNewAck,
                        first_ack_ms = g.FirstAckMs is { } a ? Math.Round(a, 1) : (double?)null,
                    }),
                }),
                ["processors"] = Environment.ProcessorCount,
            }));
            return;
        }
        var c = CultureInfo.InvariantCulture;
        output.WriteLine(string.Create(c, $"{options.Nodes} nodes, {options.Guests} guests on 2-way mirrored LVs + {options.Plain} without disks on {Victim}, SIGKILL, {runs.Count} runs"));
        output.WriteLine(string.Create(c, $"down-after (SBR stable-after) {options.StableAfter.TotalSeconds:0.###} s ({(options.DownAfter is null ? "node default" : "--down-after")}); {FailureDetector}"));
        output.WriteLine("ms from the kill        median        max   (disk guests median / plain median)");
        foreach (var p in Phases)
        {
            string split = p is "unreachable" or "removed" ? "" : string.Create(c, $"   ({Fmt(disk[p])} / {Fmt(plain[p])})");
            output.WriteLine(string.Create(c, $"{p,-18} {Median(all[p]),11:F0} {all[p].Max(),10:F0}{split}"));
        }
        var acked = runs.SelectMany(r => r.Guests).Where(g => g.FirstAckMs is not null).Select(g => g.FirstAckMs!.Value).ToList();
        if (acked.Count > 0)
            output.WriteLine(string.Create(c, $"{"first new ACK",-18} {Median(acked),11:F0} {acked.Max(),10:F0}   (disk guests)"));
        foreach (var (r, i) in runs.Select((r, i) => (r, i)))
        {
            foreach (var g in r.Guests.Where(g => g.Disk))
            {
                output.WriteLine(string.Create(c,
                    $"run {i + 1} {g.Vm}: ACK {g.LastAckBeforeKill} before the kill; generation {g.Generation} on {g.Host}: {g.Verify} ({(g.Intact == true ? "every acknowledged record intact" : "ACKNOWLEDGED RECORDS LOST")}), ACK {g.FirstNewAck}"));
            }
        }
    }

    private static string Fmt(List<double> s) => s.Count == 0 ? "-" : Median(s).ToString("F0", CultureInfo.InvariantCulture);
}
