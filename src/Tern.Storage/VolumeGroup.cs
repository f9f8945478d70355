// A volume group: PVs pooled under one metadata, of which every member PV holds a copy. All
// changes go through Commit, which writes the next sequence number to every present PV; on open
// the highest valid sequence number found on any member wins and members that missed it are
// rewritten (repaired) before anything else happens.
using System.Text.RegularExpressions;
using Tern.Storage.Format;

namespace Tern.Storage;

/// <summary>An opened volume group. It uses its PVs but does not own them: whoever opened them closes them.</summary>
public sealed partial class VolumeGroup : IDisposable
{
    /// <summary>Default physical extent size: 4 MiB, as LVM.</summary>
    public const long DefaultExtentSize = 4L << 20;

    private readonly SemaphoreSlim _commitLock = new(1, 1);
    private readonly Dictionary<Guid, PhysicalVolume> _pvs;
    private readonly List<LogicalVolume> _openLvs = [];
    private VgMetadata _metadata;

    private VolumeGroup(VgMetadata metadata, Dictionary<Guid, PhysicalVolume> pvs, IReadOnlyList<string> repairs)
    {
        _metadata = metadata;
        _pvs = pvs;
        Repairs = repairs;
        StorageTelemetry.Opened(this);
    }

    /// <summary>The current (committed) metadata.</summary>
    public VgMetadata Metadata => Volatile.Read(ref _metadata);

    /// <summary>VG name.</summary>
    public string Name => Metadata.Name;

    /// <summary>Member PVs that are present, by identity.</summary>
    public IReadOnlyDictionary<Guid, PhysicalVolume> Pvs => _pvs;

    /// <summary>What opening the VG repaired (PVs that had missed an update), for reports.</summary>
    public IReadOnlyList<string> Repairs { get; }

    /// <summary>Member PVs recorded in the metadata but not present.</summary>
    public IEnumerable<PvEntry> MissingPvs => Metadata.Pvs.Where(p => !_pvs.ContainsKey(p.Id));

    /// <summary>Checks a VG or LV name: letters, digits and + _ . - only, not starting with '-'.</summary>
    public static void ValidateName(string name, string what)
    {
        if (!NamePattern().IsMatch(name) || name is "." or "..")
            throw new StorageException($"invalid {what} name '{name}': use letters, digits and + _ . - (not starting with -), at most 127 characters");
    }

    [GeneratedRegex("^[A-Za-z0-9+_.][A-Za-z0-9+_.-]{0,126}$")]
    private static partial Regex NamePattern();

    /// <summary>Creates a VG over orphan PVs.</summary>
    public static async Task<VolumeGroup> CreateAsync(string name, IReadOnlyList<PhysicalVolume> pvs, long extentSize = DefaultExtentSize, CancellationToken ct = default)
    {
        ValidateName(name, "volume group");
        if (pvs.Count == 0)
            throw new StorageException("a volume group needs at least one physical volume");
        if (extentSize < PhysicalVolume.BlockSize || extentSize % PhysicalVolume.BlockSize != 0 || (extentSize & (extentSize - 1)) != 0)
            throw new StorageException($"extent size {extentSize} is not a power of two of at least 4 KiB");
        foreach (var pv in pvs)
        {
            if (pv.Vg is { } other)
                throw new StorageException($"{pv.Name} already belongs to volume group {other.Name}");
        }
        if (pvs.Select(p => p.Id).Distinct().Count() != pvs.Count)
            throw new StorageException("the same physical volume is listed twice");
        var entries = pvs.Select(p => new PvEntry { Id = p.Id, Host = p.Label.Host, Path = p.Name, Extents = p.Label.DataLength / extentSize }).ToList();
        var small = entries.FirstOrDefault(e => e.Extents == 0);
        if (small is not null)
            throw new StorageException($"{small.Path} is smaller than one extent of {extentSize} bytes");
        var md = new VgMetadata { Name = name, Id = Guid.NewGuid(), Seqno = 1, ExtentSize = extentSize, Pvs = entries, Lvs = [] };
        var vg = new VolumeGroup(md, pvs.ToDictionary(p => p.Id), []);
        await vg.WriteAllAsync(md, ct).ConfigureAwait(false);
        return vg;
    }

