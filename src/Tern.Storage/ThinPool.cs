// A thin pool at run time: the chunk mappings of every device of the pool (thin volumes,
// snapshots, and the origin of a snapshot store), their reference counts, and the chunk
// allocator. Snapshots share chunks with their origin (one mapping per device, chunks counted by
// reference), so a write costs the same however many snapshots exist: a shared chunk is remapped
// once, to a chunk of the writer's own, and a write that covers the whole chunk copies nothing.
//
// A pool may have a base: the LV whose snapshots it stores (a "snapshot store", see
// VolumeGroup.Thin.cs). A device of such a pool reads a chunk it does not map, below its base
// limit, from the same chunk of the base LV; the base chunk is shared by every device that does
// not map it, and is written in place only by the last one.
//
// Mappings are committed incrementally: each commit appends its changes (records of 24 bytes) as
// one transaction of 4 KiB blocks to a journal in the metadata LV, with one flush; every block
// carries the transaction's number, a random nonce and a CRC32C, so a torn transaction (or one
// mixed with an older attempt at the same place) is not replayed. When the journal is full the
// whole table is written as a checkpoint into the half of the LV not holding the current one,
// then a superblock naming it (and where the journal restarts) is written, each step flushed.
// Chunks given up in a transaction are reused only after its commit, and a chunk (or base chunk)
// that lost a sharer in the transaction is not overwritten in place before the commit, so the
// committed table never points at data written for another device.
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

/// <summary>
/// Thrown by a snapshot store that has dissolved (its origin's last snapshot was removed and its
/// blocks went back into the origin's extents): the origin is read and written as a plain LV now.
/// </summary>
public sealed class StoreDissolvedException : StorageException
{
    /// <summary>Creates the error with its user-facing message.</summary>
    public StoreDissolvedException(string message) : base(message) { }

    /// <summary>Creates the error with no message.</summary>
    public StoreDissolvedException() { }

    /// <summary>Creates the error with its user-facing message and cause.</summary>
    public StoreDissolvedException(string message, Exception inner) : base(message, inner) { }
}

/// <summary>An opened thin pool (or snapshot store).</summary>
public sealed class ThinPool : IDisposable
{
    /// <summary>Default chunk size: 64 KiB, as dm-thin's default.</summary>
    public const int DefaultChunkSize = 64 * 1024;

    private const int SuperSize = 4096;
    private const int HalvesOffset = 2 * SuperSize;
    private const int BlockSize = PhysicalVolume.BlockSize;
    private const int JournalHeader = 40;
    private const int RecordSize = 24;
    private const int RecordsPerBlock = (BlockSize - JournalHeader) / RecordSize;
    private const int MaxRun = 1 << 20;
    private static ReadOnlySpan<byte> Magic => "TERN-TP2"u8;
    private static ReadOnlySpan<byte> JournalMagic => "TERN-TJ1"u8;

    private enum Op
    {
        Map = 1,
        Create = 2,
        Delete = 3,
        Truncate = 4,
        BaseLimit = 5,
    }

    private readonly record struct Record(Op Op, int Device, long A, long B);

    private sealed class Device
    {
        public Dictionary<long, long> Map { get; init; } = [];

        public long BaseLimit { get; set; }
    }

    private readonly LogicalVolume _data;
    private readonly LogicalVolume _meta;
    private readonly IBlockDevice? _base;
    private readonly SemaphoreSlim _lock = new(1, 1);
    private readonly Dictionary<int, Device> _devices = [];
    private int[] _refs;
    private readonly HashSet<long> _pendingFree = [];
    private readonly HashSet<long> _lostSharer = [];
    private readonly HashSet<long> _fresh = [];
    private readonly HashSet<long> _baseLostSharer = [];
    private readonly List<Record> _pending = [];
    private long _seqno;
    private int _half;
    private long _free;
    private long _cursor;
    private bool _dirty;
    private long _journalAt;
    private long _nextTxn = 1;
    private bool _dissolved;

