// Thin provisioning and snapshots in the VG. A thin pool is a pair of LVs (chunks, mappings)
// plus a ThinPoolEntry; thin volumes and snapshots are ThinEntry records whose chunks the pool
// maps. Pool mappings are committed before the VG metadata that names a new device, so a crash
// between the two leaves at most a device no thin volume names, which the next open drops.
//
// A linear, striped or mirrored LV is snapshotted through a snapshot store: a thin pool
// (LV_snap) whose base is the LV itself, with 4 KiB chunks and its data (and, for a mirror, its
// mappings) laid out like the LV. From the first snapshot on, the LV is written through the
// store as its device 1: a block shared with snapshots is remapped into the store on its first
// write (a whole 4 KiB block copies nothing), so the LV and all its snapshots share one mapping
// and a write costs the same however many snapshots exist. The store dissolves when the LV's
// last snapshot is removed (VolumeGroup.Dissolve.cs).
using Tern.Storage.Format;

namespace Tern.Storage;

public sealed partial class VolumeGroup
{
    /// <summary>Chunk size of a snapshot store: one block, so a whole-block write to a shared block is a remap.</summary>
    public const int StoreChunkSize = PhysicalVolume.BlockSize;

    private const int StoreOriginDevice = 1;

    private readonly Dictionary<Guid, ThinPool> _thinPools = [];
    private readonly SemaphoreSlim _thinLock = new(1, 1);

    /// <summary>Creates a thin pool of <paramref name="bytes"/> of chunk space.</summary>
    public Task<ThinPoolEntry> CreateThinPoolAsync(string name, long bytes, int chunkSize = ThinPool.DefaultChunkSize, CancellationToken ct = default) =>
        CreatePoolAsync(name, bytes, chunkSize, LvLayout.Linear, origin: null, ct);

    private async Task<ThinPoolEntry> CreatePoolAsync(string name, long bytes, int chunkSize, LvLayout layout, Guid? origin, CancellationToken ct)
    {
        ValidateName(name, "thin pool");
        if (chunkSize < PhysicalVolume.BlockSize || chunkSize % PhysicalVolume.BlockSize != 0 || (chunkSize & (chunkSize - 1)) != 0)
            throw new StorageException($"chunk size {chunkSize} is not a power of two of at least 4 KiB");
        if (bytes <= 0)
            throw new StorageException("a thin pool needs a positive size");
        ThinPoolEntry? created = null;
        await CommitAsync(md =>
        {
            if (md.NameTaken(name) || md.NameTaken(name + "_tdata") || md.NameTaken(name + "_tmeta"))
                throw new StorageException($"logical volume {md.Name}/{name} (or its {name}_tdata/{name}_tmeta) already exists");
            if (chunkSize > md.ExtentSize)
                throw new StorageException($"chunk size {chunkSize} is larger than the extent size {md.ExtentSize}");
            if (MissingPvs.Any())
                throw new StorageException($"volume group {md.Name} is missing PVs ({string.Join(", ", MissingPvs.Select(p => p.Path))}); refusing to allocate");
            long dataExtents = (bytes + md.ExtentSize - 1) / md.ExtentSize;
            if (layout.Type == SegmentType.Striped)
                dataExtents = (dataExtents + layout.Areas - 1) / layout.Areas * layout.Areas;
            long chunks = dataExtents * md.ExtentSize / chunkSize;
            long metaExtents = (ThinPool.MetadataBytes(chunks) + md.ExtentSize - 1) / md.ExtentSize;
            // The mappings are as precious as the data: a mirrored store keeps them mirrored too.
            var metaLayout = layout.Type == SegmentType.Mirror ? layout : LvLayout.Linear;
            long dataCopies = layout.Type == SegmentType.Mirror ? layout.Areas : 1, metaCopies = metaLayout.Type == SegmentType.Mirror ? metaLayout.Areas : 1;
            long needed = (dataExtents * dataCopies) + (metaExtents * metaCopies), free = Allocator.FreeExtents(md);
            if (needed > free)
                throw new InsufficientSpaceException($"volume group {md.Name} has not enough free space: {name} needs {Sizes.Format(needed * md.ExtentSize)}, {Sizes.Format(free * md.ExtentSize)} is free");
            var dataSegs = Allocator.Allocate(md, layout, 0, dataExtents);
            var data = new LvEntry { Name = name + "_tdata", Id = Guid.NewGuid(), Segments = dataSegs, ChecksumsOff = !layout.Checksums };
            var withData = md with { Lvs = [.. md.Lvs, data] };
            var metaSegs = Allocator.Allocate(withData, metaLayout, 0, metaExtents);
            var meta = new LvEntry { Name = name + "_tmeta", Id = Guid.NewGuid(), Segments = metaSegs };
            ResetExtents(md, [.. dataSegs, .. metaSegs]); // an unwritten metadata LV reads as an empty pool
            created = new ThinPoolEntry
            {
                Name = name,
                Id = Guid.NewGuid(),
                DataLv = data.Id,
                MetaLv = meta.Id,
                ChunkSize = chunkSize,
                Origin = origin,
                OriginDevice = origin is null ? 0 : StoreOriginDevice,
            };
            return withData with { Lvs = [.. withData.Lvs, meta], ThinPools = [.. md.ThinPools ?? [], created] };
        }, ct).ConfigureAwait(false);
        return created!;
    }

