// The migration's metrics and span helpers: a downtime histogram, and spans recorded after
// the fact for each pre-copy round from the progress reports the source gives.
using System.Diagnostics;
using System.Diagnostics.Metrics;
using Tern.Cluster.Protocol;

namespace Tern.Cluster.Migration;

/// <summary>Metrics of live migrations through the cluster.</summary>
public static class MigrationTelemetry
{
    /// <summary>The Meter name (the cluster layer's, which nodes already export).</summary>
    public const string MeterName = "Tern.Cluster";

    private static readonly Meter Meter = new(MeterName);

    /// <summary>Guest downtime of each completed migration, in milliseconds.</summary>
    public static readonly Histogram<double> Downtime = Meter.CreateHistogram<double>("tern.migration.downtime", "ms", "Guest downtime of completed live migrations");

    /// <summary>Total time of each completed migration, in milliseconds.</summary>
    public static readonly Histogram<double> TotalTime = Meter.CreateHistogram<double>("tern.migration.total_time", "ms", "Total time of completed live migrations");

    /// <summary>Migrations that ended, by outcome (completed, failed, cancelled).</summary>
    public static readonly Counter<long> Outcomes = Meter.CreateCounter<long>("tern.migration.outcomes", "{migration}", "Live migrations by outcome");

    /// <summary>Records a finished migration's figures.</summary>
    public static void Record(string vmId, string targetHost, MigrationFigures figures)
    {
        ArgumentNullException.ThrowIfNull(figures);
        var vm = new KeyValuePair<string, object?>("tern.vm", vmId);
        var host = new KeyValuePair<string, object?>("tern.host", targetHost);
        Downtime.Record(figures.DowntimeMs, vm, host);
        TotalTime.Record(figures.TotalTimeMs, vm, host);
        Outcome(targetHost, "completed");
    }

    /// <summary>Counts a migration that ended with <paramref name="status"/> (completed, failed, cancelled).</summary>
    public static void Outcome(string targetHost, string status) =>
        Outcomes.Add(1, new KeyValuePair<string, object?>("tern.host", targetHost), new KeyValuePair<string, object?>("tern.migration.status", status));

    /// <summary>A span that began at <paramref name="start"/> and ends now, as a child of <paramref name="parent"/>.</summary>
    public static void Span(string name, ActivityContext parent, DateTime start, params (string Key, object? Value)[] tags)
    {
        using var span = Telemetry.TernTracing.Source.StartActivity(name, ActivityKind.Internal, parent, startTime: start);
        if (span is null)
            return;
        foreach (var (key, value) in tags)
            span.SetTag(key, value);
    }
}
