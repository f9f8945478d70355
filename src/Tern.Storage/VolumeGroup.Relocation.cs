// Operations that copy extents while the LV stays in use: adding mirror legs (lv convert), resync
// of stale legs, and pvmove. They share one mechanism: the new copy is recorded in the metadata
// first (a stale leg, or an area's MoveTo), so every write from then on reaches it; a background
// copy then walks the area one run at a time, each run copied verbatim (data and checksum tags)
// between requests; a final commit makes the copy readable (or replaces the old area). A crash
// or kill at any point leaves metadata that says which copy is incomplete, and running the
// operation again redoes only that copy: for pvmove, at most one checkpoint chunk.
using Tern.Storage.Format;

namespace Tern.Storage;

/// <summary>Progress of a long operation.</summary>
/// <param name="Done">Bytes copied so far.</param>
/// <param name="Total">Bytes to copy (may grow as work is discovered).</param>
public readonly record struct CopyProgress(long Done, long Total);

public sealed partial class VolumeGroup
{
    /// <summary>Default pvmove checkpoint: 16 extents (64 MiB at the default extent size).</summary>
    public const int DefaultMoveChunkExtents = 16;

    // Changes the number of copies of one LV (see ConvertMirrorsAsync, which also converts the
    // snapshot store of an origin).
    private async Task<LvEntry> ConvertOneAsync(string name, int copies, IProgress<CopyProgress>? progress, CancellationToken ct)
    {
        if (copies < 1)
            throw new StorageException($"--mirrors {copies}: a volume needs at least one copy");
        var lv = FindLv(Metadata, name);
        if (lv.Segments.Any(s => s.Type == SegmentType.Striped))
            throw new StorageException($"{Name}/{name} is striped; converting a striped volume to a mirror is not supported");
        int current = lv.Segments.Min(s => s.Areas.Count);
        if (copies < current || (copies == current && lv.Segments.Any(s => s.Areas.Count != copies)))
        {
            using var quiet = await QuiesceAsync(lv.Id, ct).ConfigureAwait(false);
            await CommitAsync(md =>
            {
                var entry = FindLv(md, name);
                var segs = entry.Segments.Select(s =>
                {
                    // Keep present, synchronised legs first.
                    var keep = s.Areas.OrderBy(a => !_pvs.ContainsKey(a.Pv)).ThenBy(a => a.Stale).ThenBy(a => a.DirtyRegions?.Count ?? 0).Take(copies).ToList();
                    // A single copy is all there is: it serves every read, whatever it missed.
                    if (copies == 1)
                        keep = [keep[0] with { Stale = false, DirtyRegions = null }];
                    return s with { Type = copies == 1 ? SegmentType.Linear : SegmentType.Mirror, Areas = keep };
                }).ToList();
                return Replace(md, entry with { Segments = Merge(segs) });
            }, ct).ConfigureAwait(false);
            return FindLv(Metadata, name);
        }
        if (copies > current)
        {
            await CommitAsync(md =>
            {
                var entry = FindLv(md, name);
                var work = md;
                var segs = new List<SegmentEntry>();
                foreach (var seg in entry.Segments)
                {
                    foreach (var piece in AddLegs(work, seg, copies - seg.Areas.Count))
                    {
                        segs.Add(piece);
                        work = Replace(work, entry with { Segments = [.. segs, .. entry.Segments.Where(s => s.StartExtent > seg.StartExtent)] });
                    }
                }
                ResetExtents(md, segs.Select(s => s with { Areas = [.. s.Areas.Where(a => a.Stale)] }));
                return Replace(md, entry with { Segments = segs });
            }, ct).ConfigureAwait(false);
        }
        return await ResyncAsync(name, progress, ct).ConfigureAwait(false);
    }

