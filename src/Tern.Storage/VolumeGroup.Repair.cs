// Mirrors that lose a leg: the degraded state as data (which legs are missing, failed, stale or
// out of date, on which host), bringing back PVs that answer again, rebuilding a leg lost for
// good on another host (lv repair), and distrusting the legs a dead writer may have written
// behind its last recorded intent. A repair is two steps, each safe to interrupt: one commit
// swaps every lost leg for a new stale leg (the good legs are never touched), then the resync
// copies into the new legs; running it again after a crash finds only the second step left.
using Tern.Storage.Format;
using Tern.Storage.Remote;

namespace Tern.Storage;

/// <summary>What is wrong with a mirror leg, worst first.</summary>
public enum LegProblem
{
    /// <summary>Its PV is not present (its host is unreachable, or the PV is gone).</summary>
    Missing,

    /// <summary>Its PV is present but an I/O on it failed; it gets no reads or writes until it answers again.</summary>
    Failed,

    /// <summary>The whole leg is out of date (a new leg, or one its writer's death made untrustworthy).</summary>
    Stale,

    /// <summary>Some of its regions missed writes (write intent) and serve no reads until resynced.</summary>
    OutOfDate,
}

/// <summary>One degraded mirror leg.</summary>
/// <param name="Vg">Volume group.</param>
/// <param name="Lv">Logical volume.</param>
/// <param name="SegmentStart">First logical extent of the segment the leg belongs to.</param>
/// <param name="Leg">Index of the leg in the segment.</param>
/// <param name="Pv">The leg's PV.</param>
/// <param name="PvPath">Where that PV was last seen.</param>
/// <param name="Host">The host owning that PV.</param>
/// <param name="Problem">The worst thing wrong with the leg.</param>
/// <param name="DirtyRegions">Regions recorded out of date on the leg (any problem may come with some).</param>
public sealed record DegradedLeg(string Vg, string Lv, long SegmentStart, int Leg, Guid Pv, string PvPath, string Host, LegProblem Problem, int DirtyRegions)
{
    /// <summary>Whether the leg's PV cannot be reached at all (missing or failed), as opposed to reachable but behind.</summary>
    public bool Unreachable => Problem is LegProblem.Missing or LegProblem.Failed;
}

/// <summary>Outcome of <see cref="VolumeGroup.RepairAsync"/>.</summary>
/// <param name="Replaced">One line per lost leg replaced: which PV (and host) it was on and where it went.</param>
/// <param name="BytesSynced">Bytes copied into new or out-of-date legs.</param>
public sealed record RepairResult(IReadOnlyList<string> Replaced, long BytesSynced);

public sealed partial class VolumeGroup
{
    private bool Usable(Guid pv) => _pvs.TryGetValue(pv, out var p) && !p.Failed;

    // The writer of an instance of the LV opened with one (a guest's disk), so that a copy made
    // into the LV's legs on its behalf is refused, like the guest's own writes, once a newer
    // generation owns the LV.
    private IDisposable? WriterScope(Guid lvId)
    {
        WriterId? writer;
        lock (_openLvs)
            writer = _openLvs.Where(l => l.Id == lvId).Select(l => l.Writer).FirstOrDefault(w => w is not null);
        return writer is { } w ? PvWriter.Use(w) : null;
    }

    /// <summary>
    /// The degraded legs of a mirrored LV: those whose PV is missing or failed, that are stale, or
    /// that have out-of-date regions, each with its PV's host. Empty when every leg is whole (and
    /// for LVs that are not mirrored).
    /// </summary>
    public IReadOnlyList<DegradedLeg> Degraded(string lv) => DegradedLegs(Metadata, FindLv(Metadata, lv));

    private List<DegradedLeg> DegradedLegs(VgMetadata md, LvEntry lv)
    {
        var result = new List<DegradedLeg>();
        foreach (var seg in lv.Segments.Where(s => s.Type == SegmentType.Mirror))
        {
            for (int i = 0; i < seg.Areas.Count; i++)
            {
                var a = seg.Areas[i];
                int dirty = a.DirtyRegions?.Count ?? 0;
                LegProblem? problem = !_pvs.TryGetValue(a.Pv, out var pv) ? LegProblem.Missing
                    : pv.Failed ? LegProblem.Failed
                    : a.Stale ? LegProblem.Stale
                    : dirty > 0 ? LegProblem.OutOfDate
                    : null;
                if (problem is { } p)
                    result.Add(Leg(md, lv, seg, i, p));
            }
        }
        return result;
    }

