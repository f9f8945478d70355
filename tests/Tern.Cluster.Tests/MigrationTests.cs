// Live migration through the cluster, three nodes in one process: a running guest moves to
// another host with a new generation and its console follows; refusals and failures (cancel,
// the target leaving) leave it running on its source, exactly once; a host drains by migration;
// one migration is one trace with spans on both hosts, and its downtime is a metric.
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Text.RegularExpressions;
using Akka.Actor;
using Akka.Hosting;
using Tern.Cluster.Actors;
using Tern.Cluster.Migration;
using Tern.Cluster.Protocol;
using Tern.Cluster.Telemetry;
using static Tern.Cluster.Tests.TestSpecs;

namespace Tern.Cluster.Tests;

[Collection("cluster")]
public sealed partial class MigrationTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("tern-migrate-").FullName;

    private static VmSpec Heartbeat(string name, string host, ulong memoryMib = 64) =>
        new(name, memoryMib * Mib, 1, ImageRef.FromPath(Guests.HeartbeatPath), null, null, "", [], host);

    private static async Task<MigrationStatus> Outcome(TestCluster cluster, string vm, int node = 0)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (true)
        {
            var status = Assert.IsType<MigrationStatus>(await cluster.Ask(node, new GetMigration(vm)));
            if (HostDrain.IsFinal(status.Status))
                return status;
            Assert.True(DateTime.UtcNow < deadline, $"the migration of {vm} did not end: {status}");
            await Task.Delay(50);
        }
    }

    // Which hypervisors say they run the VM, by asking each one for each generation.
    private static async Task<List<string>> RunningOn(TestCluster cluster, string vm, long maxGeneration)
    {
        var hosts = new List<string>();
        foreach (var system in cluster.Systems)
        {
            var hypervisor = ActorRegistry.For(system).Get<HypervisorKey>();
            for (long g = 1; g <= maxGeneration; g++)
            {
                if (await hypervisor.Ask<object>(new ProbeGuest(vm, g), TimeSpan.FromSeconds(5)) is GuestStarted s)
                    hosts.Add($"{s.Host}/{s.Generation}");
            }
        }
        return hosts;
    }

    private static int LastBeat(string text) => BeatLine().Matches(text).Select(m => int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture)).DefaultIfEmpty(0).Max();

    [GeneratedRegex(@"beat (\d+) ok")]
    private static partial Regex BeatLine();

    [Fact]
    public async Task A_running_guest_migrates_with_a_new_generation_runs_once_and_its_console_follows()
    {
        await using var cluster = await TestCluster.StartAsync(_dir);
        await cluster.Expect(0, new CreateVm("hb", Heartbeat("hb", "node-1"), null));
        var collector = new ConsoleCollector.Text();
        var subscriber = cluster.Systems[2].ActorOf(ConsoleCollector.Props(collector));
        cluster.Region(2).Tell(new AttachConsole("hb"), subscriber);
        await collector.WaitAsync(t => LastBeat(t) >= 2);

        var accepted = Assert.IsType<MigrationStatus>(await cluster.Ask(1, new MigrateVm("hb", "node-2", MigrationSettings.Default, null)));
        Assert.Equal(("running", "node-1", "node-2", 2L), (accepted.Status, accepted.From, accepted.To, accepted.Generation));
        var done = await Outcome(cluster, "hb");
        Assert.Equal("completed", done.Status);
        Assert.NotNull(done.Figures);
        Assert.True(done.Figures.BytesSent > 4 << 20 && done.Figures.PagesRaw >= 1024, $"the 4 MiB pattern must travel: {done.Figures}");
        Assert.True(done.Figures.DowntimeMs > 0 && done.Figures.Rounds >= 1 && done.Figures.TotalTimeMs >= done.Figures.DowntimeMs, done.Figures.ToString());

        var status = await cluster.Expect(0, new GetVm("hb"));
        Assert.Equal((VmPhase.Running, "node-2", 2L), (status.Phase, status.Host, status.Generation));
        Assert.Equal(["node-2/2"], await RunningOn(cluster, "hb", 2));

        // The subscriber attached before the move keeps receiving beats, checked "ok" by the guest.
        int before = LastBeat(collector.Current);
        string after = await collector.WaitAsync(t => LastBeat(t) >= before + 3);
        Assert.DoesNotContain("BAD", after);
        var numbers = BeatLine().Matches(after).Select(m => int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture)).ToList();
        Assert.Equal(Enumerable.Range(1, numbers.Count), numbers); // each beat once, none lost or repeated

        // A late subscriber on the new host gets the output from before the move too.
        var late = new ConsoleCollector.Text();
        cluster.Region(0).Tell(new AttachConsole("hb"), cluster.Systems[0].ActorOf(ConsoleCollector.Props(late)));
        Assert.StartsWith("beat 1 ok", await late.WaitAsync(t => t.Length > 0));

        await WaitForAsync(async () => (await cluster.HostsAsync()).Hosts.Single(h => h.Name == "node-1").Guests == 0);
        Assert.Equal(64 * Mib, (await cluster.HostsAsync()).Hosts.Single(h => h.Name == "node-2").UsedMemoryBytes);

        // And back again: generation 3, on node-1.
        Assert.IsType<MigrationStatus>(await cluster.Ask(2, new MigrateVm("hb", "node-1", MigrationSettings.Default, null)));
        Assert.Equal("completed", (await Outcome(cluster, "hb")).Status);
        Assert.Equal(["node-1/3"], await RunningOn(cluster, "hb", 3));
    }

    [Fact]
    public async Task Post_copy_and_auto_converge_off_are_carried_to_the_protocol()
    {
        await using var cluster = await TestCluster.StartAsync(_dir);
        await cluster.Expect(0, new CreateVm("pc", Heartbeat("pc", "node-1"), null));
        var collector = new ConsoleCollector.Text();
        cluster.Region(1).Tell(new AttachConsole("pc"), cluster.Systems[1].ActorOf(ConsoleCollector.Props(collector)));
        await collector.WaitAsync(t => LastBeat(t) >= 1);

        Assert.IsType<MigrationStatus>(await cluster.Ask(0, new MigrateVm("pc", "node-2", MigrationSettings.Default with { PostCopy = true }, null)));
        var post = await Outcome(cluster, "pc");
        Assert.Equal("completed", post.Status);
        Assert.Equal(1, post.Figures!.Rounds); // switched over right after round 0
        Assert.IsType<MigrationStatus>(await cluster.Ask(0, new MigrateVm("pc", "node-1", MigrationSettings.Default with { PostCopyAtOnce = true }, null)));
        var atOnce = await Outcome(cluster, "pc");
        Assert.Equal("completed", atOnce.Status);
        Assert.Equal(0, atOnce.Figures!.Rounds); // switched over before any page
        Assert.IsType<MigrationStatus>(await cluster.Ask(0, new MigrateVm("pc", "node-3", MigrationSettings.Default with { AutoConverge = false }, null)));
        var pre = await Outcome(cluster, "pc");
        Assert.Equal(("completed", 0), (pre.Status, pre.Figures!.ThrottlePercent));
        Assert.Equal(["node-3/4"], await RunningOn(cluster, "pc", 4));
        int before = LastBeat(collector.Current);
        Assert.DoesNotContain("BAD", await collector.WaitAsync(t => LastBeat(t) >= before + 2));
    }

    [Fact]
    public async Task Refused_migrations_change_nothing()
    {
        await using var cluster = await TestCluster.StartAsync(_dir);
        await cluster.Expect(0, new CreateVm("a", Heartbeat("a", "node-1", memoryMib: 320), null));
        await cluster.Expect(0, new CreateVm("b", Heartbeat("b", "node-2", memoryMib: 320), null));

        var full = Assert.IsType<CommandRejected>(await cluster.Ask(0, new MigrateVm("a", "node-2", MigrationSettings.Default, null)));
        Assert.Equal(RejectionKind.Refused, full.Kind);
        Assert.Equal("host 'node-2' cannot take it: needs 320 MiB, it has 192 MiB free", full.Reason);
        Assert.Equal("refused", Assert.IsType<MigrationStatus>(await cluster.Ask(0, new GetMigration("a"))).Status);

        var same = Assert.IsType<CommandRejected>(await cluster.Ask(0, new MigrateVm("a", "node-1", MigrationSettings.Default, null)));
        Assert.Equal(("VM 'a' already runs on 'node-1'", RejectionKind.Invalid), (same.Reason, same.Kind));
        var nowhere = Assert.IsType<CommandRejected>(await cluster.Ask(0, new MigrateVm("a", "node-9", MigrationSettings.Default, null)));
        Assert.StartsWith("no host named 'node-9'", nowhere.Reason);
        var bad = Assert.IsType<CommandRejected>(await cluster.Ask(0, new MigrateVm("a", "node-3", new MigrationSettings(0, 0), null)));
        Assert.Equal(RejectionKind.Invalid, bad.Kind);
        var ghost = Assert.IsType<CommandRejected>(await cluster.Ask(0, new MigrateVm("ghost", "node-3", MigrationSettings.Default, null)));
        Assert.Equal(RejectionKind.NotFound, ghost.Kind);

        var after = await cluster.Expect(1, new GetVm("a"));
        Assert.Equal((VmPhase.Running, "node-1", 1L), (after.Phase, after.Host, after.Generation));
        Assert.Equal(["node-1/1"], await RunningOn(cluster, "a", 3));
        await WaitForAsync(async () => (await cluster.HostsAsync()).Hosts.Single(h => h.Name == "node-3").UsedMemoryBytes == 0);

        // The next migration still works; the refusals consumed no generation.
        Assert.IsType<MigrationStatus>(await cluster.Ask(0, new MigrateVm("a", "node-3", MigrationSettings.Default, null)));
        var moved = await Outcome(cluster, "a");
        Assert.Equal(("completed", 2L), (moved.Status, moved.Generation));
    }

    [Fact]
    public async Task A_cancelled_migration_and_one_whose_target_leaves_keep_the_guest_on_its_source()
    {
        await using var cluster = await TestCluster.StartAsync(_dir);
        await cluster.Expect(0, new CreateVm("slow", Heartbeat("slow", "node-1"), null));
        var collector = new ConsoleCollector.Text();
        cluster.Region(0).Tell(new AttachConsole("slow"), cluster.Systems[0].ActorOf(ConsoleCollector.Props(collector)));
        await collector.WaitAsync(t => LastBeat(t) >= 1);

        // 64 KiB/s: the 4 MiB pattern would take a minute.
        var slow = new MigrationSettings(10, 64 * 1024);
        Assert.IsType<MigrationStatus>(await cluster.Ask(0, new MigrateVm("slow", "node-2", slow, null)));
        var busy = Assert.IsType<CommandRejected>(await cluster.Ask(1, new MigrateVm("slow", "node-3", slow, null)));
        Assert.Equal(RejectionKind.Conflict, busy.Kind);
        await Task.Delay(500);
        Assert.Equal("cancelling", Assert.IsType<MigrationStatus>(await cluster.Ask(1, new CancelMigration("slow"))).Status);
        var cancelled = await Outcome(cluster, "slow");
        Assert.Equal("cancelled", cancelled.Status);
        Assert.Contains("cancelled", cancelled.Error);
        Assert.Equal(["node-1/1"], await RunningOn(cluster, "slow", 3));
        await WaitForAsync(async () => (await cluster.HostsAsync()).Hosts.Single(h => h.Name == "node-2").UsedMemoryBytes == 0);

        // The target leaves the cluster in the middle of the stream.
        Assert.IsType<MigrationStatus>(await cluster.Ask(0, new MigrateVm("slow", "node-3", slow, null)));
        await Task.Delay(500);
        await cluster.StopNodeAsync(2);
        var failed = await Outcome(cluster, "slow");
        Assert.Equal("failed", failed.Status);
        var status = await cluster.Expect(0, new GetVm("slow"));
        Assert.Equal((VmPhase.Running, "node-1", 1L), (status.Phase, status.Host, status.Generation));

        int before = LastBeat(collector.Current);
        string text = await collector.WaitAsync(t => LastBeat(t) >= before + 2);
        Assert.DoesNotContain("BAD", text);
    }

    [Fact]
    public async Task A_drained_host_sends_its_guests_elsewhere_and_takes_no_new_ones_until_undrained()
    {
        await using var cluster = await TestCluster.StartAsync(_dir);
        await cluster.Expect(0, new CreateVm("d1", Heartbeat("d1", "node-1"), null));
        await cluster.Expect(0, new CreateVm("d2", Heartbeat("d2", "node-1"), null));
        Assert.Null(await HostDrain.SetDrainingAsync(cluster.Scheduler(0), "node-1", true, TimeSpan.FromSeconds(5)));
        var seen = new ConcurrentQueue<DrainedGuest>();
        var results = await HostDrain.MigrateAllAsync(cluster.Systems[0], cluster.Region(0), "node-1", MigrationSettings.Default,
            g => { seen.Enqueue(g); return Task.CompletedTask; }, TimeSpan.FromSeconds(20), CancellationToken.None);
        Assert.Equal(["d1", "d2"], results.Select(r => r.VmId));
        Assert.All(results, r => Assert.Equal("completed", r.Status.Status));
        Assert.Equal(2, seen.Count);
        foreach (var vm in new[] { "d1", "d2" })
        {
            var s = await cluster.Expect(0, new GetVm(vm));
            Assert.NotEqual("node-1", s.Host);
            Assert.Equal([$"{s.Host}/2"], await RunningOn(cluster, vm, 2));
        }
        Assert.Equal(["node-1"], (await cluster.HostsAsync()).Draining);
        var refused = Assert.IsType<CommandRejected>(await cluster.Ask(0, new CreateVm("d3", Heartbeat("d3", "node-1"), null)));
        Assert.Equal("host 'node-1' is draining and takes no new guests", refused.Reason);
        Assert.Equal("no host named 'node-7' (known: node-1, node-2, node-3)", await HostDrain.SetDrainingAsync(cluster.Scheduler(0), "node-7", true, TimeSpan.FromSeconds(5)));

        Assert.Null(await HostDrain.SetDrainingAsync(cluster.Scheduler(0), "node-1", false, TimeSpan.FromSeconds(5)));
        Assert.Equal("node-1", (await cluster.Expect(0, new CreateVm("d3", Heartbeat("d3", "node-1"), null))).Host);
    }

    [Fact]
    public async Task A_migration_is_one_trace_with_spans_on_both_hosts_and_its_downtime_is_measured()
    {
        var spans = new ConcurrentBag<Activity>();
        using var listener = new ActivityListener
        {
            ShouldListenTo = s => s.Name is TernTracing.SourceName or "test",
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = spans.Add,
        };
        ActivitySource.AddActivityListener(listener);
        var downtimes = new ConcurrentBag<double>();
        using var meters = new MeterListener
        {
            InstrumentPublished = (instrument, l) =>
            {
                if (instrument.Meter.Name == MigrationTelemetry.MeterName && instrument.Name == "tern.migration.downtime")
                    l.EnableMeasurementEvents(instrument);
            },
        };
        meters.SetMeasurementEventCallback<double>((_, value, tags, _) =>
        {
            foreach (var tag in tags)
            {
                if (tag.Key == "tern.vm" && (string?)tag.Value == "traced")
                    downtimes.Add(value);
            }
        });
        meters.Start();

        await using var cluster = await TestCluster.StartAsync(_dir);
        await cluster.Expect(0, new CreateVm("traced", Heartbeat("traced", "node-1"), null));
        using var source = new ActivitySource("test");
        ActivityTraceId traceId;
        using (var root = source.StartActivity("cli.vm.migrate"))
        {
            traceId = root!.TraceId;
            Assert.IsType<MigrationStatus>(await cluster.Ask(0, new MigrateVm("traced", "node-3", MigrationSettings.Default, TernTracing.Capture())));
        }
        var done = await Outcome(cluster, "traced");
        Assert.Equal("completed", done.Status);
        await WaitForAsync(() => Task.FromResult(spans.Any(s => s.TraceId == traceId && s.OperationName == "migration.commit")));
        var trace = spans.Where(s => s.TraceId == traceId).ToList();
        Assert.Superset(new HashSet<string> { "vm.migrate", "scheduler.place", "migration.prepare", "migration.source", "migration.round", "migration.switchover", "migration.receive", "migration.commit" },
            trace.Select(s => s.OperationName).ToHashSet());
        Assert.Equal("node-3", trace.Single(s => s.OperationName == "migration.prepare").GetTagItem("tern.host"));
        Assert.Equal("node-3", trace.Single(s => s.OperationName == "migration.source").GetTagItem("tern.target"));
        Assert.Equal(done.Figures!.Rounds, trace.Count(s => s.OperationName == "migration.round")); // one per pre-copy round; the last copy is the switchover
        meters.RecordObservableInstruments();
        Assert.Equal([done.Figures.DowntimeMs], downtimes);
    }

    private static async Task WaitForAsync(Func<Task<bool>> condition)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "the condition did not become true within 20 s");
            await Task.Delay(100);
        }
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
            // SQLite may hold the file a moment longer; it is a temp dir.
        }
    }
}
