// Verification of large reads on a second core. A reader of a large verified request copies it
// 256 KiB at a time, verified in 64 KiB pieces; it posts the request to one long-lived helper
// thread (per process) and goes on copying while the helper verifies the pieces already copied. Both take pieces from one
// counter, so when the helper is slow to wake (a loaded machine) the reader simply verifies
// the rest itself, and a request never waits for the helper to start; it waits only for a
// piece the helper has begun, which takes about a microsecond. Only PVs whose reads complete on
// the calling thread (local files, also behind a node's fence) use it, so the reader never
// leaves the thread mid-request.
namespace Tern.Storage;

public sealed partial class PhysicalVolume
{
    private static Job? _posted;
    private static readonly ManualResetEventSlim Wake = new(false);
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

    // The helper joins a job only while the reader has not finished it alone.
    private const int NotJoined = 0, Joined = 1, Closed = 2;

    private sealed class Job(PhysicalVolume pv, long firstTag, Memory<byte> buffer, int blocks)
    {
        public readonly int Pieces = (blocks + PieceBlocks - 1) / PieceBlocks;
        public int Read;   // pieces copied so far (written by the reader)
        public int Next;   // the next piece to verify, taken by either side
        public int Helper; // NotJoined, Joined, Closed
        public volatile bool Abandoned;
        private List<int>? _bad;

        public List<int>? Bad => _bad;

        public void VerifyPiece(int piece)
        {
            int at = piece * PieceBlocks, n = Math.Min(PieceBlocks, blocks - at);
            if (pv.Verify(buffer.Span.Slice(at * BlockSize, n * BlockSize), firstTag + at, at, n, verify: true) is { } found)
            {
                lock (this)
                    (_bad ??= []).AddRange(found);
            }
        }

        // Verifies pieces until none is left; the helper waits for a piece to be copied first.
        public void Drain(bool helper)
        {
            int p;
            while ((p = Interlocked.Increment(ref Next) - 1) < Pieces)
            {
                var spin = default(SpinWait);
                while (helper && Volatile.Read(ref Read) <= p && !Abandoned)
                    spin.SpinOnce(sleep1Threshold: -1);
                if (Abandoned)
                    return;
                VerifyPiece(p);
            }
        }
    }

    private static void HelperLoop()
    {
        while (true)
        {
            Wake.Wait();
            Wake.Reset();
            var job = Volatile.Read(ref _posted);
            if (job is null || Interlocked.CompareExchange(ref job.Helper, Joined, NotJoined) != NotJoined)
                continue;
            job.Drain(helper: true);
            Volatile.Write(ref job.Helper, Closed);
        }
    }

    // Reads and verifies a large request with the helper, when it is free (false when it is not).
    private bool ReadWithHelper(long dataOffset, Memory<byte> buffer, out List<int>? bad)
    {
        bad = null;
        if (Environment.ProcessorCount < 2 || Io is not ISynchronousReads { CanReadSynchronously: true } file)
            return false;
        var job = new Job(this, dataOffset / BlockSize, buffer, buffer.Length / BlockSize);
        if (Interlocked.CompareExchange(ref _posted, job, null) is not null)
            return false;
        _ = Helper.Value;
        Wake.Set();
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
            job.Abandoned = true;
            Finish(job);
            throw;
        }
        job.Drain(helper: false);
        Finish(job);
        bad = job.Bad;
        bad?.Sort();
        return true;
    }

    // Waits until the helper is out of the job (or shuts it out), then frees the slot.
    private static void Finish(Job job)
    {
        if (Interlocked.CompareExchange(ref job.Helper, Closed, NotJoined) != NotJoined)
        {
            var spin = default(SpinWait);
            while (Volatile.Read(ref job.Helper) != Closed)
                spin.SpinOnce(sleep1Threshold: -1);
        }
        Volatile.Write(ref _posted, null);
    }
}