    private static DegradedLeg Leg(VgMetadata md, LvEntry lv, SegmentEntry seg, int i, LegProblem problem)
    {
        var a = seg.Areas[i];
        var pv = md.Pvs.FirstOrDefault(p => p.Id == a.Pv);
        return new DegradedLeg(md.Name, lv.Name, seg.StartExtent, i, a.Pv, pv?.Path ?? a.Pv.ToString(), pv?.Host ?? "?", problem, a.DirtyRegions?.Count ?? 0);
    }

    /// <summary>Degraded mirror legs over every LV of the VG (the tern.storage.degraded_legs gauge).</summary>
    internal int DegradedLegCount()
    {
        var md = Metadata;
        return md.Lvs.Sum(lv => DegradedLegs(md, lv).Count);
    }

    // Write intent, with a trace event for each leg that was whole until this write missed it.
    internal async Task MarkDirtyAsync(Guid lvId, long segStart, int[] areas, long region, CancellationToken ct)
    {
        var md = Metadata;
        var lv = md.Lvs.FirstOrDefault(l => l.Id == lvId);
        var seg = lv?.Segments.FirstOrDefault(s => s.StartExtent == segStart);
        var newly = seg is null ? [] : areas.Where(i => i < seg.Areas.Count && !seg.Areas[i].Stale && seg.Areas[i].DirtyRegions is not { Count: > 0 })
            .Select(i => Leg(md, lv!, seg, i, Usable(seg.Areas[i].Pv) ? LegProblem.OutOfDate : _pvs.ContainsKey(seg.Areas[i].Pv) ? LegProblem.Failed : LegProblem.Missing))
            .ToList();
        await CommitDirtyAsync(lvId, segStart, areas, region, ct).ConfigureAwait(false);
        foreach (var leg in newly)
            StorageTelemetry.LegDegraded(leg, "missed a write");
    }

    /// <summary>
    /// Brings back PVs that answer again: every failed member PV whose label still reads (with its
    /// own identity) and that flushes is put back in service, and each of <paramref name="returned"/>
    /// that is a missing member is attached. Their legs stay out of date where they missed writes
    /// until a resync. Returns the names of the PVs brought back.
    /// </summary>
    public async Task<IReadOnlyList<string>> ReinstatePvsAsync(IEnumerable<PhysicalVolume>? returned = null, CancellationToken ct = default)
    {
        var back = new List<string>();
        foreach (var pv in _pvs.Values.Where(p => p.Failed).ToList())
        {
            try
            {
                var block = new byte[PhysicalVolume.BlockSize];
                await pv.Io.ReadAsync(0, block, ct).ConfigureAwait(false);
                if (PvLabel.Decode(block, pv.Name).Id != pv.Id)
                    continue;
                await pv.FlushAsync(ct).ConfigureAwait(false);
            }
            catch (Exception e) when (e is IOException or StorageException)
            {
                continue; // still away
            }
            pv.Failed = false;
            back.Add(pv.Name);
        }
        var joining = (returned ?? []).Where(p => (!_pvs.TryGetValue(p.Id, out var now) || now.Failed) && Metadata.Pvs.Any(e => e.Id == p.Id)).ToList();
        if (joining.Count > 0)
        {
            // Open LVs look PVs up on every request: change the table between requests.
            using var quiet = await QuiesceAllAsync(ct).ConfigureAwait(false);
            foreach (var pv in joining)
            {
                if (AttachPv(pv))
                    back.Add(pv.Name);
            }
        }
        return back;
    }

    private async Task<Quiesced> QuiesceAllAsync(CancellationToken ct)
    {
        List<Guid> ids;
        lock (_openLvs)
            ids = [.. _openLvs.Select(l => l.Id).Distinct()];
        var all = new Quiesced();
        try
        {
            foreach (var id in ids)
            {
                var held = await QuiesceAsync(id, ct).ConfigureAwait(false);
                all.Locks.AddRange(held.Locks);
                held.Locks.Clear();
            }
        }
        catch
        {
            all.Dispose();
            throw;
        }
        return all;
    }

