// Large verified reads with a second core. A reader of a large verified request reads it in
// 64 KiB pieces, each verified right after it is copied, while it is still in this core's cache.
// It posts the request to one long-lived helper thread (per process), which reads and verifies
// the last eighth of the pieces, last to first, into the same buffer; the reader reads and
// verifies the rest, first to last (256 KiB per read call), and then any of the helper's pieces
// the helper has not taken. So a request never waits for the helper to start: when it is slow to
// wake (a loaded machine) the reader does everything itself; it only waits for a piece the helper
// has begun, about 10 us of work. Only PVs whose reads complete on the calling thread (local
// files, also behind a node's fence) use it.
//
// Why the helper copies its pieces instead of verifying pieces the reader copied: a helper that
// reads the reader's freshly written buffer leaves those cache lines shared between the two
// cores, and the next copy into the buffer must take them back line by line, which slowed the
// copy by about 7% on the quiet 2-core machine, as much as the checksums saved; each side
// touching only its own pieces shares nothing. Why an eighth: that is about what the checksums
// add to a read's work (a 1 MiB copy out of the page cache takes ~110-140 us, its CRC ~19 us), so
// the helper takes on the checksums' cost, no more: a verified read costs what an unverified one
// does, without becoming a parallel copy that would be faster than one.
//
// Waking a blocked thread costs tens of microseconds (more in a VM, whose idle core must be
// woken too), so a helper that blocked between requests joined a sequential stream's requests
// late or not at all. After a job, the helper therefore spins for the next one for a bounded time
// (SpinWindow), but only while jobs follow one another that closely: after a job that came later
// than that, or a spin that found none, it blocks at once, so rare large reads cost no spinning.
using System.Diagnostics;
using System.Runtime.ExceptionServices;

namespace Tern.Storage;

public sealed partial class PhysicalVolume
{
    private static Job? _posted;
    private static int _helperBlocked; // 1 while the helper is (about to be) blocked on Wake
    private static long _helperJobs, _helperPieces, _helperWakes;
    private static readonly ManualResetEventSlim Wake = new(false, spinCount: 1);
    private static readonly Lazy<Thread> Helper = new(() =>
    {
        var t = new Thread(HelperLoop) { IsBackground = true, Name = "tern-verify" };
        t.Start();
        return t;
    });

    // The reader copies up to 4 pieces (256 KiB) per read call, then verifies them: a quarter of
    // the calls of one per piece, and 256 KiB still fits in this core's cache.
    private const int ReadPieces = 4;

    // The helper's share of a request's pieces (see the top of the file).
    private const int HelperShare = 8;

    // How long the helper spins for the next job: about twice a 1 MiB request's copy time, so a
    // reader that issues requests back to back (or nearly) always finds it awake.
    private static readonly long SpinWindow = Stopwatch.Frequency / 5000; // 200 us

    private const int Free = 0, ByHelper = 1, ByReader = 2, Done = 3;

    /// <summary>
    /// Since the process started: jobs the helper joined, pieces it read and verified, and times a
    /// reader had to wake it (for tests and benchmarks).
    /// </summary>
    internal static (long Joined, long Pieces, long Wakes) HelperCounts =>
        (Interlocked.Read(ref _helperJobs), Interlocked.Read(ref _helperPieces), Interlocked.Read(ref _helperWakes));

    /// <summary>Whether the helper is blocked (not spinning, not working) waiting for a job.</summary>
    internal static bool HelperBlocked => Volatile.Read(ref _helperBlocked) == 1;

    /// <summary>Called by the helper on taking a piece, before reading it: tests stall it there, as a preemption would.</summary>
    internal static Action? HelperTookPiece { get; set; }

    private sealed class Job(PhysicalVolume pv, ISynchronousReads file, long dataOffset, Memory<byte> buffer)
    {
        public readonly int Pieces = (buffer.Length / BlockSize + PieceBlocks - 1) / PieceBlocks;
        public readonly int[] State = new int[(buffer.Length / BlockSize + PieceBlocks - 1) / PieceBlocks];
        public int Joined; // 1 once the helper took the job
        public volatile bool Abandoned; // the reader failed: the helper need not try more pieces
        private List<int>? _bad;
        private Exception? _error;

