// Thin pools: allocation on first write, a clean out-of-space error, snapshots sharing one
// mapping (write cost independent of their number), and crash behaviour of the mappings.
using CsCheck;

namespace Tern.Storage.Tests;

public sealed class ThinTests : IDisposable
{
    private const long Extent = 256 << 10;
    private const int Chunk = 64 << 10;
    private readonly TestPool _pool = new();

    public void Dispose() => _pool.Dispose();

    private static byte[] Pattern(int length, int seed)
    {
        var b = new byte[length];
        new Random(seed).NextBytes(b);
        return b;
    }

    private static async Task<byte[]> ReadAll(IBlockDevice d)
    {
        var b = new byte[d.Length];
        await d.ReadAsync(0, b);
        return b;
    }

    private async Task<VolumeGroup> ReopenAsync()
    {
        _pool.CloseAll();
        return _pool.Track(await VolumeGroup.OpenAsync("vg0", await _pool.OpenPvsAsync([0, 1])));
    }

    [Fact]
    public async Task A_thin_volume_takes_chunks_on_first_write_and_keeps_them_across_reopen()
    {
        var (vg, _) = await _pool.CreateVgAsync(2, Extent);
        await vg.CreateThinPoolAsync("pool", 16 * Extent, Chunk);
        await vg.CreateThinAsync("t", "pool", 64L << 20); // overprovisioned: 64 MiB on a 4 MiB pool
        var pool = await vg.OpenThinPoolAsync("pool");
        long chunks = pool.Chunks;
        var t = await vg.OpenDeviceAsync("t");
        Assert.Equal(64L << 20, t.Length);
        var a = Pattern(5000, 1);
        await t.WriteAsync(1000, a);
        await t.WriteAsync(40L << 20, a);
        Assert.Equal(chunks - 2, pool.FreeChunks);
        await t.FlushAsync();

        var vg2 = await ReopenAsync();
        var t2 = await vg2.OpenDeviceAsync("t");
        var back = new byte[5000];
        await t2.ReadAsync(1000, back);
        Assert.Equal(a, back);
        await t2.ReadAsync(40L << 20, back);
        Assert.Equal(a, back);
        await t2.ReadAsync(20L << 20, back);
        Assert.All(back, x => Assert.Equal(0, x));
        Assert.Equal(chunks - 2, (await vg2.OpenThinPoolAsync("pool")).FreeChunks);
    }

    [Fact]
    public async Task A_full_pool_fails_the_write_cleanly_and_harms_nothing()
    {
        var (vg, _) = await _pool.CreateVgAsync(2, Extent);
        await vg.CreateThinPoolAsync("pool", 2 * Extent, Chunk); // 8 chunks
        await vg.CreateThinAsync("a", "pool", 1 << 20);
        await vg.CreateThinAsync("b", "pool", 1 << 20);
        var a = await vg.OpenDeviceAsync("a");
        var b = await vg.OpenDeviceAsync("b");
        var aData = Pattern(6 * Chunk, 2);
        await a.WriteAsync(0, aData);
        await a.FlushAsync();
        var bData = Pattern(3 * Chunk, 3);
        var e = await Assert.ThrowsAsync<ThinPoolFullException>(async () => await b.WriteAsync(0, bData));
        Assert.Contains("out of space", e.Message, StringComparison.Ordinal);
        Assert.All(await ReadAll(b), x => Assert.Equal(0, x)); // not even the chunks that fitted
        Assert.Equal(aData, (await ReadAll(a)).AsSpan(0, aData.Length).ToArray());
        await b.WriteAsync(0, bData.AsMemory(0, 2 * Chunk)); // what fits still works
        await b.FlushAsync();
        await vg.RemoveLvAsync("a");
        await b.WriteAsync(2 * Chunk, bData.AsMemory(2 * Chunk)); // space given back
        Assert.Equal(bData, (await ReadAll(b)).AsSpan(0, bData.Length).ToArray());
    }

