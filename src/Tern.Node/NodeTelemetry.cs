// A node's observability, in one place: console logs that carry the current trace and span ids
// (plain text, or JSON lines with TERN_LOG_FORMAT=json), and OpenTelemetry when the standard
// OTEL_EXPORTER_OTLP_ENDPOINT asks for it: traces of every layer's ActivitySource, metrics of
// every layer's Meter and the logs themselves, exported over OTLP (protocol, headers, intervals
// from the standard OTEL_* variables).
using System.Diagnostics;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using OpenTelemetry.Logs;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;
using Tern.Cluster.Telemetry;
using Tern.Machine;
using Tern.Storage;

namespace Tern.Node;

/// <summary>Logging and OpenTelemetry of a node process.</summary>
public static class NodeTelemetry
{
    /// <summary>The API layer's ActivitySource (spans api.vm.*).</summary>
    public const string SourceName = "Tern.Node";

    /// <summary>Spans of API calls.</summary>
    public static readonly ActivitySource Source = new(SourceName);

    /// <summary>Every ActivitySource a node exports, lowest layer last.</summary>
    public static readonly IReadOnlyList<string> Sources = [SourceName, TernTracing.SourceName, MachineTelemetry.SourceName, StorageTelemetry.SourceName];

    /// <summary>Every Meter a node exports.</summary>
    public static readonly IReadOnlyList<string> Meters = [TernMetrics.MeterName, MachineTelemetry.SourceName, StorageTelemetry.SourceName];

    /// <summary>Environment variable choosing the console log format: simple (default) or json.</summary>
    public const string LogFormatVariable = "TERN_LOG_FORMAT";

    /// <summary>Environment variable: one guest disk operation in N is traced (0: none; default 1000).</summary>
    public const string GuestIoSampleVariable = "TERN_GUEST_IO_SAMPLE";

    /// <summary>What is wrong with the telemetry environment variables, or null.</summary>
    public static string? CheckEnvironment()
    {
        if (Environment.GetEnvironmentVariable(LogFormatVariable) is { Length: > 0 } format && format is not ("simple" or "json"))
            return $"{LogFormatVariable} must be 'simple' or 'json', not '{format}'";
        if (Environment.GetEnvironmentVariable(GuestIoSampleVariable) is { Length: > 0 } sample && (!int.TryParse(sample, out int n) || n < 0))
            return $"{GuestIoSampleVariable} must be a whole number of operations (0 traces none), not '{sample}'";
        return null;
    }

    /// <summary>The guest I/O sampling rate the environment asks for, else the default.</summary>
    public static int GuestIoSampleEvery() =>
        int.TryParse(Environment.GetEnvironmentVariable(GuestIoSampleVariable), out int n) && n >= 0 ? n : HostTelemetry.DefaultGuestIoSampleEvery;

    /// <summary>Sets up console logging with trace ids and, when an OTLP endpoint is set, OpenTelemetry.</summary>
    public static void Configure(WebApplicationBuilder builder, NodeSettings settings)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(settings);
        var logging = builder.Logging;
        logging.ClearProviders();
        // Every log line written inside a span names its trace and span (as a scope).
        logging.Configure(o => o.ActivityTrackingOptions = ActivityTrackingOptions.TraceId | ActivityTrackingOptions.SpanId);
        if (Environment.GetEnvironmentVariable(LogFormatVariable) == "json")
        {
            logging.AddJsonConsole(o =>
            {
                o.IncludeScopes = true;
                o.UseUtcTimestamp = true;
                o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ";
            });
        }
        else
        {
            logging.AddSimpleConsole(o =>
            {
                o.IncludeScopes = true;
                o.SingleLine = true;
                o.UseUtcTimestamp = true;
                o.TimestampFormat = "HH:mm:ss.fff ";
            });
        }
        if (string.IsNullOrEmpty(Environment.GetEnvironmentVariable("OTEL_EXPORTER_OTLP_ENDPOINT")))
        {
            TraceLocally();
            return;
        }
        string service = Environment.GetEnvironmentVariable("OTEL_SERVICE_NAME") is { Length: > 0 } s ? s : "tern-node";
        builder.Services.AddOpenTelemetry()
            .ConfigureResource(r => r
                .AddService(service, serviceInstanceId: settings.Cluster.NodeName)
                .AddAttributes([new("host.name", Environment.MachineName), new("process.pid", Environment.ProcessId)]))
            .WithTracing(t => t.AddSource([.. Sources]).AddOtlpExporter())
            .WithMetrics(m => m.AddMeter([.. Meters]).AddOtlpExporter())
            .WithLogging(l => l.AddOtlpExporter(), o => o.IncludeFormattedMessage = true);
    }

    private static readonly Lazy<ActivityListener> LocalListener = new(() =>
    {
        var listener = new ActivityListener
        {
            ShouldListenTo = source => Sources.Contains(source.Name),
            // Follow the caller's sampling decision; a trace that starts here is recorded.
            Sample = (ref ActivityCreationOptions<ActivityContext> options) =>
                options.Parent != default && !options.Parent.TraceFlags.HasFlag(ActivityTraceFlags.Recorded)
                    ? ActivitySamplingResult.AllData
                    : ActivitySamplingResult.AllDataAndRecorded,
        };
        ActivitySource.AddActivityListener(listener);
        return listener;
    });

    // Without an exporter the spans are still made (and dropped when they end): log lines get
    // their trace and span ids, and trace context still travels to nodes that do export.
    private static void TraceLocally() => _ = LocalListener.Value;

    /// <summary>
    /// Starts an API call's span. Its parent is the caller's W3C traceparent header when there is
    /// one (a CLI or a service that traces), else it is the root of a new trace; never the ASP.NET
    /// hosting activity, which is not exported and would leave the span an unknown parent.
    /// </summary>
    public static Activity? StartApiSpan(HttpContext http, string operation)
    {
        ArgumentNullException.ThrowIfNull(http);
        Activity.Current = null;
        var headers = http.Request.Headers;
        var span = ActivityContext.TryParse(headers.TraceParent.ToString(), headers.TraceState.ToString(), isRemote: true, out var parent)
            ? Source.StartActivity(operation, ActivityKind.Server, parent)
            : Source.StartActivity(operation, ActivityKind.Server);
        if (span is not null)
            http.Response.Headers["traceresponse"] = span.Id;
        return span;
    }
}
