// A thin pool at run time: the chunk mappings of every thin volume of the pool, their reference
// counts, and the chunk allocator. Snapshots share chunks with their origin (one mapping per
// device, chunks counted by reference), so a write costs the same however many snapshots exist:
// a shared chunk is copied once, into a chunk of the writer's own.
//
// The mappings are committed to the metadata LV on each flush: the whole table is written into
// the half of the LV not holding the current copy, flushed, then a superblock with the next
// sequence number (CRC32C-checked) is written into the slot after the current one and flushed,
// so a crash leaves the previous or the new table, never a mix. Chunks given up in a transaction
// are reused only after its commit, and a chunk that lost a sharer in the transaction is not
// overwritten in place before the commit, so the committed table never points at data written
// for another device.
using System.Buffers.Binary;
using Tern.Storage.Format;

namespace Tern.Storage;

/// <summary>Thrown when a write to a thin volume needs a chunk and the pool has none left; nothing was written.</summary>
public sealed class ThinPoolFullException : IOException
{
    /// <summary>Creates the error with its user-facing message.</summary>
    public ThinPoolFullException(string message) : base(message) { }

    /// <summary>Creates the error with no message.</summary>
    public ThinPoolFullException() { }

    /// <summary>Creates the error with its user-facing message and cause.</summary>
    public ThinPoolFullException(string message, Exception inner) : base(message, inner) { }
}

/// <summary>An opened thin pool.</summary>
public sealed class ThinPool : IDisposable
{
    /// <summary>Default chunk size: 64 KiB, as dm-thin's default.</summary>
    public const int DefaultChunkSize = 64 * 1024;

    private const int SuperSize = 4096;
    private const int HalvesOffset = 2 * SuperSize;
    private static ReadOnlySpan<byte> Magic => "TERN-TP1"u8;

    private readonly LogicalVolume _data;
    private readonly LogicalVolume _meta;
    private readonly SemaphoreSlim _lock = new(1, 1);
    private readonly Dictionary<int, Dictionary<long, long>> _maps = [];
    private int[] _refs;
    private readonly HashSet<long> _pendingFree = [];
    private readonly HashSet<long> _lostSharer = [];
    private readonly HashSet<long> _fresh = [];
    private long _seqno;
    private int _half;
    private long _free;
    private long _cursor;
    private bool _dirty;

    private ThinPool(string name, int chunkSize, LogicalVolume data, LogicalVolume meta)
    {
        Name = name;
        ChunkSize = chunkSize;
        _data = data;
        _meta = meta;
        _refs = new int[data.Length / chunkSize];
        _free = _refs.Length;
    }

    /// <summary>VG/pool name, for messages.</summary>
    public string Name { get; }

    /// <summary>Chunk size in bytes.</summary>
    public int ChunkSize { get; }

    /// <summary>Chunks in the pool.</summary>
    public long Chunks => _refs.Length;

    /// <summary>Chunks not in use.</summary>
    public long FreeChunks => Interlocked.Read(ref _free);

    /// <summary>Devices with a mapping in the pool.</summary>
    public IReadOnlyCollection<int> Devices => _maps.Keys;

    /// <summary>Chunks mapped by one device.</summary>
    public long MappedChunks(int device) => _maps.TryGetValue(device, out var m) ? m.Count : 0;

    /// <summary>Opens a pool over its data and metadata LVs, loading the newest committed mappings.</summary>
    public static async Task<ThinPool> OpenAsync(string name, int chunkSize, LogicalVolume data, LogicalVolume meta, CancellationToken ct = default)
    {
        if (chunkSize < PhysicalVolume.BlockSize || chunkSize % PhysicalVolume.BlockSize != 0)
            throw new StorageException($"thin-pool chunk size {chunkSize} is not a multiple of 4 KiB");
        var pool = new ThinPool(name, chunkSize, data, meta);
        await pool.LoadAsync(ct).ConfigureAwait(false);
        return pool;
    }

    private long HalfSize => (_meta.Length - HalvesOffset) / 2 / PhysicalVolume.BlockSize * PhysicalVolume.BlockSize;

