// A logical volume as a block device. A request is cut into runs that stay contiguous on each
// PV (extent and stripe-unit boundaries), each run is read or written as whole 4 KiB blocks
// (partial blocks are read, merged and rewritten), and every block is verified against its
// CRC32C tag on read. On a mirror a bad block is served and rewritten from a leg that verifies;
// both events are reported through Integrity. Requests on one LV are serialized, which keeps a
// read-modify-write of a partial block atomic with respect to other requests.
using System.Buffers;
using Tern.Storage.Format;
using Tern.Storage.Remote;

namespace Tern.Storage;

/// <summary>A checksum event on one block.</summary>
/// <param name="LvOffset">Byte offset of the block in the LV.</param>
/// <param name="Pv">The PV holding the bad copy.</param>
/// <param name="PvDataOffset">Offset of the bad copy in the PV's data area.</param>
/// <param name="Repaired">Whether the copy was rewritten from a good one.</param>
public sealed record IntegrityEvent(long LvOffset, string Pv, long PvDataOffset, bool Repaired);

/// <summary>Outcome of a scrub.</summary>
/// <param name="BlocksChecked">Blocks read and verified (on every copy).</param>
/// <param name="Repaired">Bad copies rewritten from a good one.</param>
/// <param name="Unrepairable">Blocks with no good copy.</param>
/// <param name="Resynced">Blocks whose mirror copies were each valid but differed, made equal to the first leg.</param>
public sealed record ScrubResult(long BlocksChecked, long Repaired, long Unrepairable, long Resynced);

/// <summary>An opened logical volume.</summary>
public sealed class LogicalVolume : IBlockDevice, IDisposable
{
    /// <summary>Block size of the device: the checksum granule.</summary>
    public const int BlockSize = PhysicalVolume.BlockSize;

    private const int MaxRun = 1 << 20;

    private readonly VolumeGroup _vg;
    private readonly Guid _id;
    private readonly IoGate _io = new();
    private readonly List<IntegrityEvent> _events = [];
    private readonly HashSet<(long Segment, long Region)> _unflushed = [];
    private readonly Placement _placement = new();

    internal LogicalVolume(VolumeGroup vg, Guid id)
    {
        _vg = vg;
        _id = id;
    }

    internal Guid Id => _id;

    internal IoGate IoLock => _io;

    /// <summary>Set on the instance a snapshot store writes the LV through; any other instance may no longer write once the LV has snapshots.</summary>
    internal bool IsStoreBase { get; init; }

    /// <summary>
    /// The writer this instance writes as (the LV and its VM incarnation's generation), or null.
    /// When set, its data writes, repairs and flushes carry it down to the PVs, whose fences
    /// refuse it once a newer generation owns the LV (<see cref="FencedWriteException"/>).
    /// </summary>
    public WriterId? Writer { get; set; }

    private PvWriterScope WriterScope() =>
        (Writer ?? (_vg.WriterGeneration is { } g ? new WriterId(_id, g) : null)) is { } w ? new PvWriterScope(PvWriter.Use(w)) : default;

    private readonly struct PvWriterScope(IDisposable? inner) : IDisposable
    {
        public void Dispose() => inner?.Dispose();
    }

    /// <summary>The LV's current metadata entry.</summary>
    public LvEntry Entry => Current().Entry ?? throw new StorageException("the logical volume was removed");

    // The entry of the current metadata, looked up once per metadata version rather than per request.
    private sealed record Snapshot(VgMetadata Metadata, LvEntry? Entry, bool HasStore);

    private Snapshot? _current;

    private Snapshot Current()
    {
        var md = _vg.Metadata;
        var cached = Volatile.Read(ref _current);
        if (cached is not null && ReferenceEquals(cached.Metadata, md))
            return cached;
        LvEntry? entry = null;
        foreach (var l in md.Lvs)
        {
            if (l.Id == _id)
            {
                entry = l;
                break;
            }
        }
        var fresh = new Snapshot(md, entry, md.ThinPools is { Count: > 0 } && md.FindStore(_id) is not null);
        Volatile.Write(ref _current, fresh);
        return fresh;
    }

    /// <summary>Name as VG/LV.</summary>
    public string Name => $"{_vg.Name}/{Entry.Name}";

