// The pieces `tern bench migrate` shares between its Tern and QEMU runs: the benchmark cases
// (guests built from src/guests/migbench and embedded in tern), the figures of one migration,
// and a console log that parses the guests' heartbeat and verify lines.
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace Tern.Cli.Commands;

/// <summary>One benchmark guest.</summary>
/// <param name="Name">The case's name on the command line (idle, ws, 1k, 10k, 50k, wfi).</param>
/// <param name="Resource">The embedded ELF.</param>
/// <param name="WorkingSet">Whether it writes the 192 MiB working set before it is ready.</param>
/// <param name="DirtyRate">Pages it dirties per second (0: none).</param>
/// <param name="Wfi">Whether it sleeps in WFI on its timer between heartbeats.</param>
public sealed record MigrationBenchCase(string Name, string Resource, bool WorkingSet, int DirtyRate, bool Wfi)
{
    /// <summary>Every case, in the order the table lists them.</summary>
    public static readonly IReadOnlyList<MigrationBenchCase> All =
    [
        new("idle", "migbench-idle.elf", false, 0, false),
        new("ws", "migbench-ws.elf", true, 0, false),
        new("1k", "migbench-dirty1k.elf", true, 1_000, false),
        new("10k", "migbench-dirty10k.elf", true, 10_000, false),
        new("50k", "migbench-dirty50k.elf", true, 50_000, false),
        new("wfi", "migbench-wfi.elf", false, 0, true),
    ];

    /// <summary>Guest RAM of every case (the issue's 256 MiB).</summary>
    public const ulong MemoryBytes = 256UL << 20;
}

/// <summary>The figures of one migration of one guest by one system (Tern or a QEMU variant).</summary>
public sealed record MigrationRun
{
    /// <summary>"completed", or why not ("failed: ...", "did not converge in 10 s").</summary>
    public required string Status { get; init; }

    /// <summary>Whether the guest now runs on the destination.</summary>
    public bool Completed => Status == "completed";

    /// <summary>Start to completion (QEMU's total-time).</summary>
    public double TotalTimeMs { get; init; }

    /// <summary>QEMU's setup-time; Tern's time until the first page went out.</summary>
    public double SetupTimeMs { get; init; }

    /// <summary>Time the guest did not run (QEMU's downtime).</summary>
    public double DowntimeMs { get; init; }

    /// <summary>Bytes sent over the connection (QEMU's ram.transferred).</summary>
    public long BytesSent { get; init; }

    /// <summary>Rounds including the final stop-and-copy (QEMU's dirty-sync-count).</summary>
    public int Rounds { get; init; }

    /// <summary>Whether the destination printed new heartbeats after the switchover (null: not migrated).</summary>
    public bool? HeartbeatContinued { get; init; }

    /// <summary>"ok", the guest's FAIL line, "no answer", or "n/a" (not migrated or not running).</summary>
    public string Verify { get; init; } = "n/a";

    /// <summary>Pages per second the guest dirtied before the migration, from its heartbeats.</summary>
    public double DirtyPagesRate { get; init; }

    /// <summary>Whether the remaining dirty set fitted the downtime limit (Tern; null where the system does not say).</summary>
    public bool? Converged { get; init; }

    /// <summary>How far auto-converge slowed the guest's vCPUs, in percent (Tern).</summary>
    public int ThrottlePercent { get; init; }

    /// <summary>Where the downtime went, when the system says (Tern: pause, final copy, acknowledgement).</summary>
    public string Detail { get; init; } = "";

    /// <summary>Named parts of the migration's time, in ms (pages for final_pages), when the system says (Tern); the JSON gives their medians.</summary>
    public IReadOnlyDictionary<string, double> Breakdown { get; init; } = new Dictionary<string, double>();
}

/// <summary>A guest's console output as it arrives, with waits for its lines.</summary>
public sealed partial class GuestConsoleLog
{
    private readonly StringBuilder _text = new();

    /// <summary>Appends output (any thread).</summary>
    public void Append(ReadOnlySpan<byte> bytes)
    {
        string s = Encoding.ASCII.GetString(bytes);
        lock (_text)
            _text.Append(s);
    }