    // New stale legs for one segment, on PVs (and, when the VG spans hosts, hosts) that hold no
    // copy yet; the segment is split where the free space does not come in one run.
    private IEnumerable<SegmentEntry> AddLegs(VgMetadata md, SegmentEntry seg, int count)
    {
        var avoid = seg.Areas.Select(a => a.Pv).ToHashSet();
        if (md.Pvs.Select(p => p.Host).Distinct().Count() > 1)
        {
            var hosts = md.Pvs.Where(p => avoid.Contains(p.Id)).Select(p => p.Host).ToHashSet();
            avoid.UnionWith(md.Pvs.Where(p => hosts.Contains(p.Host)).Select(p => p.Id));
        }
        var layout = count == 1 ? LvLayout.Linear : new LvLayout(SegmentType.Mirror, count);
        List<SegmentEntry> pieces;
        try
        {
            pieces = Allocator.Allocate(md, layout, seg.StartExtent, seg.Extents, avoid);
        }
        catch (InsufficientSpaceException)
        {
            throw new InsufficientSpaceException($"volume group {md.Name} has not enough free space on PVs{(avoid.Count > seg.Areas.Count ? " of other hosts" : "")} that hold no copy yet for {count} more mirror leg(s)");
        }
        foreach (var piece in pieces)
        {
            var part = Slice(seg, piece.StartExtent, piece.Extents);
            yield return part with { Type = SegmentType.Mirror, Areas = [.. part.Areas, .. piece.Areas.Select(a => a with { Stale = true })] };
        }
    }

    /// <summary>
    /// Brings the mirror legs of an LV up to date: whole stale legs (new ones) are copied from a
    /// synchronised leg, and legs with write-intent regions get just those regions copied, region
    /// by region, not wholesale. Legs whose PV is still missing are left for later.
    /// </summary>
    public Task<LvEntry> ResyncAsync(string name, IProgress<CopyProgress>? progress = null, CancellationToken ct = default) =>
        ResyncAsync(name, 0, progress, ct);

    /// <summary>
    /// Resyncs as <see cref="ResyncAsync(string, IProgress{CopyProgress}?, CancellationToken)"/>, copying at most
    /// <paramref name="maxBytesPerSecond"/> (0: unthrottled) and waiting between runs, outside the
    /// LV's request lock, so that guest I/O on the LV keeps flowing.
    /// </summary>
    public async Task<LvEntry> ResyncAsync(string name, long maxBytesPerSecond, IProgress<CopyProgress>? progress = null, CancellationToken ct = default)
    {
        if (maxBytesPerSecond < 0)
            throw new StorageException($"a resync rate of {maxBytesPerSecond} bytes/s is not a rate; give a positive rate, or 0 for unthrottled");
        var throttle = maxBytesPerSecond > 0 ? new ByteRateLimiter(maxBytesPerSecond) : null;
        var lv = FindLv(Metadata, name);
        long es = Metadata.ExtentSize;
        const long r = VgMetadata.RegionSize;
        bool Usable(AreaEntry a) => _pvs.TryGetValue(a.Pv, out var pv) && !pv.Failed;
        var jobs = new List<(SegmentEntry Seg, AreaEntry Leg, long Offset, long Length, long Region)>();
        foreach (var seg in lv.Segments.Where(s => s.Type == SegmentType.Mirror))
        {
            long areaBytes = seg.Extents * es;
            foreach (var leg in seg.Areas.Where(Usable))
            {
                if (leg.Stale)
                    jobs.Add((seg, leg, 0, areaBytes, -1));
                else
                    jobs.AddRange((leg.DirtyRegions ?? []).Where(x => x * r < areaBytes).Select(x => (seg, leg, x * r, Math.Min(r, areaBytes - (x * r)), x)));
            }
        }
        long total = jobs.Sum(j => j.Length), done = 0;
        using var writer = WriterScope(lv.Id); // copies into an LV a guest has open write as that guest, fenced like its own writes
        var inherited = new Dictionary<(Guid, long), IReadOnlyList<long>?>();
        var cleared = new HashSet<(Guid Pv, long Start, long Region)>();
        foreach (var (seg, leg, offset, length, region) in jobs)
        {
            var source = seg.Areas.FirstOrDefault(a => a != leg && !a.Stale && Usable(a) && (region < 0 || !(a.DirtyRegions?.Contains(region) ?? false)))
                ?? throw new StorageException($"{Name}/{name}: no up-to-date copy of logical extents {seg.StartExtent}.. is present to resync from");
            await CopyRangeAsync(lv.Id, _pvs[source.Pv], (source.StartExtent * es) + offset, _pvs[leg.Pv], (leg.StartExtent * es) + offset, length,
                p => progress?.Report(new CopyProgress(done + p, total)), ct, throttle).ConfigureAwait(false);
            done += length;
            if (!Usable(leg))
                continue; // it failed during the copy: what it missed stays recorded
            if (region < 0)
                inherited[(leg.Pv, leg.StartExtent)] = source.DirtyRegions; // the copy is as current as its source
            else
                cleared.Add((leg.Pv, leg.StartExtent, region));
        }
        if (jobs.Count > 0)
        {
            await CommitAsync(md =>
            {
                var entry = FindLv(md, name);
                var segs = entry.Segments.Select(s => s with
                {
                    Areas = [.. s.Areas.Select(a =>
                    {
                        if (a.Stale && inherited.TryGetValue((a.Pv, a.StartExtent), out var fromSource))
                        {
                            var dirty = (a.DirtyRegions ?? []).Union(fromSource ?? []).Order().ToList();
                            return a with { Stale = false, DirtyRegions = dirty.Count == 0 ? null : dirty };
                        }
                        if (a.DirtyRegions is { } regions)
                        {
                            var left = regions.Where(x => !cleared.Contains((a.Pv, a.StartExtent, x))).ToList();
                            return a with { DirtyRegions = left.Count == 0 ? null : left };
                        }
                        return a;
                    })],
                }).ToList();
                return Replace(md, entry with { Segments = Merge(segs) });
            }, ct).ConfigureAwait(false);
        }
        progress?.Report(new CopyProgress(done, done));
        return FindLv(Metadata, name);
    }