    /// <inheritdoc/>
    public long Length
    {
        get
        {
            var c = Current();
            return (c.Entry ?? throw new StorageException("the logical volume was removed")).Extents * c.Metadata.ExtentSize;
        }
    }

    /// <summary>Checksum mismatches seen so far, repaired or not.</summary>
    public IReadOnlyList<IntegrityEvent> IntegrityEvents
    {
        get
        {
            lock (_events)
                return [.. _events];
        }
    }

    /// <summary>Raised on every checksum mismatch.</summary>
    public event Action<IntegrityEvent>? Integrity;

    private readonly record struct Target(PhysicalVolume Pv, long Offset, int Area);

    // Where one contiguous run lives: the copies that may be read; those that are only written
    // (stale or out-of-date mirror legs, pvmove targets); and the mirror legs that cannot be
    // written at all (missing or failed PV) and are not yet recorded as out of date for the run's
    // write-intent region.
    private sealed class Placement
    {
        public List<Target> Readable { get; } = new(4);

        public List<Target> WriteOnly { get; } = new(2);

        public List<int> Unwritable { get; } = new(2);

        public long SegmentStart { get; set; }

        public long Region { get; set; }

        public bool Checksums { get; set; } = true;

        public void Clear()
        {
            Readable.Clear();
            WriteOnly.Clear();
            Unwritable.Clear();
        }
    }

    // Maps LV bytes [offset, offset + len) to the placement of its first contiguous run and
    // returns the run's length.
    private long Map(long offset, long len, Placement p)
    {
        p.Clear();
        var (md, found, _) = Current();
        long es = md.ExtentSize;
        var lv = found ?? throw new StorageException("the logical volume was removed");
        long le = offset / es;
        var segs = lv.Segments;
        int lo = 0, hi = segs.Count - 1;
        while (lo < hi)
        {
            int mid = (lo + hi + 1) / 2;
            if (segs[mid].StartExtent <= le)
                lo = mid;
            else
                hi = mid - 1;
        }
        var seg = segs[lo];
        long inSeg = offset - (seg.StartExtent * es);
        long run = Math.Min(len, ((seg.StartExtent + seg.Extents) * es) - offset);
        long inArea = inSeg;
        int first = 0, count = seg.Areas.Count;
        if (seg.Type == SegmentType.Striped)
        {
            long su = seg.StripeSize;
            long unit = inSeg / su;
            inArea = (unit / seg.Areas.Count * su) + (inSeg % su);
            first = (int)(unit % seg.Areas.Count);
            count = 1;
            run = Math.Min(run, su - (inSeg % su));
        }
        bool mirror = seg.Type == SegmentType.Mirror;
        long region = inArea / VgMetadata.RegionSize;
        if (mirror)
            run = Math.Min(run, VgMetadata.RegionSize - (inArea % VgMetadata.RegionSize));
        p.SegmentStart = seg.StartExtent;
        p.Region = region;
        p.Checksums = !lv.ChecksumsOff;
        for (int i = first; i < first + count; i++)
        {
            var a = seg.Areas[i];
            bool outOfDate = a.Stale || (a.DirtyRegions?.Contains(region) ?? false);
            if (!_vg.Pvs.TryGetValue(a.Pv, out var pv) || (mirror && pv.Failed))
            {
                if (!mirror)
                    throw new IOException($"{Name}: physical volume {PvName(a.Pv)} is missing");
                if (!outOfDate)
                    p.Unwritable.Add(i);
                continue;
            }
            var t = new Target(pv, (a.StartExtent * es) + inArea, i);
            (outOfDate ? p.WriteOnly : p.Readable).Add(t);
            if (a.MoveTo is { } dest)
            {
                var destPv = _vg.Pvs.GetValueOrDefault(dest.Pv) ?? throw new IOException($"{Name}: pvmove target {PvName(dest.Pv)} is missing");
                p.WriteOnly.Add(new Target(destPv, (dest.StartExtent * es) + inArea, -1));
            }
        }
        return Math.Min(run, MaxRun);
    }

    private string PvName(Guid id) => _vg.Metadata.Pvs.FirstOrDefault(p => p.Id == id)?.Path ?? id.ToString();

