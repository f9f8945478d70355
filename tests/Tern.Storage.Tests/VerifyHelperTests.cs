// The verify helper (src/Tern.Storage/PhysicalVolume.Verifier.cs): large verified reads that a
// second thread helps to verify find every bad block and zero every never-written block, also
// when the helper holds a piece too long (stalled here, as a preemption would) and the reader
// verifies it again; and the helper stops spinning and blocks once large reads stop. Its own
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
    public async Task Reads_stay_verified_and_zeroed_when_the_reader_takes_back_a_piece_the_helper_holds()
    {
        var (pv, data) = await WrittenPvAsync();
        const int badBlock = 40; // in the third 64 KiB piece of the first MiB
        _pool.Corrupt(pv.Label, 0, (badBlock * 4096L) + 123);
        PhysicalVolume.HelperTookPiece = () => Thread.Sleep(2);
        long redone0 = PhysicalVolume.HelperCounts.Redone;
        var back = new byte[MiB];
        // Bounded: stop once the reader has taken back a few pieces (the helper joins a read only
        // when it wakes before the reader has claimed every piece, so not every read).
        for (int round = 0; round < 400 && PhysicalVolume.HelperCounts.Redone - redone0 < 3; round++)
        {
            back.AsSpan().Fill(0xAA);
            var bad = await pv.ReadBlocksAsync(0, back, verify: true, cached: false, default);
            Assert.Equal([badBlock], bad);
            back.AsSpan().Fill(0xAA);
            Assert.Null(await pv.ReadBlocksAsync(MiB, back, verify: true, cached: false, default));
            Assert.True(back.AsSpan(0, MiB / 2).SequenceEqual(data.AsSpan(MiB)), "the written half MiB reads back");
            Assert.True(back.AsSpan(MiB / 2).IndexOfAnyExcept((byte)0) < 0, "the never-written half MiB reads as zeros");
        }
        Assert.True(PhysicalVolume.HelperCounts.Redone - redone0 >= 3, "the reader verified pieces the stalled helper held");
    }

    [Fact]
    public async Task A_bad_block_in_each_piece_is_found_while_the_helper_keeps_stalling()
    {
        var (pv, _) = await WrittenPvAsync();
        int[] badBlocks = [0, 15, 16, 47, 48, 200, 255];
        foreach (int b in badBlocks)
            _pool.Corrupt(pv.Label, 0, (b * 4096L) + 1);
        int stalls = 0;
        PhysicalVolume.HelperTookPiece = () =>
        {
            if (Interlocked.Increment(ref stalls) % 2 == 0)
                Thread.Sleep(1);
        };
        var back = new byte[MiB];
        for (int round = 0; round < 100; round++)
            Assert.Equal(badBlocks, await pv.ReadBlocksAsync(0, back, verify: true, cached: false, default));
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