    /// <summary>
    /// Opens the VG named <paramref name="name"/> from whichever of <paramref name="candidates"/>
    /// belong to it: the highest valid sequence number wins and stale members are repaired.
    /// </summary>
    public static async Task<VolumeGroup> OpenAsync(string name, IEnumerable<PhysicalVolume> candidates, CancellationToken ct = default)
    {
        var claimants = candidates.Where(p => p.Vg?.Name == name).ToList();
        if (claimants.Count == 0)
            throw new StorageException($"volume group {name} not found");
        var newest = claimants.Select(p => p.Vg!).MaxBy(v => v.Seqno)!;
        var members = new Dictionary<Guid, PhysicalVolume>();
        var repairs = new List<string>();
        foreach (var pv in claimants)
        {
            if (pv.Vg!.Id != newest.Id || !newest.Pvs.Any(e => e.Id == pv.Id))
                continue; // a former member, or a PV of another VG with the same name
            members[pv.Id] = pv;
        }
        var vg = new VolumeGroup(newest, members, repairs);
        foreach (var pv in members.Values)
        {
            if (pv.Vg!.Seqno < newest.Seqno)
            {
                repairs.Add($"{pv.Name}: metadata seqno {pv.Vg.Seqno} was stale; rewritten with seqno {newest.Seqno}");
                await pv.WriteMetadataAsync(new PvMetadataDocument { Vg = newest }, newest.Seqno, ct).ConfigureAwait(false);
            }
        }
        await vg.MarkTornMirrorRegionsAsync(repairs, ct).ConfigureAwait(false);
        return vg;
    }

    // After an unclean stop, a mirror's legs may differ where writes were in flight (each leg's
    // blocks valid, but one leg newer). Those regions are the ones whose tags a PV recalculated:
    // every leg but the first synchronised one is marked out of date there, so reads come from
    // one leg only until a resync makes the others equal to it, as md's bitmap does.
    private async Task MarkTornMirrorRegionsAsync(List<string> repairs, CancellationToken ct)
    {
        const long r = VgMetadata.RegionSize;
        long es = Metadata.ExtentSize;
        var marks = new List<(Guid Lv, long Segment, int Leg, long Region)>();
        foreach (var lv in Metadata.Lvs)
        {
            foreach (var seg in lv.Segments.Where(s => s.Type == SegmentType.Mirror))
            {
                var torn = new SortedSet<long>();
                foreach (var a in seg.Areas)
                {
                    if (!_pvs.TryGetValue(a.Pv, out var pv))
                        continue;
                    long start = a.StartExtent * es, end = start + (seg.Extents * es);
                    foreach (long pr in pv.RecoveredRegionList)
                    {
                        long from = Math.Max(start, pr * PvLabel.TagRegionSize) - start;
                        long to = Math.Min(end, (pr + 1) * PvLabel.TagRegionSize) - start;
                        for (long x = from / r; to > from && x <= (to - 1) / r; x++)
                            torn.Add(x);
                    }
                }
                foreach (long x in torn)
                {
                    // The leg reads would use keeps the region; the others follow it. That is the first
                    // up-to-date leg whose PV is here: a leg on a PV that is away (its node died
                    // with the writer) cannot be read, and keeping it would leave the region with
                    // no readable copy (every present leg marked out of date).
                    bool UpToDate(AreaEntry a) => !a.Stale && !(a.DirtyRegions?.Contains(x) ?? false);
                    int keep = seg.Areas.ToList().FindIndex(a => UpToDate(a) && _pvs.TryGetValue(a.Pv, out var p) && !p.Failed);
                    if (keep < 0)
                        keep = seg.Areas.ToList().FindIndex(UpToDate);
                    if (keep < 0)
                        continue;
                    for (int i = 0; i < seg.Areas.Count; i++)
                    {
                        if (i != keep && !seg.Areas[i].Stale && !(seg.Areas[i].DirtyRegions?.Contains(x) ?? false))
                            marks.Add((lv.Id, seg.StartExtent, i, x));
                    }
                }
            }
        }
        if (marks.Count == 0)
            return;
        await CommitAsync(md => md with
        {
            Lvs = [.. md.Lvs.Select(lv => lv with
            {
                Segments = [.. lv.Segments.Select(seg => seg with
                {
                    Areas = [.. seg.Areas.Select((a, i) =>
                    {
                        var add = marks.Where(m => m.Lv == lv.Id && m.Segment == seg.StartExtent && m.Leg == i).Select(m => m.Region).ToList();
                        return add.Count == 0 ? a : a with { DirtyRegions = [.. (a.DirtyRegions ?? []).Union(add).Order()] };
                    })],
                })],
            })],
        }, ct).ConfigureAwait(false);
        repairs.Add($"{marks.Count} mirror region(s) written when the pool last stopped uncleanly are served from one leg until `lv scrub` resyncs them");
    }