    private ThinPool(string name, int chunkSize, LogicalVolume data, LogicalVolume meta, IBlockDevice? baseDevice)
    {
        Name = name;
        ChunkSize = chunkSize;
        _data = data;
        _meta = meta;
        _base = baseDevice;
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
    public IReadOnlyCollection<int> Devices => _devices.Keys;

    /// <summary>Journal transactions committed since the last checkpoint (for tests and reports).</summary>
    public long JournalBlocks => _journalAt / BlockSize;

    /// <summary>Checkpoints written since the pool was created (the superblock's sequence number).</summary>
    public long Checkpoints => _seqno;

    /// <summary>Chunks mapped by one device.</summary>
    public long MappedChunks(int device) => _devices.TryGetValue(device, out var d) ? d.Map.Count : 0;

    /// <summary>Opens a pool over its data and metadata LVs (and the LV whose snapshots it stores, if any), loading the newest committed mappings.</summary>
    public static async Task<ThinPool> OpenAsync(string name, int chunkSize, LogicalVolume data, LogicalVolume meta, IBlockDevice? baseDevice = null, CancellationToken ct = default)
    {
        if (chunkSize < BlockSize || chunkSize % BlockSize != 0)
            throw new StorageException($"thin-pool chunk size {chunkSize} is not a multiple of 4 KiB");
        var pool = new ThinPool(name, chunkSize, data, meta, baseDevice);
        await pool.LoadAsync(ct).ConfigureAwait(false);
        return pool;
    }

    // The metadata LV: two superblocks, two checkpoint halves, then the journal.
    private long HalfSize => (_meta.Length - HalvesOffset) / 3 / BlockSize * BlockSize;

    private long JournalOffset => HalvesOffset + (2 * HalfSize);

    private long JournalLength => (_meta.Length - JournalOffset) / BlockSize * BlockSize;

    /// <summary>Bytes a metadata LV needs for a pool of <paramref name="chunks"/> chunks.</summary>
    public static long MetadataBytes(long chunks) => HalvesOffset + (3 * ((chunks * 16 * 4) + (64 << 10)));

    private async Task LoadAsync(CancellationToken ct)
    {
        var super = new byte[SuperSize];
        (long Seqno, int Half, int Length, uint Crc, long JournalFirst)? best = null;
        for (int slot = 0; slot < 2; slot++)
        {
            await _meta.ReadAsync(slot * SuperSize, super, ct).ConfigureAwait(false);
            if (super.AsSpan(0, 8).SequenceEqual("TERN-TP1"u8))
                throw new StorageException($"thin pool {Name} was written by an older Tern (whole-table format TERN-TP1), which this version does not read");
            if (!super.AsSpan(0, 8).SequenceEqual(Magic) || BinaryPrimitives.ReadUInt32LittleEndian(super.AsSpan(40)) != Checksums.Crc32C(super.AsSpan(0, 40)))
                continue;
            long seqno = BinaryPrimitives.ReadInt64LittleEndian(super.AsSpan(8));
            int half = BinaryPrimitives.ReadInt32LittleEndian(super.AsSpan(16));
            int length = BinaryPrimitives.ReadInt32LittleEndian(super.AsSpan(20));
            uint crc = BinaryPrimitives.ReadUInt32LittleEndian(super.AsSpan(24));
            long journalFirst = BinaryPrimitives.ReadInt64LittleEndian(super.AsSpan(32));
            if (half is not (0 or 1) || length < 4 || length > HalfSize)
                continue;
            var payload = new byte[length];
            await _meta.ReadAsync(HalvesOffset + (half * HalfSize), payload, ct).ConfigureAwait(false);
            if (Checksums.Crc32C(payload) == crc && (best is null || seqno > best.Value.Seqno))
                best = (seqno, half, length, crc, journalFirst);
        }
        if (best is null)
            return; // never committed: an empty pool
        _seqno = best.Value.Seqno;
        _half = best.Value.Half;
        _nextTxn = best.Value.JournalFirst;
        var bytes = new byte[best.Value.Length];
        await _meta.ReadAsync(HalvesOffset + (_half * HalfSize), bytes, ct).ConfigureAwait(false);
        int at = 0;
        int devices = BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(at));
        at += 4;
        for (int d = 0; d < devices; d++)
        {
            int id = BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(at));
            long baseLimit = BinaryPrimitives.ReadInt64LittleEndian(bytes.AsSpan(at + 4));
            int count = BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(at + 12));
            at += 16;
            var map = new Dictionary<long, long>(count);
            for (int i = 0; i < count; i++, at += 16)
                map[BinaryPrimitives.ReadInt64LittleEndian(bytes.AsSpan(at))] = BinaryPrimitives.ReadInt64LittleEndian(bytes.AsSpan(at + 8));
            _devices[id] = new Device { Map = map, BaseLimit = baseLimit };
        }
        await ReplayJournalAsync(ct).ConfigureAwait(false);
        foreach (var dev in _devices.Values)
        {
            foreach (long p in dev.Map.Values)
            {
                if (_refs[p]++ == 0)
                    _free--;
            }
        }
    }

    // Applies every whole transaction of the journal, in order, from its start: transaction
    // _nextTxn first, each in blocks that agree on number, nonce and count and pass their CRC.
    private async Task ReplayJournalAsync(CancellationToken ct)
    {
        var block = new byte[BlockSize];
        while (_journalAt + BlockSize <= JournalLength)
        {
            await _meta.ReadAsync(JournalOffset + _journalAt, block, ct).ConfigureAwait(false);
            if (!ValidJournalBlock(block, _nextTxn, 0, out long nonce, out int count) || _journalAt + ((long)count * BlockSize) > JournalLength)
                return;
            var txn = new byte[count * BlockSize];
            await _meta.ReadAsync(JournalOffset + _journalAt, txn, ct).ConfigureAwait(false);
            for (int i = 0; i < count; i++)
            {
                if (!ValidJournalBlock(txn.AsSpan(i * BlockSize, BlockSize), _nextTxn, i, out long n, out int c) || n != nonce || c != count)
                    return;
            }
            for (int i = 0; i < count; i++)
            {
                var b = txn.AsSpan(i * BlockSize, BlockSize);
                int records = BinaryPrimitives.ReadInt32LittleEndian(b[32..]);
                for (int r = 0; r < records; r++)
                {
                    var rec = b.Slice(JournalHeader + (r * RecordSize), RecordSize);
                    Apply(new Record((Op)BinaryPrimitives.ReadInt32LittleEndian(rec), BinaryPrimitives.ReadInt32LittleEndian(rec[4..]),
                        BinaryPrimitives.ReadInt64LittleEndian(rec[8..]), BinaryPrimitives.ReadInt64LittleEndian(rec[16..])));
                }
            }
            _journalAt += (long)count * BlockSize;
            _nextTxn++;
        }
    }

    private static bool ValidJournalBlock(ReadOnlySpan<byte> b, long txn, int index, out long nonce, out int count)
    {
        nonce = BinaryPrimitives.ReadInt64LittleEndian(b[16..]);
        count = BinaryPrimitives.ReadInt32LittleEndian(b[28..]);
        if (!b[..8].SequenceEqual(JournalMagic) || BinaryPrimitives.ReadInt64LittleEndian(b[8..]) != txn
            || BinaryPrimitives.ReadInt32LittleEndian(b[24..]) != index || count < 1 || index >= count
            || BinaryPrimitives.ReadInt32LittleEndian(b[32..]) is < 0 or > RecordsPerBlock)
            return false;
        Span<byte> copy = stackalloc byte[BlockSize];
        b.CopyTo(copy);
        BinaryPrimitives.WriteUInt32LittleEndian(copy[36..], 0);
        return BinaryPrimitives.ReadUInt32LittleEndian(b[36..]) == Checksums.Crc32C(copy);
    }

    // Replays one journal record onto the mappings (reference counts are rebuilt after the replay).
    private void Apply(Record r)
    {
        switch (r.Op)
        {
            case Op.Map:
                _devices[r.Device].Map[r.A] = r.B;
                break;
            case Op.Create:
                _devices[r.Device] = new Device
                {
                    Map = r.A >= 0 ? new Dictionary<long, long>(_devices[(int)r.A].Map) : [],
                    BaseLimit = r.B,
                };
                break;
            case Op.Delete:
                _devices.Remove(r.Device);
                break;
            case Op.Truncate:
                var dev = _devices[r.Device];
                foreach (long v in dev.Map.Keys.Where(v => v >= r.A).ToList())
                    dev.Map.Remove(v);
                dev.BaseLimit = Math.Min(dev.BaseLimit, r.A);
                break;
            case Op.BaseLimit:
                _devices[r.Device].BaseLimit = r.A;
                break;
        }
    }

    private void Log(Op op, int device, long a, long b)
    {
        _pending.Add(new Record(op, device, a, b));
        _dirty = true;
    }

    /// <summary>Whether mappings changed since the last commit (a write mapped a chunk that only this instance knows of yet).</summary>
    public bool HasUncommittedMappings => Volatile.Read(ref _dirty);

    /// <summary>Commits the mappings if they changed since the last commit: a journal transaction, or a checkpoint when the journal is full.</summary>
    public async Task CommitAsync(CancellationToken ct = default)
    {
        if (!_dirty)
            return;
        long blocks = (_pending.Count + RecordsPerBlock - 1) / RecordsPerBlock;
        if (_seqno == 0 || _journalAt + (blocks * BlockSize) > JournalLength)
            await CheckpointAsync(ct).ConfigureAwait(false);
        else
            await AppendJournalAsync((int)blocks, ct).ConfigureAwait(false);
        _dirty = false;
        _pending.Clear();
        _free += _pendingFree.Count;
        _pendingFree.Clear();
        _lostSharer.Clear();
        _fresh.Clear();
        _baseLostSharer.Clear();
    }

    private async Task AppendJournalAsync(int blocks, CancellationToken ct)
    {
        var bytes = new byte[blocks * BlockSize];
        long nonce = Random.Shared.NextInt64();
        for (int i = 0; i < blocks; i++)
        {
            var b = bytes.AsSpan(i * BlockSize, BlockSize);
            int first = i * RecordsPerBlock, n = Math.Min(RecordsPerBlock, _pending.Count - first);
            JournalMagic.CopyTo(b);
            BinaryPrimitives.WriteInt64LittleEndian(b[8..], _nextTxn);
            BinaryPrimitives.WriteInt64LittleEndian(b[16..], nonce);
            BinaryPrimitives.WriteInt32LittleEndian(b[24..], i);
            BinaryPrimitives.WriteInt32LittleEndian(b[28..], blocks);
            BinaryPrimitives.WriteInt32LittleEndian(b[32..], n);
            for (int r = 0; r < n; r++)
            {
                var rec = b.Slice(JournalHeader + (r * RecordSize), RecordSize);
                var x = _pending[first + r];
                BinaryPrimitives.WriteInt32LittleEndian(rec, (int)x.Op);
                BinaryPrimitives.WriteInt32LittleEndian(rec[4..], x.Device);
                BinaryPrimitives.WriteInt64LittleEndian(rec[8..], x.A);
                BinaryPrimitives.WriteInt64LittleEndian(rec[16..], x.B);
            }
            BinaryPrimitives.WriteUInt32LittleEndian(b[36..], Checksums.Crc32C(b));
        }
        await _meta.WriteAsync(JournalOffset + _journalAt, bytes, ct).ConfigureAwait(false);
        await _meta.FlushAsync(ct).ConfigureAwait(false);
        _journalAt += bytes.Length;
        _nextTxn++;
    }

    // Writes the whole table into the half not holding the current checkpoint, then a superblock
    // naming it; the journal restarts empty at the next transaction number.
    private async Task CheckpointAsync(CancellationToken ct)
    {
        long size = 4 + _devices.Values.Sum(d => 16 + (d.Map.Count * 16L));
        if (size > HalfSize)
            throw new IOException($"thin pool {Name}: its metadata volume is full ({size} bytes of mappings, room for {HalfSize})");
        var bytes = new byte[(size + BlockSize - 1) / BlockSize * BlockSize];
        int at = 0;
        BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(at), _devices.Count);
        at += 4;
        foreach (var (id, dev) in _devices)
        {
            BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(at), id);
            BinaryPrimitives.WriteInt64LittleEndian(bytes.AsSpan(at + 4), dev.BaseLimit);
            BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(at + 12), dev.Map.Count);
            at += 16;
            foreach (var (v, p) in dev.Map)
            {
                BinaryPrimitives.WriteInt64LittleEndian(bytes.AsSpan(at), v);
                BinaryPrimitives.WriteInt64LittleEndian(bytes.AsSpan(at + 8), p);
                at += 16;
            }
        }
        int half = 1 - _half;
        await _meta.WriteAsync(HalvesOffset + (half * HalfSize), bytes, ct).ConfigureAwait(false);
        await _meta.FlushAsync(ct).ConfigureAwait(false);
        long journalFirst = _nextTxn + 1;
        var super = new byte[SuperSize];
        Magic.CopyTo(super);
        BinaryPrimitives.WriteInt64LittleEndian(super.AsSpan(8), _seqno + 1);
        BinaryPrimitives.WriteInt32LittleEndian(super.AsSpan(16), half);
        BinaryPrimitives.WriteInt32LittleEndian(super.AsSpan(20), (int)size);
        BinaryPrimitives.WriteUInt32LittleEndian(super.AsSpan(24), Checksums.Crc32C(bytes.AsSpan(0, (int)size)));
        BinaryPrimitives.WriteInt64LittleEndian(super.AsSpan(32), journalFirst);
        BinaryPrimitives.WriteUInt32LittleEndian(super.AsSpan(40), Checksums.Crc32C(super.AsSpan(0, 40)));
        await _meta.WriteAsync((_seqno + 1) % 2 * SuperSize, super, ct).ConfigureAwait(false);
        await _meta.FlushAsync(ct).ConfigureAwait(false);
        _seqno++;
        _half = half;
        _journalAt = 0;
        _nextTxn = journalFirst;
    }

    private async Task<T> LockedAsync<T>(Func<Task<T>> body, CancellationToken ct)
    {
        await _lock.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            if (_dissolved)
                throw new StoreDissolvedException($"snapshot store {Name} was dissolved when its origin's last snapshot was removed; reopen the volume");
            return await body().ConfigureAwait(false);
        }
        finally
        {
            _lock.Release();
        }
    }

    // Data that mappings about to be committed point at must be durable first.
    private async Task FlushDataAsync(CancellationToken ct)
    {
        await _data.FlushAsync(ct).ConfigureAwait(false);
        if (_base is not null)
            await _base.FlushAsync(ct).ConfigureAwait(false);
    }

    /// <summary>
    /// Adds an empty device, or one sharing every chunk of <paramref name="origin"/> (a snapshot), and
    /// commits. A device reads unmapped chunks below <paramref name="baseLimit"/> from the base LV
    /// (a snapshot takes its origin's limit).
    /// </summary>
    public Task<bool> CreateDeviceAsync(int id, int? origin, long baseLimit = 0, CancellationToken ct = default) => LockedAsync(async () =>
    {
        if (_devices.ContainsKey(id))
            throw new StorageException($"thin pool {Name}: device {id} exists");
        if (origin is { } o && !_devices.ContainsKey(o))
            throw new StorageException($"thin pool {Name}: device {o} does not exist");
        var src = origin is { } from ? _devices[from] : null;
        var dev = new Device { Map = src is null ? [] : new Dictionary<long, long>(src.Map), BaseLimit = src?.BaseLimit ?? baseLimit };
        foreach (long p in dev.Map.Values)
            _refs[p]++;
        _devices[id] = dev;
        Log(Op.Create, id, origin ?? -1, dev.BaseLimit);
        await FlushDataAsync(ct).ConfigureAwait(false);
        await CommitAsync(ct).ConfigureAwait(false);
        return true;
    }, ct);

    /// <summary>Drops a device; chunks it alone used become free after the commit that follows.</summary>
    public Task<bool> DeleteDeviceAsync(int id, CancellationToken ct = default) => LockedAsync(async () =>
    {
        if (!_devices.Remove(id, out var dev))
            return false;
        foreach (long p in dev.Map.Values)
            Release(p);
        Log(Op.Delete, id, 0, 0);
        await FlushDataAsync(ct).ConfigureAwait(false);
        await CommitAsync(ct).ConfigureAwait(false);
        return true;
    }, ct);

    /// <summary>Shrinks a device to <paramref name="chunks"/> chunks: mappings past it are dropped (their chunks freed when no other device uses them), and commits.</summary>
    public Task<bool> TruncateDeviceAsync(int id, long chunks, CancellationToken ct = default) => LockedAsync(async () =>
    {
        var dev = _devices[id];
        foreach (var (v, p) in dev.Map.Where(kv => kv.Key >= chunks).ToList())
        {
            dev.Map.Remove(v);
            Release(p);
        }
        dev.BaseLimit = Math.Min(dev.BaseLimit, chunks);
        Log(Op.Truncate, id, chunks, 0);
        await FlushDataAsync(ct).ConfigureAwait(false);
        await CommitAsync(ct).ConfigureAwait(false);
        return true;
    }, ct);

    /// <summary>Sets how many chunks of the base LV a device reads through (the origin of a snapshot store, when the base LV grows), and commits.</summary>
    public Task<bool> SetBaseLimitAsync(int id, long chunks, CancellationToken ct = default) => LockedAsync(async () =>
    {
        _devices[id].BaseLimit = chunks;
        Log(Op.BaseLimit, id, chunks, 0);
        await FlushDataAsync(ct).ConfigureAwait(false);
        await CommitAsync(ct).ConfigureAwait(false);
        return true;
    }, ct);

    /// <summary>The base limit of a device (0 when the pool has no base).</summary>
    public long BaseLimit(int id) => _devices.TryGetValue(id, out var d) ? d.BaseLimit : 0;

    /// <summary>Whether some device other than <paramref name="except"/> still reads base chunks.</summary>
    public bool OthersUseBase(int except) => _devices.Any(kv => kv.Key != except && kv.Value.BaseLimit > 0);

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

    private bool BaseShared(int device, long v)
    {
        foreach (var (id, other) in _devices)
        {
            if (id != device && v < other.BaseLimit && !other.Map.ContainsKey(v))
                return true;
        }
        return false;
    }

    // Whether a write to device chunk v must go to a chunk of its own first.
    private bool NeedsNewChunk(int device, Device dev, long v)
    {
        if (dev.Map.TryGetValue(v, out long p))
            return _refs[p] > 1 || (_lostSharer.Contains(p) && !_fresh.Contains(p));
        if (v < dev.BaseLimit)
            return BaseShared(device, v) || _baseLostSharer.Contains(v);
        return true;
    }

    // Where device chunk v lives: in the pool (chunk p), in the base LV (chunk v), or nowhere (zeros).
    private enum Where
    {
        Zero,
        Pool,
        Base,
    }

    private static (Where Where, long Chunk) Locate(Device dev, long v) =>
        dev.Map.TryGetValue(v, out long p) ? (Where.Pool, p) : v < dev.BaseLimit ? (Where.Base, v) : (Where.Zero, 0);

    private IBlockDevice Target(Where where) => where == Where.Pool ? _data : _base!;

    internal Task<bool> ReadAsync(int device, long offset, Memory<byte> buffer, CancellationToken ct) => LockedAsync(async () =>
    {
        var dev = _devices[device];
        while (!buffer.IsEmpty)
        {
            long v = offset / ChunkSize;
            int inChunk = (int)(offset % ChunkSize);
            var (where, chunk) = Locate(dev, v);
            long start = (chunk * ChunkSize) + inChunk;
            int n = Math.Min(buffer.Length, ChunkSize - inChunk);
            // One read for a run of chunks that lie end to end in the same place.
            while (n < buffer.Length && n < MaxRun)
            {
                var (w, c) = Locate(dev, v + ((inChunk + n) / ChunkSize));
                if (w != where || (where != Where.Zero && c * ChunkSize != start + n))
                    break;
                n = Math.Min(buffer.Length, n + ChunkSize);
            }
            if (where == Where.Zero)
                buffer.Span[..n].Clear();
            else
                await Target(where).ReadAsync(start, buffer[..n], ct).ConfigureAwait(false);
            offset += n;
            buffer = buffer[n..];
        }
        return true;
    }, ct);

    // Chunks a write of these bytes would take from the free list.
    private long CountNeeded(int device, Device dev, long offset, ReadOnlySpan<byte> data)
    {
        long needed = 0;
        while (!data.IsEmpty)
        {
            long v = offset / ChunkSize;
            int n = Math.Min(data.Length, ChunkSize - (int)(offset % ChunkSize));
            if (!SkipsZeros(dev, v, data[..n]) && NeedsNewChunk(device, dev, v))
                needed++;
            offset += n;
            data = data[n..];
        }
        return needed;
    }

    // Zeros written where nothing is mapped change nothing: they take no chunk.
    private static bool SkipsZeros(Device dev, long v, ReadOnlySpan<byte> piece) =>
        !dev.Map.ContainsKey(v) && v >= dev.BaseLimit && !piece.ContainsAnyExcept((byte)0);

    internal Task<bool> WriteAsync(int device, long offset, ReadOnlyMemory<byte> data, CancellationToken ct) => LockedAsync(async () =>
    {
        var dev = _devices[device];
        // Count the chunks this write needs first: a write the pool cannot hold fails whole, and harms nothing.
        long needed = CountNeeded(device, dev, offset, data.Span);
        long available = _free;
        if (needed > available)
            throw new ThinPoolFullException($"thin pool {Name} is out of space: this write needs {needed} new chunk(s) of {Sizes.Format(ChunkSize)}, {Math.Max(0, available)} are free");
        byte[]? chunkBuffer = null;
        // Pieces that land end to end in the same place are written together.
        var all = data;
        Where runWhere = Where.Zero;
        long runStart = 0;
        int runFrom = 0, runLength = 0, done = 0;
        while (done < all.Length)
        {
            long v = offset / ChunkSize;
            int inChunk = (int)(offset % ChunkSize);
            int n = Math.Min(all.Length - done, ChunkSize - inChunk);
            var piece = all.Slice(done, n);
            Where where = Where.Zero;
            long at = 0;
            if (SkipsZeros(dev, v, piece.Span))
            {
                // nothing to write
            }
            else if (NeedsNewChunk(device, dev, v))
            {
                var (oldWhere, old) = Locate(dev, v);
                long q = Allocate();
                if (n < ChunkSize)
                {
                    // A partial write to a new chunk: the rest comes from the shared chunk, or is zeros.
                    chunkBuffer ??= new byte[ChunkSize];
                    if (oldWhere == Where.Zero)
                        Array.Clear(chunkBuffer);
                    else
                        await Target(oldWhere).ReadAsync(old * ChunkSize, chunkBuffer, ct).ConfigureAwait(false);
                    piece.Span.CopyTo(chunkBuffer.AsSpan(inChunk));
                    await _data.WriteAsync(q * ChunkSize, chunkBuffer, ct).ConfigureAwait(false);
                }
                else
                {
                    where = Where.Pool;
                    at = q * ChunkSize;
                }
                dev.Map[v] = q;
                Log(Op.Map, device, v, q);
                if (oldWhere == Where.Pool)
                    Release(old);
                else if (oldWhere == Where.Base)
                    _baseLostSharer.Add(v);
            }
            else
            {
                var (w, c) = Locate(dev, v);
                where = w;
                at = (c * ChunkSize) + inChunk;
            }
            if (where != Where.Zero && where == runWhere && runStart + runLength == at && runFrom + runLength == done && runLength < MaxRun)
            {
                runLength += n;
            }
            else
            {
                if (runLength > 0)
                    await Target(runWhere).WriteAsync(runStart, all.Slice(runFrom, runLength), ct).ConfigureAwait(false);
                (runWhere, runStart, runFrom, runLength) = where == Where.Zero ? (Where.Zero, 0L, 0, 0) : (where, at, done, n);
            }
            offset += n;
            done += n;
        }
        if (runLength > 0)
            await Target(runWhere).WriteAsync(runStart, all.Slice(runFrom, runLength), ct).ConfigureAwait(false);
        return true;
    }, ct);

    /// <summary>
    /// How many chunks writing these pieces would take from the free list, without writing
    /// anything: each piece is (device chunk, whether its bytes are all zeros); zeros where
    /// nothing is mapped take none.
    /// </summary>
    internal Task<long> CountNewChunksAsync(int device, IEnumerable<(long Chunk, bool Zero)> pieces, CancellationToken ct) => LockedAsync(() =>
    {
        var dev = _devices[device];
        long needed = 0;
        foreach (var (v, zero) in pieces)
        {
            if (zero && !dev.Map.ContainsKey(v) && v >= dev.BaseLimit)
                continue;
            if (NeedsNewChunk(device, dev, v))
                needed++;
        }
        return Task.FromResult(needed);
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
        await FlushDataAsync(ct).ConfigureAwait(false);
        await CommitAsync(ct).ConfigureAwait(false);
        return true;
    }, ct);

    /// <summary>
    /// Dissolves a snapshot store whose only device left is its origin's: the blocks the origin
    /// maps are copied back into the base LV (the origin's own extents), which is flushed, then
    /// <paramref name="commit"/> (the metadata change that drops the store) runs, all under the
    /// pool's lock so that no request comes in between. The mappings are not changed by the copy,
    /// so until the commit the store stands whole (a crash leaves it to be dissolved again); after
    /// it every request on the pool is refused with <see cref="StoreDissolvedException"/>.
    /// </summary>
    internal Task<bool> DissolveAsync(int device, Func<Task> commit, CancellationToken ct) => LockedAsync(async () =>
    {
        if (_base is null)
            throw new StorageException($"thin pool {Name} is not a snapshot store");
        if (_devices.Keys.Any(d => d != device))
            throw new StorageException($"snapshot store {Name} still has snapshots");
        await FlushDataAsync(ct).ConfigureAwait(false);
        await CommitAsync(ct).ConfigureAwait(false);
        if (_devices.TryGetValue(device, out var dev))
        {
            long limit = _base.Length / ChunkSize;
            var buffer = new byte[MaxRun];
            var mapped = dev.Map.Where(kv => kv.Key < limit).OrderBy(kv => kv.Key).ToList();
            for (int i = 0; i < mapped.Count;)
            {
                // One read and one write for chunks that lie end to end on both sides.
                int n = 1;
                while (i + n < mapped.Count && (n + 1) * ChunkSize <= MaxRun && mapped[i + n].Key == mapped[i].Key + n && mapped[i + n].Value == mapped[i].Value + n)
                    n++;
                var run = buffer.AsMemory(0, n * ChunkSize);
                await _data.ReadAsync(mapped[i].Value * ChunkSize, run, ct).ConfigureAwait(false);
                await _base.WriteAsync(mapped[i].Key * ChunkSize, run, ct).ConfigureAwait(false);
                i += n;
            }
            // Chunks past the base limit that the origin does not map read as zeros through the
            // store (the limit lags the LV only after an interrupted grow): make the extents agree.
            Array.Clear(buffer);
            for (long v = dev.BaseLimit; v < limit; v++)
            {
                if (!dev.Map.ContainsKey(v))
                    await _base.WriteAsync(v * ChunkSize, buffer.AsMemory(0, ChunkSize), ct).ConfigureAwait(false);
            }
            await _base.FlushAsync(ct).ConfigureAwait(false);
        }
        await commit().ConfigureAwait(false);
        _dissolved = true;
        return true;
    }, ct);

    /// <summary>The data LV (scrubbed with the origin of a snapshot store).</summary>
    public LogicalVolume DataVolume => _data;

    /// <summary>Closes the pool, first committing mappings changed since the last flush (as a clean close of a PV keeps its completed writes).</summary>
    public void Dispose()
    {
        if (_dirty)
        {
            try
            {
                _lock.Wait();
                FlushDataAsync(CancellationToken.None).GetAwaiter().GetResult();
                CommitAsync().GetAwaiter().GetResult();
            }
            catch (Exception e) when (e is IOException or ObjectDisposedException or StorageException)
            {
                // Closing anyway: the mappings of the last commit stand, as after a crash.
            }
        }
        _data.Dispose();
        _meta.Dispose();
        (_base as IDisposable)?.Dispose();
        // A dissolved store may still have requests queued on its lock: they take it and are refused.
        if (!_dissolved)
            _lock.Dispose();
    }
}

