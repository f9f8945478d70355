// One Tern migration for `tern bench migrate`: boots a benchmark guest in this process (host
// clock, 256 MiB), lets it warm up, moves it to a second machine over a loopback TCP connection
// with MigrationSource/MigrationTarget, then checks that the destination keeps its heartbeat
// and finds its working set intact.
using System.Net;
using System.Net.Sockets;
using Tern.Machine;
using Tern.Machine.Snapshot;
using Tern.Migration;
using Tern.Riscv;

namespace Tern.Cli.Commands;

/// <summary>Migrates a benchmark guest between two Tern machines in one process.</summary>
public static class TernMigrationBench
{
    /// <summary>
    /// Boots <paramref name="image"/>, migrates it once and returns the figures and the guest's
    /// non-zero memory at the start of the migration.
    /// </summary>
    public static async Task<(MigrationRun Run, long NonZeroBytes)> RunAsync(byte[] image, MigrationBenchLimits limits, CancellationToken ct)
    {
        var sourceLog = new GuestConsoleLog();
        using var source = new MachineThread(console =>
        {
            var m = new VirtMachine(new MachineOptions { MemoryBytes = MigrationBenchCase.MemoryBytes, Clock = ClockMode.Host, Console = console });
            m.Boot(new BootImages { Kernel = image });
            return m;
        }, "migbench-source");
        source.ConsoleOutput += b => sourceLog.Append(b.Span);
        source.Start();
        if (!await sourceLog.WaitAsync(MigrationBenchLimits.WarmedUp, MigrationBenchLimits.Ready, ct).ConfigureAwait(false))
            return (new MigrationRun { Status = $"failed: the guest was not ready within {MigrationBenchLimits.Ready.TotalSeconds:F0} s" }, 0);
        if (sourceLog.Failure is { } failed)
            return (new MigrationRun { Status = $"failed before migrating: {failed}" }, 0);
        long nonZero = await source.InvokeAsync(NonZeroBytes).ConfigureAwait(false);
        double dirtyRate = sourceLog.DirtyRate();

        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var accept = listener.AcceptTcpClientAsync(ct);
        using var client = new TcpClient { NoDelay = true };
        await client.ConnectAsync(IPAddress.Loopback, ((IPEndPoint)listener.LocalEndpoint).Port, ct).ConfigureAwait(false);
        using var server = await accept.ConfigureAwait(false);
        server.NoDelay = true;
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(ct);
        limit.CancelAfter(limits.MigrationLimit);

        var targetLog = new GuestConsoleLog();
        var receive = Task.Run(() => MigrationTarget.ReceiveAsync(server.GetStream(), EmptyMachine, "migbench-target",
            t => t.ConsoleOutput += b => targetLog.Append(b.Span), limit.Token), CancellationToken.None);
        MigrationStats stats;
        var progress = new LastProgress();
        try
        {
            stats = await new MigrationSource(source, new MigrationOptions { Progress = progress }).MigrateAsync(client.GetStream(), limit.Token).ConfigureAwait(false);
        }
        catch (MigrationFailedException e)
        {
            client.Close();
            server.Close();
            await DisposeTarget(receive).ConfigureAwait(false);
            string why = limit.IsCancellationRequested && !ct.IsCancellationRequested
                ? $"did not complete in {limits.MigrationLimit.TotalSeconds:F0} s"
                : $"failed: {e.Message}";
            // Where it stood when it was given up: the figures a reader needs to see why.
            var last = progress.Last;
            return (new MigrationRun
            {
                Status = why,
                TotalTimeMs = last?.ElapsedMs ?? 0,
                BytesSent = last?.BytesSent ?? 0,
                Rounds = last?.Round ?? 0,
                DirtyPagesRate = dirtyRate,
                Converged = false,
                ThrottlePercent = last?.ThrottlePercent ?? 0,
                Detail = last is null ? "" : string.Create(System.Globalization.CultureInfo.InvariantCulture,
                    $"last progress: {last.Phase}, {last.RemainingBytes / 1048576.0:F1} MiB dirty, {last.DirtyPagesRate:F0} pages/s dirtied, {last.BandwidthMiBps:F0} MiB/s, throttle {last.ThrottlePercent}%"),
            }, nonZero);
        }
        using var target = await receive.ConfigureAwait(false);

        bool continued = await targetLog.WaitAsync(t => MigrationBenchLimits.Continued(sourceLog, t) || t.Failure is not null,
            MigrationBenchLimits.HeartbeatAfter, ct).ConfigureAwait(false) && targetLog.Failure is null;
        string verify = targetLog.Failure ?? "n/a";
        if (targetLog.Failure is null)
        {
            try
            {
                await target.InvokeAsync(m =>
                {
                    m.ConsoleInput("v"u8);
                    return 0;
                }).ConfigureAwait(false);
                bool answered = await targetLog.WaitAsync(t => t.VerifiedOk || t.Failure is not null, MigrationBenchLimits.Verify, ct).ConfigureAwait(false);
                verify = targetLog.Failure ?? (answered ? "ok" : "no answer");
            }
            catch (InvalidOperationException)
            {
                verify = targetLog.Failure ?? "the guest stopped on the destination";
            }
        }
        return (new MigrationRun
        {
            Status = "completed",
            TotalTimeMs = stats.TotalTimeMs,
            SetupTimeMs = stats.SetupTimeMs,
            DowntimeMs = stats.DowntimeMs,
            BytesSent = stats.BytesSent,
            Rounds = stats.Rounds,
            HeartbeatContinued = continued,
            Verify = verify,
            DirtyPagesRate = dirtyRate,
            Converged = stats.Converged,
            ThrottlePercent = stats.ThrottlePercent,
            Detail = string.Create(System.Globalization.CultureInfo.InvariantCulture,
                $"downtime = pause {stats.PauseMs:F1} + final copy {stats.FinalCopyMs:F1} ({stats.FinalPages} pages, state {stats.StateCaptureMs:F1}) + ack {stats.AckWaitMs:F1} ms (ready after {stats.ReadyWaitMs:F1}: target applied {stats.TargetApplyMs:F1}, loaded {stats.TargetLoadMs:F1}); pre-copy encode {stats.EncodeMs:F0}, write {stats.WriteMs:F0}, round waits {stats.RoundWaitMs:F0} ms; {stats.BandwidthMiBps:F0} MiB/s; {(stats.Converged ? "converged" : "round limit")}, throttle {stats.ThrottlePercent}%; {Timeline(stats.Timeline)}"),
            Breakdown = Breakdown(stats),
        }, nonZero);
    }

