// `lv convert --mirrors N` of an LV, and of its snapshot store with it: the store keeps the
// origin's layout (data LV, and mapping LV, mirrored like the origin), so the blocks the origin
// and its snapshots remapped into the store have as many copies as the origin's own blocks.
using Tern.Storage.Format;

namespace Tern.Storage;

public sealed partial class VolumeGroup
{
    /// <summary>
    /// Changes the number of copies of a linear or mirrored LV to <paramref name="copies"/>
    /// (1 = linear), and those of its snapshot store's data and mapping LVs with it. New legs are
    /// synchronised before they serve reads; dropping legs is immediate. Running it again after
    /// an interruption finishes the synchronisation (of the store's LVs too).
    /// </summary>
    public async Task<LvEntry> ConvertMirrorsAsync(string name, int copies, IProgress<CopyProgress>? progress = null, CancellationToken ct = default)
    {
        var md = Metadata;
        var lv = FindLv(md, name);
        var parts = md.FindStore(lv.Id) is { } store
            ? md.Lvs.Where(l => l.Id == store.DataLv || l.Id == store.MetaLv).ToList()
            : [];
        if (copies > 1 && parts.Count > 0 && !lv.Segments.Any(s => s.Type == SegmentType.Striped))
        {
            // Refuse up front, changing nothing, when the legs for the origin and its store do not all fit.
            long needed = new[] { lv }.Concat(parts).Sum(l => l.Segments.Sum(s => Math.Max(0, copies - s.Areas.Count) * s.Extents));
            long free = Allocator.FreeExtents(md);
            if (needed > free)
                throw new InsufficientSpaceException($"volume group {md.Name} has not enough free space: {copies} copies of {name} and its snapshot store need {Sizes.Format(needed * md.ExtentSize)} more, {Sizes.Format(free * md.ExtentSize)} is free");
        }
        var steps = progress is null ? null : new Steps(progress);
        var entry = await ConvertOneAsync(name, copies, steps, ct).ConfigureAwait(false);
        foreach (var part in parts)
        {
            steps?.Next();
            if (Metadata.Lvs.FirstOrDefault(l => l.Id == part.Id) is { } current)
                await ConvertOneAsync(current.Name, copies, steps, ct).ConfigureAwait(false);
        }
        return FindLv(Metadata, entry.Name);
    }

    // The progress of the steps of a convert as one copy: each step counts after the ones before.
    private sealed class Steps(IProgress<CopyProgress> inner) : IProgress<CopyProgress>
    {
        private long _before, _total;

        public void Next()
        {
            _before += _total;
            _total = 0;
        }

        public void Report(CopyProgress value)
        {
            _total = value.Total;
            inner.Report(new CopyProgress(_before + value.Done, _before + value.Total));
        }
    }
}
