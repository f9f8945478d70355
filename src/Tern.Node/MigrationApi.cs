// The migration and drain calls of the HTTP API (docs/migration.md, "through the cluster"):
// start, watch and cancel a VM's live migration; drain and undrain a host.
using System.Text.Json;
using System.Text.Json.Serialization;
using Akka.Actor;
using Akka.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Tern.Cluster.Actors;
using Tern.Cluster.Protocol;
using Tern.Cluster.Telemetry;

namespace Tern.Node;

/// <summary>POST /api/vms/{name}/migrate and POST /api/hosts/{name}/drain body.</summary>
public sealed record MigrateRequest(
    string? To = null,
    double? DowntimeLimitMs = null,
    long? MaxBandwidth = null,
    bool? Postcopy = null,
    string? AutoConverge = null,
    bool? PostcopyAtOnce = null);

/// <summary>Where a migration stands: progress while it runs, figures once it completed (keys as in QEMU's query-migrate).</summary>
public sealed record MigrationView(
    [property: JsonPropertyName("vm")] string Vm,
    [property: JsonPropertyName("status")] string Status,
    [property: JsonPropertyName("from")] string? Source,
    [property: JsonPropertyName("to")] string? To,
    [property: JsonPropertyName("generation")] long Generation,
    [property: JsonPropertyName("progress")] MigrationProgressJson? Progress,
    [property: JsonPropertyName("figures")] MigrationFiguresJson? Figures,
    [property: JsonPropertyName("error")] string? Error)
{
    /// <summary>The view of a controller's status.</summary>
    public static MigrationView Of(MigrationStatus s) => new(s.VmId, s.Status, s.From, s.To, s.Generation,
        s.Progress is { } p ? new(p.Phase, p.Round, p.RemainingBytes, p.DirtyPagesRate, p.BandwidthMiBps, p.ExpectedDowntimeMs, p.BytesSent, p.ElapsedMs, p.ThrottlePercent) : null,
        s.Figures is { } f ? new(f.TotalTimeMs, f.SetupTimeMs, f.DowntimeMs, f.Rounds, f.BytesSent, f.PagesZero, f.PagesDelta, f.PagesCompressed, f.PagesRaw, f.DirtyPagesRate, f.BandwidthMiBps, f.PrepareTimeMs, f.PauseMs, f.FinalCopyMs, f.AckWaitMs, f.ThrottlePercent, f.PostCopyPages,
            f.Breakdown is { } b ? new(b.PauseMs, b.StateCaptureMs, b.FinalCopyMs, b.FinalPages, b.ReadyWaitMs, b.TargetApplyMs, b.TargetLoadMs, b.GoToStartedMs, b.PrecopyEncodeMs, b.PrecopyWriteMs, b.PrecopyRoundWaitMs) : null) : null,
        s.Error);
}

/// <summary>A running migration's progress.</summary>
public sealed record MigrationProgressJson(
    [property: JsonPropertyName("phase")] string Phase,
    [property: JsonPropertyName("round")] int Round,
    [property: JsonPropertyName("remaining_bytes")] long RemainingBytes,
    [property: JsonPropertyName("dirty_rate")] double DirtyRate,
    [property: JsonPropertyName("bandwidth_mibps")] double BandwidthMiBps,
    [property: JsonPropertyName("expected_downtime_ms")] double ExpectedDowntimeMs,
    [property: JsonPropertyName("bytes_sent")] long BytesSent,
    [property: JsonPropertyName("elapsed_ms")] double ElapsedMs,
    [property: JsonPropertyName("throttle")] int Throttle);

