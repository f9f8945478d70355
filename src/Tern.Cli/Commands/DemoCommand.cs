// `tern demo`: the README's first command. Three nodes in this process (no external service),
// one guest (our Linux image with Debian's OpenSBI when both are at hand, else the heartbeat
// guest built into tern), its console heartbeat as it comes, the cluster and the guest as
// tables, for --duration seconds or until Ctrl-C; then everything stops and its data is deleted.
//
// The demo is a list of steps (DemoScenario.Steps) run in order against one DemoContext, so a
// later feature adds itself as a step: live migration inserts a step that moves the guest to
// another host between "show the tables" and "watch until the end" (see DemoScenario).
using System.CommandLine;
using System.Diagnostics;
using System.Net.Http.Json;
using System.Runtime.InteropServices;
using System.Text.Json;
using System.Threading.Channels;
using Tern.Cluster.Actors;
using Tern.Cluster.Protocol;

namespace Tern.Cli.Commands;

/// <summary>The `tern demo` verb.</summary>
public static class DemoCommand
{
    /// <summary>Embedded resource name of the heartbeat guest (src/guests/bin/heartbeat/heartbeat.elf).</summary>
    public const string HeartbeatResource = "heartbeat.elf";

    /// <summary>Builds the command.</summary>
    public static Command Create()
    {
        var duration = new Option<double>("--duration") { Description = "Seconds the demo runs before it stops the cluster (Ctrl-C stops it earlier).", DefaultValueFactory = _ => 20 };
        var guest = new Option<string>("--guest") { Description = "auto: Linux if its image and OpenSBI are at hand, else the heartbeat guest; linux; heartbeat.", DefaultValueFactory = _ => "auto" };
        guest.AcceptOnlyFromAmong("auto", "linux", "heartbeat");
        var demo = new Command("demo", "Run a three-node cluster in this process, boot a guest on it and show its console, hosts and state.") { duration, guest };
        demo.SetAction((parse, ct) => RunAsync(parse.GetValue(duration), parse.GetValue(guest)!, parse.InvocationConfiguration.Output, parse.InvocationConfiguration.Error, ct));
        return demo;
    }

    private static async Task<int> RunAsync(double seconds, string guestChoice, TextWriter output, TextWriter err, CancellationToken ct)
    {
        if (!(seconds is > 0 and <= 86400))
        {
            err.WriteLine("tern demo: --duration must be a number of seconds between 0 and 86400.");
            return RunCommand.UsageError;
        }
        string home = LocalCluster.Home();
        string dataDir = Path.Combine(home, "demo");
        DemoGuest? guest = DemoGuest.Find(guestChoice, dataDir, out string? why);
        if (guest is null)
        {
            err.WriteLine($"tern demo: {why}");
            return RunCommand.UsageError;
        }
        var clock = Stopwatch.StartNew();
        var end = DateTime.UtcNow.AddSeconds(seconds);
        // Ctrl-C and SIGTERM end the demo through this token; the signal is consumed so the
        // cluster is stopped and its data deleted before the process ends.
        using var interrupted = CancellationTokenSource.CreateLinkedTokenSource(ct);
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, Interrupt);
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Interrupt);
        ct = interrupted.Token;
        using var timer = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timer.CancelAfter(TimeSpan.FromSeconds(seconds));
        output.WriteLine($"tern demo: starting {DemoScenario.Nodes} nodes in this process (data in {dataDir}); the demo ends after {seconds:0.#} s or on Ctrl-C");
        output.Flush();
        EmbeddedCluster? cluster = null;
        try
        {
            if (Directory.Exists(dataDir))
                Directory.Delete(dataDir, recursive: true); // what an interrupted earlier demo left
            guest = guest.Materialize();
            cluster = await EmbeddedCluster.StartAsync(DemoScenario.Nodes, dataDir, DemoScenario.MemoryPerNode, TimeSpan.FromSeconds(60), timer.Token);
            output.WriteLine($"tern demo: {DemoScenario.Nodes} nodes formed a cluster in {clock.Elapsed.TotalSeconds:0.0} s; APIs {string.Join(", ", cluster.Api)}");
            await using var context = new DemoContext(cluster, guest, output, end);
            try
            {
                foreach (var step in DemoScenario.Steps())
                    await step(context, timer.Token);
            }
            catch (OperationCanceledException) when (timer.IsCancellationRequested && !ct.IsCancellationRequested)
            {
                // the demo's time is up
            }
            output.WriteLine();
            output.WriteLine($"tern demo: {seconds:0.#} s are up; {context.Heartbeats} heartbeats seen. The cluster and the guest now:");
            await DemoScenario.ShowTablesAsync(context, ct);
            output.WriteLine("tern demo: stopping the cluster");
            return 0;
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            output.WriteLine();
            output.WriteLine("tern demo: interrupted; stopping the cluster");
            return 130;
        }
        catch (DemoFailedException e)
        {
            err.WriteLine($"tern demo: {e.Message}");
            return 1;
        }
        catch (Exception e) when (e is TimeoutException or HttpRequestException or IOException)
        {
            err.WriteLine($"tern demo: {e.Message}");
            return 1;
        }
        finally
        {
            output.Flush();
            if (cluster is not null)
            {
                await DemoScenario.DeleteGuestAsync(cluster);
                await cluster.DisposeAsync();
            }
        }

        void Interrupt(PosixSignalContext context)
        {
            context.Cancel = true;
            interrupted.Cancel();
        }
    }
}