    /// <summary>Opens (once) the run-time state of a pool, dropping devices no thin volume names.</summary>
    public async Task<ThinPool> OpenThinPoolAsync(string name, CancellationToken ct = default)
    {
        var entry = Metadata.FindPool(name) ?? throw new StorageException($"thin pool {Name}/{name} not found");
        if (ThinPoolHeld(entry.Id) is { } held)
            throw new StorageException(held);
        await _thinLock.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            if (_thinPools.TryGetValue(entry.Id, out var open))
                return open;
            var md = Metadata;
            var data = new LogicalVolume(this, entry.DataLv);
            var meta = new LogicalVolume(this, entry.MetaLv);
            var baseLv = entry.Origin is { } origin ? new LogicalVolume(this, origin) { IsStoreBase = true } : null;
            lock (_openLvs)
            {
                _openLvs.Add(data);
                _openLvs.Add(meta);
                if (baseLv is not null)
                    _openLvs.Add(baseLv);
            }
            var pool = await ThinPool.OpenAsync($"{Name}/{name}", entry.ChunkSize, data, meta, baseLv, ct).ConfigureAwait(false);
            var named = (md.Thins ?? []).Where(t => t.Pool == entry.Id).Select(t => t.DeviceId).ToHashSet();
            if (baseLv is not null)
                named.Add(entry.OriginDevice);
            foreach (int orphan in pool.Devices.Where(d => !named.Contains(d)).ToList())
                await pool.DeleteDeviceAsync(orphan, ct).ConfigureAwait(false);
            if (baseLv is not null && !pool.Devices.Contains(entry.OriginDevice))
                await pool.CreateDeviceAsync(entry.OriginDevice, origin: null, baseLv.Length / entry.ChunkSize, ct).ConfigureAwait(false);
            _thinPools[entry.Id] = pool;
            return pool;
        }
        finally
        {
            _thinLock.Release();
        }
    }

    /// <summary>Creates a thin volume of virtual size <paramref name="bytes"/> in a pool.</summary>
    public Task<ThinEntry> CreateThinAsync(string name, string poolName, long bytes, CancellationToken ct = default) =>
        AddThinAsync(name, poolName, bytes, originDevice: null, originName: null, ct);

    /// <summary>Creates a writable snapshot of a thin volume: it shares every chunk until either side writes.</summary>
    public Task<ThinEntry> SnapshotAsync(string originName, string name, CancellationToken ct = default) =>
        SnapshotAsync(originName, name, storeBytes: null, ct);

    /// <summary>
    /// Creates a writable snapshot of a thin volume, or of a linear, striped or mirrored LV (whose
    /// first snapshot gives it a snapshot store of <paramref name="storeBytes"/>, by default the
    /// LV's size, laid out like the LV). The snapshot shares every block until either side writes.
    /// </summary>
    public async Task<ThinEntry> SnapshotAsync(string originName, string name, long? storeBytes, CancellationToken ct = default)
    {
        ValidateName(name, "logical volume");
        var md = Metadata;
        if (md.NameTaken(name))
            throw new StorageException($"logical volume {md.Name}/{name} already exists");
        if (md.FindThin(originName) is { } origin)
        {
            var pool = md.ThinPools!.First(p => p.Id == origin.Pool);
            return await AddThinAsync(name, pool.Name, origin.Size, origin.DeviceId, origin.Name, ct).ConfigureAwait(false);
        }
        if (md.FindPool(originName) is not null)
            throw new StorageException($"{md.Name}/{originName} is a thin pool; snapshot its thin volumes instead");
        var lv = md.FindLv(originName) ?? throw new StorageException($"logical volume {md.Name}/{originName} not found");
        if (md.ThinPools?.FirstOrDefault(p => p.DataLv == lv.Id || p.MetaLv == lv.Id) is { } owner)
            throw new StorageException($"{md.Name}/{originName} belongs to thin pool {owner.Name} and cannot be snapshotted");
        var store = md.FindStore(lv.Id);
        if (store is null)
        {
            var first = lv.Segments[0];
            var layout = new LvLayout(first.Type, first.Type == SegmentType.Linear ? 1 : first.Areas.Count,
                first.StripeSize == 0 ? LvLayout.DefaultStripeSize : first.StripeSize)
            { Checksums = !lv.ChecksumsOff };
            long bytes = storeBytes ?? (lv.Extents * md.ExtentSize);
            store = await CreatePoolAsync(originName + "_snap", bytes, StoreChunkSize, layout, lv.Id, ct).ConfigureAwait(false);
        }
        // From here on the LV is written through the store's origin device (OpenDeviceAsync).
        return await AddThinAsync(name, store.Name, lv.Extents * md.ExtentSize, store.OriginDevice, originName, ct).ConfigureAwait(false);
    }

    private async Task<ThinEntry> AddThinAsync(string name, string poolName, long bytes, int? originDevice, string? originName, CancellationToken ct)
    {
        ValidateName(name, "logical volume");
        if (bytes <= 0)
            throw new StorageException("a thin volume needs a positive size");
        var md = Metadata;
        var poolEntry = md.FindPool(poolName) ?? throw new StorageException($"thin pool {md.Name}/{poolName} not found");
        if (poolEntry.Origin is not null && originDevice is null)
            throw new StorageException($"{md.Name}/{poolName} is the snapshot store of {md.Lvs.FirstOrDefault(l => l.Id == poolEntry.Origin)?.Name}; create thin volumes in a thin pool");
        if (md.NameTaken(name))
            throw new StorageException($"logical volume {md.Name}/{name} already exists");
        var pool = await OpenThinPoolAsync(poolName, ct).ConfigureAwait(false);
        int id = Math.Max(Math.Max((md.Thins ?? []).Select(t => t.DeviceId).DefaultIfEmpty(0).Max(), pool.Devices.DefaultIfEmpty(0).Max()), poolEntry.OriginDevice) + 1;
        long size = (bytes + PhysicalVolume.BlockSize - 1) / PhysicalVolume.BlockSize * PhysicalVolume.BlockSize;
        await pool.CreateDeviceAsync(id, originDevice, 0, ct).ConfigureAwait(false);
        var entry = new ThinEntry { Name = name, Id = Guid.NewGuid(), Pool = poolEntry.Id, DeviceId = id, Size = size, Origin = originName };
        await CommitAsync(m =>
        {
            if (m.NameTaken(name))
                throw new StorageException($"logical volume {m.Name}/{name} already exists");
            return m with { Thins = [.. m.Thins ?? [], entry] };
        }, ct).ConfigureAwait(false);
        return entry;
    }

    private async Task<bool> RemoveThinOrPoolAsync(string name, CancellationToken ct)
    {
        var md = Metadata;
        if (md.FindThin(name) is { } thin)
        {
            var poolEntry = md.ThinPools!.First(p => p.Id == thin.Pool);
            await CommitAsync(m => m with { Thins = [.. (m.Thins ?? []).Where(t => t.Id != thin.Id)] }, ct).ConfigureAwait(false);
            var pool = await OpenThinPoolAsync(poolEntry.Name, ct).ConfigureAwait(false);
            await pool.DeleteDeviceAsync(thin.DeviceId, ct).ConfigureAwait(false);
            if (Unused(Metadata, poolEntry))
                await DissolveStoreAsync(poolEntry, ct).ConfigureAwait(false); // that was the origin's last snapshot
            return true;
        }
        if (md.FindPool(name) is { } entry)
        {
            if (entry.Origin is { } origin)
                throw new StorageException($"{md.Name}/{name} is the snapshot store of {md.Lvs.FirstOrDefault(l => l.Id == origin)?.Name}; it is removed with that volume");
            await RemovePoolAsync(entry, ct).ConfigureAwait(false);
            return true;
        }
        if (md.FindLv(name) is { } lv && md.FindStore(lv.Id) is { } store)
        {
            await RemovePoolAsync(store, ct).ConfigureAwait(false);
            return false; // the LV itself is removed by the caller
        }
        return false;
    }

    private async Task RemovePoolAsync(ThinPoolEntry entry, CancellationToken ct)
    {
        var md = Metadata;
        var users = (md.Thins ?? []).Where(t => t.Pool == entry.Id).Select(t => t.Name).ToList();
        if (users.Count > 0)
        {
            throw new StorageException(entry.Origin is { } origin
                ? $"{md.Name}/{md.Lvs.FirstOrDefault(l => l.Id == origin)?.Name} has {users.Count} snapshot(s): {string.Join(", ", users)}; remove them first"
                : $"thin pool {md.Name}/{entry.Name} still holds {users.Count} thin volume(s): {string.Join(", ", users)}");
        }
        await _thinLock.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            if (_thinPools.Remove(entry.Id, out var pool))
                pool.Dispose();
        }
        finally
        {
            _thinLock.Release();
        }
        await CommitAsync(m => m with
        {
            ThinPools = [.. (m.ThinPools ?? []).Where(p => p.Id != entry.Id)],
            Lvs = [.. m.Lvs.Where(l => l.Id != entry.DataLv && l.Id != entry.MetaLv)],
        }, ct).ConfigureAwait(false);
    }

    /// <summary>Opens an LV, a thin volume or a snapshot by name as a block device; dispose it when done.</summary>
    public async Task<IBlockDevice> OpenDeviceAsync(string name, CancellationToken ct = default)
    {
        var md = Metadata;
        if (md.FindThin(name) is { } thin)
        {
            var pool = await OpenThinPoolAsync(md.ThinPools!.First(p => p.Id == thin.Pool).Name, ct).ConfigureAwait(false);
            var id = thin.Id;
            return new ThinVolume(pool, thin.DeviceId, $"{Name}/{name}", CachedLength(m => m.Thins?.FirstOrDefault(t => t.Id == id)?.Size ?? 0));
        }
        if (md.FindPool(name) is not null)
            throw new StorageException($"{Name}/{name} is a thin pool, not a volume; create thin volumes in it with --type thin --thin-pool {name}");
        if (md.FindLv(name) is { } lv && md.FindStore(lv.Id) is { } store)
        {
            if (Unused(md, store))
            {
                // The removal of its last snapshot was interrupted: finish it first.
                await DissolveStoreAsync(store, ct).ConfigureAwait(false);
                return OpenLv(name);
            }
            var pool = await OpenThinPoolAsync(store.Name, ct).ConfigureAwait(false);
            var id = lv.Id;
            return new ThinVolume(pool, store.OriginDevice, $"{Name}/{name}", CachedLength(m => (m.Lvs.FirstOrDefault(l => l.Id == id)?.Extents ?? 0) * m.ExtentSize))
            {
                Reopen = () => OpenLv(name),
            };
        }
        return OpenLv(name);
    }

    private sealed record LengthOf(VgMetadata Metadata, long Length);

    // A device's length, computed once per metadata version rather than on every request.
    private Func<long> CachedLength(Func<VgMetadata, long> compute)
    {
        LengthOf? cache = null;
        return () =>
        {
            var md = Metadata;
            var seen = Volatile.Read(ref cache);
            if (seen is null || !ReferenceEquals(seen.Metadata, md))
                Volatile.Write(ref cache, seen = new LengthOf(md, compute(md)));
            return seen.Length;
        };
    }

    // Shrinks a thin volume or snapshot to whole chunks, freeing the pool chunks past its new end.
    private async Task<long> ReduceThinAsync(ThinEntry thin, long bytes, CancellationToken ct)
    {
        var md = Metadata;
        var poolEntry = md.ThinPools!.First(p => p.Id == thin.Pool);
        long chunk = poolEntry.ChunkSize;
        long size = (bytes + chunk - 1) / chunk * chunk;
        if (size >= thin.Size)
            throw new StorageException($"{md.Name}/{thin.Name} is {Sizes.Format(thin.Size)}; reduce needs a smaller size (thin volumes shrink in whole chunks of {Sizes.Format(chunk)})");
        // The size goes first, so no request past the new end is taken while the mappings go; a
        // crash in between leaves mappings past the end, which are dropped before the volume grows.
        await CommitAsync(m => m with { Thins = [.. m.Thins!.Select(t => t.Id == thin.Id ? t with { Size = size } : t)] }, ct).ConfigureAwait(false);
        var pool = await OpenThinPoolAsync(poolEntry.Name, ct).ConfigureAwait(false);
        await pool.TruncateDeviceAsync(thin.DeviceId, size / chunk, ct).ConfigureAwait(false);
        return size;
    }

    private void DisposeThinPools()
    {
        foreach (var pool in _thinPools.Values)
            pool.Dispose();
        _thinPools.Clear();
        _thinLock.Dispose();
    }
}
