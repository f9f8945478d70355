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
