// One opened physical volume: its label, its metadata slots, and checksummed block I/O on its
// data area. The checksum area (one 4-byte tag per 4 KiB data block) is held in memory and its
// changed pages are written back before each fsync, so a flushed block and its tag are durable
// together. Tag 0 means "not written since the extent was allocated": such blocks read as zeros,
// which is how a new LV starts zeroed without writing its extents.
using System.Buffers.Binary;
using Tern.Storage.Format;

namespace Tern.Storage;

/// <summary>An opened physical volume.</summary>
public sealed partial class PhysicalVolume : IDisposable
{
    /// <summary>Size of a data block (the checksum granule).</summary>
    public const int BlockSize = PvLabel.BlockSize;

    private const int TagsPerPage = BlockSize / 4;

    private readonly uint[] _tags;
    private readonly HashSet<long> _dirtyTagPages = [];
    private readonly Lock _tagLock = new();
    private readonly SemaphoreSlim _flushLock = new(1, 1);
    private readonly SemaphoreSlim _armLock = new(1, 1);
    private readonly bool[] _armed;
    private int _armedCount;
    private MetadataCopy? _newest;

    // This instance's blocks in the shared BlockCache: its key there, and the epoch that every
    // invalidation bumps (see BlockCache.Insert).
    private static int s_instances;
    private readonly int _cacheId = Interlocked.Increment(ref s_instances);
    private long _cacheEpoch;

    /// <summary>The cache of verified blocks this instance uses (the process-wide one; tests give one of their own).</summary>
    internal BlockCache Cache
    {
        get => _cache;
        set
        {
            _cache.Drop(_cacheId);
            _cache = value;
        }
    }

    private BlockCache _cache = BlockCache.Shared;

    /// <summary>Drops this instance's blocks from its cache, so that the next reads go to the disk.</summary>
    internal void DropCachedBlocks() => Cache.Invalidate(_cacheId, 0, DataBlocksLimit, ref _cacheEpoch);

    private const long DataBlocksLimit = 1L << 40;

    private PhysicalVolume(IPhysicalVolumeIo io, PvLabel label, uint[] tags, MetadataCopy? newest)
    {
        Io = io;
        Label = label;
        _tags = tags;
        _newest = newest;
        _armed = new bool[label.TagRegions];
    }

    /// <summary>How many regions had their checksum tags recalculated on open because the PV was not closed cleanly.</summary>
    public int RecoveredRegions => _recovered.Count;

    /// <summary>Those regions (of <see cref="PvLabel.TagRegionSize"/> bytes of the data area).</summary>
    public IReadOnlyList<long> RecoveredRegionList => _recovered;

    private readonly List<long> _recovered = [];

    /// <summary>The underlying I/O.</summary>
    public IPhysicalVolumeIo Io { get; }

    /// <summary>The label.</summary>
    public PvLabel Label { get; }

    /// <summary>Identity.</summary>
    public Guid Id => Label.Id;

    /// <summary>Where the PV is, for messages.</summary>
    public string Name => Io.Name;

    /// <summary>The newest valid metadata copy, or null when the PV has never held any.</summary>
    public MetadataCopy? Metadata => _newest;

    /// <summary>The VG this PV's newest metadata says it belongs to.</summary>
    public VgMetadata? Vg => _newest?.Document.Vg;

    /// <summary>
    /// Set when an I/O on this PV failed; mirrored LVs stop using the PV until it is reopened.
    /// </summary>
    public bool Failed { get; internal set; }

    /// <summary>Labels <paramref name="io"/> as a new, empty PV owned by <paramref name="host"/>.</summary>
    public static async Task<PhysicalVolume> CreateAsync(IPhysicalVolumeIo io, string host, CancellationToken ct = default)
    {
        var label = PvLabel.Plan(Guid.NewGuid(), host, io.Length);
        // Clear the metadata and checksum areas: the file may hold anything (an old PV, an image).
        var zeros = new byte[1 << 20];
        for (long off = label.MetadataOffset; off < label.ChecksumOffset + label.ChecksumLength; off += zeros.Length)
        {
            int n = (int)Math.Min(zeros.Length, label.ChecksumOffset + label.ChecksumLength - off);
            await io.WriteAsync(off, zeros.AsMemory(0, n), ct).ConfigureAwait(false);
        }
        await io.FlushAsync(ct).ConfigureAwait(false);
        // The label goes last, so a crash mid-create leaves no label over half-cleared areas.
        await io.WriteAsync(0, label.Encode(), ct).ConfigureAwait(false);
        await io.FlushAsync(ct).ConfigureAwait(false);
        var pv = new PhysicalVolume(io, label, new uint[label.DataBlocks], null);
        await pv.WriteMetadataAsync(new PvMetadataDocument(), 0, ct).ConfigureAwait(false);
        return pv;
    }