    private void CheckBounds(long offset, int length)
    {
        if (offset < 0 || length < 0 || offset > Length - length)
            throw new ArgumentOutOfRangeException(nameof(offset), $"{Name}: I/O at {offset}+{length} is outside the volume ({Length} bytes)");
    }

    /// <inheritdoc/>
    public ValueTask ReadAsync(long offset, Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        // The common case costs no async machinery: a whole-block request, the LV free at once,
        // and every run read from its first copy, complete on return and verified. Anything else
        // (a partial block, a busy LV, a pending or failed I/O, a bad block) takes the full path,
        // from the run where it happened on.
        if (offset % BlockSize != 0 || buffer.Length % BlockSize != 0 || !_io.TryEnter())
            return ReadFullAsync(offset, buffer, locked: false, started: null, cancellationToken);
        bool handedOver = false;
        try
        {
            CheckBounds(offset, buffer.Length);
            var place = _placement; // requests are serialized by _io
            while (!buffer.IsEmpty)
            {
                int run = (int)Map(offset, buffer.Length, place);
                var first = place.Readable.Count > 0 ? place.Readable[0] : default;
                ValueTask<List<int>?>? started = null;
                if (first.Pv is { Failed: false })
                {
                    try
                    {
                        var read = first.Pv.ReadBlocksAsync(first.Offset, buffer[..run], place.Checksums, cancellationToken);
                        if (read.IsCompletedSuccessfully && read.Result is null)
                        {
                            offset += run;
                            buffer = buffer[run..];
                            continue;
                        }
                        started = read;
                    }
                    catch (IOException)
                    {
                        // The full path reads the run again and handles the failure.
                    }
                }
                handedOver = true;
                return ReadFullAsync(offset, buffer, locked: true, started is { } begun ? (begun, run) : null, cancellationToken);
            }
            return default;
        }
        finally
        {
            if (!handedOver)
                _io.Release();
        }
    }

