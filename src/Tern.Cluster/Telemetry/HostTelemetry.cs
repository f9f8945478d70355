// What a hypervisor needs for its own telemetry: a Microsoft.Extensions.Logging logger (called
// on the actor's thread inside the operation's span, so every line carries the trace and span
// ids; Akka's logging adapter writes later from another thread and would lose them) and the
// guest I/O sampling rate.
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Tern.Cluster.Telemetry;

/// <summary>A hypervisor's logger and sampling settings.</summary>
/// <param name="Log">Lifecycle log lines (started, refused, ended).</param>
/// <param name="GuestIoSampleEvery">One guest disk operation in this many becomes a span; 0 traces none.</param>
public sealed record HostTelemetry(ILogger Log, int GuestIoSampleEvery)
{
    /// <summary>One disk operation in 1000 is traced by default: enough to see latencies in Jaeger, cheap enough to leave on.</summary>
    public const int DefaultGuestIoSampleEvery = 1000;

    /// <summary>No logging, the default sampling (actor tests).</summary>
    public static readonly HostTelemetry None = new(NullLogger.Instance, DefaultGuestIoSampleEvery);
}

/// <summary>The hypervisor's log lines (source-generated: nothing is formatted when the level is off).</summary>
internal static partial class HypervisorLog
{
    [LoggerMessage(EventId = 1, Level = LogLevel.Information, Message = "started VM {Vm} generation {Generation} on {Host} ({MemoryMib} MiB, {Harts} harts)")]
    public static partial void Started(ILogger log, string vm, long generation, string host, ulong memoryMib, int harts);

    [LoggerMessage(EventId = 2, Level = LogLevel.Information, Message = "refused VM {Vm} generation {Generation} on {Host}: {Reason}")]
    public static partial void Refused(ILogger log, string vm, long generation, string host, string reason);

    [LoggerMessage(EventId = 3, Level = LogLevel.Information, Message = "VM {Vm} generation {Generation} ended on {Host}: {Reason}")]
    public static partial void Ended(ILogger log, string vm, long generation, string host, string reason);
}
