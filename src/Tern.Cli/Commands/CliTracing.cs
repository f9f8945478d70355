// The `tern` client's part of a trace: when OTEL_EXPORTER_OTLP_ENDPOINT is set, a cluster
// command (tern vm create, ...) is a span of its own, exported as service tern-cli, and the
// API call carries its W3C traceparent (HttpClient propagates the current activity), so the
// CLI, the controller on one node and the hypervisor on another make one trace.
using System.CommandLine;
using System.Diagnostics;
using OpenTelemetry;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace Tern.Cli.Commands;

/// <summary>Spans of cluster commands.</summary>
public static class CliTracing
{
    /// <summary>The CLI's ActivitySource.</summary>
    public const string SourceName = "Tern.Cli";

    /// <summary>The service name the CLI's spans are filed under.</summary>
    public const string ServiceName = "tern-cli";

    private static readonly ActivitySource Source = new(SourceName);

    /// <summary>
    /// Starts exporting (when an OTLP endpoint is set) and the command's span, named cli.VERB.NOUN
    /// (cli.vm.create). Dispose the result when the command is done: it ends the span and flushes.
    /// </summary>
    public static IDisposable Begin(ParseResult parse)
    {
        ArgumentNullException.ThrowIfNull(parse);
        if (string.IsNullOrEmpty(Environment.GetEnvironmentVariable("OTEL_EXPORTER_OTLP_ENDPOINT")))
            return new Scope(null, null);
        var provider = Sdk.CreateTracerProviderBuilder()
            .AddSource(SourceName, "System.Net.Http") // the HTTP client's own span (.NET's, named after the method) sits between the command and the API
            .ConfigureResource(r => r.AddService(ServiceName, serviceInstanceId: Environment.MachineName))
            .AddOtlpExporter()
            .Build();
        var names = new List<string>();
        for (var command = parse.CommandResult; command.Parent is System.CommandLine.Parsing.CommandResult parent; command = parent)
            names.Insert(0, command.Command.Name);
        var span = Source.StartActivity("cli." + string.Join('.', names), ActivityKind.Client);
        return new Scope(provider, span);
    }

    private sealed class Scope(TracerProvider? provider, Activity? span) : IDisposable
    {
        public void Dispose()
        {
            span?.Dispose();
            provider?.Dispose(); // flushes the span before the process ends
        }
    }
}