    // The full read path. With `locked`, the caller holds _io and the request is aligned and
    // checked; `started` is the read of the first run (of `Run` bytes, placed as _placement
    // says) from its first copy, already under way.
    private async ValueTask ReadFullAsync(long offset, Memory<byte> buffer, bool locked, (ValueTask<List<int>?> Read, int Run)? started, CancellationToken cancellationToken)
    {
        using var writer = WriterScope(); // a read may repair a bad copy: that is a write
        if (!locked)
            await _io.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (locked)
            {
                if (started is var (read, run))
                {
                    await ReadRunAsync(offset, buffer[..run], _placement.Readable, _placement.Checksums, read, cancellationToken).ConfigureAwait(false);
                    offset += run;
                    buffer = buffer[run..];
                }
                await ReadAlignedAsync(offset, buffer, cancellationToken).ConfigureAwait(false);
                return;
            }
            CheckBounds(offset, buffer.Length);
            if (offset % BlockSize == 0 && buffer.Length % BlockSize == 0)
            {
                await ReadAlignedAsync(offset, buffer, cancellationToken).ConfigureAwait(false);
                return;
            }
            long start = offset / BlockSize * BlockSize;
            long end = (offset + buffer.Length + BlockSize - 1) / BlockSize * BlockSize;
            byte[] tmp = ArrayPool<byte>.Shared.Rent((int)(end - start));
            try
            {
                await ReadAlignedAsync(start, tmp.AsMemory(0, (int)(end - start)), cancellationToken).ConfigureAwait(false);
                tmp.AsMemory((int)(offset - start), buffer.Length).CopyTo(buffer);
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(tmp);
            }
        }
        finally
        {
            _io.Release();
        }
    }

    /// <inheritdoc/>
    public async ValueTask WriteAsync(long offset, ReadOnlyMemory<byte> data, CancellationToken cancellationToken = default)
    {
        using var writer = WriterScope();
        await _io.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            CheckBounds(offset, data.Length);
            if (!IsStoreBase && Current().HasStore)
                throw new StorageException($"{Name} has snapshots now and is written through its snapshot store; reopen it (VolumeGroup.OpenDeviceAsync)");
            if (offset % BlockSize == 0 && data.Length % BlockSize == 0)
            {
                await WriteAlignedAsync(offset, data, cancellationToken).ConfigureAwait(false);
                return;
            }
            long start = offset / BlockSize * BlockSize;
            long end = (offset + data.Length + BlockSize - 1) / BlockSize * BlockSize;
            int len = (int)(end - start);
            byte[] tmp = ArrayPool<byte>.Shared.Rent(len);
            try
            {
                var merged = tmp.AsMemory(0, len);
                await ReadAlignedAsync(start, merged[..BlockSize], cancellationToken).ConfigureAwait(false);
                if (len > BlockSize)
                    await ReadAlignedAsync(end - BlockSize, merged[(len - BlockSize)..], cancellationToken).ConfigureAwait(false);
                data.CopyTo(merged[(int)(offset - start)..]);
                await WriteAlignedAsync(start, merged, cancellationToken).ConfigureAwait(false);
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(tmp);
            }
        }
        finally
        {
            _io.Release();
        }
    }

    /// <summary>
    /// Flushes every PV holding a copy of the LV, all legs in parallel. A mirror leg whose flush
    /// fails is taken out of service, and the regions written since the previous flush are recorded
    /// as out of date on it (write intent), so the flush still succeeds on the legs that remain.
    /// </summary>
    public async ValueTask FlushAsync(CancellationToken cancellationToken = default)
    {
        using var writer = WriterScope();
        HashSet<(long Segment, long Region)> written;
        lock (_unflushed)
        {
            written = [.. _unflushed];
            _unflushed.Clear();
        }
        var entry = Entry;
        var ids = entry.Segments.SelectMany(s => s.Areas).SelectMany(a => a.MoveTo is { } m ? [a.Pv, m.Pv] : new[] { a.Pv }).Distinct();
        var pvs = ids.Select(id => _vg.Pvs.GetValueOrDefault(id)).OfType<PhysicalVolume>().Where(p => !p.Failed).ToList();
        var results = await Task.WhenAll(pvs.Select(async pv =>
        {
            try
            {
                await pv.FlushAsync(cancellationToken).ConfigureAwait(false);
                return null;
            }
            catch (IOException e) when (e is not FencedWriteException)
            {
                return e;
            }
        })).ConfigureAwait(false);
        var failed = pvs.Where((_, i) => results[i] is not null).ToList();
        if (failed.Count == 0)
            return;
        bool mirrored = entry.Segments.All(s => s.Type == SegmentType.Mirror);
        if (!mirrored)
            throw new IOException($"{Name}: flush failed on {failed[0].Name}", results.First(r => r is not null));
        foreach (var pv in failed)
            pv.Failed = true;
        foreach (var (segStart, region) in written)
        {
            var seg = entry.Segments.FirstOrDefault(s => s.StartExtent == segStart);
            if (seg is null)
                continue;
            int[] legs = [.. seg.Areas.Select((a, i) => (a, i)).Where(x => failed.Any(f => f.Id == x.a.Pv)).Select(x => x.i)];
            if (legs.Length == seg.Areas.Count)
                throw new IOException($"{Name}: flush failed on every copy", results.First(r => r is not null));
            if (legs.Length > 0)
                await _vg.MarkDirtyAsync(_id, segStart, legs, region, cancellationToken).ConfigureAwait(false);
        }
    }

    private async ValueTask ReadAlignedAsync(long offset, Memory<byte> buffer, CancellationToken ct)
    {
        var place = _placement; // requests are serialized by _io
        while (!buffer.IsEmpty)
        {
            int run = (int)Map(offset, buffer.Length, place);
            var chunk = buffer[..run];
            await ReadRunAsync(offset, chunk, place.Readable, place.Checksums, null, ct).ConfigureAwait(false);
            offset += run;
            buffer = buffer[run..];
        }
    }

    // Reads one run from the first usable copy; on a mirror, blocks that fail verification are
    // fetched from the other copies and the bad copy rewritten. `started` is a read of the run
    // from the first copy that the fast path began.
    private async ValueTask ReadRunAsync(long lvOffset, Memory<byte> chunk, List<Target> copies, bool verify, ValueTask<List<int>?>? started, CancellationToken ct)
    {
        for (int c = 0; c < copies.Count; c++)
        {
            var t = copies[c];
            bool begun = c == 0 && started is not null;
            if (t.Pv.Failed && c < copies.Count - 1 && !begun)
                continue;
            List<int>? bad;
            try
            {
                bad = begun ? await started!.Value.ConfigureAwait(false) : await t.Pv.ReadBlocksAsync(t.Offset, chunk, verify, ct).ConfigureAwait(false);
            }
            catch (IOException) when (copies.Count > 1)
            {
                t.Pv.Failed = true;
                continue;
            }
            if (bad is null)
                return;
            foreach (int b in bad)
            {
                long rel = (long)b * BlockSize;
                await RecoverBlockAsync(lvOffset + rel, rel, chunk.Slice(b * BlockSize, BlockSize), copies, c, ct).ConfigureAwait(false);
            }
            return;
        }
        throw new IOException($"{Name}: no copy of LV offset {lvOffset} is readable");
    }

    // Finds a copy of one block that verifies, rewrites the bad copy from it and serves it.
    // rel is the block's offset from the start of the run on every copy.
    private async ValueTask RecoverBlockAsync(long lvOffset, long rel, Memory<byte> block, List<Target> copies, int badCopy, CancellationToken ct)
    {
        var bad = copies[badCopy];
        for (int c = 0; c < copies.Count; c++)
        {
            if (c == badCopy || copies[c].Pv.Failed)
                continue;
            var good = copies[c];
            if (await good.Pv.ReadBlocksAsync(good.Offset + rel, block, ct).ConfigureAwait(false) is not null)
                continue;
            await bad.Pv.WriteBlocksAsync(bad.Offset + rel, block, ct).ConfigureAwait(false);
            Report(new IntegrityEvent(lvOffset, bad.Pv.Name, bad.Offset + rel, Repaired: true));
            return;
        }
        await ProbeFenceAsync(copies, ct).ConfigureAwait(false);
        Report(new IntegrityEvent(lvOffset, bad.Pv.Name, bad.Offset + rel, Repaired: false));
        throw new ChecksumMismatchException($"{Name}: checksum mismatch at offset {lvOffset} on {(copies.Count > 1 ? "every copy" : bad.Pv.Name)}");
    }

    // A writer whose fence was raised keeps the checksums it knew: a block the newer generation
    // has written since fails verification on every copy although nothing is corrupt (a stale
    // incarnation's read-modify-write reads the newer one's data before its write would be
    // refused). Before reporting corruption, ask the servers as the writer (a fenced flush): a
    // stale writer gets the refusal (FencedWriteException, counted by the server), not a false
    // checksum error. Other failures of the probe leave the mismatch to be reported.
    private static async ValueTask ProbeFenceAsync(List<Target> copies, CancellationToken ct)
    {
        if (PvWriter.Current is null)
            return;
        foreach (var pv in copies.Select(c => c.Pv).Where(p => !p.Failed).Distinct())
        {
            try
            {
                await pv.Io.FlushAsync(ct).ConfigureAwait(false); // the device's flush only: no checksum pages written
            }
            catch (IOException e) when (e is not FencedWriteException)
            {
                // Not a refusal: the mismatch stands.
            }
        }
    }

    /// <summary>
    /// Reads and verifies every block of every copy. Bad copies are rewritten from a good one;
    /// mirror copies that are each valid but differ are made equal to the first valid leg.
    /// Runs between other requests, one run (at most 1 MiB) at a time. Reports bytes done.
    /// </summary>
    public async Task<ScrubResult> ScrubAsync(IProgress<long>? progress = null, CancellationToken cancellationToken = default)
    {
        using var writer = WriterScope();
        long checkedBlocks = 0, repaired = 0, unrepairable = 0, resynced = 0;
        var place = new Placement();
        var targets = place.Readable;
        var buffers = new List<byte[]>();
        long offset = 0;
        while (offset < Length)
        {
            cancellationToken.ThrowIfCancellationRequested();
            await _io.WaitAsync(cancellationToken).ConfigureAwait(false);
            int run;
            try
            {
                run = (int)Map(offset, Length - offset, place);
                while (buffers.Count < targets.Count)
                    buffers.Add(new byte[MaxRun]);
                var bad = new List<int>?[targets.Count];
                for (int c = 0; c < targets.Count; c++)
                {
                    if (targets[c].Pv.Failed)
                        continue;
                    try
                    {
                        bad[c] = await targets[c].Pv.ReadBlocksAsync(targets[c].Offset, buffers[c].AsMemory(0, run), place.Checksums, cached: false, cancellationToken).ConfigureAwait(false);
                    }
                    catch (IOException) when (targets.Count > 1)
                    {
                        targets[c].Pv.Failed = true;
                    }
                }
                for (int b = 0; b < run / BlockSize; b++)
                {
                    checkedBlocks++;
                    long rel = (long)b * BlockSize;
                    int good = -1;
                    for (int c = 0; c < targets.Count && good < 0; c++)
                    {
                        if (!targets[c].Pv.Failed && bad[c]?.Contains(b) != true)
                            good = c;
                    }
                    if (good < 0)
                    {
                        unrepairable++;
                        foreach (var t in targets.Where(t => !t.Pv.Failed))
                            Report(new IntegrityEvent(offset + rel, t.Pv.Name, t.Offset + rel, Repaired: false));
                        continue;
                    }
                    for (int c = 0; c < targets.Count; c++)
                    {
                        if (c == good || targets[c].Pv.Failed)
                            continue;
                        bool isBad = bad[c]?.Contains(b) == true;
                        var goodBlock = buffers[good].AsMemory((int)rel, BlockSize);
                        if (!isBad && buffers[c].AsSpan((int)rel, BlockSize).SequenceEqual(goodBlock.Span))
                            continue;
                        await targets[c].Pv.WriteBlocksAsync(targets[c].Offset + rel, goodBlock, cancellationToken).ConfigureAwait(false);
                        if (isBad)
                        {
                            repaired++;
                            Report(new IntegrityEvent(offset + rel, targets[c].Pv.Name, targets[c].Offset + rel, Repaired: true));
                        }
                        else
                        {
                            resynced++;
                        }
                    }
                }
            }
            finally
            {
                _io.Release();
            }
            offset += run;
            progress?.Report(offset);
        }
        if (repaired + resynced > 0)
            await FlushAsync(cancellationToken).ConfigureAwait(false);
        return new ScrubResult(checkedBlocks, repaired, unrepairable, resynced);
    }

    private void Report(IntegrityEvent e)
    {
        lock (_events)
            _events.Add(e);
        Integrity?.Invoke(e);
    }

    private async ValueTask WriteAlignedAsync(long offset, ReadOnlyMemory<byte> data, CancellationToken ct)
    {
        var place = _placement; // requests are serialized by _io
        while (!data.IsEmpty)
        {
            int run = (int)Map(offset, data.Length, place);
            var chunk = data[..run];
            var targets = place.Readable;
            bool mirror = targets.Count + place.Unwritable.Count > 1;
            int written = 0;
            IOException? last = null;
            foreach (var t in targets)
            {
                try
                {
                    await t.Pv.WriteBlocksAsync(t.Offset, chunk, place.Checksums, ct).ConfigureAwait(false);
                    written++;
                }
                catch (IOException e) when (mirror && e is not FencedWriteException)
                {
                    t.Pv.Failed = true;
                    place.Unwritable.Add(t.Area);
                    last = e;
                }
            }
            // Stale legs and pvmove targets get every write too, so the copy running behind them
            // never misses one; their failure is the copy's problem, not the writer's.
            foreach (var t in place.WriteOnly)
            {
                if (t.Pv.Failed)
                    continue;
                try
                {
                    await t.Pv.WriteBlocksAsync(t.Offset, chunk, place.Checksums, ct).ConfigureAwait(false);
                }
                catch (IOException e) when (e is not FencedWriteException)
                {
                    t.Pv.Failed = true;
                    if (t.Area >= 0)
                        place.Unwritable.Add(t.Area);
                }
            }
            if (mirror)
            {
                lock (_unflushed)
                    _unflushed.Add((place.SegmentStart, place.Region));
            }
            // Write intent: legs that missed this write are recorded as out of date for its region
            // (in the metadata on the surviving PVs) before the write is acknowledged.
            if (written > 0 && place.Unwritable.Count > 0)
                await _vg.MarkDirtyAsync(_id, place.SegmentStart, [.. place.Unwritable], place.Region, ct).ConfigureAwait(false);
            if (written == 0)
                throw new IOException($"{Name}: no copy of LV offset {offset} is writable", last);
            offset += run;
            data = data[run..];
        }
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        _vg.Closed(this);
    }
}