    [Fact]
    public async Task Thin_volumes_and_pools_grow_online()
    {
        var (vg, _) = await _pool.CreateVgAsync(2, Extent);
        await vg.CreateThinPoolAsync("pool", 2 * Extent, Chunk);
        await vg.CreateThinAsync("t", "pool", 4 * Chunk);
        var pool = await vg.OpenThinPoolAsync("pool");
        var t = await vg.OpenDeviceAsync("t");
        await t.WriteAsync(0, Pattern(4 * Chunk, 1));
        await vg.ExtendLvAsync("t", 16 * Chunk);
        var t2 = await vg.OpenDeviceAsync("t");
        Assert.Equal(16 * Chunk, t2.Length);
        await t2.WriteAsync(4 * Chunk, Pattern(4 * Chunk, 2)); // the pool's 8 chunks are now all used
        await Assert.ThrowsAsync<ThinPoolFullException>(async () => await t2.WriteAsync(8 * Chunk, Pattern(Chunk, 3)));
        await vg.ExtendLvAsync("pool", 4 * Extent);
        Assert.Equal(16, pool.Chunks);
        await t2.WriteAsync(8 * Chunk, Pattern(Chunk, 3));
        await t2.FlushAsync();
        var vg2 = await ReopenAsync();
        Assert.Equal(Pattern(Chunk, 3), (await ReadAll(await vg2.OpenDeviceAsync("t"))).AsSpan(8 * Chunk, Chunk).ToArray());
    }

    [Fact]
    public async Task Snapshots_share_chunks_and_a_write_costs_one_chunk_however_many_there_are()
    {
        var (vg, _) = await _pool.CreateVgAsync(2, Extent);
        await vg.CreateThinPoolAsync("pool", 16 * Extent, Chunk);
        await vg.CreateThinAsync("o", "pool", 8 * Chunk);
        var o = await vg.OpenDeviceAsync("o");
        var original = Pattern(8 * Chunk, 4);
        await o.WriteAsync(0, original);
        var pool = await vg.OpenThinPoolAsync("pool");
        for (int i = 0; i < 10; i++)
            await vg.SnapshotAsync("o", $"s{i}");
        long free = pool.FreeChunks;
        await o.WriteAsync(Chunk + 100, Pattern(10, 5)); // one shared chunk: copied once
        Assert.Equal(free - 1, pool.FreeChunks);
        await o.WriteAsync(Chunk + 200, Pattern(10, 6)); // now its own: in place
        Assert.Equal(free - 1, pool.FreeChunks);
        for (int i = 0; i < 10; i++)
            Assert.Equal(original, await ReadAll(await vg.OpenDeviceAsync($"s{i}")));

        var s3 = await vg.OpenDeviceAsync("s3");
        var mine = Pattern(Chunk, 7);
        await s3.WriteAsync(0, mine); // a writable snapshot diverges on its own
        Assert.Equal(original.AsSpan(0, Chunk).ToArray(), (await ReadAll(o)).AsSpan(0, Chunk).ToArray());
        Assert.Equal(mine, (await ReadAll(s3)).AsSpan(0, Chunk).ToArray());
        await s3.FlushAsync();
        var vg2 = await ReopenAsync();
        Assert.Equal(mine, (await ReadAll(await vg2.OpenDeviceAsync("s3"))).AsSpan(0, Chunk).ToArray());
        Assert.Equal(original, await ReadAll(await vg2.OpenDeviceAsync("s9")));
        Assert.Equal("o", vg2.Metadata.FindThin("s9")!.Origin);
    }