/// <summary>A completed migration's figures.</summary>
public sealed record MigrationFiguresJson(
    [property: JsonPropertyName("total_time_ms")] double TotalTimeMs,
    [property: JsonPropertyName("setup_time_ms")] double SetupTimeMs,
    [property: JsonPropertyName("downtime_ms")] double DowntimeMs,
    [property: JsonPropertyName("rounds")] int Rounds,
    [property: JsonPropertyName("bytes_sent")] long BytesSent,
    [property: JsonPropertyName("pages_zero")] long PagesZero,
    [property: JsonPropertyName("pages_delta")] long PagesDelta,
    [property: JsonPropertyName("pages_compressed")] long PagesCompressed,
    [property: JsonPropertyName("pages_raw")] long PagesRaw,
    [property: JsonPropertyName("dirty_rate")] double DirtyRate,
    [property: JsonPropertyName("bandwidth_mibps")] double BandwidthMiBps,
    [property: JsonPropertyName("prepare_time_ms")] double PrepareTimeMs,
    [property: JsonPropertyName("pause_ms")] double PauseMs,
    [property: JsonPropertyName("final_copy_ms")] double FinalCopyMs,
    [property: JsonPropertyName("ack_wait_ms")] double AckWaitMs,
    [property: JsonPropertyName("throttle")] int Throttle,
    [property: JsonPropertyName("postcopy_pages")] long PostCopyPages,
    [property: JsonPropertyName("breakdown")] MigrationBreakdownJson? Breakdown);

/// <summary>Where a completed migration's time went, keys as in `tern bench migrate --json` (docs/migration.md).</summary>
public sealed record MigrationBreakdownJson(
    [property: JsonPropertyName("pause_ms")] double PauseMs,
    [property: JsonPropertyName("state_capture_ms")] double StateCaptureMs,
    [property: JsonPropertyName("final_copy_ms")] double FinalCopyMs,
    [property: JsonPropertyName("final_pages")] int FinalPages,
    [property: JsonPropertyName("ready_wait_ms")] double ReadyWaitMs,
    [property: JsonPropertyName("target_apply_ms")] double TargetApplyMs,
    [property: JsonPropertyName("target_load_ms")] double TargetLoadMs,
    [property: JsonPropertyName("go_to_started_ms")] double GoToStartedMs,
    [property: JsonPropertyName("precopy_encode_ms")] double PrecopyEncodeMs,
    [property: JsonPropertyName("precopy_write_ms")] double PrecopyWriteMs,
    [property: JsonPropertyName("precopy_round_wait_ms")] double PrecopyRoundWaitMs);

/// <summary>Maps the migration and drain routes.</summary>
public static class MigrationApi
{
    private static readonly TimeSpan AskTimeout = TimeSpan.FromSeconds(30);

    /// <summary>The settings of a request, or the reason they are unacceptable.</summary>
    public static (MigrationSettings? Settings, string? Error) Settings(MigrateRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        bool autoConverge = MigrationSettings.Default.AutoConverge;
        if (request.AutoConverge is { } ac)
        {
            if (string.Equals(ac, "on", StringComparison.OrdinalIgnoreCase))
                autoConverge = true;
            else if (string.Equals(ac, "off", StringComparison.OrdinalIgnoreCase))
                autoConverge = false;
            else
                return (null, $"auto-converge '{ac}': use on or off");
        }
        var settings = new MigrationSettings(request.DowntimeLimitMs ?? MigrationSettings.Default.DowntimeLimitMs, request.MaxBandwidth ?? 0, autoConverge, request.Postcopy == true, request.PostcopyAtOnce == true);
        return settings.Check() is { } bad ? (null, bad) : (settings, null);
    }

    /// <summary>Adds the routes: reads to <paramref name="api"/>, changes to <paramref name="mutating"/> (token-checked).</summary>
    public static void Map(RouteGroupBuilder api, RouteGroupBuilder mutating)
    {
        ArgumentNullException.ThrowIfNull(api);
        ArgumentNullException.ThrowIfNull(mutating);
        api.MapGet("/vms/{name}/migration", (string name, IRequiredActor<VmControllerRegion> vms) => Send(vms, new GetMigration(name), 200));
        mutating.MapPost("/vms/{name}/migrate", async (string name, HttpRequest http, IRequiredActor<VmControllerRegion> vms) =>
        {
            var (request, error) = await Body(http);
            if (error is not null)
                return error;
            var (settings, invalid) = Settings(request!);
            if (invalid is not null)
                return Error(invalid, RejectionKind.Invalid);
            using var span = NodeTelemetry.StartApiSpan(http.HttpContext, "api.vm.migrate");
            span?.SetTag("tern.vm", name);
            return await Send(vms, new MigrateVm(name, string.IsNullOrEmpty(request!.To) ? null : request.To, settings!, TernTracing.Capture()), 202);
        });
        mutating.MapPost("/vms/{name}/migrate/cancel", (string name, IRequiredActor<VmControllerRegion> vms) => Send(vms, new CancelMigration(name), 200));
        mutating.MapDelete("/vms/{name}/migrate", (string name, IRequiredActor<VmControllerRegion> vms) => Send(vms, new CancelMigration(name), 200));
        mutating.MapPost("/hosts/{name}/undrain", async (string name, IRequiredActor<SchedulerProxy> scheduler) =>
            await HostDrain.SetDrainingAsync(scheduler.ActorRef, name, false, AskTimeout) is { } why
                ? Error(why, RejectionKind.NotFound)
                : Results.Ok(new { host = name, draining = false }));
        mutating.MapPost("/hosts/{name}/drain", Drain);
    }

