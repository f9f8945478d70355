// A snapshot store dissolves when its origin's last snapshot is removed: the blocks the origin
// had remapped into the store are copied back into the origin's own extents, and one metadata
// commit drops the store and its two LVs, so the origin is a plain LV again (its own layout, no
// mapping on its I/O path, its store's extents free). The copy changes no mapping, so a crash
// before the commit leaves the store whole, with the origin reading through it as before; the
// next removal of a snapshot, or the next open of the origin, dissolves it again from the start.
// An origin device opened before (a guest's disk) carries on, through the plain LV.
using Tern.Storage.Format;

namespace Tern.Storage;

public sealed partial class VolumeGroup
{
    // Whether a snapshot store has no snapshot (no thin volume of its own) left.
    private static bool Unused(VgMetadata md, ThinPoolEntry store) =>
        store.Origin is not null && !(md.Thins ?? []).Any(t => t.Pool == store.Id);

    /// <summary>
    /// Dissolves the snapshot store of <paramref name="originName"/> if it has no snapshots left
    /// (for instance after a crash interrupted the removal of the last one). Returns whether it did.
    /// </summary>
    public async Task<bool> DissolveStoreAsync(string originName, CancellationToken ct = default)
    {
        var md = Metadata;
        var lv = FindLv(md, originName);
        if (md.FindStore(lv.Id) is not { } store || !Unused(md, store))
            return false;
        await DissolveStoreAsync(store, ct).ConfigureAwait(false);
        return true;
    }

    private async Task DissolveStoreAsync(ThinPoolEntry store, CancellationToken ct)
    {
        var pool = await OpenThinPoolAsync(store.Name, ct).ConfigureAwait(false);
        await pool.DissolveAsync(store.OriginDevice, () => CommitAsync(m =>
        {
            if (!Unused(m, store))
                throw new StorageException($"snapshot store {m.Name}/{store.Name} has snapshots again; it stays");
            return m with
            {
                ThinPools = [.. (m.ThinPools ?? []).Where(p => p.Id != store.Id)],
                Lvs = [.. m.Lvs.Where(l => l.Id != store.DataLv && l.Id != store.MetaLv)],
            };
        }, ct), ct).ConfigureAwait(false);
        await _thinLock.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            if (_thinPools.Remove(store.Id, out var open))
                open.Dispose();
        }
        finally
        {
            _thinLock.Release();
        }
    }
}
