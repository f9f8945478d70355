// GET /api/vms/{name}/console/ws: the interactive console as a WebSocket. The server sends
// the guest's output as binary messages (the last 64 KiB first, then live) and closes with
// status 1000 and the reason when the guest ends; the client sends keystrokes as binary or
// text messages, which go to the guest's UART. Watching needs no token; typing does when the
// node has one (Authorization: Bearer TOKEN, or ?token=TOKEN for clients that cannot set
// headers): typing without it closes the socket with status 1008.
using System.Net.WebSockets;
using Akka.Actor;
using Akka.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Tern.Cluster.Actors;
using Tern.Cluster.Protocol;

namespace Tern.Node;

public static partial class NodeApi
{
    private static void MapConsoleSocket(IEndpointRouteBuilder app, RouteGroupBuilder api, string? apiToken)
    {
        if (app is IApplicationBuilder pipeline)
            pipeline.UseWebSockets();
        api.MapGet("/vms/{name}/console/ws", (string name, HttpContext http, ActorSystem system, IRequiredActor<VmControllerRegion> vms) =>
            ConsoleSocketAsync(name, http, system, vms.ActorRef, apiToken));
    }

    private static async Task ConsoleSocketAsync(string name, HttpContext http, ActorSystem system, IActorRef vms, string? apiToken)
    {
        if (!http.WebSockets.IsWebSocketRequest)
        {
            await Results.Json(new ErrorView("this endpoint speaks WebSocket; GET /api/vms/{name}/console gives server-sent events", nameof(RejectionKind.Invalid)), statusCode: 400).ExecuteAsync(http);
            return;
        }
        bool mayType = apiToken is null
            || http.Request.Headers.Authorization.ToString() == $"Bearer {apiToken}"
            || http.Request.Query["token"].ToString() == apiToken;
        var cancel = http.RequestAborted;
        using var subscription = ConsoleSubscription.Open(system, vms, name);
        if (await FirstConsoleMessageAsync(subscription, http) is not { } first)
            return;
        using var socket = await http.WebSockets.AcceptWebSocketAsync();
        using var done = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        var output = SendOutputAsync(socket, subscription, done.Token);
        var input = ReceiveInputAsync(socket, subscription, mayType, done.Token);
        // When the guest ends, the client gets a moment to answer the close.
        if (await Task.WhenAny(output, input) == output)
            await Task.WhenAny(input, Task.Delay(TimeSpan.FromSeconds(2), CancellationToken.None));
        await done.CancelAsync();
        await Task.WhenAll(output, input).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
    }

    private static async Task SendOutputAsync(WebSocket socket, ConsoleSubscription subscription, CancellationToken cancel)
    {
        try
        {
            await foreach (var message in subscription.Reader.ReadAllAsync(cancel))
            {
                if (message is ConsoleOutput o)
                {
                    await socket.SendAsync(o.Data, WebSocketMessageType.Binary, endOfMessage: true, cancel);
                }
                else if (message is ConsoleEnded ended)
                {
                    await CloseAsync(socket, WebSocketCloseStatus.NormalClosure, ended.Reason, cancel);
                    return;
                }
            }
        }
        catch (Exception e) when (e is OperationCanceledException or WebSocketException)
        {
            // the client went away or the input side ended the session
        }
    }

    private static async Task ReceiveInputAsync(WebSocket socket, ConsoleSubscription subscription, bool mayType, CancellationToken cancel)
    {
        var buffer = new byte[ConsoleInput.MaxBytes];
        try
        {
            while (socket.State == WebSocketState.Open)
            {
                var received = await socket.ReceiveAsync(buffer, cancel);
                if (received.MessageType == WebSocketMessageType.Close)
                {
                    await CloseAsync(socket, WebSocketCloseStatus.NormalClosure, "detached", cancel);
                    return;
                }
                if (!mayType)
                {
                    await CloseAsync(socket, WebSocketCloseStatus.PolicyViolation, "a valid API token is required to type on the console", cancel);
                    return;
                }
                subscription.Send(buffer.AsSpan(0, received.Count));
            }
        }
        catch (Exception e) when (e is OperationCanceledException or WebSocketException)
        {
            // the client went away or the guest ended
        }
    }

    // A close reason is at most 123 bytes of UTF-8.
    private static Task CloseAsync(WebSocket socket, WebSocketCloseStatus status, string reason, CancellationToken cancel)
    {
        string text = reason.Length > 120 ? reason[..120] : reason;
        return socket.State is WebSocketState.Open or WebSocketState.CloseReceived
            ? socket.CloseOutputAsync(status, text, cancel)
            : Task.CompletedTask;
    }
}
