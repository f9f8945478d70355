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

    /// <summary>
    /// Runs a node until the process is asked to stop (Ctrl-C, SIGTERM) or <paramref name="cancel"/> fires; leaving the cluster gracefully.
    /// </summary>
    /// <exception cref="NodeStartException">the database cannot be used, or the node did not become an Up member within the join timeout.</exception>
    public static async Task RunAsync(NodeSettings settings, TextWriter output, CancellationToken cancel)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(output);
        var options = settings.Cluster;
        if (await TernPersistence.WaitForDatabaseAsync(options, options.JoinTimeout, cancel) is { } database)
            throw new NodeStartException(database);
        await using var app = Build(settings);
        await app.StartAsync(cancel);
        var cluster = Akka.Cluster.Cluster.Get(app.Services.GetRequiredService<Akka.Actor.ActorSystem>());
        await output.WriteLineAsync($"tern node {options.NodeName}: cluster address {cluster.SelfAddress}, API {HttpAddress(app)}, pid {Environment.ProcessId}");
        await output.FlushAsync(cancel);

        using var stopping = CancellationTokenSource.CreateLinkedTokenSource(cancel, app.Lifetime.ApplicationStopping);
        switch (await WaitUntilUpAsync(cluster, options.JoinTimeout, stopping.Token))
        {
            case true:
                await output.WriteLineAsync($"tern node {options.NodeName}: Up in cluster {options.SystemName}");
                await output.FlushAsync(cancel);
                break;
            case false:
                // Nothing answered: a seed with nothing listening, or one of another cluster (remoting drops
                // messages addressed to a different system name). Say so and leave; nobody else saw this node.
                string why = $"did not join cluster '{options.SystemName}' within {options.JoinTimeout.TotalSeconds:0.###} s through seeds " +
                    $"{string.Join(", ", options.SeedAddresses(options.Port))}: no seed answered (nothing listening there, or a node of another cluster)";
                app.Logger.LogError("{Reason}", why);
                await app.StopAsync(CancellationToken.None);
                throw new NodeStartException(why);
            default:
                break;
        }
        await app.WaitForShutdownAsync(cancel);
    }

    // True once this node is Up, false after the timeout, null when the process is stopping first.
    private static async Task<bool?> WaitUntilUpAsync(Akka.Cluster.Cluster cluster, TimeSpan timeout, CancellationToken stopping)
    {
        var up = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        cluster.RegisterOnMemberUp(() => up.TrySetResult());
        try
        {
            await up.Task.WaitAsync(timeout, stopping);
            return true;
        }
        catch (TimeoutException)
        {
            return false;
        }
        catch (OperationCanceledException)
        {
            return null;
        }
    }

    /// <summary>The address the API listens on, once started.</summary>
    public static string HttpAddress(WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        return app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses.FirstOrDefault()
            ?? throw new InvalidOperationException("the node's HTTP server has not started");
    }
}

/// <summary>A node that could not start or join; the message is one line for the operator.</summary>
public sealed class NodeStartException(string message) : Exception(message);