    private async Task LoadAsync(CancellationToken ct)
    {
        var super = new byte[SuperSize];
        (long Seqno, int Half, int Length, uint Crc)? best = null;
        for (int slot = 0; slot < 2; slot++)
        {
            await _meta.ReadAsync(slot * SuperSize, super, ct).ConfigureAwait(false);
            if (!super.AsSpan(0, 8).SequenceEqual(Magic) || BinaryPrimitives.ReadUInt32LittleEndian(super.AsSpan(28)) != Checksums.Crc32C(super.AsSpan(0, 28)))
                continue;
            long seqno = BinaryPrimitives.ReadInt64LittleEndian(super.AsSpan(8));
            int half = BinaryPrimitives.ReadInt32LittleEndian(super.AsSpan(16));
            int length = BinaryPrimitives.ReadInt32LittleEndian(super.AsSpan(20));
            uint crc = BinaryPrimitives.ReadUInt32LittleEndian(super.AsSpan(24));
            if (half is not (0 or 1) || length < 4 || length > HalfSize)
                continue;
            var payload = new byte[length];
            await _meta.ReadAsync(HalvesOffset + (half * HalfSize), payload, ct).ConfigureAwait(false);
            if (Checksums.Crc32C(payload) == crc && (best is null || seqno > best.Value.Seqno))
                best = (seqno, half, length, crc);
        }
        if (best is null)
            return; // never committed: an empty pool
        _seqno = best.Value.Seqno;
        _half = best.Value.Half;
        var bytes = new byte[best.Value.Length];
        await _meta.ReadAsync(HalvesOffset + (_half * HalfSize), bytes, ct).ConfigureAwait(false);
        int at = 0;
        int devices = BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(at));
        at += 4;
        for (int d = 0; d < devices; d++)
        {
            int id = BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(at));
            int count = BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(at + 4));
            at += 8;
            var map = new Dictionary<long, long>(count);
            for (int i = 0; i < count; i++, at += 16)
            {
                long v = BinaryPrimitives.ReadInt64LittleEndian(bytes.AsSpan(at));
                long p = BinaryPrimitives.ReadInt64LittleEndian(bytes.AsSpan(at + 8));
                map[v] = p;
                if (_refs[p]++ == 0)
                    _free--;
            }
            _maps[id] = map;
        }
    }

    /// <summary>Commits the mappings if they changed since the last commit.</summary>
    public async Task CommitAsync(CancellationToken ct = default)
    {
        if (!_dirty)
            return;
        int size = 4 + _maps.Sum(m => 8 + (m.Value.Count * 16));
        if (size > HalfSize)
            throw new IOException($"thin pool {Name}: its metadata volume is full ({size} bytes of mappings, room for {HalfSize})");
        var bytes = new byte[(size + PhysicalVolume.BlockSize - 1) / PhysicalVolume.BlockSize * PhysicalVolume.BlockSize];
        int at = 0;
        BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(at), _maps.Count);
        at += 4;
        foreach (var (id, map) in _maps)
        {
            BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(at), id);
            BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(at + 4), map.Count);
            at += 8;
            foreach (var (v, p) in map)
            {
                BinaryPrimitives.WriteInt64LittleEndian(bytes.AsSpan(at), v);
                BinaryPrimitives.WriteInt64LittleEndian(bytes.AsSpan(at + 8), p);
                at += 16;
            }
        }
        int half = 1 - _half;
        await _meta.WriteAsync(HalvesOffset + (half * HalfSize), bytes, ct).ConfigureAwait(false);
        await _meta.FlushAsync(ct).ConfigureAwait(false);
        var super = new byte[SuperSize];
        Magic.CopyTo(super);
        BinaryPrimitives.WriteInt64LittleEndian(super.AsSpan(8), _seqno + 1);
        BinaryPrimitives.WriteInt32LittleEndian(super.AsSpan(16), half);
        BinaryPrimitives.WriteInt32LittleEndian(super.AsSpan(20), size);
        BinaryPrimitives.WriteUInt32LittleEndian(super.AsSpan(24), Checksums.Crc32C(bytes.AsSpan(0, size)));
        BinaryPrimitives.WriteUInt32LittleEndian(super.AsSpan(28), Checksums.Crc32C(super.AsSpan(0, 28)));
        await _meta.WriteAsync((_seqno + 1) % 2 * SuperSize, super, ct).ConfigureAwait(false);
        await _meta.FlushAsync(ct).ConfigureAwait(false);
        _seqno++;
        _half = half;
        _dirty = false;
        _free += _pendingFree.Count;
        _pendingFree.Clear();
        _lostSharer.Clear();
        _fresh.Clear();
    }

    private async Task<T> LockedAsync<T>(Func<Task<T>> body, CancellationToken ct)
    {
        await _lock.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            return await body().ConfigureAwait(false);
        }
        finally
        {
            _lock.Release();
        }
    }

    /// <summary>Adds an empty device, or one sharing every chunk of <paramref name="origin"/> (a snapshot), and commits.</summary>
    public Task<bool> CreateDeviceAsync(int id, int? origin, CancellationToken ct = default) => LockedAsync(async () =>
    {
        if (_maps.ContainsKey(id))
            throw new StorageException($"thin pool {Name}: device {id} exists");
        var map = origin is { } o ? new Dictionary<long, long>(_maps.GetValueOrDefault(o) ?? []) : [];
        foreach (long p in map.Values)
            _refs[p]++;
        _maps[id] = map;
        _dirty = true;
        await CommitAsync(ct).ConfigureAwait(false);
        return true;
    }, ct);

    /// <summary>Drops a device; chunks it alone used become free after the commit that follows.</summary>
    public Task<bool> DeleteDeviceAsync(int id, CancellationToken ct = default) => LockedAsync(async () =>
    {
        if (!_maps.Remove(id, out var map))
            return false;
        foreach (long p in map.Values)
            Release(p);
        _dirty = true;
        await CommitAsync(ct).ConfigureAwait(false);
        return true;
    }, ct);

    private void Release(long p)
    {
        if (--_refs[p] == 0)
            _pendingFree.Add(p);
        else
            _lostSharer.Add(p);
    }

    private long Allocate()
    {
        for (long n = 0; n < _refs.Length; n++)
        {
            long p = (_cursor + n) % _refs.Length;
            if (_refs[p] == 0 && !_pendingFree.Contains(p))
            {
                _cursor = p + 1;
                _refs[p] = 1;
                _free--;
                _fresh.Add(p);
                return p;
            }
        }
        throw new ThinPoolFullException($"thin pool {Name} is out of space");
    }

    // Whether a write to device chunk v must go to a chunk of its own first.
    private bool NeedsNewChunk(Dictionary<long, long> map, long v) =>
        !map.TryGetValue(v, out long p) || _refs[p] > 1 || (_lostSharer.Contains(p) && !_fresh.Contains(p));

    internal Task<bool> ReadAsync(int device, long offset, Memory<byte> buffer, CancellationToken ct) => LockedAsync(async () =>
    {
        var map = _maps[device];
        while (!buffer.IsEmpty)
        {
            long v = offset / ChunkSize;
            int inChunk = (int)(offset % ChunkSize);
            int n = Math.Min(buffer.Length, ChunkSize - inChunk);
            if (map.TryGetValue(v, out long p))
                await _data.ReadAsync((p * ChunkSize) + inChunk, buffer[..n], ct).ConfigureAwait(false);
            else
                buffer.Span[..n].Clear();
            offset += n;
            buffer = buffer[n..];
        }
        return true;
    }, ct);

    internal Task<bool> WriteAsync(int device, long offset, ReadOnlyMemory<byte> data, CancellationToken ct) => LockedAsync(async () =>
    {
        var map = _maps[device];
        // Count the chunks this write needs first: a write the pool cannot hold fails whole, and harms nothing.
        long needed = 0;
        for (long v = offset / ChunkSize; v <= (offset + data.Length - 1) / ChunkSize; v++)
        {
            if (NeedsNewChunk(map, v))
                needed++;
        }
        long available = _free;
        if (needed > available)
            throw new ThinPoolFullException($"thin pool {Name} is out of space: this write needs {needed} new chunk(s) of {Sizes.Format(ChunkSize)}, {Math.Max(0, available)} are free");
        byte[]? chunkBuffer = null;
        while (!data.IsEmpty)
        {
            long v = offset / ChunkSize;
            int inChunk = (int)(offset % ChunkSize);
            int n = Math.Min(data.Length, ChunkSize - inChunk);
            if (NeedsNewChunk(map, v))
            {
                bool had = map.TryGetValue(v, out long old);
                long q = Allocate();
                if (n < ChunkSize)
                {
                    // A partial write to a new chunk: the rest comes from the shared chunk, or is zeros.
                    chunkBuffer ??= new byte[ChunkSize];
                    if (had)
                        await _data.ReadAsync(old * ChunkSize, chunkBuffer, ct).ConfigureAwait(false);
                    else
                        Array.Clear(chunkBuffer);
                    data.Span[..n].CopyTo(chunkBuffer.AsSpan(inChunk));
                    await _data.WriteAsync(q * ChunkSize, chunkBuffer, ct).ConfigureAwait(false);
                }
                else
                {
                    await _data.WriteAsync(q * ChunkSize, data[..n], ct).ConfigureAwait(false);
                }
                map[v] = q;
                if (had)
                    Release(old);
                _dirty = true;
            }
            else
            {
                await _data.WriteAsync((map[v] * ChunkSize) + inChunk, data[..n], ct).ConfigureAwait(false);
            }
            offset += n;
            data = data[n..];
        }
        return true;
    }, ct);

    /// <summary>Takes in chunks added by growing the data LV.</summary>
    public Task<bool> GrowAsync(CancellationToken ct = default) => LockedAsync(() =>
    {
        long chunks = _data.Length / ChunkSize;
        if (chunks > _refs.Length)
        {
            var refs = new int[chunks];
            _refs.CopyTo(refs, 0);
            _free += chunks - _refs.Length;
            _refs = refs;
        }
        return Task.FromResult(true);
    }, ct);

    internal Task<bool> FlushAsync(CancellationToken ct) => LockedAsync(async () =>
    {
        await _data.FlushAsync(ct).ConfigureAwait(false);
        await CommitAsync(ct).ConfigureAwait(false);
        return true;
    }, ct);

    /// <inheritdoc/>
    public void Dispose()
    {
        _data.Dispose();
        _meta.Dispose();
        _lock.Dispose();
    }
}

