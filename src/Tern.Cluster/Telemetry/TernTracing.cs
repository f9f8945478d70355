// Trace propagation across actor messages: capture the current W3C context into a message,
// and restore it as the parent of the receiver's span.
using System.Diagnostics;
using Tern.Cluster.Protocol;

namespace Tern.Cluster.Telemetry;

/// <summary>The cluster layer's ActivitySource and trace-context helpers.</summary>
public static class TernTracing
{
    /// <summary>The ActivitySource name to enable in OpenTelemetry.</summary>
    public const string SourceName = "Tern.Cluster";

    /// <summary>Spans of VM lifecycle and scheduling.</summary>
    public static readonly ActivitySource Source = new(SourceName);

    /// <summary>The current activity's context for a message, or null outside a trace.</summary>
    public static TraceContext? Capture()
    {
        var current = Activity.Current;
        return current is null ? null : new TraceContext(current.Id!, current.TraceStateString);
    }

    /// <summary>Starts a span whose parent is the context carried in a message (if any).</summary>
    public static Activity? Start(string name, TraceContext? parent, ActivityKind kind = ActivityKind.Internal)
    {
        if (parent is not null && ActivityContext.TryParse(parent.TraceParent, parent.TraceState, out var context))
            return Source.StartActivity(name, kind, context);
        return Source.StartActivity(name, kind);
    }
}