    [Fact]
    public async Task After_a_crash_the_committed_mappings_never_show_another_devices_data()
    {
        var (vg, _) = await _pool.CreateVgAsync(2, Extent);
        await vg.CreateThinPoolAsync("pool", 16 * Extent, Chunk);
        await vg.CreateThinAsync("v", "pool", 4 * Chunk);
        var v = await vg.OpenDeviceAsync("v");
        var original = Pattern(4 * Chunk, 8);
        await v.WriteAsync(0, original);
        await v.FlushAsync();
        await vg.SnapshotAsync("v", "s"); // commits: chunk 0 shared by v and s
        var s = await vg.OpenDeviceAsync("s");
        await v.WriteAsync(0, Pattern(Chunk, 9));  // v copies chunk 0 away; s alone holds the old one (uncommitted)
        await s.WriteAsync(0, Pattern(Chunk, 10)); // must not overwrite the chunk the committed v still maps
        await v.FlushAsync();
        // ... but a crash may come before the flush: simulate by reopening without it after doing it again.
        var vg2 = await ReopenAsync();
        var v2 = await vg2.OpenDeviceAsync("v");
        var s2 = await vg2.OpenDeviceAsync("s");
        await v2.WriteAsync(Chunk, Pattern(Chunk, 11));
        await s2.WriteAsync(Chunk, Pattern(Chunk, 12));
        _pool.KillAll(); // a crash, no flush: the writes above are lost, and must not cross over
        var vg3 = _pool.Track(await VolumeGroup.OpenAsync("vg0", await _pool.OpenPvsAsync([0, 1])));
        Assert.Equal(original.AsSpan(Chunk, Chunk).ToArray(), (await ReadAll(await vg3.OpenDeviceAsync("v"))).AsSpan(Chunk, Chunk).ToArray());
        Assert.Equal(original.AsSpan(Chunk, Chunk).ToArray(), (await ReadAll(await vg3.OpenDeviceAsync("s"))).AsSpan(Chunk, Chunk).ToArray());
    }

    [Fact]
    public void Random_thin_operations_match_a_model_of_every_volume()
    {
        // Ops: 0 write, 1 read-check, 2 snapshot, 3 remove, 4 flush (and sometimes reopen).
        var gen = Gen.Select(Gen.Int[0, 4], Gen.Int[0, 3], Gen.Int[0, (8 * Chunk) - 1], Gen.Int[1, 3 * Chunk], Gen.Int).Array[5, 40];
        gen.Sample(ops =>
        {
            using var pool = new TestPool();
            RunModel(pool, ops).GetAwaiter().GetResult();
        }, iter: 20, threads: 1);
    }

    private static async Task RunModel(TestPool testPool, (int Op, int Vol, int Offset, int Length, int Seed)[] ops)
    {
        var (vg, _) = await testPool.CreateVgAsync(2, Extent);
        await vg.CreateThinPoolAsync("pool", 24 * Extent, Chunk); // 96 chunks: enough for the model, never full
        await vg.CreateThinAsync("t0", "pool", 8 * Chunk);
        var models = new Dictionary<string, byte[]> { ["t0"] = new byte[8 * Chunk] };
        int next = 1;
        foreach (var (op, vol, offset, length, seed) in ops)
        {
            var names = models.Keys.Order().ToList();
            string name = names[vol % names.Count];
            var dev = await vg.OpenDeviceAsync(name);
            int len = Math.Min(length, (8 * Chunk) - offset);
            switch (op)
            {
                case 0:
                    var data = Pattern(len, seed);
                    await dev.WriteAsync(offset, data);
                    data.CopyTo(models[name], offset);
                    break;
                case 1:
                    var back = new byte[len];
                    await dev.ReadAsync(offset, back);
                    Assert.True(models[name].AsSpan(offset, len).SequenceEqual(back), $"{name} {offset}+{len}");
                    break;
                case 2 when models.Count < 6:
                    string snap = $"t{next++}";
                    await vg.SnapshotAsync(name, snap);
                    models[snap] = (byte[])models[name].Clone();
                    break;
                case 3 when models.Count > 1:
                    await vg.RemoveLvAsync(name);
                    models.Remove(name);
                    break;
                case 4:
                    await dev.FlushAsync();
                    if (seed % 3 == 0)
                    {
                        testPool.CloseAll();
                        vg = testPool.Track(await VolumeGroup.OpenAsync("vg0", await testPool.OpenPvsAsync([0, 1])));
                    }
                    break;
            }
        }
        foreach (var (name, model) in models)
            Assert.Equal(model, await ReadAll(await vg.OpenDeviceAsync(name)));
        await (await vg.OpenDeviceAsync(models.Keys.First())).FlushAsync();
        testPool.CloseAll();
        var reopened = testPool.Track(await VolumeGroup.OpenAsync("vg0", await testPool.OpenPvsAsync([0, 1])));
        foreach (var (name, model) in models)
            Assert.Equal(model, await ReadAll(await reopened.OpenDeviceAsync(name)));
    }
}