/// <summary>A thin volume as a block device.</summary>
public sealed class ThinVolume : IBlockDevice, IDisposable
{
    private readonly ThinPool _pool;
    private readonly int _device;

    internal ThinVolume(ThinPool pool, int device, string name, long length)
    {
        _pool = pool;
        _device = device;
        Name = name;
        Length = length;
    }

    /// <summary>Name as VG/LV.</summary>
    public string Name { get; }

    /// <inheritdoc/>
    public long Length { get; }

    private void CheckBounds(long offset, int length)
    {
        if (offset < 0 || length < 0 || offset > Length - length)
            throw new ArgumentOutOfRangeException(nameof(offset), $"{Name}: I/O at {offset}+{length} is outside the volume ({Length} bytes)");
    }

    /// <inheritdoc/>
    public async ValueTask ReadAsync(long offset, Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        CheckBounds(offset, buffer.Length);
        await _pool.ReadAsync(_device, offset, buffer, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public async ValueTask WriteAsync(long offset, ReadOnlyMemory<byte> data, CancellationToken cancellationToken = default)
    {
        CheckBounds(offset, data.Length);
        if (data.Length > 0)
            await _pool.WriteAsync(_device, offset, data, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public async ValueTask FlushAsync(CancellationToken cancellationToken = default) =>
        await _pool.FlushAsync(cancellationToken).ConfigureAwait(false);

    /// <summary>Nothing to release: the pool belongs to the volume group.</summary>
    public void Dispose()
    {
    }
}
