// Mirror upkeep for the LVs a node has open: when a leg's PV answers again its missed regions
// are resynced (throttled), and when a leg stays unreachable for longer than the repair delay
// it is rebuilt on another host. The decision is kept apart from the work, on an injected
// clock, so it is unit-tested without waiting ten minutes; the work is VolumeGroup's
// (ReinstatePvsAsync, ResyncAsync, RepairAsync). The caller (a node's storage agent) calls
// RunOnceAsync every Interval, one call at a time.
using System.Globalization;
using Tern.Storage;
using Tern.Storage.Format;

namespace Tern.Cluster.Storage;

/// <summary>When and how fast mirrors are brought back to full strength. Defaults suit a small cluster on ordinary disks.</summary>
public sealed record MirrorMaintenanceOptions
{
    /// <summary>Environment variable: how long a leg may stay unreachable before it is rebuilt elsewhere ("10m", "90s", "1h", "0", or "off").</summary>
    public const string RepairAfterVariable = "TERN_STORAGE_REPAIR_AFTER";

    /// <summary>Environment variable: the resync and repair copy rate in bytes per second ("64M"; "0" for unthrottled).</summary>
    public const string ResyncRateVariable = "TERN_STORAGE_RESYNC_RATE";

    /// <summary>
    /// 10 minutes, as the design asks: a rebooting host or a network blip comes back well within
    /// it and costs a resync of its dirty regions only, while a host that is gone for good leaves
    /// its mirrors on one leg for no longer than that. Null: never repair automatically.
    /// </summary>
    public TimeSpan? RepairAfter { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>
    /// 64 MiB/s: about a tenth of a disk's sequential rate and above Longhorn's rebuild rate, so a
    /// 1 GiB leg is rebuilt in under 20 s while guests keep most of the disk; 0 is unthrottled.
    /// </summary>
    public long ResyncBytesPerSecond { get; init; } = 64L << 20;

    /// <summary>5 s between checks: a returned PV is resynced within seconds; checking costs only a metadata walk.</summary>
    public TimeSpan Interval { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// The defaults with <see cref="RepairAfterVariable"/> and <see cref="ResyncRateVariable"/>
    /// applied; a bad value throws <see cref="ArgumentException"/> with a one-line message.
    /// </summary>
    public static MirrorMaintenanceOptions FromEnvironment(Func<string, string?>? environment = null)
    {
        environment ??= Environment.GetEnvironmentVariable;
        var options = new MirrorMaintenanceOptions();
        if (environment(RepairAfterVariable) is { Length: > 0 } after)
        {
            options = options with
            {
                RepairAfter = TryParseDelay(after, out var delay) ? delay
                    : throw new ArgumentException($"{RepairAfterVariable} must be a delay such as 10m, 90s or 1h (or off), not '{after}'"),
            };
        }
        if (environment(ResyncRateVariable) is { Length: > 0 } rate)
        {
            options = options with
            {
                ResyncBytesPerSecond = TryParseRate(rate, out long bytes) ? bytes
                    : throw new ArgumentException($"{ResyncRateVariable} must be bytes per second such as 64M or 500K (0 for unthrottled), not '{rate}'"),
            };
        }
        return options;
    }

    /// <summary>Parses a delay: a whole number with ms, s, m or h; "0"; or "off"/"never" (null).</summary>
    public static bool TryParseDelay(string text, out TimeSpan? delay)
    {
        delay = null;
        text = text.Trim();
        if (text is "off" or "never")
            return true;
        if (text == "0")
        {
            delay = TimeSpan.Zero;
            return true;
        }
        (string digits, double unitSeconds) = text switch
        {
            _ when text.EndsWith("ms", StringComparison.Ordinal) => (text[..^2], 0.001),
            _ when text.EndsWith('s') => (text[..^1], 1),
            _ when text.EndsWith('m') => (text[..^1], 60),
            _ when text.EndsWith('h') => (text[..^1], 3600),
            _ => ("", 0),
        };
        if (!long.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out long n) || n > 10_000_000)
            return false;
        delay = TimeSpan.FromSeconds(n * unitSeconds);
        return true;
    }

    /// <summary>Parses a rate in bytes per second: a whole number with an optional K, M or G (binary units).</summary>
    public static bool TryParseRate(string text, out long bytesPerSecond)
    {
        bytesPerSecond = 0;
        text = text.Trim();
        if (text.Length == 0)
            return false;
        long unit = char.ToUpperInvariant(text[^1]) switch
        {
            'K' => 1L << 10,
            'M' => 1L << 20,
            'G' => 1L << 30,
            _ => 1,
        };
        string digits = unit == 1 ? text : text[..^1];
        if (!long.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out long n) || n > long.MaxValue / unit)
            return false;
        bytesPerSecond = n * unit;
        return true;
    }
}

