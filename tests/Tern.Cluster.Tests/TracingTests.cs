// Trace context crosses actor messages and nodes: one VM creation is one trace, with the
// controller's, the scheduler's and the hypervisor's spans in it.
using System.Collections.Concurrent;
using System.Diagnostics;
using Tern.Cluster.Protocol;
using Tern.Cluster.Telemetry;
using static Tern.Cluster.Tests.TestSpecs;

namespace Tern.Cluster.Tests;

[Collection("cluster")]
public sealed class TracingTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("tern-trace-").FullName;
    private readonly ConcurrentBag<Activity> _spans = [];
    private readonly ActivityListener _listener;

    public TracingTests()
    {
        _listener = new ActivityListener
        {
            ShouldListenTo = s => s.Name is TernTracing.SourceName or "test",
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = _spans.Add,
        };
        ActivitySource.AddActivityListener(_listener);
    }

    [Fact]
    public async Task A_vm_creation_is_one_trace_across_controller_scheduler_and_hypervisor()
    {
        await using var cluster = await TestCluster.StartAsync(_dir);
        using var source = new ActivitySource("test");
        ActivityTraceId traceId;
        using (var root = source.StartActivity("cli.vm.create"))
        {
            traceId = root!.TraceId;
            var status = await cluster.Expect(0, new CreateVm("traced", Spec("traced", host: "node-3", kernel: Guests.Ticker()), TernTracing.Capture()));
            Assert.Equal("node-3", status.Host);
        }
        var names = _spans.Where(s => s.TraceId == traceId).Select(s => s.OperationName).ToHashSet();
        Assert.Superset(new HashSet<string> { "cli.vm.create", "vm.create", "scheduler.place", "hypervisor.start-guest" }, names);
        var hypervisorSpan = _spans.Single(s => s.TraceId == traceId && s.OperationName == "hypervisor.start-guest");
        Assert.Equal("node-3", hypervisorSpan.GetTagItem("tern.host"));
    }

    [Fact]
    public async Task A_vms_life_is_traced_operation_by_operation_under_documented_names()
    {
        await using var cluster = await TestCluster.StartAsync(_dir);
        using var source = new ActivitySource("test");
        var traces = new Dictionary<string, ActivityTraceId>();
        async Task Traced(string operation, Func<Task> act)
        {
            using var root = source.StartActivity("cli." + operation);
            traces[operation] = root!.TraceId;
            await act();
        }
        await Traced("create", () => cluster.Expect(1, new CreateVm("life", Spec("life", host: "node-2", kernel: Guests.Ticker()), TernTracing.Capture())));
        await Traced("stop", () => cluster.Expect(2, new StopVm("life", TernTracing.Capture())));
        await Traced("start", () => cluster.Expect(0, new StartVm("life", TernTracing.Capture())));
        await Traced("delete", () => cluster.Expect(1, new DeleteVm("life", TernTracing.Capture())));

        List<Activity> Spans(string operation) => _spans.Where(s => s.TraceId == traces[operation]).ToList();
        Activity Single(string operation, string name) => Assert.Single(Spans(operation), s => s.OperationName == name);
        Assert.Equal(["cli.create", "hypervisor.start-guest", "scheduler.place", "vm.create"], Spans("create").Select(s => s.OperationName).Order());
        Assert.Equal(["cli.stop", "hypervisor.stop-guest", "vm.stop"], Spans("stop").Select(s => s.OperationName).Order());
        Assert.Equal(["cli.start", "hypervisor.start-guest", "scheduler.place", "vm.start"], Spans("start").Select(s => s.OperationName).Order());
        Assert.Equal(["cli.delete", "hypervisor.stop-guest", "vm.delete"], Spans("delete").Select(s => s.OperationName).Order());

        // A controller's operation span lasts from the command to its outcome: it holds the hypervisor's span.
        var create = Single("create", "vm.create");
        var boot = Single("create", "hypervisor.start-guest");
        Assert.Equal(create.SpanId, boot.ParentSpanId);
        Assert.True(create.StartTimeUtc <= boot.StartTimeUtc && create.StartTimeUtc + create.Duration >= boot.StartTimeUtc + boot.Duration,
            $"vm.create ({create.StartTimeUtc:O} + {create.Duration}) does not cover hypervisor.start-guest ({boot.StartTimeUtc:O} + {boot.Duration})");
        Assert.Equal(("node-2", 1L), ((string?)create.GetTagItem("tern.host"), (long?)create.GetTagItem("tern.generation")));
        Assert.Equal(2L, Single("start", "vm.start").GetTagItem("tern.generation"));
        Assert.Equal("node-2", Single("start", "scheduler.place").GetTagItem("tern.host"));

        // Every span the cluster emitted is named on the documentation page.
        var documented = DocsPage.TableNames(DocsPage.Read("docs/cluster.md"), "### Spans");
        var emitted = _spans.Where(s => s.Source.Name == TernTracing.SourceName).Select(s => s.OperationName).ToHashSet();
        Assert.Empty(emitted.Except(documented));
    }

    [Fact]
    public async Task A_refused_creation_is_a_span_with_an_error_status()
    {
        await using var cluster = await TestCluster.StartAsync(_dir);
        using var source = new ActivitySource("test");
        ActivityTraceId traceId;
        using (var root = source.StartActivity("cli.vm.create"))
        {
            traceId = root!.TraceId;
            Assert.IsType<CommandRejected>(await cluster.Ask(0, new CreateVm("huge", Spec("huge", memoryMib: 4096), TernTracing.Capture())));
        }
        var create = Assert.Single(_spans, s => s.TraceId == traceId && s.OperationName == "vm.create");
        Assert.Equal(ActivityStatusCode.Error, create.Status);
        Assert.Contains("4096 MiB", create.StatusDescription, StringComparison.Ordinal);
    }

    public void Dispose()
    {
        _listener.Dispose();
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
