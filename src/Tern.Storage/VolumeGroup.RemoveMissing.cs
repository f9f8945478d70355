// `vg reduce VG --remove-missing [--force]` (LVM's vgreduce --removemissing): drops PVs that are
// gone for good from the VG's metadata, in one commit. What their loss means for each LV:
// - a mirror segment keeps its legs on present PVs and loses the others, as long as one of the
//   remaining legs holds a current copy of every region (not stale, and no region out of date on
//   all of them); `lv convert --mirrors N` then gives it its copies back;
// - an LV that would lose the only copy of some extent (a linear or striped segment on a missing
//   PV, or a mirror segment whose current copies were all there) makes the whole request refused,
//   nothing changed, unless `force` is given: then such LVs are removed, as LVM's
//   `vgreduce --removemissing --force` removes them (their extents on present PVs become free).
// LVs that belong to a thin pool or have snapshots are never removed this way (refused even with
// force: remove the pool or the snapshots first).
using Tern.Storage.Format;

namespace Tern.Storage;

/// <summary>What <see cref="VolumeGroup.RemoveMissingAsync"/> did.</summary>
/// <param name="RemovedPvs">The missing PVs dropped (host:path).</param>
/// <param name="Changes">One line per LV that lost a mirror leg or was removed.</param>
public sealed record RemoveMissingResult(IReadOnlyList<string> RemovedPvs, IReadOnlyList<string> Changes);

public sealed partial class VolumeGroup
{
    /// <summary>Drops the missing PVs from the VG (see the file's header); refuses with one line, changing nothing, when an LV would lose data and <paramref name="force"/> is false.</summary>
    public async Task<RemoveMissingResult> RemoveMissingAsync(bool force, CancellationToken ct = default)
    {
        ThrowIfView("vg reduce --remove-missing");
        var missing = MissingPvs.Select(p => p.Id).ToHashSet();
        if (missing.Count == 0)
            return new RemoveMissingResult([], []);
        var changes = new List<string>();
        List<string>? removed = null;
        await CommitAsync(md =>
        {
            changes.Clear();
            var gone = md.Pvs.Where(p => missing.Contains(p.Id)).ToList();
            string Where(Guid pv) => gone.FirstOrDefault(p => p.Id == pv) is { } e ? (e.Path.StartsWith(e.Host + ":", StringComparison.Ordinal) ? e.Path : $"{e.Host}:{e.Path}") : pv.ToString();
            var lvs = new List<LvEntry>();
            var lost = new List<(LvEntry Lv, string Why)>();
            foreach (var lv in md.Lvs)
            {
                var segments = new List<SegmentEntry>();
                string? why = null;
                int legsDropped = 0;
                foreach (var seg in lv.Segments)
                {
                    var onMissing = seg.Areas.Where(a => missing.Contains(a.Pv)).ToList();
                    if (onMissing.Count == 0)
                    {
                        segments.Add(seg);
                        continue;
                    }
                    string range = $"extents {seg.StartExtent}-{seg.StartExtent + seg.Extents - 1}";
                    if (seg.Type != SegmentType.Mirror)
                    {
                        why ??= $"its only copy of {range} is on {Where(onMissing[0].Pv)}";
                        continue;
                    }
                    var current = seg.Areas.Where(a => !missing.Contains(a.Pv) && !a.Stale).ToList();
                    bool regionLost = current.Count == 0 || current.Select(a => (IEnumerable<long>)(a.DirtyRegions ?? [])).Aggregate((x, y) => x.Intersect(y)).Any();
                    if (regionLost)
                    {
                        why ??= $"the only current copy of some of {range} is on {Where(onMissing[0].Pv)}";
                        continue;
                    }
                    legsDropped += onMissing.Count;
                    segments.Add(seg with { Areas = [.. seg.Areas.Where(a => !missing.Contains(a.Pv))] });
                }
                if (why is not null)
                {
                    lost.Add((lv, why));
                    continue;
                }
                if (legsDropped > 0)
                {
                    int copies = segments.Min(s => s.Areas.Count);
                    changes.Add($"{md.Name}/{lv.Name}: lost {legsDropped} mirror leg(s) with the missing PVs; {copies} cop{(copies == 1 ? "y" : "ies")} left (`tern lv convert {md.Name}/{lv.Name} --mirrors N` adds copies back)");
                }
                lvs.Add(lv with { Segments = segments });
            }
            foreach (var (lv, why) in lost)
            {
                if (md.FindStore(lv.Id) is not null || md.ThinPools?.Any(p => p.DataLv == lv.Id || p.MetaLv == lv.Id) == true)
                    throw new StorageException($"{md.Name}/{lv.Name} would lose data ({why}) and belongs to a thin pool or has snapshots; remove those first; nothing changed");
                if (!force)
                    throw new StorageException($"{md.Name}/{lv.Name} would lose data: {why}; nothing changed (--force removes such logical volumes, as vgreduce --removemissing --force does)");
                changes.Add($"{md.Name}/{lv.Name}: removed ({why})");
            }
            removed = [.. gone.Select(p => Where(p.Id))];
            return md with { Pvs = [.. md.Pvs.Where(p => !missing.Contains(p.Id))], Lvs = lvs };
        }, ct).ConfigureAwait(false);
        return new RemoveMissingResult(removed ?? [], [.. changes]);
    }
}
