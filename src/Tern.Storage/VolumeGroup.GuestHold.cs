// What a guest disk holds in a cluster VG, beyond its own name: a thin volume is served by its
// pool's data and metadata LVs (the pool's mapping journal lives in the metadata LV), and an LV
// with snapshots is written through its snapshot store (the LV itself, the store's data and its
// mappings). Whoever writes a guest's disk writes all of these, so the coordinator grants and
// fences them together, at the guest's generation, and writes none of them itself while they are
// held: the pool's journal then has one writer, like the VG metadata.
using Tern.Storage.Format;

namespace Tern.Storage;

public sealed partial class VolumeGroup
{
    /// <summary>
    /// The generation every LV this VG (a view) opens writes as, when set: the data, metadata and
    /// base LVs of a thin pool or snapshot store write as <c>WriterId(their id, generation)</c>
    /// too, so the extent servers' fences cover them like the guest's own LV. An LV's own
    /// <see cref="LogicalVolume.Writer"/> wins when set.
    /// </summary>
    public long? WriterGeneration { get; set; }

    /// <summary>
    /// Called before a thin pool (or snapshot store) is opened here, with the pool's id: a reason
    /// to refuse it (a guest on some node holds it and writes its mappings), or null.
    /// </summary>
    public Func<Guid, string?>? ThinPoolGuard { get; set; }

    /// <summary>The reason <see cref="ThinPoolGuard"/> gives for a pool, or null when it may be opened here.</summary>
    public string? ThinPoolHeld(Guid poolId) => ThinPoolGuard?.Invoke(poolId);

    /// <summary>
    /// Drops this VG's run-time state of a pool (its mappings as read when it was opened), so the
    /// next use reads them again from the metadata LV: another node wrote the pool meanwhile.
    /// </summary>
    public async Task ForgetThinPoolAsync(Guid poolId, CancellationToken ct = default)
    {
        await _thinLock.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            if (_thinPools.Remove(poolId, out var pool))
                pool.Dispose();
        }
        finally
        {
            _thinLock.Release();
        }
    }

    /// <summary>
    /// The LVs whose extents hold the blocks of <paramref name="name"/> (an LV, a thin volume or a
    /// snapshot) and its mappings: the LV itself; with snapshots, also its store's data and
    /// metadata LVs; for a thin volume or snapshot, its pool's data and metadata LVs (and the
    /// origin LV of a snapshot store). Null when there is no such volume; a thin pool itself is
    /// no volume.
    /// </summary>
    public static IReadOnlyList<Guid>? BackingLvs(VgMetadata md, string name)
    {
        ArgumentNullException.ThrowIfNull(md);
        if (md.FindThin(name) is { } thin)
        {
            var pool = md.ThinPools!.First(p => p.Id == thin.Pool);
            return pool.Origin is { } origin ? [origin, pool.DataLv, pool.MetaLv] : [pool.DataLv, pool.MetaLv];
        }
        if (md.FindLv(name) is not { } lv)
            return null;
        return md.FindStore(lv.Id) is { } store ? [lv.Id, store.DataLv, store.MetaLv] : [lv.Id];
    }

    /// <summary>The id of the volume <paramref name="name"/> (an LV, a thin volume or a snapshot), or null.</summary>
    public static Guid? VolumeId(VgMetadata md, string name)
    {
        ArgumentNullException.ThrowIfNull(md);
        return md.FindThin(name)?.Id ?? md.FindLv(name)?.Id;
    }

    /// <summary>The name of the volume (LV, thin volume or snapshot) with id <paramref name="id"/>, or null.</summary>
    public static string? VolumeName(VgMetadata md, Guid id)
    {
        ArgumentNullException.ThrowIfNull(md);
        return md.Lvs.FirstOrDefault(l => l.Id == id)?.Name ?? md.Thins?.FirstOrDefault(t => t.Id == id)?.Name;
    }
}
