// A bounded, process-wide cache of data blocks that were verified when they came from the disk,
// as ZFS's ARC or BlueStore's cache hold checksummed data: a read that finds every block of its
// request here is a memory copy, with no system call and no CRC, because each block was checked
// against its tag once, on the read that brought it in. Only whole 4 KiB blocks are held, keyed
// by (PV instance, block); eviction is CLOCK (a referenced bit per slot, cleared by the passing
// hand), so a hit costs one dictionary look-up and a bit per block.
//
// Staleness: an entry is valid only while its block's tag is unchanged. PhysicalVolume drops
// the entries of every block whose tag or data it changes (writes, raw copies by resync and
// pvmove, blocks reset on allocation, tags reloaded from the disk because another instance
// wrote there) and bumps its epoch; a read that went to the disk inserts what it read only if
// the epoch did not move meanwhile, so a write that raced with it cannot leave old data behind.
// Scrub reads around the cache. One lock guards the map and the copies; the copies are memory
// speed, and requests of one LV are serialized anyway.
//
// Size: TERN_BLOCK_CACHE (bytes, or with a K/M/G suffix; 0 turns the cache off). Off by default:
// on the quiet benchmark machine the cache's fill (an extra copy per block read from the disk)
// and its lookup cost more on cold sequential and random 4 KiB reads than it saved on cached
// 1 MiB reads, where the faster block CRC alone already meets the target (docs/storage.md).
// Slots are allocated 1 MiB at a time as they are first needed, so an idle node pays nothing.
using System.Globalization;
using System.Runtime.InteropServices;

namespace Tern.Storage;

/// <summary>The process-wide cache of verified data blocks (see the top of the file).</summary>
internal sealed unsafe class BlockCache : IDisposable
{
    private const int BlockSize = PhysicalVolume.BlockSize;
    private const int ChunkSlots = 256; // 1 MiB of slots per allocation

    /// <summary>The cache every PhysicalVolume uses.</summary>
    public static BlockCache Shared => SharedCache.Value;

    // Made on first use, so that a bad TERN_BLOCK_CACHE surfaces as its own one-line error there.
    private static readonly Lazy<BlockCache> SharedCache = new(() => new BlockCache(ConfiguredSize(Environment.GetEnvironmentVariable("TERN_BLOCK_CACHE"))));

    private readonly Lock _lock = new();
    private readonly Dictionary<long, int> _map = [];
    private readonly List<nint> _chunks = [];
    private readonly long[] _keyOf;
    private readonly bool[] _referenced;
    private readonly Stack<int> _free = new(); // slots emptied by invalidation, taken first
    private int _slots; // slots allocated so far
    private int _hand;

    /// <summary>A cache of at most <paramref name="bytes"/> (rounded down to whole 1 MiB chunks; 0 = off).</summary>
    public BlockCache(long bytes)
    {
        int capacity = (int)Math.Min(int.MaxValue / 2, bytes / BlockSize / ChunkSlots * ChunkSlots);
        _keyOf = new long[capacity];
        _referenced = new bool[capacity];
    }

    /// <summary>Blocks the cache can hold.</summary>
    public int Capacity => _keyOf.Length;

    /// <summary>Blocks it holds now.</summary>
    public int Count
    {
        get
        {
            lock (_lock)
                return _map.Count;
        }
    }

    /// <summary>The default size: 0, off (see the top of the file); TERN_BLOCK_CACHE turns it on.</summary>
    public static long DefaultSize => 0;

    /// <summary>A sensible size when turned on: an eighth of the memory this process may use, at most 4 GiB.</summary>
    public static long SuggestedSize => Math.Min(4L << 30, GC.GetGCMemoryInfo().TotalAvailableMemoryBytes / 8);

