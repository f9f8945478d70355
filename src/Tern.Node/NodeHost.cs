// The composition root of a node process: the generic host (ASP.NET Core for the API),
// Akka.Hosting for the cluster, logging and OpenTelemetry as NodeTelemetry sets them up.
using Akka.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Tern.Cluster.Hosting;

namespace Tern.Node;

/// <summary>Builds and runs a Tern node.</summary>
public static class NodeHost
{
    /// <summary>Builds the node's web application (not started).</summary>
    public static WebApplication Build(NodeSettings settings, Action<ILoggingBuilder>? logging = null)
    {
        ArgumentNullException.ThrowIfNull(settings);
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [] });
        builder.WebHost.UseUrls($"http://{settings.HttpHost}:{settings.HttpPort}");
        NodeTelemetry.Configure(builder, settings);
        logging?.Invoke(builder.Logging);
        builder.Services.AddAkka(settings.Cluster.SystemName, akka => akka
            .ConfigureLoggers(l => l.AddLoggerFactory())
            .AddTernNode(settings.Cluster));
        var app = builder.Build();
        NodeApi.Map(app, settings.ApiToken);
        return app;
    }

    /// <summary>
    /// Why the node cannot listen where it was told to (a port in use, an address not on this
    /// machine), or null. Checked before starting so an operator gets one clear line, not a stack trace.
    /// </summary>
    public static string? CheckListenAddresses(NodeSettings settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        return CheckListen(settings.Cluster.Hostname, settings.Cluster.Port, "cluster remoting")
            ?? CheckListen(settings.HttpHost, settings.HttpPort, "the HTTP API");
    }

    private static string? CheckListen(string host, int port, string what)
    {
        if (port == 0)
            return null;
        try
        {
            var address = System.Net.IPAddress.TryParse(host, out var ip) ? ip : System.Net.Dns.GetHostAddresses(host).First();
            using var listener = new System.Net.Sockets.TcpListener(address, port);
            listener.Start();
            return null;
        }
        catch (Exception e) when (e is System.Net.Sockets.SocketException or InvalidOperationException)
        {
            return $"cannot listen on {host}:{port} for {what}: {e.Message}";
        }
    }

    /// <summary>Runs a node until the process is asked to stop (Ctrl-C, SIGTERM) or <paramref name="cancel"/> fires; leaving the cluster gracefully.</summary>
    public static async Task RunAsync(NodeSettings settings, TextWriter output, CancellationToken cancel)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(output);
        await using var app = Build(settings);
        await app.StartAsync(cancel);
        var self = Akka.Cluster.Cluster.Get(app.Services.GetRequiredService<Akka.Actor.ActorSystem>()).SelfAddress;
        await output.WriteLineAsync($"tern node {settings.Cluster.NodeName}: cluster address {self}, API {HttpAddress(app)}, pid {Environment.ProcessId}");
        await output.FlushAsync(cancel);
        await app.WaitForShutdownAsync(cancel);
    }

    /// <summary>The address the API listens on, once started.</summary>
    public static string HttpAddress(WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        return app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses.FirstOrDefault()
            ?? throw new InvalidOperationException("the node's HTTP server has not started");
    }
}