/// <summary>The demo's steps, in order. Each gets the shared context and the demo's cancellation.</summary>
public static class DemoScenario
{
    /// <summary>Nodes of the demo cluster.</summary>
    public const int Nodes = 3;

    /// <summary>Memory each demo node gives guests: room for the Linux guest and a migration target.</summary>
    public const ulong MemoryPerNode = 1UL << 30;

    /// <summary>The VM's name.</summary>
    public const string VmName = "demo";

    /// <summary>
    /// The steps: boot, three heartbeats, the tables, then a tour of the cluster by live
    /// migration (each host in turn, three heartbeats on each), the tables again, and the
    /// console until the demo's time is up. The console follows the guest by itself
    /// (<see cref="DemoContext"/> re-attaches when a console ends while the VM runs).
    /// </summary>
    public static IReadOnlyList<Func<DemoContext, CancellationToken, Task>> Steps() =>
    [
        BootAsync,
        (c, ct) => c.WatchConsoleAsync(heartbeats: 3, ct),
        ShowTablesAsync,
        TourAsync,
        ShowTablesAsync,
        (c, ct) => c.WatchConsoleAsync(heartbeats: int.MaxValue, ct),
    ];

    /// <summary>Live-migrates the guest to each other host in turn, printing each migration's figures and watching the heartbeat go on.</summary>
    public static async Task TourAsync(DemoContext c, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(c);
        for (int hop = 0; hop < Nodes; hop++)
        {
            await MigrateAsync(c, ct);
            await c.WatchConsoleAsync(heartbeats: 3, ct);
        }
    }

    /// <summary>Live-migrates the guest from its host to the next node (node-1 → node-2 → node-3 → node-1) through the API and prints the figures.</summary>
    public static async Task MigrateAsync(DemoContext c, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(c);
        string path = $"{c.Cluster.Api[0]}/api/vms/{VmName}";
        var vm = await c.Cluster.Http.GetFromJsonAsync<JsonElement>(path, ct);
        string from = vm.GetProperty("host").GetString() ?? "";
        int index = from.StartsWith("node-", StringComparison.Ordinal) && int.TryParse(from.AsSpan(5), out int n) ? n : 0;
        string to = $"node-{(index % Nodes) + 1}";
        c.Output.WriteLine($"tern demo: live-migrating '{VmName}' from {from} to {to} while it runs");
        c.Output.Flush();
        using (var response = await c.Cluster.Http.PostAsJsonAsync(path + "/migrate", new { to }, ct))
        {
            if (!response.IsSuccessStatusCode)
            {
                var refusal = await response.Content.ReadFromJsonAsync<JsonElement>(ct);
                throw new DemoFailedException($"the cluster refused to migrate the guest: {(refusal.TryGetProperty("error", out var e) ? e.GetString() : response.ReasonPhrase)}");
            }
        }
        System.Text.Json.Nodes.JsonNode? status;
        while (true)
        {
            await Task.Delay(100, ct);
            status = await c.Cluster.Http.GetFromJsonAsync<System.Text.Json.Nodes.JsonNode>(path + "/migration", ct);
            if (status?["status"]?.GetValue<string>() is { } s && Tern.Cluster.Actors.HostDrain.IsFinal(s))
                break;
        }
        foreach (string line in MigrationCommands.Figures(MigrationCommands.Result(status!)).Split('\n', StringSplitOptions.RemoveEmptyEntries))
            c.Output.WriteLine($"tern demo: {line}");
        c.Output.Flush();
    }

