// Thin provisioning in the VG: a thin pool is a pair of hidden-purpose LVs (chunks, mappings)
// plus a ThinPoolEntry; thin volumes and snapshots are ThinEntry records whose chunks the pool
// maps. Pool mappings are committed before the VG metadata that names a new device, so a crash
// between the two leaves at most a device no thin volume names, which the next open drops.
using Tern.Storage.Format;

namespace Tern.Storage;

public sealed partial class VolumeGroup
{
    private readonly Dictionary<Guid, ThinPool> _thinPools = [];
    private readonly SemaphoreSlim _thinLock = new(1, 1);

    /// <summary>Creates a thin pool of <paramref name="bytes"/> of chunk space.</summary>
    public async Task<ThinPoolEntry> CreateThinPoolAsync(string name, long bytes, int chunkSize = ThinPool.DefaultChunkSize, CancellationToken ct = default)
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
            long dataExtents = (bytes + md.ExtentSize - 1) / md.ExtentSize;
            long chunks = dataExtents * md.ExtentSize / chunkSize;
            // Room for two copies of the mappings when every chunk is mapped by four devices.
            long metaBytes = (2L * 4096) + (2 * ((chunks * 16 * 4) + (64 << 10)));
            long metaExtents = (metaBytes + md.ExtentSize - 1) / md.ExtentSize;
            CheckFree(md, LvLayout.Linear, dataExtents + metaExtents, name);
            var dataSegs = Allocator.Allocate(md, LvLayout.Linear, 0, dataExtents);
            var data = new LvEntry { Name = name + "_tdata", Id = Guid.NewGuid(), Segments = dataSegs };
            var withData = md with { Lvs = [.. md.Lvs, data] };
            var metaSegs = Allocator.Allocate(withData, LvLayout.Linear, 0, metaExtents);
            var meta = new LvEntry { Name = name + "_tmeta", Id = Guid.NewGuid(), Segments = metaSegs };
            ResetExtents(md, [.. dataSegs, .. metaSegs]); // an unwritten metadata LV reads as an empty pool
            created = new ThinPoolEntry { Name = name, Id = Guid.NewGuid(), DataLv = data.Id, MetaLv = meta.Id, ChunkSize = chunkSize };
            return withData with { Lvs = [.. withData.Lvs, meta], ThinPools = [.. md.ThinPools ?? [], created] };
        }, ct).ConfigureAwait(false);
        return created!;
    }

    /// <summary>Opens (once) the run-time state of a pool, dropping devices no thin volume names.</summary>
    public async Task<ThinPool> OpenThinPoolAsync(string name, CancellationToken ct = default)
    {
        var entry = Metadata.FindPool(name) ?? throw new StorageException($"thin pool {Name}/{name} not found");
        await _thinLock.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            if (_thinPools.TryGetValue(entry.Id, out var open))
                return open;
            var md = Metadata;
            var data = new LogicalVolume(this, entry.DataLv);
            var meta = new LogicalVolume(this, entry.MetaLv);
            lock (_openLvs)
            {
                _openLvs.Add(data);
                _openLvs.Add(meta);
            }
            var pool = await ThinPool.OpenAsync($"{Name}/{name}", entry.ChunkSize, data, meta, ct).ConfigureAwait(false);
            var named = (md.Thins ?? []).Where(t => t.Pool == entry.Id).Select(t => t.DeviceId).ToHashSet();
            foreach (int orphan in pool.Devices.Where(d => !named.Contains(d)).ToList())
                await pool.DeleteDeviceAsync(orphan, ct).ConfigureAwait(false);
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
        AddThinAsync(name, poolName, bytes, origin: null, ct);

    /// <summary>Creates a writable snapshot of a thin volume: it shares every chunk until either side writes.</summary>
    public async Task<ThinEntry> SnapshotAsync(string originName, string name, CancellationToken ct = default)
    {
        var md = Metadata;
        if (md.FindThin(originName) is not { } origin)
        {
            throw md.FindLv(originName) is not null
                ? new StorageException($"{md.Name}/{originName} is not a thin volume; snapshots share chunks of a thin pool, so create the volume with --type thin")
                : new StorageException($"logical volume {md.Name}/{originName} not found");
        }
        var pool = md.ThinPools!.First(p => p.Id == origin.Pool);
        return await AddThinAsync(name, pool.Name, origin.Size, origin, ct).ConfigureAwait(false);
    }

    private async Task<ThinEntry> AddThinAsync(string name, string poolName, long bytes, ThinEntry? origin, CancellationToken ct)
    {
        ValidateName(name, "logical volume");
        if (bytes <= 0)
            throw new StorageException("a thin volume needs a positive size");
        var md = Metadata;
        var poolEntry = md.FindPool(poolName) ?? throw new StorageException($"thin pool {md.Name}/{poolName} not found");
        if (md.NameTaken(name))
            throw new StorageException($"logical volume {md.Name}/{name} already exists");
        var pool = await OpenThinPoolAsync(poolName, ct).ConfigureAwait(false);
        int id = Math.Max((md.Thins ?? []).Select(t => t.DeviceId).DefaultIfEmpty(0).Max(), pool.Devices.DefaultIfEmpty(0).Max()) + 1;
        long size = (bytes + PhysicalVolume.BlockSize - 1) / PhysicalVolume.BlockSize * PhysicalVolume.BlockSize;
        await pool.CreateDeviceAsync(id, origin?.DeviceId, ct).ConfigureAwait(false);
        var entry = new ThinEntry { Name = name, Id = Guid.NewGuid(), Pool = poolEntry.Id, DeviceId = id, Size = size, Origin = origin?.Name };
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
            return true;
        }
        if (md.FindPool(name) is { } entry)
        {
            var users = (md.Thins ?? []).Where(t => t.Pool == entry.Id).Select(t => t.Name).ToList();
            if (users.Count > 0)
                throw new StorageException($"thin pool {md.Name}/{name} still holds {users.Count} thin volume(s): {string.Join(", ", users)}");
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
            return true;
        }
        return false;
    }

    /// <summary>Opens an LV or a thin volume by name as a block device; dispose it when done.</summary>
    public async Task<IBlockDevice> OpenDeviceAsync(string name, CancellationToken ct = default)
    {
        var md = Metadata;
        if (md.FindThin(name) is { } thin)
        {
            var pool = await OpenThinPoolAsync(md.ThinPools!.First(p => p.Id == thin.Pool).Name, ct).ConfigureAwait(false);
            return new ThinVolume(pool, thin.DeviceId, $"{Name}/{name}", thin.Size);
        }
        if (md.FindPool(name) is not null)
            throw new StorageException($"{Name}/{name} is a thin pool, not a volume; create thin volumes in it with --type thin --thin-pool {name}");
        return OpenLv(name);
    }

    private void DisposeThinPools()
    {
        foreach (var pool in _thinPools.Values)
            pool.Dispose();
        _thinPools.Clear();
        _thinLock.Dispose();
    }
}