    /// <summary>Appends output (any thread).</summary>
    public void Append(ReadOnlySpan<char> chars)
    {
        lock (_text)
            _text.Append(chars);
    }

    /// <summary>Everything so far.</summary>
    public string Text
    {
        get
        {
            lock (_text)
                return _text.ToString();
        }
    }

    /// <summary>The heartbeat lines so far, in order.</summary>
    public IReadOnlyList<Heartbeat> Heartbeats => [.. HeartbeatLine().Matches(Text).Select(m => new Heartbeat(
        long.Parse(m.Groups[1].ValueSpan, CultureInfo.InvariantCulture),
        long.Parse(m.Groups[2].ValueSpan, CultureInfo.InvariantCulture),
        long.Parse(m.Groups[3].ValueSpan, CultureInfo.InvariantCulture)))];

    /// <summary>The guest's FAIL line, if it printed one.</summary>
    public string? Failure => FailLine().Match(Text) is { Success: true } m ? m.Value.Trim() : null;

    /// <summary>Whether the guest answered a verify request with success.</summary>
    public bool VerifiedOk => Text.Contains("migbench verify ok", StringComparison.Ordinal);

    /// <summary>Waits (polling) until <paramref name="done"/> holds or <paramref name="timeout"/> passes.</summary>
    public async Task<bool> WaitAsync(Func<GuestConsoleLog, bool> done, TimeSpan timeout, CancellationToken ct)
    {
        var until = DateTime.UtcNow + timeout;
        while (!done(this))
        {
            if (DateTime.UtcNow >= until)
                return false;
            await Task.Delay(10, ct).ConfigureAwait(false);
        }
        return true;
    }

    /// <summary>Pages per second dirtied between the first and last heartbeat seen.</summary>
    public double DirtyRate()
    {
        var beats = Heartbeats;
        if (beats.Count < 2 || beats[^1].Ms <= beats[0].Ms)
            return 0;
        return (beats[^1].Dirtied - beats[0].Dirtied) * 1000.0 / (beats[^1].Ms - beats[0].Ms);
    }

    [GeneratedRegex(@"migbench \S+ hb (\d+) t (\d+) dirtied (\d+)\r?\n")]
    private static partial Regex HeartbeatLine();

    [GeneratedRegex(@"migbench FAIL[^\n]*")]
    private static partial Regex FailLine();
}

/// <summary>One heartbeat line: its number, the guest's mtime in ms, and pages dirtied so far.</summary>
public sealed record Heartbeat(long Beat, long Ms, long Dirtied);

/// <summary>Time limits shared by the Tern and QEMU runs.</summary>
/// <param name="MigrationLimit">A migration that has not completed by then is cancelled.</param>
public sealed record MigrationBenchLimits(TimeSpan MigrationLimit)
{
    /// <summary>Boot until the guest has written its working set and printed "ready".</summary>
    public static readonly TimeSpan Ready = TimeSpan.FromSeconds(30);

    /// <summary>Heartbeats the guest prints after "ready" before it is migrated (100 ms each).</summary>
    public const int WarmUpBeats = 4;

    /// <summary>How long the destination has to print two new heartbeats.</summary>
    public static readonly TimeSpan HeartbeatAfter = TimeSpan.FromSeconds(3);

    /// <summary>How long a full check of the working set may take on the destination.</summary>
    public static readonly TimeSpan Verify = TimeSpan.FromSeconds(20);

    /// <summary>True once the source has printed the warm-up heartbeats (it prints them only once ready) or failed.</summary>
    public static bool WarmedUp(GuestConsoleLog log) => log.Heartbeats.Count >= WarmUpBeats || log.Failure is not null;

    /// <summary>Whether the destination printed two heartbeats numbered after the source's last one.</summary>
    public static bool Continued(GuestConsoleLog source, GuestConsoleLog target)
    {
        long last = source.Heartbeats is { Count: > 0 } s ? s[^1].Beat : 0;
        return target.Heartbeats.Count(h => h.Beat > last) >= 2;
    }
}