    /// <summary>Opens a labelled PV; throws <see cref="NotAPhysicalVolumeException"/> when it is not one.</summary>
    public static async Task<PhysicalVolume> OpenAsync(IPhysicalVolumeIo io, CancellationToken ct = default)
    {
        if (io.Length < BlockSize)
            throw new NotAPhysicalVolumeException($"{io.Name} is not a Tern physical volume (too small)");
        var block = new byte[BlockSize];
        await io.ReadAsync(0, block, ct).ConfigureAwait(false);
        var label = PvLabel.Decode(block, io.Name);
        if (label.Size > io.Length)
            throw new NotAPhysicalVolumeException($"{io.Name}: the physical volume was {label.Size} bytes but is now {io.Length} (truncated)");
        var newest = await ReadNewestMetadataAsync(io, label, ct).ConfigureAwait(false);
        var raw = new byte[label.DataBlocks * 4];
        await io.ReadAsync(label.ChecksumOffset, raw, ct).ConfigureAwait(false);
        var tags = new uint[label.DataBlocks];
        for (long i = 0; i < tags.Length; i++)
            tags[i] = BinaryPrimitives.ReadUInt32LittleEndian(raw.AsSpan((int)(i * 4)));
        var pv = new PhysicalVolume(io, label, tags, newest);
        await pv.RecoverTagsAsync(ct).ConfigureAwait(false);
        return pv;
    }

    /// <summary>
    /// Reads only the label and the newest metadata: no checksum area, no recovery, no writes,
    /// so a host can report the PV while a command has it open. Throws
    /// <see cref="NotAPhysicalVolumeException"/> when it is not one.
    /// </summary>
    internal static async Task<(PvLabel Label, VgMetadata? Vg)> InspectAsync(IPhysicalVolumeIo io, CancellationToken ct)
    {
        if (io.Length < BlockSize)
            throw new NotAPhysicalVolumeException($"{io.Name} is not a Tern physical volume (too small)");
        var block = new byte[BlockSize];
        await io.ReadAsync(0, block, ct).ConfigureAwait(false);
        var label = PvLabel.Decode(block, io.Name);
        var newest = await ReadNewestMetadataAsync(io, label, ct).ConfigureAwait(false);
        return (label, newest?.Document.Vg);
    }

    // After an unclean stop, blocks of regions marked in the bitmap may hold new data under an old
    // tag (or the reverse): their data, old or new, is what the volume holds, so their tags are
    // recalculated from it. Blocks never written since allocation stay so (they read as zeros,
    // which is their old content).
    private async Task RecoverTagsAsync(CancellationToken ct)
    {
        var bitmap = new byte[Label.BitmapLength];
        await Io.ReadAsync(Label.BitmapOffset, bitmap, ct).ConfigureAwait(false);
        const int blocksPerRegion = (int)(PvLabel.TagRegionSize / BlockSize);
        var buffer = new byte[PvLabel.TagRegionSize];
        for (long r = 0; r < Label.TagRegions; r++)
        {
            if ((bitmap[r / 8] & (1 << (int)(r % 8))) == 0)
                continue;
            long first = r * blocksPerRegion;
            int count = (int)Math.Min(blocksPerRegion, Label.DataBlocks - first);
            await Io.ReadAsync(Label.DataOffset + (first * BlockSize), buffer.AsMemory(0, count * BlockSize), ct).ConfigureAwait(false);
            var fresh = new uint[count];
            for (int i = 0; i < count; i++)
                fresh[i] = _tags[first + i] == 0 ? 0 : Checksums.BlockTag(buffer.AsSpan(i * BlockSize, BlockSize));
            SetTags(first, fresh);
            _recovered.Add(r);
        }
        if (RecoveredRegions > 0)
        {
            await FlushAsync(ct).ConfigureAwait(false);
            await Io.WriteAsync(Label.BitmapOffset, new byte[Label.BitmapLength], ct).ConfigureAwait(false);
            await Io.FlushAsync(ct).ConfigureAwait(false);
        }
    }