    /// <summary>
    /// Commits a change: <paramref name="change"/> maps the current metadata to the next one, which
    /// gets the next sequence number and is written to every present member. Returns it.
    /// </summary>
    public async Task<VgMetadata> CommitAsync(Func<VgMetadata, VgMetadata> change, CancellationToken ct = default)
    {
        await _commitLock.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            if (_committer is { } committer)
                return await ProposeAsync(committer, change, ct).ConfigureAwait(false);
            var current = Metadata;
            var next = change(current) with { Seqno = current.Seqno + 1 };
            await WriteAllAsync(next, ct).ConfigureAwait(false);
            Volatile.Write(ref _metadata, next);
            return next;
        }
        finally
        {
            _commitLock.Release();
        }
    }

    // Writes a metadata version to every present member that works; a PV that fails the write is
    // marked failed (it will be repaired when it is next opened) unless none took it.
    private async Task WriteAllAsync(VgMetadata md, CancellationToken ct)
    {
        var doc = new PvMetadataDocument { Vg = md };
        int written = 0;
        IOException? last = null;
        foreach (var entry in md.Pvs)
        {
            if (!_pvs.TryGetValue(entry.Id, out var pv) || pv.Failed)
                continue;
            try
            {
                await pv.WriteMetadataAsync(doc, md.Seqno, ct).ConfigureAwait(false);
                written++;
            }
            catch (IOException e)
            {
                pv.Failed = true;
                last = e;
            }
        }
        if (written == 0)
            throw new IOException($"volume group {md.Name}: no physical volume took the metadata update", last);
    }

    // Records write intent: the given mirror legs of one segment missed writes to a region.
    private Task CommitDirtyAsync(Guid lvId, long segStart, int[] areas, long region, CancellationToken ct) =>
        CommitAsync(md =>
        {
            var lv = md.Lvs.First(l => l.Id == lvId);
            var segs = lv.Segments.Select(s => s.StartExtent != segStart ? s : s with
            {
                Areas = [.. s.Areas.Select((a, i) => !areas.Contains(i) || (a.DirtyRegions?.Contains(region) ?? false) ? a
                    : a with { DirtyRegions = [.. a.DirtyRegions ?? [], region] })],
            }).ToList();
            return md with { Lvs = [.. md.Lvs.Select(l => l.Id == lvId ? lv with { Segments = segs } : l)] };
        }, ct);

    /// <summary>Adds orphan PVs to the VG.</summary>
    public async Task ExtendAsync(IReadOnlyList<PhysicalVolume> pvs, CancellationToken ct = default)
    {
        foreach (var pv in pvs)
        {
            if (pv.Vg is { } other)
                throw new StorageException($"{pv.Name} already belongs to volume group {other.Name}");
            if (pv.Label.DataLength < Metadata.ExtentSize)
                throw new StorageException($"{pv.Name} is smaller than one extent of {Metadata.ExtentSize} bytes");
        }
        foreach (var pv in pvs)
            _pvs[pv.Id] = pv;
        try
        {
            await CommitAsync(md => md with
            {
                Pvs = [.. md.Pvs, .. pvs.Select(p => new PvEntry { Id = p.Id, Host = p.Label.Host, Path = p.Name, Extents = p.Label.DataLength / md.ExtentSize })],
            }, ct).ConfigureAwait(false);
        }
        catch
        {
            foreach (var pv in pvs)
                _pvs.Remove(pv.Id);
            throw;
        }
    }

    /// <summary>Removes unused PVs from the VG; they become orphans.</summary>
    public async Task ReduceAsync(IReadOnlyList<PhysicalVolume> pvs, CancellationToken ct = default)
    {
        ThrowIfView("vg reduce");
        var ids = pvs.Select(p => p.Id).ToHashSet();
        var md = await CommitAsync(md =>
        {
            foreach (var pv in pvs)
            {
                if (!md.Pvs.Any(e => e.Id == pv.Id))
                    throw new StorageException($"{pv.Name} is not in volume group {md.Name}");
                var user = md.Lvs.FirstOrDefault(l => l.Segments.Any(s => s.Areas.Any(a => a.Pv == pv.Id)));
                if (user is not null)
                    throw new StorageException($"{pv.Name} is still used by logical volume {md.Name}/{user.Name}");
            }
            if (ids.Count >= md.Pvs.Count)
                throw new StorageException($"cannot remove the last physical volume of {md.Name}; use vg remove");
            return md with { Pvs = [.. md.Pvs.Where(e => !ids.Contains(e.Id))] };
        }, ct).ConfigureAwait(false);
        foreach (var pv in pvs)
        {
            await pv.WriteMetadataAsync(new PvMetadataDocument(), md.Seqno, ct).ConfigureAwait(false);
            _pvs.Remove(pv.Id);
        }
    }

    /// <summary>Dissolves an empty VG: every member PV becomes an orphan.</summary>
    public async Task RemoveAsync(CancellationToken ct = default)
    {
        ThrowIfView("vg remove");
        var md = Metadata;
        if (md.Lvs.Count > 0)
            throw new StorageException($"volume group {md.Name} still has {md.Lvs.Count} logical volume(s)");
        if (MissingPvs.Any())
            throw new StorageException($"volume group {md.Name} is missing PVs ({string.Join(", ", MissingPvs.Select(p => p.Path))}); refusing to remove it");
        foreach (var pv in _pvs.Values)
            await pv.WriteMetadataAsync(new PvMetadataDocument(), md.Seqno + 1, ct).ConfigureAwait(false);
    }

    /// <summary>Creates an LV of at least <paramref name="bytes"/> bytes (rounded up to whole extents).</summary>
    public async Task<LvEntry> CreateLvAsync(string name, long bytes, LvLayout layout, CancellationToken ct = default)
    {
        ValidateName(name, "logical volume");
        if (bytes <= 0)
            throw new StorageException("a logical volume needs a positive size");
        LvEntry? created = null;
        await CommitAsync(md =>
        {
            if (md.NameTaken(name))
                throw new StorageException($"logical volume {md.Name}/{name} already exists");
            if (MissingPvs.Any())
                throw new StorageException($"volume group {md.Name} is missing PVs ({string.Join(", ", MissingPvs.Select(p => p.Path))}); refusing to allocate");
            if (layout.Type == SegmentType.Striped && (layout.StripeSize < PhysicalVolume.BlockSize || layout.StripeSize % PhysicalVolume.BlockSize != 0
                || md.ExtentSize % layout.StripeSize != 0))
                throw new StorageException($"stripe size {layout.StripeSize} must be a multiple of 4 KiB that divides the extent size {md.ExtentSize}");
            long extents = (bytes + md.ExtentSize - 1) / md.ExtentSize;
            if (layout.Type == SegmentType.Striped)
                extents = (extents + layout.Areas - 1) / layout.Areas * layout.Areas;
            CheckFree(md, layout, extents, name);
            var segments = Allocator.Allocate(md, layout, 0, extents);
            created = new LvEntry { Name = name, Id = Guid.NewGuid(), Segments = segments, ChecksumsOff = !layout.Checksums };
            // The new extents must read as zeros: reset their block tags durably before the metadata
            // that hands them out is committed.
            ResetExtents(md, segments);
            return md with { Lvs = [.. md.Lvs, created] };
        }, ct).ConfigureAwait(false);
        return created!;
    }

    private void ResetExtents(VgMetadata md, IEnumerable<SegmentEntry> segments)
    {
        var touched = new HashSet<PhysicalVolume>();
        foreach (var seg in segments)
        {
            foreach (var a in seg.Areas)
            {
                var pv = _pvs[a.Pv];
                pv.ResetBlocks(a.StartExtent * md.ExtentSize, seg.ExtentsPerArea * md.ExtentSize);
                touched.Add(pv);
            }
        }
        foreach (var pv in touched)
            pv.FlushAsync().AsTask().GetAwaiter().GetResult();
    }

    /// <summary>Removes an LV; its extents become free.</summary>
    public async Task RemoveLvAsync(string name, CancellationToken ct = default)
    {
        if (await RemoveThinOrPoolAsync(name, ct).ConfigureAwait(false))
            return;
        if (Metadata.ThinPools?.FirstOrDefault(p => p.DataLv == FindLv(Metadata, name).Id || p.MetaLv == FindLv(Metadata, name).Id) is { } owner)
            throw new StorageException($"{Name}/{name} belongs to thin pool {owner.Name}; remove the pool instead");
        var id = FindLv(Metadata, name).Id;
        using var quiet = await QuiesceAsync(id, ct).ConfigureAwait(false);
        await CommitAsync(md =>
        {
            var lv = FindLv(md, name);
            return md with { Lvs = [.. md.Lvs.Where(l => l != lv)] };
        }, ct).ConfigureAwait(false);
    }

    /// <summary>Opens an LV as a block device.</summary>
    public LogicalVolume OpenLv(string name)
    {
        var entry = Metadata.FindLv(name) ?? throw new StorageException($"logical volume {Name}/{name} not found");
        if (Metadata.FindStore(entry.Id) is not null)
            throw new StorageException($"{Name}/{name} has snapshots and is written through its snapshot store; open it with OpenDeviceAsync");
        var lv = new LogicalVolume(this, entry.Id);
        lock (_openLvs)
            _openLvs.Add(lv);
        return lv;
    }

    /// <summary>
    /// Opens an LV's own extents for a scrub: also the origin of a snapshot store, and the data
    /// and metadata LVs of a pool (a scrub repairs copies of blocks, never changes what they hold).
    /// </summary>
    public LogicalVolume OpenScrubTarget(string name)
    {
        var entry = Metadata.FindLv(name) ?? throw new StorageException($"logical volume {Name}/{name} not found");
        var lv = new LogicalVolume(this, entry.Id);
        lock (_openLvs)
            _openLvs.Add(lv);
        return lv;
    }

    internal void Closed(LogicalVolume lv)
    {
        lock (_openLvs)
            _openLvs.Remove(lv);
    }

    // Waits until no request is in flight on any opened instance of the LV and holds new ones
    // back until the returned handle is disposed: a change that moves or frees the LV's extents
    // commits in between requests.
    private async Task<Quiesced> QuiesceAsync(Guid lvId, CancellationToken ct)
    {
        List<LogicalVolume> instances;
        lock (_openLvs)
            instances = [.. _openLvs.Where(l => l.Id == lvId)];
        var held = new Quiesced();
        try
        {
            foreach (var lv in instances)
            {
                await lv.IoLock.WaitAsync(ct).ConfigureAwait(false);
                held.Locks.Add(lv.IoLock);
            }
        }
        catch
        {
            held.Dispose();
            throw;
        }
        return held;
    }

    private sealed class Quiesced : IDisposable
    {
        public List<IoGate> Locks { get; } = [];

        public void Dispose()
        {
            foreach (var l in Locks)
                l.Release();
            Locks.Clear();
        }
    }

    private LvEntry FindLv(VgMetadata md, string name) =>
        md.FindLv(name) ?? throw new StorageException($"logical volume {md.Name}/{name} not found");

    /// <summary>
    /// Grows an LV, online, to at least <paramref name="bytes"/>, allocating with the layout of its
    /// last segment; a thin volume grows its virtual size, a thin pool its data LV. Returns the new size in bytes.
    /// </summary>
    public async Task<long> ExtendLvAsync(string name, long bytes, CancellationToken ct = default)
    {
        var current = Metadata;
        if (current.FindThin(name) is { } thin)
        {
            // A thin volume's size is virtual: growing it maps nothing.
            if (bytes <= thin.Size)
                throw new StorageException($"{current.Name}/{name} is already {Sizes.Format(thin.Size)}; extend needs a larger size");
            long size = (bytes + PhysicalVolume.BlockSize - 1) / PhysicalVolume.BlockSize * PhysicalVolume.BlockSize;
            var poolOf = current.ThinPools!.First(p => p.Id == thin.Pool);
            // Mappings a crashed reduce left past the old end must not reappear in the grown space.
            await (await OpenThinPoolAsync(poolOf.Name, ct).ConfigureAwait(false))
                .TruncateDeviceAsync(thin.DeviceId, (thin.Size + poolOf.ChunkSize - 1) / poolOf.ChunkSize, ct).ConfigureAwait(false);
            await CommitAsync(md => md with { Thins = [.. md.Thins!.Select(t => t.Id == thin.Id ? t with { Size = size } : t)] }, ct).ConfigureAwait(false);
            return size;
        }
        if (current.FindPool(name) is { } poolEntry)
        {
            // Growing a pool grows its data LV; the open pool takes in the new chunks.
            var data = current.Lvs.First(l => l.Id == poolEntry.DataLv);
            long grown = await ExtendLvAsync(data.Name, bytes, ct).ConfigureAwait(false);
            await (await OpenThinPoolAsync(name, ct).ConfigureAwait(false)).GrowAsync(ct).ConfigureAwait(false);
            return grown;
        }
        LvEntry? result = null;
        await CommitAsync(md =>
        {
            var lv = FindLv(md, name);
            var last = lv.Segments[^1];
            var layout = new LvLayout(last.Type, last.Areas.Count, last.StripeSize == 0 ? LvLayout.DefaultStripeSize : last.StripeSize);
            long target = (bytes + md.ExtentSize - 1) / md.ExtentSize;
            if (layout.Type == SegmentType.Striped)
                target = lv.Extents + ((target - lv.Extents + layout.Areas - 1) / layout.Areas * layout.Areas);
            if (target <= lv.Extents)
                throw new StorageException($"{md.Name}/{name} is already {Sizes.Format(lv.Extents * md.ExtentSize)}; extend needs a larger size");
            CheckFree(md, layout, target - lv.Extents, name);
            var added = Allocator.Allocate(md, layout, lv.Extents, target - lv.Extents);
            ResetExtents(md, added);
            result = lv with { Segments = [.. lv.Segments, .. added] };
            return md with { Lvs = [.. md.Lvs.Select(l => l.Id == lv.Id ? result : l)] };
        }, ct).ConfigureAwait(false);
        long grownBytes = result!.Extents * Metadata.ExtentSize;
        if (Metadata.FindStore(result.Id) is { } store)
        {
            // The origin of a snapshot store reads its new (zeroed) extents through the base.
            var pool = await OpenThinPoolAsync(store.Name, ct).ConfigureAwait(false);
            await pool.SetBaseLimitAsync(store.OriginDevice, grownBytes / store.ChunkSize, ct).ConfigureAwait(false);
        }
        return grownBytes;
    }

    /// <summary>
    /// Shrinks an LV, online, to <paramref name="bytes"/> (rounded up to whole extents, and for a
    /// striped segment to whole stripes); requests in flight finish first, and later ones past the
    /// new end are refused. Returns the new size in bytes.
    /// </summary>
    public async Task<long> ReduceLvAsync(string name, long bytes, CancellationToken ct = default)
    {
        if (bytes <= 0)
            throw new StorageException("reduce needs a positive size; use lv remove to remove the volume");
        if (Metadata.FindThin(name) is { } thin)
            return await ReduceThinAsync(thin, bytes, ct).ConfigureAwait(false);
        if (Metadata.FindPool(name) is not null)
            throw new StorageException($"{Name}/{name} is a thin pool; pools grow only (shrink its thin volumes instead)");
        var id = FindLv(Metadata, name).Id;
        if (Metadata.FindStore(id) is { } store)
        {
            // Past the new end, the origin's mappings go; snapshots that still read the origin's
            // extents there keep them. The end is where the LV really ends after the reduce (a
            // striped segment keeps whole stripes), not the size asked for.
            var entry = FindLv(Metadata, name);
            long asked = (bytes + Metadata.ExtentSize - 1) / Metadata.ExtentSize;
            if (asked >= entry.Extents)
                throw new StorageException($"{Name}/{name} is {Sizes.Format(entry.Extents * Metadata.ExtentSize)}; reduce needs a smaller size");
            long keep = KeptExtents(entry, asked);
            if (keep < entry.Extents)
            {
                long target = keep * Metadata.ExtentSize / store.ChunkSize;
                var pool = await OpenThinPoolAsync(store.Name, ct).ConfigureAwait(false);
                var holder = (Metadata.Thins ?? []).FirstOrDefault(t => t.Pool == store.Id && pool.BaseLimit(t.DeviceId) > target);
                if (holder is not null)
                    throw new StorageException($"{Name}/{name} cannot shrink below {Sizes.Format(pool.BaseLimit(holder.DeviceId) * store.ChunkSize)} while snapshot {holder.Name} shares its blocks");
                await pool.TruncateDeviceAsync(store.OriginDevice, target, ct).ConfigureAwait(false);
            }
        }
        if (Metadata.ThinPools?.Any(p => p.DataLv == id || p.MetaLv == id) == true)
            throw new StorageException($"{Name}/{name} belongs to a thin pool and cannot shrink");
        using var quiet = await QuiesceAsync(id, ct).ConfigureAwait(false);
        LvEntry? result = null;
        await CommitAsync(md =>
        {
            var lv = FindLv(md, name);
            long target = (bytes + md.ExtentSize - 1) / md.ExtentSize;
            if (target >= lv.Extents)
                throw new StorageException($"{md.Name}/{name} is {Sizes.Format(lv.Extents * md.ExtentSize)}; reduce needs a smaller size");
            result = lv with { Segments = KeptSegments(lv, target) };
            return md with { Lvs = [.. md.Lvs.Select(l => l.Id == lv.Id ? result : l)] };
        }, ct).ConfigureAwait(false);
        return result!.Extents * Metadata.ExtentSize;
    }

    // The segments an LV keeps when reduced to `target` extents: a striped segment keeps whole
    // stripes, so the LV may keep more than asked for.
    private static List<SegmentEntry> KeptSegments(LvEntry lv, long target)
    {
        var kept = new List<SegmentEntry>();
        foreach (var seg in lv.Segments)
        {
            if (seg.StartExtent >= target)
                break;
            long end = Math.Min(seg.StartExtent + seg.Extents, target);
            long length = end - seg.StartExtent;
            if (seg.Type == SegmentType.Striped)
                length = (length + seg.Areas.Count - 1) / seg.Areas.Count * seg.Areas.Count;
            kept.Add(seg with { Extents = length });
        }
        return kept;
    }

    private static long KeptExtents(LvEntry lv, long target) => KeptSegments(lv, target).Sum(s => s.Extents);

    private static void CheckFree(VgMetadata md, LvLayout layout, long extents, string name)
    {
        long copies = layout.Type == SegmentType.Mirror ? layout.Areas : 1;
        long free = Allocator.FreeExtents(md);
        if (extents * copies > free)
            throw new InsufficientSpaceException($"volume group {md.Name} has not enough free space: {name} needs {Sizes.Format(extents * copies * md.ExtentSize)}, {Sizes.Format(free * md.ExtentSize)} is free");
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        StorageTelemetry.Closed(this);
        DisposeThinPools();
        _commitLock.Dispose();
    }
}
