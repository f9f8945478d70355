// Guest disk I/O seen by telemetry: a virtio-blk device over an ObservedBlockBackend on a real
// file counts every operation and turns one in N into a span of the Tern.Machine source, each
// the root of its own trace, with the VM and the operation's place on the disk.
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using Tern.Machine.Devices;
using Tern.Machine.Devices.Virtio;
using Tern.Riscv;

namespace Tern.Machine.Tests.Virtio;

public sealed class GuestIoTelemetryTests : IDisposable
{
    private readonly GuestMemory _mem = new(VirtioDriver.RamBase, 16 << 20);
    private readonly string _path = Path.GetTempFileName();
    private readonly string _vm = $"io-{Guid.NewGuid():N}"[..12];
    private readonly ConcurrentBag<Activity> _spans = [];
    private readonly ActivityListener _tracing;
    private readonly MeterListener _metrics = new();
    private readonly ConcurrentDictionary<string, long> _counts = new();

    public GuestIoTelemetryTests()
    {
        File.WriteAllBytes(_path, new byte[64 * 512]);
        _tracing = new ActivityListener
        {
            ShouldListenTo = s => s.Name == MachineTelemetry.SourceName,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = a =>
            {
                if (a.GetTagItem("tern.vm") as string == _vm)
                    _spans.Add(a);
            },
        };
        ActivitySource.AddActivityListener(_tracing);
        _metrics.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name == MachineTelemetry.SourceName)
                listener.EnableMeasurementEvents(instrument);
        };
        _metrics.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
        {
            string vm = "", io = "";
            foreach (var t in tags)
            {
                if (t.Key == "tern.vm")
                    vm = (string)t.Value!;
                else if (t.Key == "tern.io")
                    io = (string)t.Value!;
            }
            if (vm == _vm)
                _counts.AddOrUpdate($"{instrument.Name}/{io}", value, (_, old) => old + value);
        });
        _metrics.Start();
    }

    [Fact]
    public void One_disk_operation_in_N_becomes_a_span_and_every_one_is_counted()
    {
        using var file = new FileBlockBackend(_path, id: "disk-0");
        var drv = new VirtioDriver(_mem, new VirtioBlk(new ObservedBlockBackend(file, _vm, sampleEvery: 4)));
        drv.Start(1);
        using (new ActivitySource("test").StartActivity("boot"))
        {
            // The guest's I/O must not join whatever trace its thread was started in.
            for (int i = 0; i < 8; i++)
                Assert.Equal(VirtioBlk.StatusOk, VirtioBlkTests.Do(drv, VirtioBlk.TypeIn, (ulong)i, new byte[1024], deviceWrites: true).Status);
        }
        for (int i = 0; i < 4; i++)
            Assert.Equal(VirtioBlk.StatusOk, VirtioBlkTests.Do(drv, VirtioBlk.TypeOut, (ulong)(20 + i), new byte[512], deviceWrites: false).Status);

        // Operations 4 and 8 are reads of sectors 3 and 7; operation 12 the write of sector 23.
        var spans = _spans.OrderBy(s => s.StartTimeUtc).ToList();
        Assert.Equal(["guest.disk.read", "guest.disk.read", "guest.disk.write"], spans.Select(s => s.OperationName));
        Assert.Equal([3L * 512, 7L * 512, 23L * 512], spans.Select(s => (long)s.GetTagItem("tern.offset")!));
        Assert.Equal([1024, 1024, 512], spans.Select(s => (int)s.GetTagItem("tern.bytes")!));
        Assert.All(spans, s => Assert.Equal(("disk-0", 4), ((string)s.GetTagItem("tern.disk")!, (int)s.GetTagItem("tern.sample.every")!)));
        Assert.All(spans, s => Assert.Null(s.ParentId));
        Assert.Equal(3, spans.Select(s => s.TraceId).Distinct().Count());

        Assert.Equal(8, _counts["tern.guest.disk.operations/read"]);
        Assert.Equal(4, _counts["tern.guest.disk.operations/write"]);
        Assert.Equal(8 * 1024, _counts["tern.guest.disk.bytes/read"]);
        Assert.Equal(4 * 512, _counts["tern.guest.disk.bytes/write"]);
    }

    [Fact]
    public void A_sampling_rate_of_zero_traces_nothing_but_still_counts()
    {
        using var file = new FileBlockBackend(_path);
        var drv = new VirtioDriver(_mem, new VirtioBlk(new ObservedBlockBackend(file, _vm, sampleEvery: 0)));
        drv.Start(1);
        for (int i = 0; i < 5; i++)
            VirtioBlkTests.Do(drv, VirtioBlk.TypeIn, 0, new byte[512], deviceWrites: true);
        Assert.Empty(_spans);
        Assert.Equal(5, _counts["tern.guest.disk.operations/read"]);
        Assert.Throws<ArgumentOutOfRangeException>(() => new ObservedBlockBackend(file, _vm, -1));
    }

    public void Dispose()
    {
        _tracing.Dispose();
        _metrics.Dispose();
        _mem.Dispose();
        File.Delete(_path);
    }
}