    /// <summary>Whether an LV has mirror legs that a resync would bring up to date.</summary>
    public bool NeedsResync(string name) =>
        FindLv(Metadata, name).Segments.Any(s => s.Areas.Any(a => a.Stale || a.DirtyRegions is not null));

    /// <summary>
    /// Moves every extent on <paramref name="source"/> (of one LV when <paramref name="lvName"/> is
    /// given) to other PVs (only <paramref name="destinations"/> when given), in checkpointed chunks
    /// of at most <paramref name="chunkExtents"/> extents per area, while the LVs stay in use.
    /// Resumes an interrupted move first. Returns the number of extents moved.
    /// </summary>
    public async Task<long> PvMoveAsync(PhysicalVolume source, string? lvName = null, IReadOnlyList<PhysicalVolume>? destinations = null,
        int chunkExtents = DefaultMoveChunkExtents, IProgress<CopyProgress>? progress = null, CancellationToken ct = default)
    {
        if (!Metadata.Pvs.Any(p => p.Id == source.Id))
            throw new StorageException($"{source.Name} is not in volume group {Name}");
        if (lvName is not null)
            FindLv(Metadata, lvName);
        if (destinations is not null && destinations.Any(d => d.Id == source.Id))
            throw new StorageException($"{source.Name} cannot be both the source and a destination of pvmove");
        if (chunkExtents < 1)
            throw new StorageException("the pvmove chunk must be at least one extent");
        var allowed = destinations?.Select(d => d.Id).ToHashSet();
        long es = Metadata.ExtentSize;
        long total = MovableExtents(Metadata, source.Id, lvName) * es, done = 0, moved = 0;
        while (true)
        {
            ct.ThrowIfCancellationRequested();
            var md = Metadata;
            // First finish a move that a previous run (or crash) left recorded.
            var pending = md.Lvs.SelectMany(l => l.Segments.SelectMany(s => s.Areas.Where(a => a.MoveTo is not null).Select(a => (Lv: l, Seg: s, Area: a)))).FirstOrDefault();
            if (pending.Lv is not null)
            {
                var (lv, seg, area) = pending;
                long perArea = seg.ExtentsPerArea;
                await CopyAreaAsync(lv.Id, area, area.MoveTo!, perArea, p => progress?.Report(new CopyProgress(done + p, Math.Max(total, done + (perArea * es)))), ct).ConfigureAwait(false);
                await CommitAsync(m =>
                {
                    var entry = m.Lvs.First(l => l.Id == lv.Id);
                    var segs = entry.Segments.Select(s => s.StartExtent != seg.StartExtent ? s : s with
                    {
                        Areas = [.. s.Areas.Select(a => a == area ? a.MoveTo! with { Stale = a.Stale } : a)],
                    }).ToList();
                    return Replace(m, entry with { Segments = segs });
                }, ct).ConfigureAwait(false);
                done += perArea * es;
                moved += perArea;
                continue;
            }
            // Then start the next chunk: split it off its segment and record where it goes.
            var next = md.Lvs.Where(l => lvName is null || l.Name == lvName)
                .SelectMany(l => l.Segments.Where(s => s.Areas.Any(a => a.Pv == source.Id)).Select(s => (Lv: l, Seg: s))).FirstOrDefault();
            if (next.Lv is null)
                break;
            await CommitAsync(m => StartChunk(m, next.Lv.Id, next.Seg.StartExtent, source.Id, allowed, chunkExtents), ct).ConfigureAwait(false);
        }
        // Chunks were split off as separate segments; join those that ended up contiguous again.
        await CommitAsync(m => m with { Lvs = [.. m.Lvs.Select(l => l with { Segments = Merge(l.Segments) })] }, ct).ConfigureAwait(false);
        progress?.Report(new CopyProgress(done, done));
        return moved;
    }

