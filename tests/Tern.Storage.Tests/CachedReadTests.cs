// The cache of verified blocks: a block read from the disk is verified once and then served from
// memory; writes, extents handed to a new volume and a dropped cache send reads back to the disk;
// scrub always reads the disk; the cache stays within its size; a read that raced with a write
// does not cache what it read. Tests that need hits give their PVs a cache of their own, so that
// other tests emptying the shared one (TestPool.Corrupt) cannot disturb them.
using Tern.Storage.Format;

namespace Tern.Storage.Tests;

public sealed class CachedReadTests : IDisposable
{
    private const long Extent = 256 << 10;
    private readonly TestPool _pool = new();

    public void Dispose() => _pool.Dispose();

    private static byte[] Pattern(int length, int seed)
    {
        var b = new byte[length];
        new Random(seed).NextBytes(b);
        return b;
    }

    [Fact]
    public async Task A_block_verified_once_is_served_from_the_cache_and_scrub_still_reads_the_disk()
    {
        var (vg, pvs) = await _pool.CreateVgAsync(1, Extent);
        using var cache = new BlockCache(4 << 20);
        pvs[0].Cache = cache;
        var entry = await vg.CreateLvAsync("l", 4 * Extent, LvLayout.Linear);
        using var lv = vg.OpenLv("l");
        var data = Pattern(64 << 10, 1);
        await lv.WriteAsync(0, data);
        Assert.Equal(0, cache.Count); // a write leaves nothing of its range cached

        var back = new byte[data.Length];
        await lv.ReadAsync(0, back);
        Assert.Equal(data, back);
        Assert.Equal(16, cache.Count);

        long at = entry.Segments[0].Areas[0].StartExtent * Extent;
        _pool.CorruptOnDisk(pvs[0].Label, 0, at + 4096 + 7);
        Array.Clear(back);
        await lv.ReadAsync(0, back); // served from memory: what was verified when it left the disk
        Assert.Equal(data, back);
        Assert.Empty(lv.IntegrityEvents);

        var scrub = await lv.ScrubAsync(); // reads the disk, around the cache
        Assert.Equal(1, scrub.Unrepairable);

        pvs[0].DropCachedBlocks();
        var e = await Assert.ThrowsAsync<ChecksumMismatchException>(async () => await lv.ReadAsync(0, back));
        Assert.Contains("offset 4096", e.Message);
    }

    [Fact]
    public async Task A_write_and_a_new_volume_on_old_extents_read_their_own_data_not_the_cached_one()
    {
        var (vg, pvs) = await _pool.CreateVgAsync(1, Extent);
        using var cache = new BlockCache(4 << 20);
        pvs[0].Cache = cache;
        await vg.CreateLvAsync("a", 2 * Extent, LvLayout.Linear);
        var old = Pattern((int)(2 * Extent), 2);
        var back = new byte[old.Length];
        using (var a = vg.OpenLv("a"))
        {
            await a.WriteAsync(0, old);
            await a.ReadAsync(0, back);
            Assert.Equal(old, back);

            var fresh = Pattern(8192, 3);
            await a.WriteAsync(4096, fresh);
            await a.ReadAsync(0, back);
            fresh.CopyTo(old, 4096);
            Assert.Equal(old, back);
            Assert.True(cache.Count > 0);
        }
        await vg.RemoveLvAsync("a");
        await vg.CreateLvAsync("b", 2 * Extent, LvLayout.Linear); // the same extents, reset on allocation
        using var b = vg.OpenLv("b");
        await b.ReadAsync(0, back);
        Assert.Equal(new byte[back.Length], back);
    }

    [Fact]
    public async Task A_volume_reads_and_verifies_from_the_disk_every_time_when_the_cache_is_off()
    {
        var (vg, pvs) = await _pool.CreateVgAsync(1, Extent);
        using var off = new BlockCache(BlockCache.ConfiguredSize("0"));
        pvs[0].Cache = off;
        var entry = await vg.CreateLvAsync("l", Extent, LvLayout.Linear);
        using var lv = vg.OpenLv("l");
        var data = Pattern(16384, 4);
        await lv.WriteAsync(0, data);
        var back = new byte[data.Length];
        await lv.ReadAsync(0, back);
        Assert.Equal(data, back);
        Assert.Equal(0, off.Count);
        _pool.CorruptOnDisk(pvs[0].Label, 0, (entry.Segments[0].Areas[0].StartExtent * Extent) + 3);
        await Assert.ThrowsAsync<ChecksumMismatchException>(async () => await lv.ReadAsync(0, back));
    }