    /// <summary>The size TERN_BLOCK_CACHE asks for (null or empty: the default); a bad value is an error that names it.</summary>
    public static long ConfiguredSize(string? setting)
    {
        if (string.IsNullOrWhiteSpace(setting))
            return DefaultSize;
        string s = setting.Trim();
        long unit = char.ToUpperInvariant(s[^1]) switch { 'K' => 1L << 10, 'M' => 1L << 20, 'G' => 1L << 30, _ => 1 };
        if (unit != 1)
            s = s[..^1];
        if (!long.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out long n) || n > long.MaxValue / unit)
            throw new StorageException($"TERN_BLOCK_CACHE={setting} is not a size (bytes, or a number with K, M or G; 0 turns the cache off)");
        return n * unit;
    }

    private static long Key(int pv, long block) => ((long)pv << 40) | block;

    private byte* Slot(int slot) => (byte*)_chunks[slot / ChunkSlots] + ((long)(slot % ChunkSlots) * BlockSize);

    /// <summary>
    /// Copies blocks [<paramref name="firstBlock"/>, +dest.Length / 4 KiB) of PV instance
    /// <paramref name="pv"/> into <paramref name="dest"/> when every one of them is held; false
    /// (and <paramref name="dest"/> unspecified) when any is not.
    /// </summary>
    public bool TryRead(int pv, long firstBlock, Span<byte> dest)
    {
        int count = dest.Length / BlockSize;
        if (Capacity == 0)
            return false;
        lock (_lock)
        {
            // Blocks read in order were cached in order, mostly into consecutive slots: each run
            // of consecutive slots is copied at once, as the kernel copies a file's pages.
            int runStart = 0, runSlot = -1;
            for (int i = 0; i < count; i++)
            {
                if (!_map.TryGetValue(Key(pv, firstBlock + i), out int slot))
                    return false;
                _referenced[slot] = true;
                if (i > runStart && (slot != runSlot + (i - runStart) || slot % ChunkSlots == 0))
                {
                    CopyOut(runSlot, dest.Slice(runStart * BlockSize, (i - runStart) * BlockSize));
                    runStart = i;
                }
                if (i == runStart)
                    runSlot = slot;
            }
            CopyOut(runSlot, dest.Slice(runStart * BlockSize, (count - runStart) * BlockSize));
        }
        return true;
    }

    // Copies consecutive slots, all in one chunk, from `slot` on.
    private void CopyOut(int slot, Span<byte> dest)
    {
        if (!dest.IsEmpty)
            new ReadOnlySpan<byte>(Slot(slot), dest.Length).CopyTo(dest);
    }

    /// <summary>
    /// Holds the blocks of <paramref name="data"/> (read from the disk and verified), except those
    /// listed in <paramref name="bad"/>, unless <paramref name="epoch"/> moved from
    /// <paramref name="seen"/> since the read began (a write or invalidation raced with it).
    /// </summary>
    public void Insert(int pv, long firstBlock, ReadOnlySpan<byte> data, List<int>? bad, ref long epoch, long seen)
    {
        if (Capacity == 0)
            return;
        int count = data.Length / BlockSize;
        lock (_lock)
        {
            if (epoch != seen)
                return;
            for (int i = 0; i < count; i++)
            {
                if (bad is not null && bad.Contains(i))
                    continue;
                long key = Key(pv, firstBlock + i);
                if (!_map.TryGetValue(key, out int slot))
                {
                    slot = TakeSlot(key);
                    _map[key] = slot;
                }
                _referenced[slot] = true;
                data.Slice(i * BlockSize, BlockSize).CopyTo(new Span<byte>(Slot(slot), BlockSize));
            }
        }
    }

    // A slot emptied by invalidation, else a new one while the budget allows, else the first
    // unreferenced one the hand finds (clearing referenced bits as it passes). Emptied slots go
    // first because their memory is already touched: a new page costs a page fault, as much as
    // reading the block again.
    private int TakeSlot(long key)
    {
        while (_free.TryPop(out int free))
        {
            if (_keyOf[free] == -1)
            {
                _keyOf[free] = key;
                return free;
            }
        }
        if (_slots % ChunkSlots == 0 && _slots < Capacity)
            _chunks.Add((nint)NativeMemory.AlignedAlloc(ChunkSlots * BlockSize, BlockSize));
        if (_slots < Capacity)
        {
            _keyOf[_slots] = key;
            return _slots++;
        }
        while (true)
        {
            int s = _hand;
            _hand = (_hand + 1) % Capacity;
            if (_referenced[s])
            {
                _referenced[s] = false;
                continue;
            }
            if (_keyOf[s] != -1)
                _map.Remove(_keyOf[s]);
            _keyOf[s] = key;
            return s;
        }
    }

    /// <summary>Drops blocks [<paramref name="firstBlock"/>, +<paramref name="count"/>) of PV instance <paramref name="pv"/> and bumps <paramref name="epoch"/>.</summary>
    public void Invalidate(int pv, long firstBlock, long count, ref long epoch)
    {
        lock (_lock)
        {
            epoch++;
            if (_map.Count == 0)
                return;
            if (count <= _map.Count)
            {
                for (long i = 0; i < count; i++)
                {
                    if (_map.Remove(Key(pv, firstBlock + i), out int slot))
                        Free(slot);
                }
                return;
            }
            long first = Key(pv, firstBlock), end = Key(pv, firstBlock) + count;
            for (int s = 0; s < _slots; s++)
            {
                if (_keyOf[s] >= first && _keyOf[s] < end)
                {
                    _map.Remove(_keyOf[s]);
                    Free(s);
                }
            }
        }
    }

    /// <summary>Drops every block of PV instance <paramref name="pv"/> (closed).</summary>
    public void Drop(int pv)
    {
        long none = 0;
        Invalidate(pv, 0, 1L << 40, ref none);
    }

    /// <summary>Drops everything (the benchmark's cold reads; tests).</summary>
    public void Clear()
    {
        lock (_lock)
        {
            _map.Clear();
            _free.Clear();
            for (int s = _slots - 1; s >= 0; s--)
                Free(s);
        }
    }

    // A freed slot keeps its memory and goes on the free stack (and the hand passes it as unreferenced).
    private void Free(int slot)
    {
        _keyOf[slot] = -1;
        _referenced[slot] = false;
        _free.Push(slot);
    }

    /// <summary>Frees the slots' memory.</summary>
    public void Dispose()
    {
        lock (_lock)
        {
            foreach (nint c in _chunks)
                NativeMemory.AlignedFree((void*)c);
            _chunks.Clear();
            _map.Clear();
            _free.Clear();
            _slots = 0;
        }
    }
}