    /// <summary>The parts of a Tern migration's time, as the bench JSON names them.</summary>
    public static Dictionary<string, double> Breakdown(MigrationStats s)
    {
        var parts = Parts(s);
        // The switchover's hand-offs, in ms after the pause request (the target's when on one clock).
        if (s.Timeline is { } t)
        {
            foreach (var (key, ms) in new (string, double)[]
            {
                ("t_guest_parked_ms", t.GuestParkedMs), ("t_state_captured_ms", t.StateCapturedMs), ("t_switchover_begun_ms", t.SwitchoverBegunMs),
                ("t_final_pages_sent_ms", t.FinalPagesSentMs), ("t_state_sent_ms", t.StateSentMs), ("t_target_state_read_ms", t.TargetStateReadMs),
                ("t_target_loaded_ms", t.TargetLoadedMs), ("t_target_end_read_ms", t.TargetEndReadMs), ("t_target_ready_sent_ms", t.TargetReadySentMs),
                ("t_ready_seen_ms", t.ReadySeenMs), ("t_target_guest_thread_waiting_ms", t.TargetGuestThreadWaitingMs), ("t_go_sent_ms", t.GoSentMs),
                ("t_target_go_read_ms", t.TargetGoReadMs), ("t_target_started_sent_ms", t.TargetStartedSentMs), ("t_started_seen_ms", t.StartedSeenMs),
                ("gen0_collections_in_window", t.Gen0Collections), ("methods_jitted_in_window", t.MethodsJitted),
            })
            {
                if (!double.IsNaN(ms))
                    parts[key] = Math.Round(ms, 3);
            }
        }
        return parts;
    }

    /// <summary>The switchover's hand-offs on one line (ms after the pause request; T marks the target's).</summary>
    public static string Timeline(SwitchoverTimeline? t) => t is null ? "" : string.Create(System.Globalization.CultureInfo.InvariantCulture,
        $"timeline: parked {t.GuestParkedMs:F2}, captured {t.StateCapturedMs:F2}, begun {t.SwitchoverBegunMs:F2}, pages sent {t.FinalPagesSentMs:F2}, state sent {t.StateSentMs:F2}, T state read {t.TargetStateReadMs:F2}, T loaded {t.TargetLoadedMs:F2}, T end read {t.TargetEndReadMs:F2}, T ready sent {t.TargetReadySentMs:F2}, ready seen {t.ReadySeenMs:F2}, T guest thread waiting {t.TargetGuestThreadWaitingMs:F2}, go sent {t.GoSentMs:F2}, T go read {t.TargetGoReadMs:F2}, T started sent {t.TargetStartedSentMs:F2}, started seen {t.StartedSeenMs:F2}; gen0 GCs {t.Gen0Collections}, JIT {t.MethodsJitted}");

    private static Dictionary<string, double> Parts(MigrationStats s) => new()
    {
        ["pause_ms"] = s.PauseMs,
        ["state_capture_ms"] = s.StateCaptureMs,
        ["final_copy_ms"] = s.FinalCopyMs,
        ["final_pages"] = s.FinalPages,
        ["ready_wait_ms"] = s.ReadyWaitMs,
        ["target_apply_ms"] = s.TargetApplyMs,
        ["target_load_ms"] = s.TargetLoadMs,
        ["go_to_started_ms"] = s.AckWaitMs - s.ReadyWaitMs,
        ["precopy_encode_ms"] = s.EncodeMs,
        ["precopy_write_ms"] = s.WriteMs,
        ["precopy_round_wait_ms"] = s.RoundWaitMs,
    };

    /// <summary>Keeps the latest progress report, on the reporting thread.</summary>
    private sealed class LastProgress : IProgress<MigrationProgress>
    {
        private volatile MigrationProgress? _last;

        public MigrationProgress? Last => _last;

        public void Report(MigrationProgress value) => _last = value;
    }

    private static VirtMachine EmptyMachine(MachineShape shape, Stream console) =>
        new(new MachineOptions { MemoryBytes = shape.MemoryBytes, Harts = shape.Harts, Clock = shape.Clock, Console = console });

    private static long NonZeroBytes(VirtMachine m)
    {
        long pages = 0;
        for (int p = 0; p < m.Memory.PageCount; p++)
        {
            if (m.Memory.Span(m.Memory.Base + ((ulong)p * GuestMemory.PageSize), GuestMemory.PageSize).ContainsAnyExcept((byte)0))
                pages++;
        }
        return pages * GuestMemory.PageSize;
    }

    private static async Task DisposeTarget(Task<MachineThread> receive)
    {
        try
        {
            (await receive.ConfigureAwait(false)).Dispose();
        }
        catch (Exception e) when (e is MigrationFailedException or IOException or OperationCanceledException or InvalidOperationException or ObjectDisposedException or SocketException)
        {
            // the target never got a guest, as a failed migration intends
        }
    }
}