    private static long MovableExtents(VgMetadata md, Guid pv, string? lvName) =>
        md.Lvs.Where(l => lvName is null || l.Name == lvName)
            .Sum(l => l.Segments.Sum(s => s.Areas.Count(a => a.Pv == pv || a.MoveTo is not null) * s.ExtentsPerArea));

    private VgMetadata StartChunk(VgMetadata md, Guid lvId, long segStart, Guid source, HashSet<Guid>? allowed, int chunkExtents)
    {
        var lv = md.Lvs.First(l => l.Id == lvId);
        var seg = lv.Segments.First(s => s.StartExtent == segStart);
        int areaIndex = seg.Areas.ToList().FindIndex(a => a.Pv == source);
        var area = seg.Areas[areaIndex];
        int n = seg.Type == SegmentType.Striped ? seg.Areas.Count : 1;
        // Destinations: not the source, not a PV holding another area of the segment (stripes stay
        // on distinct PVs, mirror legs on distinct PVs and hosts), and within the allowed set.
        var avoid = seg.Areas.Select(a => a.Pv).ToHashSet();
        if (seg.Type == SegmentType.Mirror && md.Pvs.Select(p => p.Host).Distinct().Count() > 1)
        {
            var hosts = md.Pvs.Where(p => seg.Areas.Any(a => a.Pv == p.Id && a.Pv != source)).Select(p => p.Host).ToHashSet();
            avoid.UnionWith(md.Pvs.Where(p => hosts.Contains(p.Host)).Select(p => p.Id));
        }
        if (allowed is not null)
            avoid.UnionWith(md.Pvs.Select(p => p.Id).Where(id => !allowed.Contains(id)));
        long want = Math.Min(seg.ExtentsPerArea, chunkExtents);
        List<SegmentEntry> got;
        try
        {
            got = Allocator.Allocate(md, LvLayout.Linear, 0, want, avoid);
        }
        catch (InsufficientSpaceException)
        {
            throw new InsufficientSpaceException($"pvmove: no free extents on a suitable PV for {lv.Name} (logical extents {seg.StartExtent}..)");
        }
        var dest = got[0].Areas[0];
        long perArea = got[0].Extents; // the first free run may be shorter than the chunk
        var chunk = Slice(seg, seg.StartExtent, perArea * n);
        chunk = chunk with { Areas = [.. chunk.Areas.Select((a, i) => i == areaIndex ? a with { MoveTo = dest } : a)] };
        var segs = lv.Segments.Where(s => s.StartExtent != segStart).ToList();
        segs.Add(chunk);
        if (seg.ExtentsPerArea > perArea)
            segs.Add(Slice(seg, seg.StartExtent + (perArea * n), seg.Extents - (perArea * n)));
        segs.Sort((a, b) => a.StartExtent.CompareTo(b.StartExtent));
        return Replace(md, lv with { Segments = segs });
    }

    // Copies one area to another, one run at a time between the LV's requests, then makes the copy durable.
    private Task CopyAreaAsync(Guid lvId, AreaEntry from, AreaEntry to, long extentsPerArea, Action<long> progress, CancellationToken ct)
    {
        long es = Metadata.ExtentSize;
        var src = _pvs.GetValueOrDefault(from.Pv) ?? throw new StorageException($"physical volume {from.Pv} is missing");
        var dst = _pvs.GetValueOrDefault(to.Pv) ?? throw new StorageException($"physical volume {to.Pv} is missing");
        return CopyRangeAsync(lvId, src, from.StartExtent * es, dst, to.StartExtent * es, extentsPerArea * es, progress, ct);
    }

