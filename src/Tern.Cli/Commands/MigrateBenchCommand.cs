// `tern bench migrate [--qemu] [--runs N] [--cases idle,ws,1k,10k,50k,wfi] [--time-limit S] [--json]`:
// for each benchmark guest, boots it, lets it warm up and migrates it between two Tern machines
// over loopback TCP; with --qemu the same guest also migrates between two qemu-system-riscv64
// processes, once with QEMU's defaults and once with downtime-limit 10 ms and unlimited
// bandwidth. Prints the medians over the runs as a table (or one JSON object per case) and
// the issue's targets, met or not met. Exit status 1 when a Tern migration failed (other than
// by running out of time), lost the guest's heartbeat or corrupted its memory.
using System.CommandLine;
using System.Globalization;
using System.Text.Json;

namespace Tern.Cli.Commands;

/// <summary>The `tern bench migrate` verb.</summary>
public static class MigrateBenchCommand
{
    private const string Tern = "tern", QemuDefault = "qemu-default", QemuTuned = "qemu-tuned";

    /// <summary>Builds the command.</summary>
    public static Command Create()
    {
        var qemu = new Option<bool>("--qemu") { Description = "Also migrate each guest between two qemu-system-riscv64 processes (defaults, and tuned: downtime-limit 10 ms, unlimited bandwidth)." };
        var runs = new Option<int>("--runs") { Description = "Migrations per case and system (the table shows medians).", DefaultValueFactory = _ => 5 };
        var cases = new Option<string>("--cases") { Description = "Comma-separated cases: idle, ws, 1k, 10k, 50k, wfi.", DefaultValueFactory = _ => string.Join(',', MigrationBenchCase.All.Select(c => c.Name)) };
        var timeLimit = new Option<int>("--time-limit") { Description = "Seconds a migration may take before it is cancelled.", DefaultValueFactory = _ => 10 };
        var budget = new Option<int>("--budget") { Description = "Seconds for the whole run: a case starts another run only while it is within its share (every case gets one run).", DefaultValueFactory = _ => 420 };
        var json = new Option<bool>("--json") { Description = "Print one JSON object per case." };
        var migrate = new Command("migrate", "Live-migrate the benchmark guests (idle, 192 MiB working set, 1k/10k/50k dirtied pages/s, WFI) and report total time, setup time, downtime, bytes and rounds.")
        {
            qemu, runs, cases, timeLimit, budget, json,
        };
        migrate.SetAction(async (parse, ct) =>
        {
            var err = parse.InvocationConfiguration.Error;
            var output = parse.InvocationConfiguration.Output;
            int n = parse.GetValue(runs);
            if (n is < 1 or > 20)
            {
                await err.WriteLineAsync("tern bench migrate: --runs must be between 1 and 20.").ConfigureAwait(false);
                return RunCommand.UsageError;
            }
            int limitSeconds = parse.GetValue(timeLimit);
            if (limitSeconds is < 1 or > 300)
            {
                await err.WriteLineAsync("tern bench migrate: --time-limit must be between 1 and 300 seconds.").ConfigureAwait(false);
                return RunCommand.UsageError;
            }
            int budgetSeconds = parse.GetValue(budget);
            if (budgetSeconds is < 10 or > 3600)
            {
                await err.WriteLineAsync("tern bench migrate: --budget must be between 10 and 3600 seconds.").ConfigureAwait(false);
                return RunCommand.UsageError;
            }
            var selected = new List<MigrationBenchCase>();
            foreach (string name in parse.GetValue(cases)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                var c = MigrationBenchCase.All.FirstOrDefault(c => c.Name == name);
                if (c is null)
                {
                    await err.WriteLineAsync($"tern bench migrate: unknown case '{name}' (known: {string.Join(", ", MigrationBenchCase.All.Select(c => c.Name))}).").ConfigureAwait(false);
                    return RunCommand.UsageError;
                }
                if (!selected.Contains(c))
                    selected.Add(c);
            }
            if (selected.Count == 0)
            {
                await err.WriteLineAsync("tern bench migrate: --cases names no case.").ConfigureAwait(false);
                return RunCommand.UsageError;
            }
            if (parse.GetValue(qemu) && QemuMissing() is { } why)
            {
                await err.WriteLineAsync($"tern bench migrate: cannot start qemu-system-riscv64 ({why}); install Debian's qemu-system-misc or leave out --qemu.").ConfigureAwait(false);
                return 1;
            }
            return await Run(selected, n, parse.GetValue(qemu), new MigrationBenchLimits(TimeSpan.FromSeconds(limitSeconds)), TimeSpan.FromSeconds(budgetSeconds), parse.GetValue(json), output, err, ct).ConfigureAwait(false);
        });
        return migrate;
    }

