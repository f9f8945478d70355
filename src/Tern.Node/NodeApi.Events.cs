// GET /api/events: the cluster's events as server-sent events: the ones this node still holds
// (its last 1000), then each new one as it happens; ?follow=false ends after the history.
// Each event's data is one EventView as JSON.
using System.Text.Json;
using Akka.Actor;
using Microsoft.AspNetCore.Http;
using Tern.Cluster.Actors;
using Tern.Cluster.Protocol;

namespace Tern.Node;

public static partial class NodeApi
{
    private static readonly JsonSerializerOptions WebJson = new(JsonSerializerDefaults.Web);

    private static async Task StreamEvents(HttpContext http, ActorSystem system, bool? follow)
    {
        var cancel = http.RequestAborted;
        using var subscription = EventSubscription.Open(system);
        EventHistory history;
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancel);
            timeout.CancelAfter(AskTimeout);
            history = (EventHistory)await subscription.Reader.ReadAsync(timeout.Token);
        }
        catch (OperationCanceledException) when (!cancel.IsCancellationRequested)
        {
            await Results.Json(new ErrorView($"the node's event log did not answer within {AskTimeout.TotalSeconds:0} s", nameof(RejectionKind.Unavailable)), statusCode: 503).ExecuteAsync(http);
            return;
        }
        http.Response.ContentType = "text/event-stream";
        http.Response.Headers.CacheControl = "no-cache";
        try
        {
            foreach (var e in history.Events)
                await WriteEventAsync(http, e, cancel);
            await http.Response.Body.FlushAsync(cancel);
            if (follow == false)
                return;
            await foreach (var message in subscription.Reader.ReadAllAsync(cancel))
            {
                if (message is TernEvent e)
                {
                    await WriteEventAsync(http, e, cancel);
                    await http.Response.Body.FlushAsync(cancel);
                }
            }
        }
        catch (OperationCanceledException)
        {
            // the client went away
        }
    }

    private static Task WriteEventAsync(HttpContext http, TernEvent e, CancellationToken cancel) =>
        http.Response.WriteAsync($"data: {JsonSerializer.Serialize(EventView.From(e), WebJson)}\n\n", cancel);
}