        public int HelperFrom => Pieces - (Pieces / HelperShare);

        // Copies pieces [first, first + count) in one call and verifies them; bad blocks go to `bad`.
        public void ReadAndVerify(int first, int count, ref List<int>? bad)
        {
            int at = first * PieceBlocks, blocks = buffer.Length / BlockSize;
            int n = Math.Min(count * PieceBlocks, blocks - at);
            var span = buffer.Span.Slice(at * BlockSize, n * BlockSize);
            file.Read(pv.Label.DataOffset + dataOffset + ((long)at * BlockSize), span);
            long firstTag = dataOffset / BlockSize;
            for (int p = 0; p < count; p++)
            {
                int from = p * PieceBlocks, m = Math.Min(PieceBlocks, n - from);
                if (pv.Verify(span.Slice(from * BlockSize, m * BlockSize), firstTag + at + from, at + from, m, verify: true) is { } found)
                    (bad ??= []).AddRange(found);
            }
        }

        // The helper's part: its pieces, last to first, until the reader has taken the rest.
        public void Help()
        {
            for (int p = Pieces - 1; p >= HelperFrom && !Abandoned; p--)
            {
                if (Interlocked.CompareExchange(ref State[p], ByHelper, Free) != Free)
                    return;
                HelperTookPiece?.Invoke();
                List<int>? found = null;
                try
                {
                    ReadAndVerify(p, 1, ref found);
                }
                catch (Exception e)
                {
                    _error ??= e;
                }
                Interlocked.Increment(ref _helperPieces);
                lock (this)
                {
                    if (found is not null)
                        (_bad ??= []).AddRange(found);
                }
                Volatile.Write(ref State[p], Done);
            }
        }

        // The reader's part: its pieces, then the helper's that it has not taken (first to last),
        // then a wait for those it has begun. Returns every bad block.
        public List<int>? Run()
        {
            List<int>? bad = null;
            try
            {
                for (int p = 0; p < HelperFrom; p += ReadPieces)
                    ReadAndVerify(p, Math.Min(ReadPieces, HelperFrom - p), ref bad);
                for (int p = HelperFrom; p < Pieces; p++)
                {
                    if (Interlocked.CompareExchange(ref State[p], ByReader, Free) == Free)
                        ReadAndVerify(p, 1, ref bad);
                }
            }
            catch
            {
                // Shut the helper out of the pieces it has not taken, or it could still write
                // into the buffer after the caller has it back.
                Abandoned = true;
                for (int p = HelperFrom; p < Pieces; p++)
                    Interlocked.CompareExchange(ref State[p], ByReader, Free);
                WaitForHelper();
                throw;
            }
            WaitForHelper();
            if (_error is { } error)
                ExceptionDispatchInfo.Throw(error);
            lock (this)
            {
                if (_bad is not null)
                    (bad ??= []).AddRange(_bad);
            }
            return bad;
        }

        // The helper writes into the buffer: the request is not over while it still does.
        private void WaitForHelper()
        {
            for (int p = HelperFrom; p < Pieces; p++)
            {
                var spin = default(SpinWait);
                while (Volatile.Read(ref State[p]) == ByHelper)
                    spin.SpinOnce(sleep1Threshold: -1);
            }
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
        if (Environment.ProcessorCount < 2 || Io is not ISynchronousReads { CanReadSynchronously: true } file)
            return false;
        var job = new Job(this, file, dataOffset, buffer);
        if (job.HelperFrom == job.Pieces || Interlocked.CompareExchange(ref _posted, job, null) is not null)
            return false;
        _ = Helper.Value;
        if (Volatile.Read(ref _helperBlocked) == 1)
        {
            Interlocked.Increment(ref _helperWakes);
            Wake.Set();
        }
        try
        {
            bad = job.Run();
        }
        finally
        {
            Volatile.Write(ref _posted, null);
        }
        bad?.Sort();
        return true;
    }
}