/// <summary>What maintenance does for one LV now.</summary>
public enum MaintenanceAction
{
    /// <summary>Every leg is whole.</summary>
    None,

    /// <summary>A leg is unreachable, not yet for long enough to rebuild it.</summary>
    Wait,

    /// <summary>Reachable legs are behind: copy what they missed.</summary>
    Resync,

    /// <summary>A leg has been unreachable for the repair delay: rebuild it on another host.</summary>
    Repair,
}

/// <summary>A decision for one LV.</summary>
/// <param name="Vg">Volume group.</param>
/// <param name="Lv">Logical volume.</param>
/// <param name="Action">What to do now.</param>
/// <param name="RepairAt">When an unreachable leg will be rebuilt, if one is unreachable and repair is on.</param>
/// <param name="Legs">The degraded legs the decision was taken on.</param>
public sealed record MaintenanceDecision(string Vg, string Lv, MaintenanceAction Action, DateTimeOffset? RepairAt, IReadOnlyList<DegradedLeg> Legs);

/// <summary>What maintenance did for one LV.</summary>
/// <param name="Decision">The decision.</param>
/// <param name="Message">One line for the node's log.</param>
/// <param name="Error">Why the action failed, if it did (it is retried at the next check).</param>
public sealed record MaintenanceOutcome(MaintenanceDecision Decision, string Message, Exception? Error = null);

/// <summary>Decides and runs resync and repair of mirrored LVs.</summary>
public sealed class MirrorMaintenance(MirrorMaintenanceOptions options, TimeProvider? clock = null)
{
    private readonly TimeProvider _clock = clock ?? TimeProvider.System;
    private readonly Dictionary<(string Vg, string Lv, Guid Pv), DateTimeOffset> _unreachableSince = [];
    private readonly Lock _lock = new();

    /// <summary>The options in force.</summary>
    public MirrorMaintenanceOptions Options => options;

    /// <summary>
    /// Decides for one LV from its degraded legs (<see cref="VolumeGroup.Degraded"/>), remembering
    /// since when each leg has been unreachable: a leg that comes back is forgotten, so its
    /// next absence starts the delay again.
    /// </summary>
    public MaintenanceDecision Decide(string vg, string lv, IReadOnlyList<DegradedLeg> legs)
    {
        var now = _clock.GetUtcNow();
        var away = legs.Where(l => l.Unreachable).Select(l => l.Pv).ToHashSet();
        DateTimeOffset? since = null;
        lock (_lock)
        {
            foreach (var key in _unreachableSince.Keys.Where(k => k.Vg == vg && k.Lv == lv && !away.Contains(k.Pv)).ToList())
                _unreachableSince.Remove(key);
            foreach (var pv in away)
            {
                if (!_unreachableSince.TryGetValue((vg, lv, pv), out var first))
                    _unreachableSince[(vg, lv, pv)] = first = now;
                since = since is { } s && s < first ? s : first;
            }
        }
        DateTimeOffset? repairAt = since is { } t && options.RepairAfter is { } delay ? t + delay : null;
        var action = repairAt is { } at && now >= at ? MaintenanceAction.Repair
            : legs.Any(l => !l.Unreachable) ? MaintenanceAction.Resync
            : away.Count > 0 ? MaintenanceAction.Wait
            : MaintenanceAction.None;
        return new MaintenanceDecision(vg, lv, action, repairAt, legs);
    }

