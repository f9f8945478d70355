// Integer helpers for shifting significands right while keeping track of the bits that
// fall off, which is all that IEEE rounding needs to know about them.
//
// "Jamming" ORs every discarded bit into bit 0 of the result. A jammed value stands in
// for the exact one as long as the final rounding discards at least two bits: the exact
// value then lies strictly between the same pair of even integers as the jammed odd one,
// so it compares the same against every rounding point and halfway point.
namespace Tern.Riscv.Fpu;

internal static class Significand
{
    /// <summary>Shifts <paramref name="x"/> right by <paramref name="n"/> (any n ≥ 0), jamming lost bits into bit 0.</summary>
    public static ulong ShiftRightJam(ulong x, int n)
    {
        if (n == 0)
            return x;
        if (n >= 64)
            return x != 0 ? 1UL : 0UL;
        ulong lost = x & ((1UL << n) - 1);
        return (x >> n) | (lost != 0 ? 1UL : 0UL);
    }

    /// <summary>128-bit version of <see cref="ShiftRightJam(ulong, int)"/>.</summary>
    public static UInt128 ShiftRightJam(UInt128 x, int n)
    {
        if (n == 0)
            return x;
        if (n >= 128)
            return x != UInt128.Zero ? UInt128.One : UInt128.Zero;
        UInt128 lost = x & ((UInt128.One << n) - 1);
        return (x >> n) | (lost != UInt128.Zero ? UInt128.One : UInt128.Zero);
    }

    /// <summary>
    /// Divides the magnitude <paramref name="x"/> by 2^<paramref name="n"/> (n ≥ 1) and rounds the
    /// quotient to an integer according to <paramref name="rm"/>; <paramref name="negative"/> is the sign
    /// of the number the magnitude belongs to, which the directed modes need.
    /// </summary>
    public static ulong ShiftRightRound(ulong x, int n, bool negative, int rm, out bool inexact)
    {
        ulong kept, rest, half;
        if (n < 64)
        {
            kept = x >> n;
            rest = x & ((1UL << n) - 1);
            half = 1UL << (n - 1);
        }
        else if (n == 64)
        {
            kept = 0;
            rest = x;
            half = 1UL << 63;
        }
        else
        {
            // Everything is discarded and even the halfway point 2^(n-1) exceeds any ulong, so a
            // non-zero x is "below half"; 1 versus 2 encodes exactly that.
            kept = 0;
            rest = x != 0 ? 1UL : 0UL;
            half = 2;
        }

        inexact = rest != 0;
        bool roundUp = rm switch
        {
            RoundingMode.NearestEven => rest > half || (rest == half && (kept & 1) != 0),
            RoundingMode.TowardZero => false,
            RoundingMode.Down => inexact && negative,
            RoundingMode.Up => inexact && !negative,
            RoundingMode.NearestMaxMagnitude => rest >= half,
            _ => throw new ArgumentOutOfRangeException(nameof(rm), rm, "not a static RISC-V rounding mode"),
        };
        return roundUp ? kept + 1 : kept;
    }
}
