// One QEMU migration for `tern bench migrate --qemu`: the same benchmark guest runs in a
// qemu-system-riscv64 process, a second one waits with `-incoming tcp:127.0.0.1:PORT`, and
// `migrate` is driven over QMP; query-migrate is polled until the migration completes, fails
// or runs out of time (then it is cancelled), and the destination's console shows whether
// the guest kept its heartbeat and its working set.
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;

namespace Tern.Cli.Commands;

/// <summary>Migrates a benchmark guest between two QEMU processes on loopback.</summary>
public static class QemuMigrationBench
{
    /// <summary>"unlimited" bandwidth for the tuned variant: 100 GiB/s, far above what loopback carries.</summary>
    public const long UnlimitedBandwidth = 100L << 30;

    /// <summary>The tuned variant's downtime limit, in ms (the issue's 10 ms).</summary>
    public const int TunedDowntimeLimitMs = 10;

    /// <summary>
    /// Migrates <paramref name="elf"/> once. With <paramref name="tuned"/>, sets downtime-limit 10 ms
    /// and unlimited bandwidth first; otherwise keeps QEMU's defaults. Also returns the migration
    /// parameters in effect, as "downtime-limit N ms, max-bandwidth N MiB/s".
    /// </summary>
    public static async Task<(MigrationRun Run, string Parameters)> RunAsync(string elf, bool tuned, MigrationBenchLimits limits, CancellationToken ct)
    {
        string dir = Directory.CreateTempSubdirectory("tern-migbench-").FullName;
        int port = FreePort();
        var sourceLog = new GuestConsoleLog();
        var targetLog = new GuestConsoleLog();
        Process? target = null, source = null;
        try
        {
            target = Start(elf, Path.Combine(dir, "target.qmp"), $"tcp:127.0.0.1:{port}", targetLog);
            source = Start(elf, Path.Combine(dir, "source.qmp"), null, sourceLog);
            // The destination listens for the migration before its monitor comes up.
            using var targetQmp = await QmpClient.ConnectAsync(Path.Combine(dir, "target.qmp"), TimeSpan.FromSeconds(10), ct).ConfigureAwait(false);
            using var qmp = await QmpClient.ConnectAsync(Path.Combine(dir, "source.qmp"), TimeSpan.FromSeconds(10), ct).ConfigureAwait(false);
            if (!await sourceLog.WaitAsync(MigrationBenchLimits.WarmedUp, MigrationBenchLimits.Ready, ct).ConfigureAwait(false))
                return (new MigrationRun { Status = $"failed: the guest was not ready on QEMU within {MigrationBenchLimits.Ready.TotalSeconds:F0} s" }, "");
            if (sourceLog.Failure is { } failed)
                return (new MigrationRun { Status = $"failed before migrating: {failed}" }, "");
            double dirtyRate = sourceLog.DirtyRate();
            if (tuned)
            {
                await qmp.ExecuteAsync("migrate-set-parameters", new Dictionary<string, object>
                {
                    ["downtime-limit"] = TunedDowntimeLimitMs,
                    ["max-bandwidth"] = UnlimitedBandwidth,
                }, ct).ConfigureAwait(false);
            }
            var p = await qmp.ExecuteAsync("query-migrate-parameters", null, ct).ConfigureAwait(false);
            string parameters = $"downtime-limit {p.GetProperty("downtime-limit").GetInt64()} ms, max-bandwidth {p.GetProperty("max-bandwidth").GetInt64() / (1 << 20)} MiB/s";

            await qmp.ExecuteAsync("migrate", new Dictionary<string, object> { ["uri"] = $"tcp:127.0.0.1:{port}" }, ct).ConfigureAwait(false);
            var watch = Stopwatch.StartNew();
            JsonElement info;
            string status;
            while (true)
            {
                info = await qmp.ExecuteAsync("query-migrate", null, ct).ConfigureAwait(false);
                status = info.TryGetProperty("status", out var s) ? s.GetString() ?? "" : "";
                if (status is "completed" or "failed" or "cancelled")
                    break;
                if (watch.Elapsed >= limits.MigrationLimit)
                {
                    await qmp.ExecuteAsync("migrate_cancel", null, ct).ConfigureAwait(false);
                    return (Figures(info, $"did not converge in {limits.MigrationLimit.TotalSeconds:F0} s", dirtyRate), parameters);
                }
                await Task.Delay(10, ct).ConfigureAwait(false);
            }
            // QEMU 7.2 may answer "completed" a moment before it has filled in the final
            // figures (total-time 0): ask again, bounded, until it has.
            for (int again = 0; status == "completed" && Number(info, "total-time") <= 0 && again < 100; again++)
            {
                await Task.Delay(10, ct).ConfigureAwait(false);
                info = await qmp.ExecuteAsync("query-migrate", null, ct).ConfigureAwait(false);
            }
            if (status != "completed")
            {
                string why = info.TryGetProperty("error-desc", out var e) ? e.GetString() ?? status : status;
                return (Figures(info, $"failed: {why}", dirtyRate), parameters);
            }

            bool continued = await targetLog.WaitAsync(t => MigrationBenchLimits.Continued(sourceLog, t) || t.Failure is not null,
                MigrationBenchLimits.HeartbeatAfter, ct).ConfigureAwait(false) && targetLog.Failure is null;
            string verify = targetLog.Failure ?? "n/a";
            if (continued)
            {
                await target.StandardInput.WriteAsync('v').ConfigureAwait(false);
                await target.StandardInput.FlushAsync(ct).ConfigureAwait(false);
                bool answered = await targetLog.WaitAsync(t => t.VerifiedOk || t.Failure is not null, MigrationBenchLimits.Verify, ct).ConfigureAwait(false);
                verify = targetLog.Failure ?? (answered ? "ok" : "no answer");
            }
            return (Figures(info, "completed", dirtyRate) with { HeartbeatContinued = continued, Verify = verify }, parameters);
        }
        catch (QmpException e)
        {
            return (new MigrationRun { Status = $"failed: {e.Message}" }, "");
        }
        finally
        {
            Stop(source);
            Stop(target);
            Directory.Delete(dir, recursive: true);
        }
    }