/// <summary>A thin volume, a snapshot, or the origin of a snapshot store, as a block device.</summary>
public sealed class ThinVolume : IBlockDevice, IDisposable
{
    private readonly ThinPool _pool;
    private readonly int _device;
    private readonly Func<long> _length;

    internal ThinVolume(ThinPool pool, int device, string name, Func<long> length)
    {
        _pool = pool;
        _device = device;
        Name = name;
        _length = length;
    }

    /// <summary>Name as VG/LV.</summary>
    public string Name { get; }

    /// <summary>For the origin of a snapshot store: opens the LV itself, which serves requests once the store dissolves.</summary>
    internal Func<IBlockDevice>? Reopen { get; init; }

    private IBlockDevice? _plain;

    // The plain LV, once the store has dissolved under this instance.
    private IBlockDevice? Plain => Volatile.Read(ref _plain);

    private IBlockDevice Dissolved(StoreDissolvedException e)
    {
        if (Reopen is null)
            throw new StoreDissolvedException($"{Name}: {e.Message}", e);
        lock (this)
            return _plain ??= Reopen();
    }

    /// <inheritdoc/>
    public long Length => _length();

    /// <summary>The pool's chunk size.</summary>
    public int ChunkSize => _pool.ChunkSize;

    /// <summary>Chunks free in the pool.</summary>
    public long FreeChunks => _pool.FreeChunks;

