// The verify helper (src/Tern.Storage/PhysicalVolume.Verifier.cs): large verified reads that a
// second thread helps to read and verify find every bad block and zero every never-written
// block, whichever thread has a piece, also when the helper stalls (here on purpose, as a
// preemption would); and the helper stops spinning and blocks once large reads stop. Its own
// collection, run alone: the helper is one per process and these tests stall it.
namespace Tern.Storage.Tests;

[CollectionDefinition(nameof(VerifyHelperTests), DisableParallelization = true)]
public sealed class VerifyHelperCollection;

[Collection(nameof(VerifyHelperTests))]
public sealed class VerifyHelperTests : IDisposable
{
    private const int MiB = 1 << 20;
    private readonly TestPool _pool = new();

    public void Dispose()
    {
        PhysicalVolume.HelperTookPiece = null;
        _pool.Dispose();
    }

    // A PV whose first 1.5 MiB of data are written with a pattern; the next 0.5 MiB never were.
    private async Task<(PhysicalVolume Pv, byte[] Data)> WrittenPvAsync()
    {
        var pvs = await _pool.CreatePvsAsync(1, 8 << 20);
        var data = new byte[3 * MiB / 2];
        new Random(5).NextBytes(data);
        await pvs[0].WriteBlocksAsync(0, data);
        await pvs[0].FlushAsync();
        return (pvs[0], data);
    }

    private static async Task<T> Within<T>(TimeSpan limit, Func<T> probe, Func<T, bool> done)
    {
        var until = DateTime.UtcNow + limit;
        T value = probe();
        while (!done(value) && DateTime.UtcNow < until)
        {
            await Task.Delay(5);
            value = probe();
        }
        return value;
    }

    [Fact]
    public async Task Reads_stay_verified_and_zeroed_in_the_helpers_pieces_also_when_it_stalls()
    {
        var (pv, data) = await WrittenPvAsync();
        // The helper reads the last eighth of a 1 MiB request (blocks 224-255): bad blocks there
        // and in the reader's part, and never-written blocks in both parts of the second MiB.
        int[] badBlocks = [0, 15, 16, 47, 200, 223, 224, 239, 240, 255];
        foreach (int b in badBlocks)
            _pool.Corrupt(pv.Label, 0, (b * 4096L) + 1);
        int takes = 0;
        PhysicalVolume.HelperTookPiece = () =>
        {
            if (Interlocked.Increment(ref takes) % 3 == 0)
                Thread.Sleep(2); // the reader must wait for it: the helper writes into its buffer
        };
        long pieces0 = PhysicalVolume.HelperCounts.Pieces;
        var back = new byte[MiB];
        // Bounded: until the helper has read some pieces (it joins a request only when it wakes
        // before the reader has taken all of them, so not every one).
        for (int round = 0; round < 400 && PhysicalVolume.HelperCounts.Pieces - pieces0 < 20; round++)
        {
            back.AsSpan().Fill(0xAA);
            Assert.Equal(badBlocks, await pv.ReadBlocksAsync(0, back, verify: true, cached: false, default));
            back.AsSpan().Fill(0xAA);
            Assert.Null(await pv.ReadBlocksAsync(MiB, back, verify: true, cached: false, default));
            Assert.True(back.AsSpan(0, MiB / 2).SequenceEqual(data.AsSpan(MiB)), "the written half MiB reads back");
            Assert.True(back.AsSpan(MiB / 2).IndexOfAnyExcept((byte)0) < 0, "the never-written half MiB reads as zeros");
        }
        Assert.True(PhysicalVolume.HelperCounts.Pieces - pieces0 >= 20, "the helper read some of the pieces");
    }

    // A PV file whose synchronous reads (the ones the reader and the helper use) fail wherever
    // they touch [from, to) of the file.
    private sealed class FailingReads(IPhysicalVolumeIo inner, long from, long to) : IPhysicalVolumeIo, ISynchronousReads
    {
        public string Name => inner.Name;

