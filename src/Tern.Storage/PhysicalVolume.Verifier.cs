// Verification of large reads on a second core. A reader of a large verified request copies it
// 256 KiB at a time, in 64 KiB pieces; it posts the request to one long-lived helper thread (per
// process), which verifies the pieces already copied, first to last, while the reader copies the
// rest. Once it has copied everything, the reader verifies the pieces nobody has taken, last to
// first, so the two meet without contending. Only PVs whose reads complete on the calling thread
// (local files, also behind a node's fence) use it, so the reader never leaves the thread
// mid-request.
//
// The reader never waits long for the helper: when the helper is slow to wake it simply finds
// every piece still free, and a piece the helper holds but has not finished within PieceWait
// (the helper was preempted, on a loaded machine) is verified again by the reader, which then
// closes the job so that the helper's late result is dropped. The helper therefore only reads
// the buffer (never-written blocks are zeroed by the reader) and is only used for array-backed
// buffers, which stay valid for as long as it may still read them.
//
// Waking a blocked thread costs tens of microseconds (more in a VM, whose idle core must be
// woken too) against about 110 us for the copy of a 1 MiB request, so a helper that blocked
// between requests joined a sequential stream's requests late. After a job, the helper therefore
// spins for the next one for a bounded time (SpinWindow), but only while jobs follow one another
// that closely: after a job that came later than that, or a spin that found none, it blocks at
// once, so rare large reads cost no spinning.
using System.Diagnostics;
using System.Runtime.InteropServices;
using Tern.Storage.Format;

namespace Tern.Storage;

public sealed partial class PhysicalVolume
{
    private static Job? _posted;
    private static int _helperBlocked; // 1 while the helper is (about to be) blocked on Wake
    private static long _helperJobs, _helperWakes, _piecesRedone;
    private static readonly ManualResetEventSlim Wake = new(false, spinCount: 1);
    private static readonly Lazy<Thread> Helper = new(() =>
    {
        var t = new Thread(HelperLoop) { IsBackground = true, Name = "tern-verify" };
        t.Start();
        return t;
    });

    // The reader copies 4 pieces (256 KiB) per read call: a quarter of the calls of one per
    // piece, while the helper still starts after the first quarter of a 1 MiB request, and the
    // last call's pieces are shared by both sides, so the tail no one overlaps stays short.
    private const int ReadPieces = 4;

    // How long the helper spins for the next job: about twice a 1 MiB request's copy time, so a
    // reader that issues requests back to back (or nearly) always finds it awake.
    private static readonly long SpinWindow = Stopwatch.Frequency / 5000; // 200 us

    // How long the reader waits for a piece the helper holds before verifying it itself: a piece
    // takes the helper 1-3 us, so only a preempted helper takes longer.
    private static readonly long PieceWait = Stopwatch.Frequency / 50_000; // 20 us

    private const int Free = 0, ByHelper = 1, ByReader = 2, Done = 3;

    /// <summary>
    /// Since the process started: jobs the helper joined, times a reader had to wake it, and pieces
    /// a reader verified again because the helper held them too long (for tests and benchmarks).
    /// </summary>
    internal static (long Joined, long Wakes, long Redone) HelperCounts =>
        (Interlocked.Read(ref _helperJobs), Interlocked.Read(ref _helperWakes), Interlocked.Read(ref _piecesRedone));

    /// <summary>Whether the helper is blocked (not spinning, not working) waiting for a job.</summary>
    internal static bool HelperBlocked => Volatile.Read(ref _helperBlocked) == 1;

    /// <summary>Called by the helper on taking a piece, before verifying it: tests stall it there, as a preemption would.</summary>
    internal static Action? HelperTookPiece { get; set; }

    private sealed class Job(PhysicalVolume pv, long firstTag, Memory<byte> buffer, int blocks)
    {
        public readonly int Pieces = (blocks + PieceBlocks - 1) / PieceBlocks;
        public readonly int[] State = new int[(blocks + PieceBlocks - 1) / PieceBlocks];
        public int Read;   // pieces copied so far (written by the reader)
        public int Joined; // 1 once the helper took the job
        public volatile bool Abandoned; // the reader's copy failed
        private bool _closed; // the reader took back the pieces the helper still held (under the lock)
        private List<int>? _bad;

        // Bad blocks of one piece (indexes within the request); reads the buffer only.
        public List<int>? Check(int piece)
        {
            int at = piece * PieceBlocks, n = Math.Min(PieceBlocks, blocks - at);
            return pv.Check(buffer.Span.Slice(at * BlockSize, n * BlockSize), firstTag + at, at, n);
        }

        // The helper's part: copied pieces nobody has taken yet, first to last.
        public void Help()
        {
            for (int p = 0; p < Pieces; p++)
            {
                var spin = default(SpinWait);
                while (Volatile.Read(ref Read) <= p)
                {
                    if (Abandoned)
                        return;
                    spin.SpinOnce(sleep1Threshold: -1);
                }
                if (Interlocked.CompareExchange(ref State[p], ByHelper, Free) != Free)
                    return; // the reader has come this far from the end
                HelperTookPiece?.Invoke();
                var found = Check(p);
                lock (this)
                {
                    if (_closed)
                        return;
                    if (found is not null)
                        (_bad ??= []).AddRange(found);
                    State[p] = Done;
                }
            }
        }