    /// <summary>Creates the VM and starts following its console.</summary>
    public static async Task BootAsync(DemoContext c, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(c);
        c.Output.WriteLine($"tern demo: booting {c.Guest.Description} as VM '{VmName}' ({c.Guest.MemoryBytes >> 20} MiB)");
        var body = new
        {
            name = VmName,
            kernel = c.Guest.Kernel,
            bios = c.Guest.Bios,
            initrd = c.Guest.Initrd,
            append = c.Guest.Append,
            memoryBytes = c.Guest.MemoryBytes,
            harts = 1,
        };
        using var response = await c.Cluster.Http.PostAsJsonAsync(c.Cluster.Api[0] + "/api/vms", body, ct);
        var vm = await response.Content.ReadFromJsonAsync<JsonElement>(ct);
        if (!response.IsSuccessStatusCode)
            throw new DemoFailedException($"the cluster refused the guest: {(vm.TryGetProperty("error", out var e) ? e.GetString() : response.ReasonPhrase)}");
        c.Output.WriteLine($"tern demo: '{VmName}' runs on {vm.GetProperty("host").GetString()} (generation {vm.GetProperty("generation").GetInt64()}); its console:");
        c.FollowConsole();
    }

    /// <summary>
    /// Deletes the demo's VM (best effort, 10 s at most) before the nodes stop: a cluster that
    /// stops around a running VM hands its controller from node to node on the way down.
    /// </summary>
    public static async Task DeleteGuestAsync(EmbeddedCluster cluster)
    {
        ArgumentNullException.ThrowIfNull(cluster);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        try
        {
            using var _ = await cluster.Http.DeleteAsync($"{cluster.Api[0]}/api/vms/{VmName}", timeout.Token);
        }
        catch (Exception e) when (e is HttpRequestException or OperationCanceledException)
        {
            // the cluster stops anyway
        }
    }

    /// <summary>Prints the cluster's hosts and the guest as tables.</summary>
    public static async Task ShowTablesAsync(DemoContext c, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(c);
        var hosts = await c.Cluster.Http.GetFromJsonAsync<JsonElement>(c.Cluster.Api[0] + "/api/hosts", ct);
        var vm = await c.Cluster.Http.GetFromJsonAsync<JsonElement>($"{c.Cluster.Api[0]}/api/vms/{VmName}", ct);
        c.Output.WriteLine();
        c.Output.WriteLine("Hosts:");
        c.Output.Write(ClusterClientCommands.HostTable(hosts));
        c.Output.WriteLine();
        c.Output.WriteLine("Guests:");
        c.Output.Write(ClusterClientCommands.VmTable(vm));
        c.Output.WriteLine();
        c.Output.Flush();
    }
}

/// <summary>What the demo's steps share: the cluster, the guest, the output, the guest's console lines.</summary>
public sealed class DemoContext : IAsyncDisposable
{
    private readonly Channel<string> _lines = Channel.CreateUnbounded<string>();
    private readonly CancellationTokenSource _stop = new();
    private Task _pump = Task.CompletedTask;
    private int _heartbeats;

    /// <summary>Creates the context of one demo run.</summary>
    public DemoContext(EmbeddedCluster cluster, DemoGuest guest, TextWriter output, DateTime end)
    {
        Cluster = cluster;
        Guest = guest;
        Output = output;
        End = end;
    }

    /// <summary>The embedded cluster.</summary>
    public EmbeddedCluster Cluster { get; }

    /// <summary>The guest being shown.</summary>
    public DemoGuest Guest { get; }

    /// <summary>Where the demo writes.</summary>
    public TextWriter Output { get; }

    /// <summary>When the demo ends.</summary>
    public DateTime End { get; }

    /// <summary>Heartbeat lines seen so far.</summary>
    public int Heartbeats => _heartbeats;

    /// <summary>
    /// Starts collecting the VM's console lines. When a console ends while the VM still runs (it
    /// moved to another host, or reset), it attaches again, skipping the new host's backlog.
    /// </summary>
    public void FollowConsole() => _pump = Task.Run(() => PumpAsync(_stop.Token));