        public long Length => inner.Length;

        public bool CanReadSynchronously => true;

        public void Read(long offset, Span<byte> span)
        {
            if (offset < to && offset + span.Length > from)
                throw new IOException($"injected read error at {offset}");
            ((ISynchronousReads)inner).Read(offset, span);
        }

        public ValueTask ReadAsync(long offset, Memory<byte> buffer, CancellationToken cancellationToken = default) => inner.ReadAsync(offset, buffer, cancellationToken);

        public ValueTask WriteAsync(long offset, ReadOnlyMemory<byte> data, CancellationToken cancellationToken = default) => inner.WriteAsync(offset, data, cancellationToken);

        public ValueTask FlushAsync(CancellationToken cancellationToken = default) => inner.FlushAsync(cancellationToken);

        public void Dispose() => inner.Dispose();
    }

    [Theory]
    [InlineData(100, 64)] // in the reader's part (its second call): the helper must not write the buffer after the error
    [InlineData(250, 240)] // in the helper's part (its last piece): the error reaches the reader
    public async Task A_read_error_in_either_part_fails_the_read_and_nothing_writes_the_buffer_afterwards(int failingBlock, int failingCall)
    {
        var (pv, _) = await WrittenPvAsync();
        var label = pv.Label;
        _pool.CloseAll();
        long at = label.DataOffset + (failingBlock * 4096L);
        var failing = (await _pool.OpenPvsAsync([0], (_, io) => new FailingReads(io, at, at + 4096)))[0];
        PhysicalVolume.HelperTookPiece = () => Thread.Sleep(1);
        long pieces0 = PhysicalVolume.HelperCounts.Pieces;
        var back = new byte[MiB];
        for (int round = 0; round < 200 && PhysicalVolume.HelperCounts.Pieces - pieces0 < 10; round++)
        {
            var e = await Assert.ThrowsAsync<IOException>(async () => await failing.ReadBlocksAsync(0, back, verify: true, cached: false, default));
            Assert.Contains($"injected read error at {label.DataOffset + (failingCall * 4096L)}", e.Message, StringComparison.Ordinal);
            back.AsSpan().Fill(0x77);
            // Until the helper has gone back to waiting for a job: any piece it had is over.
            Assert.True(await Within(TimeSpan.FromSeconds(10), () => PhysicalVolume.HelperBlocked, b => b), "the helper went back to waiting");
            Assert.True(back.AsSpan().IndexOfAnyExcept((byte)0x77) < 0, "nothing wrote into the buffer after the read failed");
        }
        Assert.True(PhysicalVolume.HelperCounts.Pieces - pieces0 >= 10, "the helper took part in the failing reads");
    }

    [Fact]
    public async Task The_helper_blocks_once_large_reads_stop_and_after_each_rare_one()
    {
        var (pv, data) = await WrittenPvAsync();
        var back = new byte[MiB];
        for (int i = 0; i < 200; i++)
            Assert.Null(await pv.ReadBlocksAsync(0, back, verify: true, cached: false, default));
        Assert.True(await Within(TimeSpan.FromSeconds(10), () => PhysicalVolume.HelperBlocked, b => b), "the helper blocked after the stream of reads");
        long wakes0 = PhysicalVolume.HelperCounts.Wakes;
        for (int i = 0; i < 3; i++)
        {
            Array.Clear(back);
            Assert.Null(await pv.ReadBlocksAsync(0, back, verify: true, cached: false, default));
            Assert.Equal(data.AsSpan(0, MiB).ToArray(), back);
            Assert.True(await Within(TimeSpan.FromSeconds(10), () => PhysicalVolume.HelperBlocked, b => b), "the helper blocked again after a rare read");
        }
        Assert.Equal(3, PhysicalVolume.HelperCounts.Wakes - wakes0); // each rare read found it blocked
    }
}