    /// <summary>
    /// Rebuilds the mirror legs of an LV whose PV is missing or failed (lost for good): each is
    /// replaced by a new leg on a present PV that holds no other copy of its segment (and, when
    /// the VG spans hosts, on a host that holds none), then synchronised at most
    /// <paramref name="maxBytesPerSecond"/> (0: unthrottled) together with any out-of-date
    /// regions of the other legs. Refused, changing nothing, when the remaining legs lack an
    /// up-to-date copy of some region. Interrupted, run it again: it resumes the synchronisation.
    /// </summary>
    public async Task<RepairResult> RepairAsync(string name, long maxBytesPerSecond = 0, IProgress<CopyProgress>? progress = null, CancellationToken ct = default)
    {
        if (maxBytesPerSecond < 0)
            throw new StorageException($"a resync rate of {maxBytesPerSecond} bytes/s is not a rate; give a positive rate, or 0 for unthrottled");
        var lv = FindLv(Metadata, name);
        if (!lv.Segments.Any(s => s.Type == SegmentType.Mirror))
            throw new StorageException($"{Name}/{name} is not mirrored: only a mirror leg can be rebuilt from another copy");
        await ReinstatePvsAsync(ct: ct).ConfigureAwait(false);
        var replaced = new List<string>();
        if (Metadata.FindLv(name) is { } now && now.Segments.Any(s => s.Type == SegmentType.Mirror && s.Areas.Any(a => !Usable(a.Pv))))
        {
            using var quiet = await QuiesceAsync(lv.Id, ct).ConfigureAwait(false);
            await CommitAsync(md => ReplaceLostLegs(md, name, replaced), ct).ConfigureAwait(false);
        }
        var tap = new LastProgress(progress);
        await ResyncAsync(name, maxBytesPerSecond, tap, ct).ConfigureAwait(false);
        return new RepairResult(replaced, tap.Last.Done);
    }

    private VgMetadata ReplaceLostLegs(VgMetadata md, string name, List<string> replaced)
    {
        replaced.Clear(); // a cluster commit may run the change again on newer metadata
        var lv = FindLv(md, name);
        bool spans = md.Pvs.Select(p => p.Host).Distinct().Count() > 1;
        var unusable = md.Pvs.Where(p => !Usable(p.Id)).Select(p => p.Id).ToHashSet();
        var describe = md.Pvs.ToDictionary(p => p.Id, p => $"{p.Path} ({p.Host})");
        var segs = new List<SegmentEntry>();
        var work = md;
        foreach (var seg in lv.Segments)
        {
            var lost = seg.Type != SegmentType.Mirror ? [] : Enumerable.Range(0, seg.Areas.Count).Where(i => unusable.Contains(seg.Areas[i].Pv)).ToList();
            if (lost.Count == 0)
            {
                segs.Add(seg);
                continue;
            }
            string extents = $"logical extents {seg.StartExtent}..{seg.StartExtent + seg.Extents - 1}";
            string lostPvs = string.Join(", ", lost.Select(i => describe.GetValueOrDefault(seg.Areas[i].Pv, seg.Areas[i].Pv.ToString())));
            var survivors = seg.Areas.Where((_, i) => !lost.Contains(i)).ToList();
            CheckUpToDateCopy(md.Name, name, seg, survivors, extents, lostPvs);
            var avoid = new HashSet<Guid>(unusable);
            avoid.UnionWith(survivors.Select(a => a.Pv));
            if (spans)
            {
                var hosts = md.Pvs.Where(p => survivors.Any(a => a.Pv == p.Id)).Select(p => p.Host).ToHashSet();
                avoid.UnionWith(md.Pvs.Where(p => hosts.Contains(p.Host)).Select(p => p.Id));
            }
            var layout = lost.Count == 1 ? LvLayout.Linear : new LvLayout(SegmentType.Mirror, lost.Count);
            List<SegmentEntry> pieces;
            try
            {
                pieces = Allocator.Allocate(work, layout, seg.StartExtent, seg.Extents, avoid);
            }
            catch (InsufficientSpaceException)
            {
                throw new InsufficientSpaceException($"{md.Name}/{name}: not enough free space to rebuild {extents} (lost with {lostPvs}) on a present physical volume "
                    + (spans ? "of a host that holds no other copy of them" : "that holds no other copy of them"));
            }
            // The new extents must hold nothing readable before the commit hands them out.
            ResetExtents(md, pieces);
            foreach (var piece in pieces)
            {
                var part = Slice(seg, piece.StartExtent, piece.Extents);
                segs.Add(part with { Areas = [.. part.Areas.Where((_, i) => !lost.Contains(i)), .. piece.Areas.Select(a => a with { Stale = true })] });
                replaced.Add($"{md.Name}/{name} {(pieces.Count > 1 ? $"logical extents {piece.StartExtent}..{piece.StartExtent + piece.Extents - 1}" : extents)}: "
                    + $"leg on {lostPvs} replaced by {string.Join(", ", piece.Areas.Select(a => describe[a.Pv]))}");
            }
            work = Replace(work, lv with { Segments = [.. segs, .. lv.Segments.Where(s => s.StartExtent > seg.StartExtent)] });
        }
        return Replace(md, lv with { Segments = segs });
    }

