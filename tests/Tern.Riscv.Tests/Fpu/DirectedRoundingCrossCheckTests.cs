// Randomized cross-check of binary32 arithmetic in all five rounding modes, flags included,
// against an independent model built on binary64: every binary32 add, sub, mul and fma result is
// a double plus an error term that TwoSum / an fma residual recovers exactly, and the sign of
// that term is all that directed rounding needs. RoundingModel rounds such "double + tiny" values
// to binary32 by plain floor arithmetic on scaled doubles, which shares no code with SoftFloat.
using Tern.Riscv.Fpu;

namespace Tern.Riscv.Tests.Fpu;

public class DirectedRoundingCrossCheckTests
{
    private const int Iterations = 40_000;

    [Fact]
    public void Binary32_add_and_sub_match_the_exact_model_in_every_rounding_mode()
    {
        var gen = new OperandGenerator(seed: 1);
        for (int i = 0; i < Iterations; i++)
        {
            uint a = gen.Next32(), b = gen.Random.Next(2) == 0 ? gen.Near32(a) : gen.Next32();
            if (!IsFinite(a) || !IsFinite(b))
                continue;
            foreach (int rm in Rm.All)
            {
                uint flags = 0;
                uint sum = SoftFloat32.Add(a, b, rm, ref flags);
                Expect("add", a, b, 0, rm, ExpectedSum(a, b, rm), (sum, flags));
                flags = 0;
                uint difference = SoftFloat32.Sub(a, b, rm, ref flags);
                Expect("sub", a, b, 0, rm, ExpectedSum(a, F32.Neg(b), rm), (difference, flags));
            }
        }
    }

    [Fact]
    public void Binary32_mul_matches_the_exact_model_in_every_rounding_mode()
    {
        var gen = new OperandGenerator(seed: 2);
        for (int i = 0; i < Iterations; i++)
        {
            uint a = gen.Next32(), b = gen.Next32();
            if (!IsFinite(a) || !IsFinite(b))
                continue;
            double x = F32.Value(a), y = F32.Value(b);
            foreach (int rm in Rm.All)
            {
                uint flags = 0;
                uint product = SoftFloat32.Mul(a, b, rm, ref flags);
                // 24 × 24 bits fit a double's 53, so the product is exact.
                var expected = x * y == 0 ? (F32.Bits((float)(x * y)), 0u) : RoundingModel.ToSingle(x * y, 0, rm);
                Expect("mul", a, b, 0, rm, expected, (product, flags));
            }
        }
    }

    [Fact]
    public void Binary32_fma_matches_the_exact_model_in_every_rounding_mode()
    {
        var gen = new OperandGenerator(seed: 3);
        for (int i = 0; i < Iterations; i++)
        {
            uint a = gen.Next32(), b = gen.Next32();
            double product = (double)F32.Value(a) * F32.Value(b);
            // Half of the addends sit near -a·b, where the fused result depends on every bit.
            uint c = gen.Random.Next(2) == 0 ? F32.Neg(gen.Near32(F32.Bits((float)product))) : gen.Next32();
            if (!IsFinite(a) || !IsFinite(b) || !IsFinite(c))
                continue;
            double z = F32.Value(c);
            foreach (int rm in Rm.All)
            {
                uint flags = 0;
                uint fused = SoftFloat32.MulAdd(a, b, c, rm, ref flags);
                (uint, uint) expected;
                if (product == 0 && z == 0)
                    expected = (ZeroSumSign(double.IsNegative(product), double.IsNegative(z), rm), 0);
                else
                {
                    (double s, double err) = TwoSum(product, z);
                    expected = s == 0 ? (ZeroSumSign(false, true, rm), 0) : RoundingModel.ToSingle(s, Math.Sign(err), rm);
                }
                Expect("fma", a, b, c, rm, expected, (fused, flags));
            }
        }
    }

    [Fact]
    public void Binary32_div_and_sqrt_match_the_exact_model_in_every_rounding_mode()
    {
        var gen = new OperandGenerator(seed: 4);
        for (int i = 0; i < Iterations; i++)
        {
            uint a = gen.Next32(), b = gen.Next32();
            if (!IsFinite(a) || !IsFinite(b))
                continue;
            double x = F32.Value(a), y = F32.Value(b);
            foreach (int rm in Rm.All)
            {
                if (y != 0)
                {
                    uint flags = 0;
                    uint quotient = SoftFloat32.Div(a, b, rm, ref flags);
                    double q = x / y;
                    // x - q·y is exact, and its sign (times y's) tells which side of q the true quotient lies.
                    double residual = Math.FusedMultiplyAdd(-q, y, x);
                    var expected = q == 0 ? (F32.Bits((float)q), 0u) : RoundingModel.ToSingle(q, Math.Sign(residual) * Math.Sign(y), rm);
                    Expect("div", a, b, 0, rm, expected, (quotient, flags));
                }
                if (x > 0)
                {
                    uint flags = 0;
                    uint root = SoftFloat32.Sqrt(a, rm, ref flags);
                    double r = Math.Sqrt(x);
                    double residual = Math.FusedMultiplyAdd(-r, r, x);
                    Expect("sqrt", a, 0, 0, rm, RoundingModel.ToSingle(r, Math.Sign(residual), rm), (root, flags));
                }
            }
        }
    }

