// The machine layer's telemetry: an ActivitySource for sampled guest I/O and a Meter for the
// guest's disk traffic. Guest I/O is far too frequent to trace every request, so spans are
// taken for one request in N (see ObservedBlockBackend); the counters see every request.
using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace Tern.Machine;

/// <summary>ActivitySource and Meter of the machine layer.</summary>
public static class MachineTelemetry
{
    /// <summary>The ActivitySource and Meter name to enable in OpenTelemetry.</summary>
    public const string SourceName = "Tern.Machine";

    /// <summary>Spans of sampled guest I/O.</summary>
    public static readonly ActivitySource Source = new(SourceName);

    /// <summary>The machine layer's meter.</summary>
    public static readonly Meter Meter = new(SourceName);

    /// <summary>Bytes guests read from and wrote to their disks (tern.io: read or write).</summary>
    public static readonly Counter<long> DiskBytes = Meter.CreateCounter<long>("tern.guest.disk.bytes", "By", "Bytes guests moved to and from their disks");

    /// <summary>Disk operations by guests (tern.io: read, write or flush).</summary>
    public static readonly Counter<long> DiskOperations = Meter.CreateCounter<long>("tern.guest.disk.operations", "{operation}", "Disk operations guests made");
}