    private static MigrationRun Figures(JsonElement info, string status, double dirtyRate)
    {
        var ram = info.TryGetProperty("ram", out var r) ? r : default;
        return new MigrationRun
        {
            Status = status,
            TotalTimeMs = Number(info, "total-time"),
            SetupTimeMs = Number(info, "setup-time"),
            DowntimeMs = Number(info, "downtime"),
            BytesSent = (long)Number(ram, "transferred"),
            Rounds = (int)Number(ram, "dirty-sync-count"),
            DirtyPagesRate = dirtyRate,
        };
    }

    private static double Number(JsonElement e, string name) =>
        e.ValueKind == JsonValueKind.Object && e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number ? v.GetDouble() : 0;

    private static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }

    private static Process Start(string elf, string qmpPath, string? incoming, GuestConsoleLog log)
    {
        var psi = new ProcessStartInfo("qemu-system-riscv64")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var a in new[] { "-M", "virt", "-bios", "none", "-m", "256M", "-kernel", elf, "-display", "none", "-monitor", "none", "-serial", "stdio", "-qmp", $"unix:{qmpPath},server=on,wait=off" })
            psi.ArgumentList.Add(a);
        if (incoming is not null)
        {
            psi.ArgumentList.Add("-incoming");
            psi.ArgumentList.Add(incoming);
        }
        Process p;
        try
        {
            p = Process.Start(psi)!;
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new QmpException($"cannot start qemu-system-riscv64 ({e.Message}); install Debian's qemu-system-misc", e);
        }
        _ = Pump(p.StandardOutput, log);
        _ = p.StandardError.ReadToEndAsync();
        return p;
    }

    private static async Task Pump(StreamReader output, GuestConsoleLog log)
    {
        var buffer = new char[4096];
        int n;
        while ((n = await output.ReadAsync(buffer).ConfigureAwait(false)) > 0)
            log.Append(buffer.AsSpan(0, n));
    }

    private static void Stop(Process? p)
    {
        if (p is null)
            return;
        using (p)
        {
            try
            {
                if (!p.HasExited)
                    p.Kill(entireProcessTree: true);
                p.WaitForExit(5000);
            }
            catch (InvalidOperationException)
            {
                // already gone
            }
        }
    }
}