    [Fact]
    public void The_cache_stays_within_its_size_and_keeps_the_newest_blocks()
    {
        using var cache = new BlockCache(1 << 20);
        Assert.Equal(256, cache.Capacity);
        long epoch = 0;
        var block = new byte[4096];
        for (int i = 0; i < 1000; i++)
        {
            block[0] = (byte)i;
            cache.Insert(pv: 1, firstBlock: i, block, bad: null, ref epoch, seen: 0);
        }
        Assert.Equal(256, cache.Count);
        var back = new byte[4096];
        Assert.True(cache.TryRead(1, 999, back));
        Assert.Equal(999 & 0xFF, back[0]);
        Assert.False(cache.TryRead(1, 0, back));
        Assert.False(cache.TryRead(2, 999, back)); // another PV instance's block 999
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Blocks_come_back_in_order_whatever_slots_they_were_cached_in(bool shuffled)
    {
        using var cache = new BlockCache(2 << 20); // two 1 MiB chunks of slots
        long epoch = 0;
        var order = Enumerable.Range(0, 300).ToArray();
        if (shuffled)
            new Random(9).Shuffle(order);
        var want = Pattern(300 * 4096, 8);
        foreach (int b in order)
            cache.Insert(1, 1000 + b, want.AsSpan(b * 4096, 4096), bad: null, ref epoch, epoch);
        var back = new byte[want.Length];
        Assert.True(cache.TryRead(1, 1000, back));
        Assert.Equal(want, back);
        Assert.True(cache.TryRead(1, 1250, back.AsSpan(0, 20 * 4096))); // across the chunks' boundary
        Assert.Equal(want.AsSpan(250 * 4096, 20 * 4096).ToArray(), back.AsSpan(0, 20 * 4096).ToArray());
    }

    [Fact]
    public void A_read_that_raced_with_a_write_caches_nothing_and_bad_blocks_are_never_cached()
    {
        using var cache = new BlockCache(1 << 20);
        long epoch = 0;
        long seen = epoch;
        cache.Invalidate(1, 0, 4, ref epoch); // a write completed while the read was on the disk
        cache.Insert(1, 0, new byte[4 * 4096], bad: null, ref epoch, seen);
        Assert.Equal(0, cache.Count);

        cache.Insert(1, 0, new byte[4 * 4096], bad: [2], ref epoch, epoch);
        Assert.Equal(3, cache.Count);
        Assert.True(cache.TryRead(1, 0, new byte[2 * 4096]));
        Assert.False(cache.TryRead(1, 0, new byte[3 * 4096])); // all or nothing: block 2 is not held
    }

    [Fact]
    public void TERN_BLOCK_CACHE_takes_sizes_and_rejects_anything_else()
    {
        Assert.Equal(512L << 20, BlockCache.ConfiguredSize("512M"));
        Assert.Equal(2L << 30, BlockCache.ConfiguredSize("2g"));
        Assert.Equal(65536, BlockCache.ConfiguredSize("65536"));
        Assert.Equal(0, BlockCache.ConfiguredSize("0"));
        Assert.Equal(BlockCache.DefaultSize, BlockCache.ConfiguredSize(null));
        Assert.Equal(0, BlockCache.DefaultSize); // off unless asked for (see BlockCache.cs)
        Assert.InRange(BlockCache.SuggestedSize, 1, 4L << 30);
        foreach (string bad in new[] { "12Q", "-1", "1.5G", "G", "99999999999999999999" })
            Assert.Contains("TERN_BLOCK_CACHE", Assert.Throws<StorageException>(() => BlockCache.ConfiguredSize(bad)).Message);
    }
}