    private async Task CopyRangeAsync(Guid lvId, PhysicalVolume src, long srcOffset, PhysicalVolume dst, long dstOffset, long length, Action<long> progress, CancellationToken ct,
        ByteRateLimiter? throttle = null)
    {
        const int run = 1 << 20;
        var buffer = new byte[run];
        for (long off = 0; off < length; off += run)
        {
            int n = (int)Math.Min(run, length - off);
            using (await QuiesceAsync(lvId, ct).ConfigureAwait(false))
                await PhysicalVolume.CopyRawAsync(src, srcOffset + off, dst, dstOffset + off, n, buffer, ct).ConfigureAwait(false);
            progress(off + n);
            if (throttle is not null)
                await throttle.WaitAsync(n, ct).ConfigureAwait(false);
        }
        await dst.FlushAsync(ct).ConfigureAwait(false);
    }

    private static VgMetadata Replace(VgMetadata md, LvEntry lv) => md with { Lvs = [.. md.Lvs.Select(l => l.Id == lv.Id ? lv : l)] };

    // The part of a segment covering logical extents [start, start + count); for a striped segment
    // both are multiples of the stripe count relative to the segment start.
    private SegmentEntry Slice(SegmentEntry seg, long start, long count)
    {
        long extentSize = Metadata.ExtentSize;
        long rel = start - seg.StartExtent;
        long perArea = seg.Type == SegmentType.Striped ? rel / seg.Areas.Count : rel;
        return seg with
        {
            StartExtent = start,
            Extents = count,
            Areas = [.. seg.Areas.Select(a => a with
            {
                StartExtent = a.StartExtent + perArea,
                MoveTo = a.MoveTo is { } m ? m with { StartExtent = m.StartExtent + perArea } : null,
                DirtyRegions = ShiftRegions(a.DirtyRegions, perArea * extentSize, (seg.Type == SegmentType.Striped ? count / seg.Areas.Count : count) * extentSize),
            })],
        };
    }

    // Re-expresses dirty regions for an area that now starts `shift` bytes later and is `length`
    // bytes long, keeping every region that overlaps a formerly dirty byte.
    private static IReadOnlyList<long>? ShiftRegions(IReadOnlyList<long>? regions, long shift, long length)
    {
        if (regions is null)
            return null;
        const long r = VgMetadata.RegionSize;
        var result = new SortedSet<long>();
        foreach (long region in regions)
        {
            long start = Math.Max(0, (region * r) - shift);
            long end = Math.Min(length, ((region + 1) * r) - shift);
            for (long x = start / r; end > start && x <= (end - 1) / r; x++)
                result.Add(x);
        }
        return result.Count == 0 ? null : [.. result];
    }

    // Joins neighbouring segments whose areas continue on the same PVs.
    private static List<SegmentEntry> Merge(IReadOnlyList<SegmentEntry> segs)
    {
        var result = new List<SegmentEntry>();
        foreach (var s in segs)
        {
            if (result.Count > 0 && Joinable(result[^1], s))
            {
                var prev = result[^1];
                result[^1] = prev with { Extents = prev.Extents + s.Extents };
            }
            else
            {
                result.Add(s);
            }
        }
        return result;
    }

    private static bool Joinable(SegmentEntry a, SegmentEntry b)
    {
        if (a.Type != b.Type || a.StripeSize != b.StripeSize || a.Areas.Count != b.Areas.Count || a.StartExtent + a.Extents != b.StartExtent)
            return false;
        for (int i = 0; i < a.Areas.Count; i++)
        {
            var x = a.Areas[i];
            var y = b.Areas[i];
            if (x.Pv != y.Pv || x.Stale != y.Stale || x.MoveTo is not null || y.MoveTo is not null || x.StartExtent + a.ExtentsPerArea != y.StartExtent
                || x.DirtyRegions is not null || y.DirtyRegions is not null)
                return false;
        }
        return true;
    }
}
