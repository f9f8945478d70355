// Property tests of the mapping: random reads and writes (any offset, any length) on every LV
// type agree with a flat byte-array model, before and after the pool is closed and reopened.
using CsCheck;
using Tern.Storage.Format;

namespace Tern.Storage.Tests;

public sealed class MappingPropertyTests
{
    private const long Extent = 64 << 10;

    private sealed record Op(bool Write, long Offset, int Length, int Seed);

    private static Gen<Op> OpGen(long size) =>
        Gen.Select(Gen.Bool, Gen.Long[0, size - 1], Gen.Int[1, 3 * (int)Extent], Gen.Int, (w, off, len, seed) =>
            new Op(w, off, (int)Math.Min(len, size - off), seed));

    public static TheoryData<string> Layouts => ["linear", "striped", "mirror"];

    private static LvLayout Layout(string name) => name switch
    {
        "striped" => new LvLayout(SegmentType.Striped, 3, 16 << 10),
        "mirror" => new LvLayout(SegmentType.Mirror, 2),
        _ => LvLayout.Linear,
    };

    [Theory]
    [MemberData(nameof(Layouts))]
    public void Random_io_matches_a_flat_model_across_reopen(string layout)
    {
        const long size = 24 * Extent;
        Gen.Select(OpGen(size).Array[1, 30], Gen.Int[1, 3]).Sample((ops, pvCount) =>
        {
            using var pool = new TestPool();
            Run(pool, Layout(layout), layout == "linear" ? pvCount : 3, size, ops).GetAwaiter().GetResult();
        }, iter: 25, threads: 1);
    }

    private static async Task Run(TestPool pool, LvLayout layout, int pvCount, long size, Op[] ops)
    {
        var (vg, _) = await pool.CreateVgAsync(pvCount, Extent, size: 4 << 20);
        // A little allocation churn first, so areas do not all start at extent 0.
        var pad = pvCount > 1 ? new LvLayout(SegmentType.Striped, pvCount, 16 << 10) : LvLayout.Linear;
        await vg.CreateLvAsync("pad", Extent * pvCount, pad);
        await vg.CreateLvAsync("lv", size, layout);
        await vg.RemoveLvAsync("pad");
        var model = new byte[size];
        using (var lv = vg.OpenLv("lv"))
        {
            foreach (var op in ops)
            {
                if (op.Write)
                {
                    var data = new byte[op.Length];
                    new Random(op.Seed).NextBytes(data);
                    await lv.WriteAsync(op.Offset, data);
                    data.CopyTo(model, op.Offset);
                }
                else
                {
                    var back = new byte[op.Length];
                    await lv.ReadAsync(op.Offset, back);
                    Assert.True(model.AsSpan((int)op.Offset, op.Length).SequenceEqual(back), $"read {op.Offset}+{op.Length}");
                }
            }
            await lv.FlushAsync();
        }
        pool.CloseAll();
        using var vg2 = await VolumeGroup.OpenAsync("vg0", await pool.OpenPvsAsync(Enumerable.Range(0, pvCount)));
        using var lv2 = vg2.OpenLv("lv");
        var all = new byte[size];
        await lv2.ReadAsync(0, all);
        Assert.Equal(model, all);
        var scrub = await lv2.ScrubAsync();
        Assert.Equal(0, scrub.Repaired + scrub.Unrepairable + scrub.Resynced);
    }
}
