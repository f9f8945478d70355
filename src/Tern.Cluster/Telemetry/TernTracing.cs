// Trace propagation across actor messages: capture the current W3C context into a message,
// and restore it as the parent of the receiver's span. Span names are listed in docs/cluster.md
// (Observability); a test fails when one is emitted that the page does not name.
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

    /// <summary>
    /// The context of <paramref name="span"/> for a message; when no span was recorded (nobody
    /// listens on this node), the incoming <paramref name="fallback"/> travels on unchanged so
    /// the trace still joins up on nodes that do listen.
    /// </summary>
    public static TraceContext? Capture(Activity? span, TraceContext? fallback) =>
        span is null ? fallback : new TraceContext(span.Id!, span.TraceStateString);

    /// <summary>Starts a span whose parent is the context carried in a message (if any).</summary>
    public static Activity? Start(string name, TraceContext? parent, ActivityKind kind = ActivityKind.Internal)
    {
        if (parent is not null && ActivityContext.TryParse(parent.TraceParent, parent.TraceState, out var context))
            return Source.StartActivity(name, kind, context);
        return Source.StartActivity(name, kind);
    }

    /// <summary>
    /// Starts a span that outlives the current message (an operation of an actor that spans
    /// several messages) without making it the thread's current activity: an actor's dispatcher
    /// thread runs other actors next, and they must not inherit it. Stop it with <see cref="StopDetached"/>.
    /// </summary>
    public static Activity? StartDetached(string name, TraceContext? parent, ActivityKind kind = ActivityKind.Internal)
    {
        var previous = Activity.Current;
        var span = Start(name, parent, kind);
        Activity.Current = previous;
        return span;
    }

    /// <summary>Ends a span from <see cref="StartDetached"/>, leaving the thread's current activity as it was.</summary>
    public static void StopDetached(Activity? span)
    {
        if (span is null)
            return;
        var previous = Activity.Current;
        span.Stop();
        Activity.Current = previous;
    }
}
