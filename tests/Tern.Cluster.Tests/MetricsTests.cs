// The cluster's metrics seen through a MeterListener, as an exporter sees them: a running
// guest's instruction counter moves, the host's guest count and guest memory follow starts and
// stops, console bytes and starts/exits are counted, and every instrument is documented.
using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using Akka.TestKit.Xunit2;
using Tern.Cluster.Actors;
using Tern.Cluster.Hosting;
using Tern.Cluster.Protocol;
using Tern.Cluster.Telemetry;
using Tern.Machine;
using Xunit.Abstractions;
using static Tern.Cluster.Tests.TestSpecs;

namespace Tern.Cluster.Tests;

public sealed class MetricsTests : TestKit
{
    // Other tests in this process run hosts too: this one's figures are told apart by its host name.
    private readonly string _host = $"metrics-{Guid.NewGuid():N}"[..16];
    private readonly MeterListener _listener = new();
    private readonly ConcurrentDictionary<string, long> _last = new();
    private readonly ConcurrentDictionary<string, long> _sums = new();
    private readonly ConcurrentBag<string> _instruments = [];

    public MetricsTests(ITestOutputHelper output)
        : base(PatientTestKit.With(TernHocon.Build(new TernNodeOptions { DataDir = Path.GetTempPath() })), "metrics-test", output)
    {
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name is TernMetrics.MeterName or MachineTelemetry.SourceName)
            {
                _instruments.Add(instrument.Name);
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
        {
            string key = Key(instrument.Name, tags);
            if (instrument.IsObservable)
                _last[key] = value;
            else
                _sums.AddOrUpdate(key, value, (_, old) => old + value);
        });
        _listener.SetMeasurementEventCallback<int>((instrument, value, tags, _) => _last[Key(instrument.Name, tags)] = value);
        _listener.Start();
    }

    private static string Key(string instrument, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        var parts = new List<string> { instrument };
        foreach (var tag in tags)
            parts.Add($"{tag.Key}={tag.Value}");
        parts.Sort(1, parts.Count - 1, StringComparer.Ordinal);
        return string.Join('|', parts);
    }

    private long Observed(string instrument, string? vm = null)
    {
        _last.Clear();
        _listener.RecordObservableInstruments();
        string key = vm is null ? $"{instrument}|tern.host={_host}" : $"{instrument}|tern.host={_host}|tern.vm={vm}";
        return _last.TryGetValue(key, out long v) ? v : -1;
    }

    private long Counted(string instrument, string? tag = null)
    {
        var tags = new List<string> { $"tern.host={_host}" };
        if (tag is not null)
            tags.Add(tag);
        tags.Sort(StringComparer.Ordinal);
        return _sums.GetValueOrDefault($"{instrument}|{string.Join('|', tags)}");
    }

    private async Task<long> EventuallyAsync(Func<long> read, Func<long, bool> condition, string what)
    {
        var deadline = DateTime.UtcNow.AddSeconds(15);
        while (true)
        {
            long v = read();
            if (condition(v))
                return v;
            Assert.True(DateTime.UtcNow < deadline, $"{what}: last value {v}");
            await Task.Delay(50);
        }
    }

    [Fact]
    public async Task Guest_figures_move_while_a_guest_runs_and_settle_when_it_stops()
    {
        var controllers = CreateTestProbe();
        var hypervisor = Sys.ActorOf(Hypervisor.Props(_host, 256 * Mib, 2, controllers, CreateTestProbe()));
        await EventuallyAsync(() => Observed("tern.host.vms"), v => v == 0, "the new host's guest count"); // the actor registers as it starts
        Assert.Equal(256L * (long)Mib, Observed("tern.host.memory.budget"));

        hypervisor.Tell(new StartGuest("counted", Spec("counted", kernel: Guests.Ticker()), 1, null), TestActor);
        ExpectMsg<GuestStarted>();
        Assert.Equal(1, Observed("tern.host.vms"));
        Assert.Equal(64L * (long)Mib, Observed("tern.host.guest.memory"));
        Assert.True(Observed("tern.process.memory") > 64L * (long)Mib);
        long first = await EventuallyAsync(() => Observed("tern.guest.instructions", "counted"), v => v > 0, "instructions of a running guest");
        await EventuallyAsync(() => Observed("tern.guest.instructions", "counted"), v => v > first, "instructions keep growing");
        await EventuallyAsync(() => Counted("tern.guest.console.bytes", "tern.vm=counted"), v => v >= 4, "console bytes (T lines)");
        Assert.Equal(1, Counted("tern.vm.starts", "tern.vm=counted"));

        hypervisor.Tell(new StopGuest("counted", 1, null), TestActor);
        controllers.ExpectMsg<GuestExited>(TimeSpan.FromSeconds(10));
        await EventuallyAsync(() => Observed("tern.host.vms"), v => v == 0, "guests after the stop");
        Assert.Equal(0, Observed("tern.host.guest.memory"));
        await EventuallyAsync(() => Observed("tern.guest.instructions", "counted"), v => v == -1, "the stopped guest is no longer reported");
        Assert.Equal(1, Counted("tern.vm.exits", "tern.exit=stopped"));

        // Every instrument published is named on the documentation page.
        var documented = DocsPage.TableNames(DocsPage.Read("docs/cluster.md"), "### Metrics");
        Assert.Empty(_instruments.Distinct().Except(documented));
    }

    [Fact]
    public void A_refused_start_is_counted_as_a_failure()
    {
        var hypervisor = Sys.ActorOf(Hypervisor.Props(_host, 100 * Mib, 2, CreateTestProbe(), CreateTestProbe()));
        hypervisor.Tell(new StartGuest("big", Spec("big", memoryMib: 128), 1, null), TestActor);
        ExpectMsg<GuestRefused>();
        Assert.Equal(1, Counted("tern.vm.start.failures"));
        Assert.Equal(0, Observed("tern.host.vms"));
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
            _listener.Dispose();
        base.Dispose(disposing);
    }
}
