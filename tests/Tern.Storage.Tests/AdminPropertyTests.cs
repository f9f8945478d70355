// Property test of the volume manager as a whole: random sequences of create, write, extend,
// reduce, convert, pvmove, snapshot, removal and reopen, against a model of every volume's
// (and snapshot's) expected contents and of the VG's free space.
using CsCheck;
using Tern.Storage.Format;

namespace Tern.Storage.Tests;

public sealed class AdminPropertyTests
{
    private const long Extent = 64 << 10;

    [Fact]
    public void Random_admin_sequences_keep_every_volume_and_the_free_space_right()
    {
        var gen = Gen.Select(Gen.Int[0, 9], Gen.Int[0, 7], Gen.Int[1, 6], Gen.Int).Array[5, 30];
        gen.Sample(ops =>
        {
            using var pool = new TestPool();
            RunAsync(pool, ops).GetAwaiter().GetResult();
        }, iter: 20, threads: 1);
    }

    private static byte[] Pattern(int length, int seed)
    {
        var b = new byte[length];
        new Random(seed).NextBytes(b);
        return b;
    }

    private static async Task RunAsync(TestPool pool, (int Op, int Pick, int Size, int Seed)[] ops)
    {
        var (vg, pvs) = await pool.CreateVgAsync(4, Extent, size: 6 << 20);
        long total = vg.Metadata.Pvs.Sum(p => p.Extents);
        var models = new Dictionary<string, byte[]>();
        int next = 0;
        foreach (var (op, pick, size, seed) in ops)
        {
            var names = models.Keys.Order().ToList();
            string? name = names.Count == 0 ? null : names[pick % names.Count];
            try
            {
                switch (op)
                {
                    case 0 or 1: // create
                        var layout = (pick % 3) switch
                        {
                            0 => LvLayout.Linear,
                            1 => new LvLayout(SegmentType.Striped, 2, 16 << 10),
                            _ => new LvLayout(SegmentType.Mirror, 2),
                        };
                        string created = $"lv{next++}";
                        var entry = await vg.CreateLvAsync(created, size * Extent, layout);
                        models[created] = new byte[entry.Extents * Extent];
                        break;
                    case 2 when name is not null: // write
                        var target = await vg.OpenDeviceAsync(name);
                        long off = (long)seed % models[name].Length;
                        off = Math.Abs(off);
                        int len = (int)Math.Min(models[name].Length - off, 3 * Extent);
                        var data = Pattern(len, seed);
                        await target.WriteAsync(off, data);
                        data.CopyTo(models[name], off);
                        (target as IDisposable)?.Dispose();
                        break;
                    case 3 when name is not null: // extend
                        long grown = await vg.ExtendLvAsync(name, models[name].Length + (size * Extent));
                        var bigger = new byte[grown];
                        models[name].CopyTo(bigger, 0);
                        models[name] = bigger;
                        break;
                    case 4 when name is not null && models[name].Length > Extent: // reduce
                        long shrunk = await vg.ReduceLvAsync(name, Math.Max(Extent, models[name].Length - (size * Extent)));
                        models[name] = models[name].AsSpan(0, (int)shrunk).ToArray();
                        break;
                    case 5 when name is not null && vg.Metadata.FindLv(name) is { } lvEntry && lvEntry.Segments.All(s => s.Type != SegmentType.Striped): // convert
                        await vg.ConvertMirrorsAsync(name, 1 + (size % 3));
                        break;
                    case 6: // pvmove
                        await vg.PvMoveAsync(pvs[pick % pvs.Count], chunkExtents: 1 + (size % 3));
                        break;
                    case 7 when name is not null: // remove
                        await vg.RemoveLvAsync(name);
                        models.Remove(name);
                        break;
                    case 9 when name is not null && models.Count < 6: // snapshot (of any LV, or of a snapshot)
                        string snap = $"lv{next++}";
                        await vg.SnapshotAsync(name, snap, storeBytes: null);
                        models[snap] = (byte[])models[name].Clone();
                        break;
                    case 8: // reopen
                        pool.CloseAll();
                        pvs = await pool.OpenPvsAsync([0, 1, 2, 3]);
                        vg = pool.Track(await VolumeGroup.OpenAsync("vg0", pvs));
                        break;
                }
            }
            catch (ThinPoolFullException)
            {
                // A snapshot store ran full: the write failed as a whole and changed nothing (checked below).
            }
            catch (StorageException e) when (e is InsufficientSpaceException || e.Message.Contains("snapshot", StringComparison.Ordinal))
            {
                // Refused (no space; an origin still has snapshots, or they still read its extents):
                // the model must not change, and neither may the pool (checked below).
            }
            // After every step: the contents, and used + free = total.
            foreach (var (n, model) in models)
            {
                var dev = await vg.OpenDeviceAsync(n);
                Assert.Equal(model.Length, dev.Length);
                var back = new byte[model.Length];
                await dev.ReadAsync(0, back);
                Assert.True(model.AsSpan().SequenceEqual(back), $"{n} after op {op}");
                (dev as IDisposable)?.Dispose();
            }
            long used = vg.Metadata.Lvs.Sum(l => l.Segments.Sum(s => s.ExtentsPerArea * s.Areas.Count));
            Assert.Equal(total, used + Allocator.FreeExtents(vg.Metadata));
            Assert.DoesNotContain(vg.Metadata.Lvs, l => l.Segments.Any(s => s.Areas.Any(a => a.Stale || a.MoveTo is not null)));
        }
    }
}