    private static async Task<int> Run(List<MigrationBenchCase> cases, int runs, bool withQemu, MigrationBenchLimits limits, TimeSpan budget, bool asJson, TextWriter output, TextWriter err, CancellationToken ct)
    {
        var whole = System.Diagnostics.Stopwatch.StartNew();
        bool ok = true;
        string qemuDefaults = "";
        var summaries = new List<CaseSummary>();
        if (!asJson)
        {
            await output.WriteLineAsync($"tern bench migrate: up to {runs} run(s) per case within {budget.TotalSeconds:F0} s, guests of 256 MiB, migration time limit {limits.MigrationLimit.TotalSeconds:F0} s; medians over completed runs").ConfigureAwait(false);
            await output.WriteLineAsync(Header).ConfigureAwait(false);
        }
        // As on a host that has been up for a few seconds: its hypervisor settled the migration
        // code in the background when it started (MigrationWarmUp), before any migration.
        var settle = System.Diagnostics.Stopwatch.StartNew();
        int rehearsals = await global::Tern.Migration.MigrationWarmUp.SettleAsync().WaitAsync(ct).ConfigureAwait(false);
        await err.WriteLineAsync($"migrate: the migration code settled as on a started host ({rehearsals} rehearsals of a 16 MiB guest, {settle.Elapsed.TotalSeconds:F1} s, not counted in any run)").ConfigureAwait(false);
        string dir = Directory.CreateTempSubdirectory("tern-migbench-").FullName;
        try
        {
            for (int k = 0; k < cases.Count; k++)
            {
                var c = cases[k];
                // This case's share of what is left of the budget; time a case leaves unused carries over.
                var share = (budget - whole.Elapsed) / (cases.Count - k);
                var caseWatch = System.Diagnostics.Stopwatch.StartNew();
                byte[] image = BenchCommand.LoadEmbedded(c.Resource);
                string elf = Path.Combine(dir, $"{c.Name}.elf");
                await File.WriteAllBytesAsync(elf, image, ct).ConfigureAwait(false);
                var results = new Dictionary<string, List<MigrationRun>> { [Tern] = [] };
                if (withQemu)
                {
                    results[QemuDefault] = [];
                    results[QemuTuned] = [];
                }
                long nonZero = 0;
                for (int i = 1; i <= runs; i++)
                {
                    if (i > 1 && caseWatch.Elapsed >= share)
                    {
                        await err.WriteLineAsync($"migrate {c.Name}: {i - 1} of {runs} runs, this case used its share of the {budget.TotalSeconds:F0} s budget").ConfigureAwait(false);
                        break;
                    }
                    // Interleaved, so that noise from the rest of the machine falls on every system alike.
                    var (tern, nz) = await TernMigrationBench.RunAsync(image, limits, ct).ConfigureAwait(false);
                    nonZero = Math.Max(nonZero, nz);
                    results[Tern].Add(tern);
                    await Progress(err, c, i, runs, Tern, tern).ConfigureAwait(false);
                    if (!withQemu)
                        continue;
                    foreach (var (system, tuned) in new[] { (QemuDefault, false), (QemuTuned, true) })
                    {
                        var (q, parameters) = await QemuMigrationBench.RunAsync(elf, tuned, limits, ct).ConfigureAwait(false);
                        if (!tuned && parameters.Length > 0)
                            qemuDefaults = parameters;
                        results[system].Add(q);
                        await Progress(err, c, i, runs, system, q).ConfigureAwait(false);
                    }
                }
                var summary = new CaseSummary(c, results[Tern].Count, nonZero, results.ToDictionary(r => r.Key, r => Summarize(r.Value)));
                summaries.Add(summary);
                // Correctness, not speed: a migration cancelled at the time limit is a target not met.
                ok &= results[Tern].All(r => r.Completed
                    ? r.HeartbeatContinued == true && r.Verify == "ok"
                    : r.Status.StartsWith("did not complete", StringComparison.Ordinal));
                if (asJson)
                    await output.WriteLineAsync(Json(summary, qemuDefaults)).ConfigureAwait(false);
                else
                    await PrintRows(output, summary).ConfigureAwait(false);
            }
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
        if (!asJson)
        {
            if (withQemu)
                await output.WriteLineAsync($"qemu-default: QEMU's own parameters ({qemuDefaults}); qemu-tuned: downtime-limit {QemuMigrationBench.TunedDowntimeLimitMs} ms, max-bandwidth unlimited").ConfigureAwait(false);
            await output.WriteLineAsync("targets (issue 7, Tern medians):").ConfigureAwait(false);
            foreach (var t in summaries.SelectMany(Targets))
                await output.WriteLineAsync($"  {t.Target,-44} {(t.Met ? "met" : "NOT MET"),-8} {t.Value}").ConfigureAwait(false);
        }
        return ok ? 0 : 1;
    }

    // Asks QEMU for its version: null when it runs, otherwise why not.
    private static string? QemuMissing()
    {
        var psi = new System.Diagnostics.ProcessStartInfo("qemu-system-riscv64", "--version") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        try
        {
            using var p = System.Diagnostics.Process.Start(psi)!;
            _ = p.StandardError.ReadToEndAsync();
            _ = p.StandardOutput.ReadToEnd();
            if (!p.WaitForExit(TimeSpan.FromSeconds(10)))
            {
                p.Kill();
                return "it did not answer --version within 10 s";
            }
            return p.ExitCode == 0 ? null : $"--version exited with {p.ExitCode}";
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            return e.Message;
        }
    }

    private static Task Progress(TextWriter err, MigrationBenchCase c, int i, int runs, string system, MigrationRun r) =>
        err.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
            $"migrate {c.Name} run {i}/{runs} {system}: {r.Status}, total {r.TotalTimeMs:F0} ms, downtime {r.DowntimeMs:F1} ms, {r.BytesSent / 1048576.0:F1} MiB, {r.Rounds} rounds, heartbeat {Yes(r.HeartbeatContinued)}, verify {r.Verify}{(r.Detail.Length > 0 ? "; " + r.Detail : "")}"));

    private static string Yes(bool? b) => b switch { true => "yes", false => "no", null => "n/a" };

    /// <summary>Medians over the completed runs (over all runs when none completed).</summary>
    private sealed record SystemSummary(int Runs, int Completed, string Status, double TotalTimeMs, double SetupTimeMs, double DowntimeMs, long BytesSent, int Rounds, int HeartbeatContinued, string Verify, double DirtyPagesRate, int? Converged, int MaxThrottlePercent)
    {
        /// <summary>Median of each part of the time over the completed runs (Tern only).</summary>
        public Dictionary<string, double> Breakdown { get; init; } = [];

        /// <summary>Each completed run's parts, in run order (Tern only), so that a slow run can be told from a fast one.</summary>
        public List<IReadOnlyDictionary<string, double>> RunBreakdowns { get; init; } = [];
    }

    private sealed record CaseSummary(MigrationBenchCase Case, int Runs, long NonZeroBytes, Dictionary<string, SystemSummary> Systems);

    private static SystemSummary Summarize(List<MigrationRun> runs)
    {
        var done = runs.Where(r => r.Completed).ToList();
        var basis = done.Count > 0 ? done : runs;
        string status = done.Count == runs.Count ? "completed" : runs.First(r => !r.Completed).Status;
        string verify = runs.All(r => r.Verify == "ok") ? "ok" : runs.First(r => r.Verify != "ok").Verify;
        return new SystemSummary(runs.Count, done.Count, status,
            Median(basis.Select(r => r.TotalTimeMs)), Median(basis.Select(r => r.SetupTimeMs)), Median(basis.Select(r => r.DowntimeMs)),
            (long)Median(basis.Select(r => (double)r.BytesSent)), (int)Math.Round(Median(basis.Select(r => (double)r.Rounds))),
            runs.Count(r => r.HeartbeatContinued == true), verify, Median(runs.Select(r => r.DirtyPagesRate)),
            runs.Any(r => r.Converged is not null) ? runs.Count(r => r.Completed && r.Converged == true) : null, runs.Max(r => r.ThrottlePercent))
        {
            Breakdown = done.SelectMany(r => r.Breakdown.Keys).Distinct().ToDictionary(k => k, k => Math.Round(Median(done.Where(r => r.Breakdown.ContainsKey(k)).Select(r => r.Breakdown[k])), 2)),
            RunBreakdowns = [.. done.Where(r => r.Breakdown.Count > 0).Select(r => r.Breakdown)],
        };
    }

    private static double Median(IEnumerable<double> values)
    {
        var v = values.Order().ToArray();
        if (v.Length == 0)
            return 0;
        return v.Length % 2 == 1 ? v[v.Length / 2] : (v[(v.Length / 2) - 1] + v[v.Length / 2]) / 2;
    }

    private const string Header = "case  system        done  total ms  setup ms  downtime ms  MiB sent  /nonzero  rounds  heartbeat  verify  dirtied/s  status";

    private static async Task PrintRows(TextWriter output, CaseSummary s)
    {
        foreach (var (system, m) in s.Systems)
        {
            string ratio = s.NonZeroBytes > 0 ? (m.BytesSent / (double)s.NonZeroBytes).ToString("F2", CultureInfo.InvariantCulture) : "-";
            // A migration that never switched over had no downtime to speak of.
            string downtime = m.Completed > 0 ? m.DowntimeMs.ToString("F1", CultureInfo.InvariantCulture) : "-";
            await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                $"{s.Case.Name,-5} {system,-13} {m.Completed}/{m.Runs,-2} {m.TotalTimeMs,9:F1} {m.SetupTimeMs,9:F1} {downtime,12} {m.BytesSent / 1048576.0,9:F1} {ratio,9} {m.Rounds,7} {m.HeartbeatContinued + "/" + m.Runs,10}  {Short(m.Verify),-6} {m.DirtyPagesRate,10:F0}  {m.Status}")).ConfigureAwait(false);
        }
    }

    private static string Short(string verify) => verify.StartsWith("migbench FAIL", StringComparison.Ordinal) ? "FAIL" : verify;

    private sealed record TargetCheck(string Target, bool Met, string Value);

    // The issue's targets that this case can check, on Tern's medians.
    private static IEnumerable<TargetCheck> Targets(CaseSummary s)
    {
        var t = s.Systems[Tern];
        string name = s.Case.Name;
        yield return new($"{name}: median downtime <= 5 ms", t.Completed > 0 && t.DowntimeMs <= 5, t.Completed > 0 ? Ms(t.DowntimeMs) : "no migration completed");
        if (name == "ws")
            yield return new("ws: median total time <= 0.6 s", t.Completed > 0 && t.TotalTimeMs <= 600, Ms(t.TotalTimeMs));
        if (name == "10k")
            yield return new("10k: median total time <= 1 s", t.Completed > 0 && t.TotalTimeMs <= 1000, Ms(t.TotalTimeMs));
        if (name == "50k")
        {
            yield return new("50k: converges (within the downtime limit)", t.Converged == t.Runs,
                $"{t.Converged ?? 0}/{t.Runs} converged, {t.Completed}/{t.Runs} completed, {t.Rounds} rounds, throttle up to {t.MaxThrottlePercent}%");
        }
        if (name is "idle" or "ws")
        {
            double ratio = s.NonZeroBytes > 0 ? t.BytesSent / (double)s.NonZeroBytes : double.PositiveInfinity;
            yield return new($"{name}: bytes sent <= 1.1x non-zero memory", ratio <= 1.1,
                string.Create(CultureInfo.InvariantCulture, $"{ratio:F2}x ({t.BytesSent / 1048576.0:F2} MiB for {s.NonZeroBytes / 1048576.0:F2} MiB)"));
        }
        if (name == "wfi")
            yield return new("wfi: heartbeat after every migration", t.HeartbeatContinued == t.Runs, $"{t.HeartbeatContinued}/{t.Runs}");
    }

    private static string Ms(double ms) => string.Create(CultureInfo.InvariantCulture, $"{ms:F1} ms");

    // "<=" in the target names stays readable.
    private static readonly JsonSerializerOptions JsonOptions = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    private static string Json(CaseSummary s, string qemuDefaults)
    {
        static Dictionary<string, object?> System(SystemSummary m) => new()
        {
            ["status"] = m.Status,
            ["runs"] = m.Runs,
            ["completed"] = m.Completed,
            ["total_time_ms"] = Math.Round(m.TotalTimeMs, 2),
            ["setup_time_ms"] = Math.Round(m.SetupTimeMs, 2),
            ["downtime_ms"] = m.Completed > 0 ? Math.Round(m.DowntimeMs, 2) : null,
            ["bytes_sent"] = m.BytesSent,
            ["rounds"] = m.Rounds,
            ["heartbeat_continued"] = m.HeartbeatContinued,
            ["verify"] = m.Verify,
            ["dirty_pages_rate"] = Math.Round(m.DirtyPagesRate),
            ["converged"] = m.Converged,
            ["throttle_percent_max"] = m.MaxThrottlePercent,
            ["breakdown"] = m.Breakdown.Count > 0 ? m.Breakdown : null,
            ["runs_breakdown"] = m.RunBreakdowns.Count > 0 ? m.RunBreakdowns : null,
        };
        var o = new Dictionary<string, object?>
        {
            ["case"] = s.Case.Name,
            ["runs"] = s.Runs,
            ["nonzero_bytes"] = s.NonZeroBytes,
            ["tern"] = System(s.Systems[Tern]),
            ["qemu_default"] = s.Systems.TryGetValue(QemuDefault, out var d) ? System(d) : null,
            ["qemu_tuned"] = s.Systems.TryGetValue(QemuTuned, out var q) ? System(q) : null,
            ["qemu_default_parameters"] = s.Systems.ContainsKey(QemuDefault) ? qemuDefaults : null,
            ["targets"] = Targets(s).Select(t => new Dictionary<string, object> { ["target"] = t.Target, ["met"] = t.Met, ["value"] = t.Value }).ToList(),
        };
        return JsonSerializer.Serialize(o, JsonOptions);
    }
}