    /// <summary>The pool, for messages.</summary>
    public string PoolName => _pool.Name;

    /// <summary>Whether the pool holds mappings not committed yet (see <see cref="ThinPool.HasUncommittedMappings"/>).</summary>
    public bool HasUncommittedMappings => Plain is null && _pool.HasUncommittedMappings;

    /// <summary>How many new chunks writing these pieces (chunk index, all zeros) would take; writes nothing.</summary>
    public Task<long> CountNewChunksAsync(IEnumerable<(long Chunk, bool Zero)> pieces, CancellationToken cancellationToken = default) =>
        _pool.CountNewChunksAsync(_device, pieces, cancellationToken);

    private void CheckBounds(long offset, int length)
    {
        if (offset < 0 || length < 0 || offset > Length - length)
            throw new ArgumentOutOfRangeException(nameof(offset), $"{Name}: I/O at {offset}+{length} is outside the volume ({Length} bytes)");
    }

    /// <inheritdoc/>
    public async ValueTask ReadAsync(long offset, Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        CheckBounds(offset, buffer.Length);
        if (Plain is { } plain)
        {
            await plain.ReadAsync(offset, buffer, cancellationToken).ConfigureAwait(false);
            return;
        }
        try
        {
            await _pool.ReadAsync(_device, offset, buffer, cancellationToken).ConfigureAwait(false);
        }
        catch (StoreDissolvedException e)
        {
            await Dissolved(e).ReadAsync(offset, buffer, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <inheritdoc/>
    public async ValueTask WriteAsync(long offset, ReadOnlyMemory<byte> data, CancellationToken cancellationToken = default)
    {
        CheckBounds(offset, data.Length);
        if (data.Length == 0)
            return;
        if (Plain is { } plain)
        {
            await plain.WriteAsync(offset, data, cancellationToken).ConfigureAwait(false);
            return;
        }
        try
        {
            await _pool.WriteAsync(_device, offset, data, cancellationToken).ConfigureAwait(false);
        }
        catch (StoreDissolvedException e)
        {
            await Dissolved(e).WriteAsync(offset, data, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <inheritdoc/>
    public async ValueTask FlushAsync(CancellationToken cancellationToken = default)
    {
        if (Plain is { } plain)
        {
            await plain.FlushAsync(cancellationToken).ConfigureAwait(false);
            return;
        }
        try
        {
            await _pool.FlushAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (StoreDissolvedException e)
        {
            await Dissolved(e).FlushAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Releases the plain LV opened after the store dissolved, if any; the pool belongs to the volume group.</summary>
    public void Dispose() => (Plain as IDisposable)?.Dispose();
}
