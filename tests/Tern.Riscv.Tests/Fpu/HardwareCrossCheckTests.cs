// Randomized round-to-nearest-even cross-check of the soft-float arithmetic against the host's
// IEEE hardware (System.Double / System.Single, whose arithmetic .NET performs in the stated
// precision). The host is only trusted for the value: when it produces a NaN, RISC-V demands
// the canonical NaN instead of whatever payload the host propagates.
using Tern.Riscv.Fpu;

namespace Tern.Riscv.Tests.Fpu;

public class HardwareCrossCheckTests
{
    private const int Iterations = 200_000;

    [Fact]
    public void Binary64_arithmetic_matches_host_doubles_bit_for_bit_in_RNE()
    {
        var gen = new OperandGenerator(seed: 64);
        for (int i = 0; i < Iterations; i++)
        {
            ulong a = gen.Next64();
            ulong b = gen.Random.Next(2) == 0 ? gen.Near64(a) : gen.Next64();
            ulong c = gen.Random.Next(2) == 0 ? gen.Near64(a) : gen.Next64();
            double x = F64.Value(a), y = F64.Value(b), z = F64.Value(c);
            uint flags = 0;
            Check64("add", a, b, c, x + y, SoftFloat64.Add(a, b, Rm.RNE, ref flags));
            Check64("sub", a, b, c, x - y, SoftFloat64.Sub(a, b, Rm.RNE, ref flags));
            Check64("mul", a, b, c, x * y, SoftFloat64.Mul(a, b, Rm.RNE, ref flags));
            Check64("div", a, b, c, x / y, SoftFloat64.Div(a, b, Rm.RNE, ref flags));
            Check64("sqrt", a, b, c, Math.Sqrt(x), SoftFloat64.Sqrt(a, Rm.RNE, ref flags));
            Check64("fma", a, b, c, Math.FusedMultiplyAdd(x, y, z), SoftFloat64.MulAdd(a, b, c, Rm.RNE, ref flags));
            // The product of operands near each other's reciprocal magnitude, plus a term near it,
            // is where a fused result most often differs from a separately rounded one.
            ulong product = F64.Bits(x * y);
            ulong cancel = F64.Neg(gen.Near64(product));
            Check64("fma-cancel", a, b, cancel, Math.FusedMultiplyAdd(x, y, F64.Value(cancel)), SoftFloat64.MulAdd(a, b, cancel, Rm.RNE, ref flags));
        }
    }

    [Fact]
    public void Binary32_arithmetic_matches_host_singles_bit_for_bit_in_RNE()
    {
        var gen = new OperandGenerator(seed: 32);
        for (int i = 0; i < Iterations; i++)
        {
            uint a = gen.Next32();
            uint b = gen.Random.Next(2) == 0 ? gen.Near32(a) : gen.Next32();
            uint c = gen.Random.Next(2) == 0 ? gen.Near32(a) : gen.Next32();
            float x = F32.Value(a), y = F32.Value(b), z = F32.Value(c);
            uint flags = 0;
            Check32("add", a, b, c, x + y, SoftFloat32.Add(a, b, Rm.RNE, ref flags));
            Check32("sub", a, b, c, x - y, SoftFloat32.Sub(a, b, Rm.RNE, ref flags));
            Check32("mul", a, b, c, x * y, SoftFloat32.Mul(a, b, Rm.RNE, ref flags));
            Check32("div", a, b, c, x / y, SoftFloat32.Div(a, b, Rm.RNE, ref flags));
            Check32("sqrt", a, b, c, MathF.Sqrt(x), SoftFloat32.Sqrt(a, Rm.RNE, ref flags));
            Check32("fma", a, b, c, MathF.FusedMultiplyAdd(x, y, z), SoftFloat32.MulAdd(a, b, c, Rm.RNE, ref flags));
            uint product = F32.Bits(x * y);
            uint cancel = F32.Neg(gen.Near32(product));
            Check32("fma-cancel", a, b, cancel, MathF.FusedMultiplyAdd(x, y, F32.Value(cancel)), SoftFloat32.MulAdd(a, b, cancel, Rm.RNE, ref flags));
        }
    }

    [Fact]
    public void Conversions_match_host_in_RNE()
    {
        var gen = new OperandGenerator(seed: 3264);
        for (int i = 0; i < Iterations; i++)
        {
            ulong d = gen.Next64();
            uint s = gen.Next32();
            long l = gen.Random.NextInt64() >> gen.Random.Next(64);
            uint flags = 0;
            Check32("fcvt.s.d", d, 0, 0, (float)F64.Value(d), SoftFloat64.ToFloat32(d, Rm.RNE, ref flags));
            Check64("fcvt.d.s", s, 0, 0, F32.Value(s), SoftFloat32.ToFloat64(s, ref flags));
            Check64("fcvt.d.l", (ulong)l, 0, 0, l, SoftFloat64.FromInt64(l, Rm.RNE, ref flags));
            Check64("fcvt.d.lu", (ulong)l, 0, 0, (ulong)l, SoftFloat64.FromUInt64((ulong)l, Rm.RNE, ref flags));
            Check32("fcvt.s.l", (ulong)l, 0, 0, l, SoftFloat32.FromInt64(l, Rm.RNE, ref flags));
            Check32("fcvt.s.lu", (ulong)l, 0, 0, (ulong)l, SoftFloat32.FromUInt64((ulong)l, Rm.RNE, ref flags));
        }
    }

    private static void Check64(string op, ulong a, ulong b, ulong c, double expected, ulong actual)
    {
        ulong want = double.IsNaN(expected) ? F64.QNaN : F64.Bits(expected);
        if (want != actual)
            Assert.Fail($"{op}({a:x16}, {b:x16}, {c:x16}): expected {want:x16}, got {actual:x16}");
    }

    private static void Check32(string op, ulong a, ulong b, ulong c, float expected, uint actual)
    {
        uint want = float.IsNaN(expected) ? F32.QNaN : F32.Bits(expected);
        if (want != actual)
            Assert.Fail($"{op}({a:x8}, {b:x8}, {c:x8}): expected {want:x8}, got {actual:x8}");
    }
}
