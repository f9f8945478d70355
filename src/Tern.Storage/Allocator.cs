// Extent allocation: which free physical extents a new or growing LV gets. Linear volumes fill
// PVs in order; striped and mirrored volumes take their areas from distinct PVs (mirror legs
// from distinct hosts when the VG spans hosts), largest free runs first, and split into several
// segments when no single run is long enough.
using Tern.Storage.Format;

namespace Tern.Storage;

/// <summary>The shape of an allocation.</summary>
/// <param name="Type">Segment type.</param>
/// <param name="Areas">Stripes (striped) or legs (mirror); 1 for linear.</param>
/// <param name="StripeSize">Stripe unit in bytes (striped only).</param>
public sealed record LvLayout(SegmentType Type, int Areas = 1, int StripeSize = LvLayout.DefaultStripeSize)
{
    /// <summary>Default stripe unit: 64 KiB, as LVM.</summary>
    public const int DefaultStripeSize = 64 * 1024;

    /// <summary>A linear layout.</summary>
    public static LvLayout Linear { get; } = new(SegmentType.Linear);

    /// <summary>Whether the LV's blocks carry CRC32C checksums (the default); fixed at creation.</summary>
    public bool Checksums { get; init; } = true;
}

/// <summary>Finds free extents.</summary>
public static class Allocator
{
    /// <summary>Free runs (start, count) per PV, in PV order, for the given metadata.</summary>
    public static Dictionary<Guid, List<(long Start, long Count)>> FreeRuns(VgMetadata vg)
    {
        var used = vg.Pvs.ToDictionary(p => p.Id, _ => new List<(long Start, long Count)>());
        foreach (var lv in vg.Lvs)
        {
            foreach (var seg in lv.Segments)
            {
                foreach (var a in seg.Areas)
                {
                    if (used.TryGetValue(a.Pv, out var list))
                        list.Add((a.StartExtent, seg.ExtentsPerArea));
                    if (a.MoveTo is { } m && used.TryGetValue(m.Pv, out var dest))
                        dest.Add((m.StartExtent, seg.ExtentsPerArea));
                }
            }
        }
        var free = new Dictionary<Guid, List<(long Start, long Count)>>();
        foreach (var pv in vg.Pvs)
        {
            var runs = new List<(long Start, long Count)>();
            long at = 0;
            foreach (var (start, count) in used[pv.Id].OrderBy(u => u.Start))
            {
                if (start > at)
                    runs.Add((at, start - at));
                at = Math.Max(at, start + count);
            }
            if (pv.Extents > at)
                runs.Add((at, pv.Extents - at));
            free[pv.Id] = runs;
        }
        return free;
    }

    /// <summary>Free extents in the VG.</summary>
    public static long FreeExtents(VgMetadata vg) => FreeRuns(vg).Values.Sum(r => r.Sum(x => x.Count));

    /// <summary>
    /// Allocates <paramref name="extents"/> logical extents starting at logical extent
    /// <paramref name="startLe"/>; throws <see cref="InsufficientSpaceException"/> when it cannot.
    /// </summary>
    public static List<SegmentEntry> Allocate(VgMetadata vg, LvLayout layout, long startLe, long extents, IReadOnlySet<Guid>? avoid = null)
    {
        var free = FreeRuns(vg);
        if (avoid is not null)
        {
            foreach (var id in avoid)
                free.Remove(id);
        }
        var segments = new List<SegmentEntry>();
        int areas = layout.Type == SegmentType.Linear ? 1 : layout.Areas;
        if (areas < 1 || (layout.Type != SegmentType.Linear && areas < 2))
            throw new StorageException($"a {layout.Type.ToString().ToLowerInvariant()} volume needs at least 2 {(layout.Type == SegmentType.Mirror ? "mirrors" : "stripes")}");
        if (extents % areas != 0 && layout.Type == SegmentType.Striped)
            throw new StorageException($"a striped allocation must be a multiple of {areas} extents");
        bool distinctHosts = layout.Type == SegmentType.Mirror && vg.Pvs.Select(p => p.Host).Distinct().Count() > 1;
        var hostOf = vg.Pvs.ToDictionary(p => p.Id, p => p.Host);
        long remaining = layout.Type == SegmentType.Striped ? extents / areas : extents; // per area
        long le = startLe;
        while (remaining > 0)
        {
            // Each PV offers its largest free run; take the best ones on distinct PVs (and hosts).
            var offers = free.Where(kv => kv.Value.Count > 0)
                .Select(kv => (Pv: kv.Key, Run: kv.Value.OrderByDescending(r => r.Count).ThenBy(r => r.Start).First()))
                .OrderByDescending(o => Math.Min(o.Run.Count, remaining)).ThenBy(o => IndexOf(vg, o.Pv))
                .ToList();
            var picked = new List<(Guid Pv, (long Start, long Count) Run)>();
            var hosts = new HashSet<string>();
            foreach (var o in offers)
            {
                if (picked.Count == areas)
                    break;
                if (distinctHosts && !hosts.Add(hostOf[o.Pv]))
                    continue;
                picked.Add(o);
            }
            if (picked.Count < areas)
                throw Shortage(vg, layout, areas, distinctHosts);
            long take = Math.Min(remaining, picked.Min(p => p.Run.Count));
            if (layout.Type == SegmentType.Linear)
            {
                // Linear takes runs in PV order rather than by size, so volumes fill PVs front to back.
                var first = free.Where(kv => kv.Value.Count > 0).OrderBy(kv => IndexOf(vg, kv.Key)).First();
                picked = [(first.Key, first.Value[0])];
                take = Math.Min(remaining, first.Value[0].Count);
            }
            var areaList = new List<AreaEntry>();
            foreach (var (pv, run) in picked)
            {
                areaList.Add(new AreaEntry { Pv = pv, StartExtent = run.Start });
                var runs = free[pv];
                int i = runs.IndexOf(run);
                if (run.Count == take)
                    runs.RemoveAt(i);
                else
                    runs[i] = (run.Start + take, run.Count - take);
            }
            long segExtents = layout.Type == SegmentType.Striped ? take * areas : take;
            segments.Add(new SegmentEntry
            {
                StartExtent = le,
                Extents = segExtents,
                Type = layout.Type,
                StripeSize = layout.Type == SegmentType.Striped ? layout.StripeSize : 0,
                Areas = areaList,
            });
            le += segExtents;
            remaining -= take;
        }
        return segments;
    }

    private static int IndexOf(VgMetadata vg, Guid pv)
    {
        for (int i = 0; i < vg.Pvs.Count; i++)
        {
            if (vg.Pvs[i].Id == pv)
                return i;
        }
        return int.MaxValue;
    }

    private static InsufficientSpaceException Shortage(VgMetadata vg, LvLayout layout, int areas, bool distinctHosts) =>
        layout.Type switch
        {
            SegmentType.Linear => new InsufficientSpaceException($"volume group {vg.Name} has not enough free space"),
            SegmentType.Mirror when distinctHosts => new InsufficientSpaceException($"volume group {vg.Name} has not enough free space on {areas} PVs of distinct hosts for {areas} mirror legs"),
            SegmentType.Mirror => new InsufficientSpaceException($"volume group {vg.Name} has not enough free space on {areas} distinct PVs for {areas} mirror legs"),
            _ => new InsufficientSpaceException($"volume group {vg.Name} has not enough free space on {areas} distinct PVs for {areas} stripes"),
        };
}