        // The reader's part, once everything is copied: free pieces last to first, then those the
        // helper holds (waited for briefly, else verified here). Returns every bad block.
        public List<int>? Finish()
        {
            List<int>? bad = null;
            for (int p = Pieces - 1; p >= 0; p--)
            {
                if (Interlocked.CompareExchange(ref State[p], ByReader, Free) == Free && Check(p) is { } found)
                    (bad ??= []).AddRange(found);
            }
            long deadline = 0;
            for (int p = 0; p < Pieces; p++)
            {
                var spin = default(SpinWait);
                while (Volatile.Read(ref State[p]) == ByHelper)
                {
                    long now = Stopwatch.GetTimestamp();
                    if (deadline == 0)
                        deadline = now + PieceWait;
                    else if (now > deadline)
                        break;
                    spin.SpinOnce(sleep1Threshold: -1);
                }
            }
            lock (this)
            {
                _closed = true;
                if (_bad is not null)
                    (bad ??= []).AddRange(_bad);
            }
            for (int p = 0; p < Pieces; p++)
            {
                if (State[p] != ByHelper)
                    continue;
                Interlocked.Increment(ref _piecesRedone);
                if (Check(p) is { } found)
                    (bad ??= []).AddRange(found);
            }
            return bad;
        }

        // On a failed copy: the helper may still be verifying a piece; its result is dropped.
        public void Abandon()
        {
            Abandoned = true;
            lock (this)
                _closed = true;
        }
    }

    private static void HelperLoop()
    {
        bool spin = false;
        long end = Stopwatch.GetTimestamp();
        while (true)
        {
            var job = spin ? SpinForJob(end + SpinWindow) : null;
            if (job is null)
            {
                job = BlockForJob();
                // Came later than a spin would have waited for it: the next wait blocks at once too.
                spin = Stopwatch.GetTimestamp() - end < SpinWindow;
            }
            else
            {
                spin = true;
            }
            if (Interlocked.CompareExchange(ref job.Joined, 1, 0) != 0)
                continue;
            Interlocked.Increment(ref _helperJobs);
            job.Help();
            end = Stopwatch.GetTimestamp();
        }
    }

    // A posted job the helper has not joined yet, or null.
    private static Job? Fresh() => Volatile.Read(ref _posted) is { } job && Volatile.Read(ref job.Joined) == 0 ? job : null;

    private static Job? SpinForJob(long deadline)
    {
        do
        {
            if (Fresh() is { } job)
                return job;
            Thread.SpinWait(20);
        }
        while (Stopwatch.GetTimestamp() < deadline);
        return null;
    }

    // Blocks until a job is posted. The flag is raised before _posted is looked at again, and a
    // reader looks at the flag after posting (both full fences), so either the helper sees the
    // job or the reader sees the flag and sets Wake.
    private static Job BlockForJob()
    {
        while (true)
        {
            Wake.Reset();
            Interlocked.Exchange(ref _helperBlocked, 1);
            if (Fresh() is null)
                Wake.Wait();
            Interlocked.Exchange(ref _helperBlocked, 0);
            if (Fresh() is { } job)
                return job;
        }
    }

    // Reads and verifies a large request with the helper, when it is free (false when it is not).
    private bool ReadWithHelper(long dataOffset, Memory<byte> buffer, out List<int>? bad)
    {
        bad = null;
        if (Environment.ProcessorCount < 2 || Io is not ISynchronousReads { CanReadSynchronously: true } file || !MemoryMarshal.TryGetArray<byte>(buffer, out _))
            return false;
        long firstTag = dataOffset / BlockSize;
        int blocks = buffer.Length / BlockSize;
        var job = new Job(this, firstTag, buffer, blocks);
        if (Interlocked.CompareExchange(ref _posted, job, null) is not null)
            return false;
        _ = Helper.Value;
        if (Volatile.Read(ref _helperBlocked) == 1)
        {
            Interlocked.Increment(ref _helperWakes);
            Wake.Set();
        }
        try
        {
            for (int p = 0; p < job.Pieces; p += ReadPieces)
            {
                int at = p * PieceBlocks * BlockSize, n = Math.Min(ReadPieces * PieceBlocks * BlockSize, buffer.Length - at);
                file.Read(Label.DataOffset + dataOffset + at, buffer.Span.Slice(at, n));
                Volatile.Write(ref job.Read, Math.Min(p + ReadPieces, job.Pieces));
            }
        }
        catch
        {
            job.Abandon();
            Volatile.Write(ref _posted, null);
            throw;
        }
        bad = job.Finish();
        Volatile.Write(ref _posted, null);
        bad?.Sort();
        ZeroUnwritten(buffer.Span, firstTag, blocks);
        return true;
    }

    // Blocks never written since allocation (tag 0) read as zeros.
    private void ZeroUnwritten(Span<byte> span, long firstTag, int count)
    {
        var tags = _tags.AsSpan((int)firstTag, count);
        for (int i = 0; i < tags.Length; i++)
        {
            if (tags[i] == 0)
                span.Slice(i * BlockSize, BlockSize).Clear();
        }
    }

    // The indexes (counted from `index`) of written blocks that do not match their tags.
    private List<int>? Check(ReadOnlySpan<byte> span, long firstTag, int index, int count)
    {
        List<int>? bad = null;
        var tags = _tags.AsSpan((int)firstTag, count);
        for (int i = 0; i < count; i++)
        {
            uint tag = tags[i];
            if (tag != 0 && Checksums.BlockTag(span.Slice(i * BlockSize, BlockSize)) != tag)
                (bad ??= []).Add(index + i);
        }
        return bad;
    }
}
