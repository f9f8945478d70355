// The contracts every message that may leave the process (or reach the journal) fulfils.
using MessagePack;

namespace Tern.Cluster.Protocol;

/// <summary>
/// Marks a message that may cross nodes or be persisted: a public immutable
/// <c>[MessagePackObject]</c> record with keyed fields, serialized by
/// <see cref="Serialization.TernMessagePackSerializer"/> under a stable manifest.
/// </summary>
public interface ITernWireMessage;

/// <summary>A message routed to the VM controller of <see cref="VmId"/> by the shard region.</summary>
public interface IWithVmId
{
    /// <summary>The VM's name, which is also its controller's entity id.</summary>
    string VmId { get; }
}

/// <summary>
/// W3C trace context (<c>traceparent</c>, <c>tracestate</c>) carried inside a message, because
/// <see cref="System.Diagnostics.Activity.Current"/> does not cross an actor Tell.
/// </summary>
[MessagePackObject]
public sealed record TraceContext(
    [property: Key(0)] string TraceParent,
    [property: Key(1)] string? TraceState);