    [Fact]
    public void Binary64_to_binary32_matches_the_exact_model_in_every_rounding_mode()
    {
        var gen = new OperandGenerator(seed: 5);
        for (int i = 0; i < Iterations; i++)
        {
            ulong a = gen.Next64();
            // Bias toward the binary32 range, where the interesting roundings happen.
            if (gen.Random.Next(2) == 0)
                a = (a & 0x800fffffffffffff) | ((ulong)gen.Random.Next(1023 - 160, 1023 + 130) << 52);
            double x = F64.Value(a);
            if (!double.IsFinite(x))
                continue;
            foreach (int rm in Rm.All)
            {
                uint flags = 0;
                uint narrowed = SoftFloat64.ToFloat32(a, rm, ref flags);
                var expected = x == 0 ? (F32.Bits((float)x), 0u) : RoundingModel.ToSingle(x, 0, rm);
                Expect("fcvt.s.d", a, 0, 0, rm, expected, (narrowed, flags));
            }
        }
    }

    private static (uint, uint) ExpectedSum(uint a, uint b, int rm)
    {
        double x = F32.Value(a), y = F32.Value(b);
        if (x == 0 && y == 0)
            return (ZeroSumSign(double.IsNegative(x), double.IsNegative(y), rm), 0);
        (double s, double err) = TwoSum(x, y);
        return s == 0 ? (ZeroSumSign(false, true, rm), 0) : RoundingModel.ToSingle(s, Math.Sign(err), rm);
    }

    /// <summary>IEEE 754 §6.3: an exact zero sum is -0 only if both terms are -0, or in RDN when their signs differ.</summary>
    private static uint ZeroSumSign(bool negX, bool negY, int rm) =>
        negX == negY ? (negX ? F32.NegZero : F32.PosZero) : rm == Rm.RDN ? F32.NegZero : F32.PosZero;

    /// <summary>Knuth's TwoSum: s = fl(x + y) and the exact error x + y - s.</summary>
    private static (double Sum, double Error) TwoSum(double x, double y)
    {
        double s = x + y;
        double yPart = s - x;
        double xPart = s - yPart;
        return (s, (x - xPart) + (y - yPart));
    }

    private static bool IsFinite(uint bits) => float.IsFinite(F32.Value(bits));

    private static void Expect(string op, ulong a, ulong b, ulong c, int rm, (uint Bits, uint Flags) expected, (uint Bits, uint Flags) actual)
    {
        if (expected != actual)
            Assert.Fail($"{op}({a:x}, {b:x}, {c:x}) rm={rm}: expected {expected.Bits:x8} flags {expected.Flags}, got {actual.Bits:x8} flags {actual.Flags}");
    }
}

/// <summary>
/// Rounds an exact real number, given as a non-zero double s plus an error of sign errSign smaller
/// than half an ulp of s, to binary32 under a RISC-V rounding mode, and derives the fflags.
/// </summary>
internal static class RoundingModel
{
    private const double MinNormal = 1.1754943508222875e-38;   // 2^-126
    private const double MaxFinite = 3.4028234663852886e38;

    public static (uint Bits, uint Flags) ToSingle(double s, int errSign, int rm)
    {
        bool negative = s < 0;
        double magnitude = Math.Abs(s);
        int magnitudeErr = negative ? -errSign : errSign;
        // The binade of the exact value: one below s's when s is a power of two and the error points down.
        int exponent = Math.ILogB(magnitude);
        if (magnitudeErr < 0 && magnitude == Math.ScaleB(1.0, exponent))
            exponent--;
        double quantum = Math.ScaleB(1.0, Math.Max(exponent, -126) - 23);

        // With an unbounded exponent range (tininess is judged after rounding); far below 2^-126
        // that rounding cannot reach 2^-126, and its quantum would underflow the double.
        double unbounded = exponent < -127
            ? magnitude
            : RoundToQuantum(magnitude, magnitudeErr, Math.ScaleB(1.0, exponent - 23), negative, rm).Value;
        if (unbounded > MaxFinite)
        {
            bool toInfinity = rm switch { Rm.RTZ => false, Rm.RDN => negative, Rm.RUP => !negative, _ => true };
            float saturated = toInfinity ? float.PositiveInfinity : float.MaxValue;
            return (F32.Bits(negative ? -saturated : saturated), Fl.OF | Fl.NX);
        }

        (double rounded, bool inexact) = RoundToQuantum(magnitude, magnitudeErr, quantum, negative, rm);
        uint flags = 0;
        if (inexact)
            flags |= Fl.NX;
        if (inexact && unbounded < MinNormal)
            flags |= Fl.UF;
        return (F32.Bits((float)(negative ? -rounded : rounded)), flags);
    }

    /// <summary>Rounds magnitude + (tiny of sign err) to a multiple of quantum (a power of two).</summary>
    private static (double Value, bool Inexact) RoundToQuantum(double magnitude, int err, double quantum, bool negative, int rm)
    {
        double scaled = magnitude / quantum; // exact: a power-of-two scaling
        double n = Math.Floor(scaled);
        double fraction = scaled - n;         // exact
        int vsHalf;                            // where the discarded part lies relative to one half
        if (fraction == 0 && err == 0)
            return (magnitude, false);
        if (fraction == 0 && err < 0)
        {
            n -= 1;                            // just below an integer: the fraction is nearly 1
            vsHalf = 1;
        }
        else if (fraction == 0)
            vsHalf = -1;
        else
            vsHalf = fraction != 0.5 ? Math.Sign(fraction - 0.5) : err;

        bool up = rm switch
        {
            Rm.RNE => vsHalf > 0 || (vsHalf == 0 && n % 2 != 0),
            Rm.RMM => vsHalf >= 0,
            Rm.RUP => !negative,
            Rm.RDN => negative,
            _ => false,
        };
        return ((up ? n + 1 : n) * quantum, true);
    }
}
