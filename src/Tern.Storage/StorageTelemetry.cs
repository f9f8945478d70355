// The extent pool's telemetry, through System.Diagnostics only (no OpenTelemetry package here;
// a node exports the "Tern.Storage" source and meter with the other layers'): a trace event when
// a mirror leg goes degraded, and the gauge tern.storage.degraded_legs, read at collection time
// from every volume group open in this process (an in-process test cluster has several views of
// one VG: each VG reports the worst view).
using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Runtime.CompilerServices;

namespace Tern.Storage;

/// <summary>ActivitySource and Meter of the storage layer.</summary>
public static class StorageTelemetry
{
    /// <summary>The ActivitySource and Meter name to enable in OpenTelemetry.</summary>
    public const string SourceName = "Tern.Storage";

    /// <summary>Name of the event (and of the span carrying it when nothing else is current) recorded when a leg goes degraded.</summary>
    public const string LegDegradedEvent = "tern.storage.leg_degraded";

    /// <summary>Spans and events of the storage layer.</summary>
    public static readonly ActivitySource Source = new(SourceName);

    /// <summary>The storage layer's meter.</summary>
    public static readonly Meter Meter = new(SourceName);

    // Weak, so a VG nobody disposed does not live on for the gauge's sake.
    private static readonly ConditionalWeakTable<VolumeGroup, object> OpenGroups = new();

    static StorageTelemetry()
    {
        Meter.CreateObservableGauge("tern.storage.degraded_legs", DegradedLegs, "{leg}",
            "Mirror legs that are missing, failed, stale or have out-of-date regions, per volume group (tern.vg)");
    }

    internal static void Opened(VolumeGroup vg) => OpenGroups.AddOrUpdate(vg, vg.Name);

    internal static void Closed(VolumeGroup vg) => OpenGroups.Remove(vg);

    private static IEnumerable<Measurement<int>> DegradedLegs()
    {
        var worst = new Dictionary<Guid, (string Name, int Legs)>();
        foreach (var (vg, _) in OpenGroups)
        {
            int legs = vg.DegradedLegCount();
            var md = vg.Metadata;
            if (!worst.TryGetValue(md.Id, out var seen) || seen.Legs < legs)
                worst[md.Id] = (md.Name, legs);
        }
        return worst.Values.Select(w => new Measurement<int>(w.Legs, new KeyValuePair<string, object?>("tern.vg", w.Name)));
    }

    /// <summary>
    /// Records that a mirror leg went degraded: an event on a span of its own (a child of the
    /// current span, such as the guest I/O that found the leg gone) when the storage source is
    /// listened to, else on the current span.
    /// </summary>
    internal static void LegDegraded(DegradedLeg leg, string reason)
    {
        var tags = new ActivityTagsCollection
        {
            ["tern.vg"] = leg.Vg,
            ["tern.lv"] = leg.Lv,
            ["tern.pv"] = leg.PvPath,
            ["tern.host"] = leg.Host,
            ["tern.leg"] = leg.Leg,
            ["tern.segment"] = leg.SegmentStart,
            ["tern.reason"] = reason,
        };
        using var span = Source.StartActivity("storage.leg.degraded");
        foreach (var tag in tags)
            span?.SetTag(tag.Key, tag.Value);
        (span ?? Activity.Current)?.AddEvent(new ActivityEvent(LegDegradedEvent, tags: tags));
    }
}