    // Dropping a lost leg must not drop the only up-to-date copy of anything: some surviving leg
    // must be current in every region of the segment.
    private void CheckUpToDateCopy(string vg, string lv, SegmentEntry seg, List<AreaEntry> survivors, string extents, string lostPvs)
    {
        var current = survivors.Where(a => !a.Stale).ToList();
        if (current.Count == 0)
            throw new StorageException($"{vg}/{lv}: {extents} have no up-to-date copy on a present physical volume (only {lostPvs} had one); bring it back and resync instead of repairing");
        if (current.Any(a => a.DirtyRegions is not { Count: > 0 }))
            return;
        var nowhere = current.Select(a => (IEnumerable<long>)a.DirtyRegions!).Aggregate((x, y) => x.Intersect(y)).Order().ToList();
        if (nowhere.Count > 0)
        {
            long at = (seg.StartExtent * Metadata.ExtentSize) + (nowhere[0] * VgMetadata.RegionSize);
            throw new StorageException($"{vg}/{lv}: {nowhere.Count} region(s) from LV offset {at} have no up-to-date copy on a present physical volume (only {lostPvs} had one); bring it back and resync instead of repairing");
        }
    }

    /// <summary>
    /// After the host of an LV's writer was lost (its guest restarted elsewhere), trusts one leg
    /// per segment and distrusts the others: the old incarnation may have written to some legs
    /// and not others after its last recorded write intent, and the legs on its own host are the
    /// ones it could still reach when the rest of the cluster could not. The trusted leg is a
    /// current one off <paramref name="host"/> (present first, fewest out-of-date regions); every
    /// other leg becomes wholly stale, or, where the trusted leg itself has out-of-date regions,
    /// out of date everywhere else. Returns the number of legs marked.
    /// </summary>
    public async Task<int> MarkLegsStaleOnHostAsync(string name, string host, CancellationToken ct = default)
    {
        var lv = FindLv(Metadata, name);
        int marked = 0;
        var events = new List<DegradedLeg>();
        using (await QuiesceAsync(lv.Id, ct).ConfigureAwait(false))
        {
            await CommitAsync(md =>
            {
                marked = 0;
                events.Clear();
                var entry = FindLv(md, name);
                var hostOf = md.Pvs.ToDictionary(p => p.Id, p => p.Host);
                var segs = entry.Segments.Select(seg =>
                {
                    if (seg.Type != SegmentType.Mirror)
                        return seg;
                    var candidates = seg.Areas.Select((a, i) => (a, i)).Where(x => !x.a.Stale)
                        .OrderBy(x => hostOf.GetValueOrDefault(x.a.Pv) == host).ThenBy(x => !Usable(x.a.Pv)).ThenBy(x => x.a.DirtyRegions?.Count ?? 0).ToList();
                    if (candidates.Count == 0)
                        return seg;
                    var (trusted, keep) = candidates[0];
                    long regions = ((seg.Extents * md.ExtentSize) + VgMetadata.RegionSize - 1) / VgMetadata.RegionSize;
                    var areas = seg.Areas.Select((a, i) =>
                    {
                        if (i == keep || a.Stale)
                            return a;
                        marked++;
                        var next = trusted.DirtyRegions is not { Count: > 0 }
                            ? a with { Stale = true, DirtyRegions = null }
                            : a with { DirtyRegions = [.. Enumerable.Range(0, (int)regions).Select(x => (long)x).Except(trusted.DirtyRegions).Union(a.DirtyRegions ?? []).Order()] };
                        events.Add(Leg(md, entry, seg, i, next.Stale ? LegProblem.Stale : LegProblem.OutOfDate));
                        return next;
                    }).ToList();
                    return seg with { Areas = areas };
                }).ToList();
                return Replace(md, entry with { Segments = segs });
            }, ct).ConfigureAwait(false);
        }
        foreach (var leg in events)
            StorageTelemetry.LegDegraded(leg, $"writer host {host} lost");
        return marked;
    }

    private sealed class LastProgress(IProgress<CopyProgress>? inner) : IProgress<CopyProgress>
    {
        public CopyProgress Last { get; private set; }

        public void Report(CopyProgress value)
        {
            Last = value;
            inner?.Report(value);
        }
    }
}