    // Streams one JSON line per guest as its migration ends, then a summary line (application/x-ndjson).
    private static async Task Drain(string name, HttpContext http, ActorSystem system, IRequiredActor<SchedulerProxy> scheduler, IRequiredActor<VmControllerRegion> vms)
    {
        var (request, error) = await Body(http.Request);
        if (error is not null)
        {
            await error.ExecuteAsync(http);
            return;
        }
        var (settings, invalid) = Settings(request! with { To = null });
        if (invalid is not null || !string.IsNullOrEmpty(request!.To))
        {
            await Error(invalid ?? "a drain picks the targets itself: leave out 'to'", RejectionKind.Invalid).ExecuteAsync(http);
            return;
        }
        if (await HostDrain.SetDrainingAsync(scheduler.ActorRef, name, true, AskTimeout) is { } why)
        {
            await Error(why, RejectionKind.NotFound).ExecuteAsync(http);
            return;
        }
        http.Response.ContentType = "application/x-ndjson";
        var results = await HostDrain.MigrateAllAsync(system, vms.ActorRef, name, settings!, async guest =>
        {
            await http.Response.WriteAsync(JsonSerializer.Serialize(MigrationView.Of(guest.Status)) + "\n", http.RequestAborted);
            await http.Response.Body.FlushAsync(http.RequestAborted);
        }, AskTimeout, http.RequestAborted);
        int moved = results.Count(r => r.Status.Status == "completed");
        var summary = new { host = name, draining = true, migrated = moved, failed = results.Count - moved };
        await http.Response.WriteAsync(JsonSerializer.Serialize(summary) + "\n", http.RequestAborted);
    }

    private static async Task<(MigrateRequest? Request, IResult? Error)> Body(HttpRequest http)
    {
        try
        {
            // No body at all (no length, not chunked) means the defaults; a chunked body is read like any other.
            bool empty = http.ContentLength == 0 || (http.ContentLength is null && !http.Headers.TransferEncoding.Any(t => t?.Contains("chunked", StringComparison.OrdinalIgnoreCase) == true));
            var body = empty ? new MigrateRequest() : await http.ReadFromJsonAsync<MigrateRequest>();
            return (body ?? new MigrateRequest(), null);
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or BadHttpRequestException)
        {
            return (null, Error($"the body is not a migration request: {e.Message}", RejectionKind.Invalid));
        }
    }

    private static IResult Error(string reason, RejectionKind kind) => Results.Json(new ErrorView(reason, kind.ToString()), statusCode: Status(kind));

    private static int Status(RejectionKind kind) => kind switch
    {
        RejectionKind.NotFound => 404,
        RejectionKind.Conflict => 409,
        RejectionKind.Refused => 422,
        RejectionKind.Unavailable => 503,
        _ => 400,
    };

    private static async Task<IResult> Send(IRequiredActor<VmControllerRegion> vms, IWithVmId command, int successStatus)
    {
        object answer;
        try
        {
            answer = await vms.ActorRef.Ask<object>(command, AskTimeout);
        }
        catch (AskTimeoutException)
        {
            return Error($"the cluster did not answer within {AskTimeout.TotalSeconds:0} s", RejectionKind.Unavailable);
        }
        return answer switch
        {
            MigrationStatus s => Results.Json(MigrationView.Of(s), statusCode: successStatus),
            CommandRejected r => Error(r.Reason, r.Kind),
            _ => Results.Json(new ErrorView($"unexpected answer {answer.GetType().Name}", "Internal"), statusCode: 500),
        };
    }
}