    // Marks the regions of [dataOffset, dataOffset + length) in the bitmap, durably, before
    // their blocks are written. A region stays marked until the PV is closed cleanly.
    private async ValueTask ArmAsync(long dataOffset, long length, CancellationToken ct)
    {
        long firstRegion = dataOffset / PvLabel.TagRegionSize, lastRegion = (dataOffset + length - 1) / PvLabel.TagRegionSize;
        bool all = true;
        for (long r = firstRegion; r <= lastRegion && all; r++)
            all = Volatile.Read(ref _armed[r]);
        if (all)
            return;
        await _armLock.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            var blocks = new SortedSet<long>();
            for (long r = firstRegion; r <= lastRegion; r++)
            {
                if (!_armed[r])
                {
                    _armed[r] = true;
                    _armedCount++;
                    blocks.Add(r / 8 / BlockSize);
                }
            }
            foreach (long b in blocks)
                await Io.WriteAsync(Label.BitmapOffset + (b * BlockSize), await BitmapBlockAsync(b, set: true, ct).ConfigureAwait(false), ct).ConfigureAwait(false);
            if (blocks.Count > 0)
                await Io.FlushAsync(ct).ConfigureAwait(false);
        }
        finally
        {
            _armLock.Release();
        }
    }

    // One bitmap block as stored, with this instance's armed regions set (or cleared). Read
    // first, because in a cluster other nodes hold instances of the same PV and arm their own
    // LVs' regions in the same block: each changes only its own bits.
    private async ValueTask<byte[]> BitmapBlockAsync(long block, bool set, CancellationToken ct)
    {
        var bytes = new byte[BlockSize];
        await Io.ReadAsync(Label.BitmapOffset + (block * BlockSize), bytes, ct).ConfigureAwait(false);
        long firstRegion = block * BlockSize * 8;
        for (long r = firstRegion; r < Math.Min(_armed.Length, firstRegion + (BlockSize * 8)); r++)
        {
            if (!_armed[r])
                continue;
            byte bit = (byte)(1 << (int)((r - firstRegion) % 8));
            if (set)
                bytes[(r - firstRegion) / 8] |= bit;
            else
                bytes[(r - firstRegion) / 8] &= (byte)~bit;
        }
        return bytes;
    }

    // An orderly close clears the bits of the regions this instance armed, and only those.
    private async ValueTask DisarmAsync(CancellationToken ct)
    {
        var blocks = new SortedSet<long>();
        for (long r = 0; r < _armed.Length; r++)
        {
            if (_armed[r])
                blocks.Add(r / 8 / BlockSize);
        }
        foreach (long b in blocks)
            await Io.WriteAsync(Label.BitmapOffset + (b * BlockSize), await BitmapBlockAsync(b, set: false, ct).ConfigureAwait(false), ct).ConfigureAwait(false);
    }

    /// <summary>Every valid metadata copy on the PV, newest last.</summary>
    public static async Task<IReadOnlyList<MetadataCopy>> ReadMetadataCopiesAsync(IPhysicalVolumeIo io, PvLabel label, CancellationToken ct = default)
    {
        var copies = new List<MetadataCopy>();
        var buf = new byte[label.MetadataSlotSize];
        for (int i = 0; i < label.MetadataSlots; i++)
        {
            await io.ReadAsync(label.MetadataOffset + ((long)i * label.MetadataSlotSize), buf, ct).ConfigureAwait(false);
            if (MetadataSlot.TryDecode(buf, label.Id, i) is { } copy)
                copies.Add(copy);
        }
        copies.Sort((a, b) => a.Seqno.CompareTo(b.Seqno));
        return copies;
    }

    private static async Task<MetadataCopy?> ReadNewestMetadataAsync(IPhysicalVolumeIo io, PvLabel label, CancellationToken ct)
    {
        var copies = await ReadMetadataCopiesAsync(io, label, ct).ConfigureAwait(false);
        return copies.Count == 0 ? null : copies[^1];
    }

    /// <summary>
    /// Commits a new metadata copy: written into a slot that does not hold the newest valid copy,
    /// then fsynced. Until the fsync completes the previous copy stays the newest valid one.
    /// </summary>
    public async Task WriteMetadataAsync(PvMetadataDocument doc, long seqno, CancellationToken ct = default)
    {
        int slot = _newest is null ? 0 : (_newest.Slot + 1) % Label.MetadataSlots;
        byte[] bytes = MetadataSlot.Encode(Id, seqno, doc, Label.MetadataSlotSize);
        await Io.WriteAsync(Label.MetadataOffset + ((long)slot * Label.MetadataSlotSize), bytes, ct).ConfigureAwait(false);
        await Io.FlushAsync(ct).ConfigureAwait(false);
        _newest = new MetadataCopy(slot, seqno, doc);
    }

    /// <summary>
    /// Reads whole blocks from the data area at <paramref name="dataOffset"/> (block aligned) and
    /// verifies each against its tag. Blocks never written since allocation read as zeros. Returns
    /// the indexes (within <paramref name="buffer"/>) of blocks whose data does not match.
    /// </summary>
    public ValueTask<List<int>?> ReadBlocksAsync(long dataOffset, Memory<byte> buffer, CancellationToken ct = default) =>
        ReadBlocksAsync(dataOffset, buffer, verify: true, ct);

    /// <summary>
    /// Reads whole blocks as <see cref="ReadBlocksAsync(long, Memory{byte}, CancellationToken)"/>
    /// does; with <paramref name="verify"/> false (an LV created with checksums off) blocks are
    /// not verified, only those never written are zeroed, and null is returned.
    /// </summary>
    public ValueTask<List<int>?> ReadBlocksAsync(long dataOffset, Memory<byte> buffer, bool verify, CancellationToken ct = default) =>
        ReadBlocksAsync(dataOffset, buffer, verify, cached: true, ct);

    /// <summary>
    /// Reads whole blocks; with <paramref name="cached"/> they may come from the
    /// <see cref="BlockCache"/> (every block verified when it came from the disk) and blocks read
    /// from the disk and found good are added to it; without, they come from the disk (scrub).
    /// </summary>
    internal ValueTask<List<int>?> ReadBlocksAsync(long dataOffset, Memory<byte> buffer, bool verify, bool cached, CancellationToken ct)
    {
        CheckRange(dataOffset, buffer.Length);
        if (!cached)
            return ReadFromDiskAsync(dataOffset, buffer, verify, ct);
        long first = dataOffset / BlockSize;
        if (Cache.TryRead(_cacheId, first, buffer.Span))
            return new ValueTask<List<int>?>((List<int>?)null);
        if (buffer.Length < CacheMinRead)
            return ReadFromDiskAsync(dataOffset, buffer, verify, ct);
        long seen = Volatile.Read(ref _cacheEpoch);
        var read = ReadFromDiskAsync(dataOffset, buffer, verify, ct);
        if (!read.IsCompletedSuccessfully)
            return CacheWhenReadAsync(read, first, buffer, seen);
        var bad = read.Result;
        Cache.Insert(_cacheId, first, buffer.Span, bad, ref _cacheEpoch, seen);
        return new ValueTask<List<int>?>(bad);
    }

    // Reads from the disk shorter than this are verified and served but not cached: the CRC of
    // one 4 KiB block costs less (0.08 us) than putting it in the cache (a slot to take and 4 KiB
    // to copy into memory that is cold), so only a block read again from the cache more than
    // once would repay it; a large read's blocks are cheaper to hold than to verify again.
    private const int CacheMinRead = PieceBlocks * BlockSize;

    private async ValueTask<List<int>?> CacheWhenReadAsync(ValueTask<List<int>?> read, long first, Memory<byte> buffer, long seen)
    {
        var bad = await read.ConfigureAwait(false);
        Cache.Insert(_cacheId, first, buffer.Span, bad, ref _cacheEpoch, seen);
        return bad;
    }

    private ValueTask<List<int>?> ReadFromDiskAsync(long dataOffset, Memory<byte> buffer, bool verify, CancellationToken ct)
    {
        long first = dataOffset / BlockSize;
        int count = buffer.Length / BlockSize;
        // A large verified read is taken in pieces, each verified as soon as it is read, while
        // its bytes are still in this core's cache, instead of reading the whole request out of
        // the cache a second time. Each piece completes here when the I/O does (a local file);
        // only an I/O that is really pending goes through an async continuation.
        int piece = verify ? PieceBlocks : count;
        if (verify && count >= HelperShare * PieceBlocks && ReadWithHelper(dataOffset, buffer, out var helped))
            return new ValueTask<List<int>?>(helped);
        List<int>? bad = null;
        for (int at = 0; at < count; at += piece)
        {
            int n = Math.Min(piece, count - at);
            var span = buffer.Slice(at * BlockSize, n * BlockSize);
            var read = Io.ReadAsync(Label.DataOffset + dataOffset + ((long)at * BlockSize), span, ct);
            if (!read.IsCompletedSuccessfully)
                return ReadBlocksPendingAsync(read, dataOffset, buffer, verify, at, bad, ct);
            read.GetAwaiter().GetResult();
            if (Verify(span.Span, first + at, at, n, verify) is { } found)
                (bad ??= []).AddRange(found);
        }
        return new ValueTask<List<int>?>(bad);
    }

    // The rest of ReadBlocksAsync once the read of the piece at `at` did not complete at once.
    // Such an io answers asynchronously (a remote PV): the remaining pieces are all asked for
    // now, so they travel pipelined instead of one round trip each, and each is verified as it
    // arrives. Every read is awaited before returning, so none still fills the caller's buffer.
    private async ValueTask<List<int>?> ReadBlocksPendingAsync(ValueTask pending, long dataOffset, Memory<byte> buffer, bool verify, int at, List<int>? bad, CancellationToken ct)
    {
        long first = dataOffset / BlockSize;
        int count = buffer.Length / BlockSize;
        int piece = verify ? PieceBlocks : count;
        var reads = new List<(Task Read, int At)> { (pending.AsTask(), at) };
        for (int next = at + piece; next < count; next += piece)
        {
            int n = Math.Min(piece, count - next);
            reads.Add((Io.ReadAsync(Label.DataOffset + dataOffset + ((long)next * BlockSize), buffer.Slice(next * BlockSize, n * BlockSize), ct).AsTask(), next));
        }
        Exception? error = null;
        foreach (var (read, from) in reads)
        {
            try
            {
                await read.ConfigureAwait(false);
            }
            catch (Exception e)
            {
                error ??= e;
                continue;
            }
            int n = Math.Min(piece, count - from);
            if (error is null && Verify(buffer.Span.Slice(from * BlockSize, n * BlockSize), first + from, from, n, verify) is { } found)
                (bad ??= []).AddRange(found);
        }
        if (error is not null)
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(error);
        return bad;
    }

    // 64 KiB: small enough that a piece just copied out of the page cache is still in L2 when
    // its CRCs are taken, large enough that the extra read calls cost little.
    private const int PieceBlocks = 16;

    // Zeroes never-written blocks and, when asked, checks the others against their tags. Returns
    // the indexes (counted from `index`) of blocks that do not match.
    private List<int>? Verify(Span<byte> span, long firstTag, int index, int count, bool verify)
    {
        List<int>? bad = null;
        var tags = _tags.AsSpan((int)firstTag, count);
        for (int i = 0; i < count; i++)
        {
            uint tag = tags[i];
            if (tag == 0)
                span.Slice(i * BlockSize, BlockSize).Clear();
            else if (verify && Checksums.BlockTag(span.Slice(i * BlockSize, BlockSize)) != tag)
                (bad ??= []).Add(index + i);
        }
        return bad;
    }

    /// <summary>Writes whole blocks at <paramref name="dataOffset"/> (block aligned) and records their tags.</summary>
    public ValueTask WriteBlocksAsync(long dataOffset, ReadOnlyMemory<byte> data, CancellationToken ct = default) =>
        WriteBlocksAsync(dataOffset, data, checksum: true, ct);

    /// <summary>
    /// Writes whole blocks; with <paramref name="checksum"/> false (an LV created with checksums
    /// off) no CRC is computed: a block's tag only records that it was written
    /// (<see cref="UncheckedTag"/>), so it no longer reads as zeros.
    /// </summary>
    public async ValueTask WriteBlocksAsync(long dataOffset, ReadOnlyMemory<byte> data, bool checksum, CancellationToken ct = default)
    {
        CheckRange(dataOffset, data.Length);
        long first = dataOffset / BlockSize;
        int count = data.Length / BlockSize;
        try
        {
            if (!checksum)
            {
                await Io.WriteAsync(Label.DataOffset + dataOffset, data, ct).ConfigureAwait(false);
                MarkWritten(first, count);
                return;
            }
            var fresh = new uint[count];
            for (int i = 0; i < count; i++)
                fresh[i] = Checksums.BlockTag(data.Span.Slice(i * BlockSize, BlockSize));
            await ArmAsync(dataOffset, data.Length, ct).ConfigureAwait(false);
            await Io.WriteAsync(Label.DataOffset + dataOffset, data, ct).ConfigureAwait(false);
            SetTags(first, fresh);
        }
        finally
        {
            // Also after a failed write, whose blocks may hold anything now.
            Cache.Invalidate(_cacheId, first, count, ref _cacheEpoch);
        }
    }

    /// <summary>
    /// Copies whole blocks with their tags, verbatim, from one PV's data area to another's: a good
    /// block stays good, a block never written stays "never written" (and is not read), and a bad
    /// block stays detectably bad. Used by resync and pvmove; <paramref name="buffer"/> is scratch
    /// space of at least <paramref name="length"/> bytes.
    /// </summary>
    public static async ValueTask CopyRawAsync(PhysicalVolume src, long srcOffset, PhysicalVolume dst, long dstOffset, int length, byte[] buffer, CancellationToken ct = default)
    {
        src.CheckRange(srcOffset, length);
        dst.CheckRange(dstOffset, length);
        int count = length / BlockSize;
        var tags = new uint[count];
        lock (src._tagLock)
            Array.Copy(src._tags, srcOffset / BlockSize, tags, 0, count);
        try
        {
            if (Array.Exists(tags, t => t != 0))
            {
                await dst.ArmAsync(dstOffset, length, ct).ConfigureAwait(false);
                await src.Io.ReadAsync(src.Label.DataOffset + srcOffset, buffer.AsMemory(0, length), ct).ConfigureAwait(false);
                await dst.Io.WriteAsync(dst.Label.DataOffset + dstOffset, buffer.AsMemory(0, length), ct).ConfigureAwait(false);
            }
            dst.SetTags(dstOffset / BlockSize, tags);
        }
        finally
        {
            dst.Cache.Invalidate(dst._cacheId, dstOffset / BlockSize, count, ref dst._cacheEpoch);
        }
    }

    /// <summary>
    /// Re-reads the stored checksum tags of the blocks in [<paramref name="dataOffset"/>,
    /// +<paramref name="length"/>) from the volume, for blocks another instance of this PV (a
    /// view on another node, see <see cref="VolumeGroup.OpenView"/>) may have written and flushed
    /// since this one read them. Tag pages this instance changed and has not flushed yet are kept.
    /// </summary>
    public async ValueTask ReloadTagsAsync(long dataOffset, long length, CancellationToken ct = default)
    {
        CheckRange(dataOffset, length);
        if (length == 0)
            return;
        long firstPage = dataOffset / BlockSize / TagsPerPage, lastPage = ((dataOffset + length) / BlockSize - 1) / TagsPerPage;
        var page = new byte[BlockSize];
        for (long p = firstPage; p <= lastPage; p++)
        {
            await Io.ReadAsync(Label.ChecksumOffset + (p * BlockSize), page, ct).ConfigureAwait(false);
            lock (_tagLock)
            {
                if (_dirtyTagPages.Contains(p))
                    continue;
                long first = p * TagsPerPage;
                int n = (int)Math.Min(TagsPerPage, _tags.Length - first);
                for (int i = 0; i < n; i++)
                    _tags[first + i] = BinaryPrimitives.ReadUInt32LittleEndian(page.AsSpan(i * 4));
            }
        }
        // The other instance changed the data with the tags: cached blocks of the range are stale.
        Cache.Invalidate(_cacheId, dataOffset / BlockSize, length / BlockSize, ref _cacheEpoch);
    }

    /// <summary>Marks blocks as not written since allocation: they read as zeros until written.</summary>
    public void ResetBlocks(long dataOffset, long length)
    {
        CheckRange(dataOffset, length);
        long first = dataOffset / BlockSize;
        lock (_tagLock)
        {
            Array.Clear(_tags, (int)first, (int)(length / BlockSize));
            for (long p = first / TagsPerPage; p <= (first + (length / BlockSize) - 1) / TagsPerPage; p++)
                _dirtyTagPages.Add(p);
        }
        Cache.Invalidate(_cacheId, first, length / BlockSize, ref _cacheEpoch);
    }

    /// <summary>The stored tag of a block (0 = not written since allocation).</summary>
    internal uint TagOf(long dataOffset) => _tags[dataOffset / BlockSize];

    /// <summary>The tag of a block written by an LV with checksums off: "written", not a CRC.</summary>
    public const uint UncheckedTag = 1;

    // Blocks of an LV with checksums off: only a first write changes the tag (from "never written").
    private void MarkWritten(long first, int count)
    {
        if (!_tags.AsSpan((int)first, count).Contains(0u))
            return;
        lock (_tagLock)
        {
            var tags = _tags.AsSpan((int)first, count);
            for (int i = 0; i < count; i++)
            {
                if (tags[i] == 0)
                    tags[i] = UncheckedTag;
            }
            for (long p = first / TagsPerPage; p <= (first + count - 1) / TagsPerPage; p++)
                _dirtyTagPages.Add(p);
        }
    }

    private void SetTags(long first, ReadOnlySpan<uint> fresh)
    {
        lock (_tagLock)
        {
            fresh.CopyTo(_tags.AsSpan((int)first, fresh.Length));
            for (long p = first / TagsPerPage; p <= (first + fresh.Length - 1) / TagsPerPage; p++)
                _dirtyTagPages.Add(p);
        }
    }

    /// <summary>Writes back changed checksum pages, then fsyncs: everything written before the call is durable after it.</summary>
    public async ValueTask FlushAsync(CancellationToken ct = default)
    {
        await _flushLock.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            long[] pages;
            lock (_tagLock)
            {
                pages = [.. _dirtyTagPages];
                _dirtyTagPages.Clear();
            }
            Array.Sort(pages);
            var page = new byte[BlockSize];
            foreach (long p in pages)
            {
                lock (_tagLock)
                {
                    long first = p * TagsPerPage;
                    int n = (int)Math.Min(TagsPerPage, _tags.Length - first);
                    for (int i = 0; i < n; i++)
                        BinaryPrimitives.WriteUInt32LittleEndian(page.AsSpan(i * 4), _tags[first + i]);
                    page.AsSpan(n * 4).Clear();
                }
                await Io.WriteAsync(Label.ChecksumOffset + (p * BlockSize), page, ct).ConfigureAwait(false);
            }
            await Io.FlushAsync(ct).ConfigureAwait(false);
        }
        finally
        {
            _flushLock.Release();
        }
    }

    private void CheckRange(long dataOffset, long length)
    {
        if (dataOffset < 0 || length < 0 || dataOffset % BlockSize != 0 || length % BlockSize != 0 || dataOffset + length > Label.DataLength)
            throw new ArgumentOutOfRangeException(nameof(dataOffset), $"{Name}: block I/O at {dataOffset}+{length} is outside the data area or not 4 KiB aligned");
    }

    /// <summary>Closes the PV, first writing back changed checksum pages so that an orderly close keeps every completed write.</summary>
    public void Dispose()
    {
        bool dirty;
        lock (_tagLock)
            dirty = _dirtyTagPages.Count > 0;
        if ((dirty || _armedCount > 0) && !Failed)
        {
            try
            {
                // Tags first, then the bitmap that says they may be stale.
                FlushAsync().AsTask().GetAwaiter().GetResult();
                DisarmAsync(CancellationToken.None).AsTask().GetAwaiter().GetResult();
                Io.FlushAsync().AsTask().GetAwaiter().GetResult();
            }
            catch (IOException)
            {
                // Closing anyway: the next open recalculates the marked regions' tags, as after a crash.
            }
        }
        Cache.Drop(_cacheId);
        _armLock.Dispose();
        _flushLock.Dispose();
        Io.Dispose();
    }
}