    private async Task PumpAsync(CancellationToken ct)
    {
        var partial = new System.Text.StringBuilder();
        bool first = true;
        while (!ct.IsCancellationRequested)
        {
            using (var subscription = ConsoleSubscription.Open(Cluster.System(0), Cluster.VmRegion(0), DemoScenario.VmName))
            {
                bool backlog = !first;
                try
                {
                    await foreach (var message in subscription.Reader.ReadAllAsync(ct))
                    {
                        if (message is not ConsoleOutput o)
                            continue;
                        if (backlog)
                        {
                            backlog = false;
                            continue;
                        }
                        partial.Append(System.Text.Encoding.UTF8.GetString(o.Data).Replace("\r", "", StringComparison.Ordinal));
                        string text = partial.ToString();
                        int cut = text.LastIndexOf('\n');
                        if (cut < 0)
                            continue;
                        foreach (string line in text[..cut].Split('\n'))
                            _lines.Writer.TryWrite(line);
                        partial.Clear().Append(text[(cut + 1)..]);
                    }
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
            first = false;
            await Task.Delay(250, ct).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
    }

    /// <summary>Prints console lines as they come until <paramref name="heartbeats"/> more heartbeat lines have been seen (or the demo ends).</summary>
    public async Task WatchConsoleAsync(int heartbeats, CancellationToken ct)
    {
        int target = heartbeats == int.MaxValue ? int.MaxValue : _heartbeats + heartbeats;
        while (_heartbeats < target)
        {
            string line = await _lines.Reader.ReadAsync(ct);
            if (line.Contains("tern-heartbeat", StringComparison.Ordinal))
                _heartbeats++;
            Output.WriteLine($"  {DemoScenario.VmName} | {line}");
            Output.Flush();
        }
    }

    /// <inheritdoc/>
    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await _pump.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        _stop.Dispose();
    }
}

/// <summary>The demo's guest: images on this machine and how to boot them.</summary>
public sealed record DemoGuest(string Description, string Kernel, string? Bios, string? Initrd, string Append, ulong MemoryBytes, byte[]? EmbeddedKernel = null)
{
    /// <summary>Debian's OpenSBI (package opensbi).</summary>
    public const string OpenSbi = "/usr/lib/riscv64-linux-gnu/opensbi/generic/fw_jump.elf";

    /// <summary>Picks the guest: Linux when its images and the firmware exist (for auto and linux), else the heartbeat guest; null with the reason when the choice cannot be met.</summary>
    public static DemoGuest? Find(string choice, string dataDir, out string? why)
    {
        why = null;
        if (choice is "auto" or "linux")
        {
            string? linux = FindLinuxDir();
            if (linux is not null && File.Exists(OpenSbi))
            {
                return new DemoGuest("Linux (src/guests/linux/out/Image.gz + initramfs, OpenSBI fw_jump)", Path.Combine(linux, "Image.gz"), OpenSbi,
                    Path.Combine(linux, "initramfs.cpio.gz"), "console=ttyS0", 256UL << 20);
            }
            if (choice == "linux")
            {
                why = linux is null
                    ? "--guest linux: src/guests/linux/out/Image.gz was not found above the current directory or tern's own"
                    : $"--guest linux: the firmware {OpenSbi} is missing (apt-get install opensbi)";
                return null;
            }
        }
        using var resource = typeof(DemoCommand).Assembly.GetManifestResourceStream(DemoCommand.HeartbeatResource)
            ?? throw new InvalidOperationException($"tern was built without its {DemoCommand.HeartbeatResource} resource");
        using var bytes = new MemoryStream();
        resource.CopyTo(bytes);
        return new DemoGuest("the heartbeat guest (src/guests/heartbeat, built into tern)", Path.Combine(dataDir, "guest", "heartbeat.elf"), null, null, "", 32UL << 20, bytes.ToArray());
    }

    /// <summary>Writes a built-in kernel where the hosts read it; returns the guest with absolute paths.</summary>
    public DemoGuest Materialize()
    {
        if (EmbeddedKernel is not null)
        {
            Directory.CreateDirectory(Path.GetDirectoryName(Kernel)!);
            File.WriteAllBytes(Kernel, EmbeddedKernel);
        }
        return this;
    }

    private static string? FindLinuxDir()
    {
        foreach (string start in new[] { Environment.CurrentDirectory, AppContext.BaseDirectory })
        {
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                string candidate = Path.Combine(dir.FullName, "src", "guests", "linux", "out");
                if (File.Exists(Path.Combine(candidate, "Image.gz")) && File.Exists(Path.Combine(candidate, "initramfs.cpio.gz")))
                    return candidate;
            }
        }
        return null;
    }
}

/// <summary>A demo step could not go on (the reason is for the user).</summary>
public sealed class DemoFailedException(string message) : Exception(message);