    /// <summary>
    /// One round over the mirrored LVs of <paramref name="vg"/> (those <paramref name="scope"/>
    /// accepts, such as the ones open on this node): brings back PVs that answer again (failed
    /// ones, and those of <paramref name="reachable"/> the VG is missing), then resyncs or repairs
    /// as decided, throttled to the configured rate. A view (a node's VG of one guest disk) must
    /// be given the reachable PVs a rebuilt leg may go to in <paramref name="reachable"/>: a leg is
    /// only rebuilt on a PV the VG has open. Failures are reported in the outcomes, not thrown;
    /// only LVs that needed something are reported.
    /// </summary>
    public async Task<IReadOnlyList<MaintenanceOutcome>> RunOnceAsync(VolumeGroup vg, Func<string, bool>? scope = null, IEnumerable<PhysicalVolume>? reachable = null,
        CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(vg);
        var outcomes = new List<MaintenanceOutcome>();
        await vg.ReinstatePvsAsync(reachable, ct).ConfigureAwait(false);
        var names = vg.Metadata.Lvs.Where(l => l.Segments.Any(s => s.Type == SegmentType.Mirror)).Select(l => l.Name)
            .Where(n => scope?.Invoke(n) ?? true).ToList();
        foreach (string lv in names)
        {
            var decision = Decide(vg.Name, lv, vg.Degraded(lv));
            try
            {
                switch (decision.Action)
                {
                    case MaintenanceAction.Repair:
                        var repaired = await vg.RepairAsync(lv, options.ResyncBytesPerSecond, null, ct).ConfigureAwait(false);
                        outcomes.Add(new MaintenanceOutcome(decision, $"{vg.Name}/{lv}: repaired after {options.RepairAfter}: "
                            + $"{(repaired.Replaced.Count == 0 ? "no leg to replace" : string.Join("; ", repaired.Replaced))}; {Sizes.Format(repaired.BytesSynced)} synced"));
                        break;
                    case MaintenanceAction.Resync when vg.NeedsResync(lv):
                        var before = vg.Degraded(lv).Count(l => !l.Unreachable);
                        await vg.ResyncAsync(lv, options.ResyncBytesPerSecond, null, ct).ConfigureAwait(false);
                        outcomes.Add(new MaintenanceOutcome(decision, $"{vg.Name}/{lv}: {before} leg(s) resynced" + WaitNote(decision)));
                        break;
                    case MaintenanceAction.Wait or MaintenanceAction.Resync:
                        outcomes.Add(new MaintenanceOutcome(decision, $"{vg.Name}/{lv}: degraded" + WaitNote(decision)));
                        break;
                }
            }
            catch (Exception e) when (e is StorageException or IOException)
            {
                outcomes.Add(new MaintenanceOutcome(decision, $"{vg.Name}/{lv}: {decision.Action.ToString().ToLowerInvariant()} failed: {e.Message}", e));
            }
        }
        return outcomes;
    }

    private static string WaitNote(MaintenanceDecision d)
    {
        var away = d.Legs.Where(l => l.Unreachable).Select(l => $"{l.PvPath} on {l.Host}").Distinct().ToList();
        if (away.Count == 0)
            return "";
        return $"; unreachable: {string.Join(", ", away)}; " + (d.RepairAt is { } at
            ? $"rebuilt elsewhere at {at.UtcDateTime.ToString("u", CultureInfo.InvariantCulture)} unless it returns"
            : "automatic repair is off (tern lv repair rebuilds it)");
    }
}
