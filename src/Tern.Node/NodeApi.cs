// The node's HTTP API: hosts and VMs. Every user error is a 4xx with a reason; mutating
// calls need the API token when one is configured.
using System.Diagnostics;
using Akka.Actor;
using Akka.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Tern.Cluster.Actors;
using Tern.Cluster.Protocol;
using Tern.Cluster.Telemetry;

namespace Tern.Node;

/// <summary>Maps the API routes.</summary>
public static partial class NodeApi
{
    private static readonly TimeSpan AskTimeout = TimeSpan.FromSeconds(30);

    /// <summary>Adds the /api routes and the health endpoints to <paramref name="app"/>.</summary>
    public static void Map(IEndpointRouteBuilder app, string? apiToken)
    {
        ArgumentNullException.ThrowIfNull(app);
        NodeHealth.Map(app);

        var api = app.MapGroup("/api");
        api.MapGet("/hosts", async (IRequiredActor<SchedulerProxy> scheduler) =>
        {
            var list = await scheduler.ActorRef.Ask<HostList>(new GetHosts(), AskTimeout);
            return Results.Ok(list.Hosts.Select(h => HostView.From(h) with { Draining = list.Draining?.Contains(h.Name) == true }));
        });
        api.MapGet("/vms", async (ActorSystem system, IRequiredActor<VmControllerRegion> vms) =>
            Results.Ok((await VmDirectory.ListAsync(system, vms.ActorRef, AskTimeout)).Select(VmView.From)));
        api.MapGet("/vms/{name}/console", StreamConsole);
        api.MapGet("/events", StreamEvents);
        MapFencing(api);
        MapMembers(api);
        MapConsoleSocket(app, api, apiToken);
        api.MapGet("/vms/{name}", (string name, IRequiredActor<VmControllerRegion> vms) => Send(vms, new GetVm(name), StatusCodes.Status200OK));

        var mutating = api.MapGroup("").AddEndpointFilter(async (context, next) =>
        {
            if (apiToken is not null && context.HttpContext.Request.Headers.Authorization.ToString() != $"Bearer {apiToken}")
                return Results.Json(new ErrorView("a valid API token is required (Authorization: Bearer TOKEN)", "Unauthorized"), statusCode: 401);
            return await next(context);
        });
        mutating.MapPost("/vms", async (HttpRequest http, IRequiredActor<VmControllerRegion> vms) =>
        {
            VmCreateRequest? request;
            try
            {
                request = await http.ReadFromJsonAsync<VmCreateRequest>();
            }
            catch (Exception e) when (e is System.Text.Json.JsonException or InvalidOperationException or BadHttpRequestException)
            {
                return Results.Json(new ErrorView($"the body is not a VM request: {e.Message}", nameof(RejectionKind.Invalid)), statusCode: 400);
            }
            if (request is null || string.IsNullOrWhiteSpace(request.Name) || string.IsNullOrWhiteSpace(request.Kernel))
                return Results.Json(new ErrorView("a JSON body with at least 'name' and 'kernel' is required", nameof(RejectionKind.Invalid)), statusCode: 400);
            var spec = new VmSpec(request.Name, request.MemoryBytes, request.Harts, ImageRef.FromPath(request.Kernel),
                request.Bios is null ? null : ImageRef.FromPath(request.Bios), request.Initrd is null ? null : ImageRef.FromPath(request.Initrd),
                request.Append ?? "", request.Disks ?? [], request.Host, request.Clock);
            return await Traced(http.HttpContext, "api.vm.create", request.Name, trace => Send(vms, new CreateVm(request.Name, spec, trace), StatusCodes.Status201Created));
        });
        MigrationApi.Map(api, mutating);
        MapDebug(api, mutating);
        StorageApi.Map(api, apiToken);
        StorageDataApi.Map(mutating);
        mutating.MapPost("/vms/{name}/start", (string name, HttpContext http, IRequiredActor<VmControllerRegion> vms) =>
            Traced(http, "api.vm.start", name, trace => Send(vms, new StartVm(name, trace), StatusCodes.Status200OK)));
        mutating.MapPost("/vms/{name}/stop", (string name, HttpContext http, IRequiredActor<VmControllerRegion> vms) =>
            Traced(http, "api.vm.stop", name, trace => Send(vms, new StopVm(name, trace), StatusCodes.Status200OK)));
        mutating.MapDelete("/vms/{name}", (string name, HttpContext http, IRequiredActor<VmControllerRegion> vms) =>
            Traced(http, "api.vm.delete", name, trace => Send(vms, new DeleteVm(name, trace), StatusCodes.Status200OK)));
    }

    // The console's first message (the backlog, or the refusal): null, with the error answered
    // (404/409 for a refusal, 503 when the cluster is silent), when there is no console to stream.
    private static async Task<object?> FirstConsoleMessageAsync(ConsoleSubscription subscription, HttpContext http)
    {
        var cancel = http.RequestAborted;
        object first;
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancel);
            timeout.CancelAfter(AskTimeout);
            first = await subscription.Reader.ReadAsync(timeout.Token);
        }
        catch (OperationCanceledException) when (!cancel.IsCancellationRequested)
        {
            await Results.Json(new ErrorView($"the cluster did not answer within {AskTimeout.TotalSeconds:0} s", nameof(RejectionKind.Unavailable)), statusCode: 503).ExecuteAsync(http);
            return null;
        }
        if (first is CommandRejected rejected)
        {
            await Results.Json(new ErrorView(rejected.Reason, rejected.Kind.ToString()), statusCode: rejected.Kind == RejectionKind.NotFound ? 404 : 409).ExecuteAsync(http);
            return null;
        }
        return first;
    }

    // Server-sent events: one event per console chunk, its data the chunk's text as a JSON string.
    private static async Task StreamConsole(string name, HttpContext http, ActorSystem system, IRequiredActor<VmControllerRegion> vms)
    {
        var cancel = http.RequestAborted;
        using var subscription = ConsoleSubscription.Open(system, vms.ActorRef, name);
        if (await FirstConsoleMessageAsync(subscription, http) is not { } first)
            return;
        http.Response.ContentType = "text/event-stream";
        http.Response.Headers.CacheControl = "no-cache";
        await http.Response.StartAsync(cancel); // the stream is open even while a guest says nothing
        var message = first;
        try
        {
            while (true)
            {
                if (message is ConsoleOutput output)
                {
                    string text = System.Text.Json.JsonSerializer.Serialize(System.Text.Encoding.UTF8.GetString(output.Data));
                    await http.Response.WriteAsync($"data: {text}\n\n", cancel);
                    await http.Response.Body.FlushAsync(cancel);
                }
                else if (message is ConsoleEnded ended)
                {
                    await http.Response.WriteAsync($"event: end\ndata: {System.Text.Json.JsonSerializer.Serialize(ended.Reason)}\n\n", cancel);
                    break;
                }
                if (!await subscription.Reader.WaitToReadAsync(cancel))
                    break;
                message = await subscription.Reader.ReadAsync(cancel);
            }
        }
        catch (OperationCanceledException)
        {
            // the client went away
        }
    }

    private static async Task<IResult> Traced(HttpContext http, string operation, string vm, Func<TraceContext?, Task<IResult>> send)
    {
        using var span = NodeTelemetry.StartApiSpan(http, operation);
        span?.SetTag("tern.vm", vm);
        return await send(TernTracing.Capture());
    }

    private static async Task<IResult> Send(IRequiredActor<VmControllerRegion> vms, IWithVmId command, int successStatus)
    {
        object answer;
        try
        {
            answer = await vms.ActorRef.Ask<object>(command, AskTimeout);
        }
        catch (AskTimeoutException)
        {
            return Results.Json(new ErrorView($"the cluster did not answer within {AskTimeout.TotalSeconds:0} s", nameof(RejectionKind.Unavailable)), statusCode: 503);
        }
        return answer switch
        {
            VmStatus s => Results.Json(VmView.From(s), statusCode: successStatus),
            CommandRejected r => Results.Json(new ErrorView(r.Reason, r.Kind.ToString()), statusCode: r.Kind switch
            {
                RejectionKind.NotFound => 404,
                RejectionKind.Conflict => 409,
                RejectionKind.Refused => 422,
                RejectionKind.Unavailable => 503,
                _ => 400,
            }),
            _ => Results.Json(new ErrorView($"unexpected answer {answer.GetType().Name}", "Internal"), statusCode: 500),
        };
    }
}
