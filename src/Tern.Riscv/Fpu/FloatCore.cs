// The IEEE 754 arithmetic behind SoftFloat32 and SoftFloat64, written once for both formats
// with the RISC-V choices built in: every NaN result is the canonical NaN, tininess is
// detected after rounding, and float-to-integer conversions saturate.
//
// Finite non-zero operands are unpacked to sig · 2^exp with the leading one of sig at bit
// FractionBits; each operation forms its exact result (or a jammed stand-in, see
// Significand) as an integer and hands it to RoundPack, the only place that rounds.
using System.Numerics;

namespace Tern.Riscv.Fpu;

internal static class FloatCore<TF>
    where TF : struct, IFloatFormat
{
    private static int F => TF.FractionBits;

    private static int Bias => (1 << (TF.ExponentBits - 1)) - 1;

    /// <summary>Exponent of the smallest normal number.</summary>
    private static int MinExponent => 1 - Bias;

    /// <summary>The all-ones biased exponent that marks infinities and NaNs.</summary>
    private static int SpecialBiased => (1 << TF.ExponentBits) - 1;

    private static ulong SignMask => 1UL << (F + TF.ExponentBits);

    private static ulong HiddenBit => 1UL << F;

    private static ulong FractionMask => HiddenBit - 1;

    private static ulong Infinity => (ulong)SpecialBiased << F;

    private static ulong QuietBit => 1UL << (F - 1);

    private static ulong MaxFinite => Infinity - 1;

    public static ulong CanonicalNaN => Infinity | QuietBit;

    private static ulong Magnitude(ulong x) => x & (SignMask - 1);

    private static bool IsNegative(ulong x) => (x & SignMask) != 0;

    private static bool IsNaN(ulong x) => Magnitude(x) > Infinity;

    private static bool IsSignalingNaN(ulong x) => IsNaN(x) && (x & QuietBit) == 0;

    private static bool IsInfinity(ulong x) => Magnitude(x) == Infinity;

    private static bool IsZero(ulong x) => Magnitude(x) == 0;

    internal static ulong SignedZero(bool negative) => negative ? SignMask : 0;

    internal static ulong SignedInfinity(bool negative) => SignedZero(negative) | Infinity;

    public static ulong Add(ulong a, ulong b, int rm, ref uint flags)
    {
        if (IsNaN(a) || IsNaN(b))
            return NaNResult(a, b, ref flags);
        bool negA = IsNegative(a), negB = IsNegative(b);
        if (IsInfinity(a))
            return IsInfinity(b) && negA != negB ? Invalid(ref flags) : a;
        if (IsInfinity(b))
            return b;
        if (IsZero(a) && IsZero(b))
            return negA == negB ? a : ExactZeroSum(rm);
        if (IsZero(a))
            return b;
        if (IsZero(b))
            return a;

        ulong sigA = Unpack(a, out int expA), sigB = Unpack(b, out int expB);
        // Make a the larger magnitude: the difference of significands is then never negative,
        // and a non-zero result takes a's sign.
        if (expA < expB || (expA == expB && sigA < sigB))
        {
            (sigA, sigB) = (sigB, sigA);
            (expA, expB) = (expB, expA);
            (negA, negB) = (negB, negA);
        }

        // Leading one at bit 61 leaves room for a carry and at least 9 guard bits. Only a b more
        // than one binade below a loses bits to the jam, and then the result keeps its leading one
        // at bit 60 or above, so the jam sits well below the rounding point.
        int guard = 61 - F;
        ulong x = sigA << guard;
        ulong y = Significand.ShiftRightJam(sigB << guard, expA - expB);
        ulong sum = negA == negB ? x + y : x - y;
        return sum == 0 ? ExactZeroSum(rm) : RoundPack(negA, expA - guard, sum, rm, ref flags);
    }

    public static ulong Sub(ulong a, ulong b, int rm, ref uint flags) => Add(a, b ^ SignMask, rm, ref flags);

    public static ulong Mul(ulong a, ulong b, int rm, ref uint flags)
    {
        if (IsNaN(a) || IsNaN(b))
            return NaNResult(a, b, ref flags);
        bool negative = IsNegative(a) != IsNegative(b);
        if (IsInfinity(a) || IsInfinity(b))
            return IsZero(a) || IsZero(b) ? Invalid(ref flags) : SignedInfinity(negative);
        if (IsZero(a) || IsZero(b))
            return SignedZero(negative);

        ulong sigA = Unpack(a, out int expA), sigB = Unpack(b, out int expB);
        return RoundPack(negative, expA + expB, (UInt128)sigA * sigB, rm, ref flags);
    }

    public static ulong Div(ulong a, ulong b, int rm, ref uint flags)
    {
        if (IsNaN(a) || IsNaN(b))
            return NaNResult(a, b, ref flags);
        bool negative = IsNegative(a) != IsNegative(b);
        if (IsInfinity(a))
            return IsInfinity(b) ? Invalid(ref flags) : SignedInfinity(negative);
        if (IsInfinity(b))
            return SignedZero(negative);
        if (IsZero(b))
        {
            if (IsZero(a))
                return Invalid(ref flags);
            flags |= FFlags.DivideByZero;
            return SignedInfinity(negative);
        }
        if (IsZero(a))
            return SignedZero(negative);

        ulong sigA = Unpack(a, out int expA), sigB = Unpack(b, out int expB);
        // sigA / sigB lies in (1/2, 2). Scaling the dividend by 2^scale gives a quotient with at
        // least 9 bits beyond the precision, and a non-zero remainder is jammed into bit 0. For
        // single precision the scaled dividend stays below 2^63, so 64-bit division suffices.
        int scale;
        ulong quotient;
        if (F < 32)
        {
            scale = 62 - F;
            ulong dividend = sigA << scale;
            (ulong q, ulong r) = Math.DivRem(dividend, sigB);
            quotient = q | (r != 0 ? 1UL : 0UL);
        }
        else
        {
            scale = 62;
            (UInt128 q, UInt128 r) = UInt128.DivRem((UInt128)sigA << scale, sigB);
            quotient = (ulong)q | (r != UInt128.Zero ? 1UL : 0UL);
        }
        return RoundPack(negative, expA - expB - scale, quotient, rm, ref flags);
    }

    public static ulong Sqrt(ulong a, int rm, ref uint flags)
    {
        if (IsNaN(a))
            return NaNResult(a, a, ref flags);
        if (IsZero(a))
            return a;
        if (IsNegative(a))
            return Invalid(ref flags);
        if (IsInfinity(a))
            return a;

        ulong sig = Unpack(a, out int exp);
        if ((exp & 1) != 0)
        {
            sig <<= 1;
            exp--;
        }
        // Widen by an even power of two (so the exponent still halves exactly) until the root has
        // at least three bits beyond the precision; an inexact root is jammed.
        int widen = (F + 7) & ~1;
        ulong root = IntegerSqrt((UInt128)sig << widen, out bool exact);
        return RoundPack(false, (exp - widen) / 2, exact ? root : root | 1, rm, ref flags);
    }

    /// <summary>Fused a · b + c with a single rounding.</summary>
    public static ulong MulAdd(ulong a, ulong b, ulong c, int rm, ref uint flags)
    {
        bool infinityTimesZero = (IsInfinity(a) && IsZero(b)) || (IsZero(a) && IsInfinity(b));
        if (IsNaN(a) || IsNaN(b) || IsNaN(c))
        {
            // RISC-V raises NV for ∞ · 0 even when the addend is a quiet NaN.
            if (infinityTimesZero || IsSignalingNaN(a) || IsSignalingNaN(b) || IsSignalingNaN(c))
                flags |= FFlags.Invalid;
            return CanonicalNaN;
        }
        if (infinityTimesZero)
            return Invalid(ref flags);

        bool negP = IsNegative(a) != IsNegative(b), negC = IsNegative(c);
        if (IsInfinity(a) || IsInfinity(b))
            return IsInfinity(c) && negC != negP ? Invalid(ref flags) : SignedInfinity(negP);
        if (IsInfinity(c))
            return c;
        if (IsZero(a) || IsZero(b))
        {
            // An exact zero product leaves c, unless c is a zero too and the signs differ.
            if (!IsZero(c) || negP == negC)
                return c;
            return ExactZeroSum(rm);
        }

        ulong sigA = Unpack(a, out int expA), sigB = Unpack(b, out int expB);
        UInt128 product = (UInt128)sigA * sigB;
        int expP = expA + expB;
        if (IsZero(c))
            return RoundPack(negP, expP, product, rm, ref flags);

        ulong sigC = Unpack(c, out int expC);
        // Put both terms' leading ones at bit 125: two bits of headroom for the carry, and at least
        // 20 zero bits below each (a product has at most 106 bits). Only a term more than 20 bits
        // below the other loses bits to the jam, and then the result keeps its leading one at
        // bit 124 or above, far above the jam.
        int shiftP = 125 - (127 - (int)UInt128.LeadingZeroCount(product));
        int shiftC = 125 - F;
        UInt128 x = product << shiftP, y = (UInt128)sigC << shiftC;
        int expX = expP - shiftP, expY = expC - shiftC;
        bool negX = negP, negY = negC;
        if (expX < expY || (expX == expY && x < y))
        {
            (x, y) = (y, x);
            (expX, expY) = (expY, expX);
            (negX, negY) = (negY, negX);
        }
        y = Significand.ShiftRightJam(y, expX - expY);
        UInt128 sum = negX == negY ? x + y : x - y;
        return sum == UInt128.Zero ? ExactZeroSum(rm) : RoundPack(negX, expX, sum, rm, ref flags);
    }

    /// <summary>fmin: IEEE 754-2019 minimumNumber, with -0 below +0.</summary>
    public static ulong Min(ulong a, ulong b, ref uint flags)
    {
        if (!TryPickNumber(a, b, ref flags, out ulong result))
            result = OrderedLess(a, b) ? a : b;
        return result;
    }

    /// <summary>fmax: IEEE 754-2019 maximumNumber, with -0 below +0.</summary>
    public static ulong Max(ulong a, ulong b, ref uint flags)
    {
        if (!TryPickNumber(a, b, ref flags, out ulong result))
            result = OrderedLess(a, b) ? b : a;
        return result;
    }

    /// <summary>Quiet equality: only signaling NaNs raise NV.</summary>
    public static bool Eq(ulong a, ulong b, ref uint flags)
    {
        if (IsNaN(a) || IsNaN(b))
        {
            if (IsSignalingNaN(a) || IsSignalingNaN(b))
                flags |= FFlags.Invalid;
            return false;
        }
        return a == b || (IsZero(a) && IsZero(b));
    }

    /// <summary>Signaling less-than: any NaN raises NV.</summary>
    public static bool Lt(ulong a, ulong b, ref uint flags)
    {
        if (IsNaN(a) || IsNaN(b))
        {
            flags |= FFlags.Invalid;
            return false;
        }
        return !(IsZero(a) && IsZero(b)) && OrderedLess(a, b);
    }

    /// <summary>Signaling less-or-equal: any NaN raises NV.</summary>
    public static bool Le(ulong a, ulong b, ref uint flags)
    {
        if (IsNaN(a) || IsNaN(b))
        {
            flags |= FFlags.Invalid;
            return false;
        }
        return a == b || (IsZero(a) && IsZero(b)) || OrderedLess(a, b);
    }

    /// <summary>The fclass mask: exactly one of bits 0..9 set.</summary>
    public static uint Classify(ulong a)
    {
        bool negative = IsNegative(a);
        int bit;
        if (IsNaN(a))
            bit = IsSignalingNaN(a) ? 8 : 9;
        else if (IsInfinity(a))
            bit = negative ? 0 : 7;
        else if (IsZero(a))
            bit = negative ? 3 : 4;
        else if ((a & Infinity) == 0)
            bit = negative ? 2 : 5;
        else
            bit = negative ? 1 : 6;
        return 1u << bit;
    }

    /// <summary>
    /// Converts to a <paramref name="width"/>-bit (32 or 64) integer and returns its two's complement
    /// bit pattern. Out-of-range results, infinities and NaNs saturate (NaN like +∞) and raise NV only.
    /// </summary>
    public static ulong ToInteger(ulong a, int rm, bool signed, int width, ref uint flags)
    {
        ulong maxPositive = signed ? (1UL << (width - 1)) - 1 : ulong.MaxValue >> (64 - width);
        ulong maxNegativeMagnitude = signed ? 1UL << (width - 1) : 0;
        bool negative = IsNegative(a) && !IsNaN(a);
        ulong limit = negative ? maxNegativeMagnitude : maxPositive;
        if (IsNaN(a) || IsInfinity(a))
            return Saturate(negative, limit, ref flags);
        if (IsZero(a))
            return 0;

        ulong sig = Unpack(a, out int exp);
        if (exp + F >= 64)
            return Saturate(negative, limit, ref flags);
        ulong magnitude;
        bool inexact = false;
        if (exp >= 0)
            magnitude = sig << exp;
        else
            magnitude = Significand.ShiftRightRound(sig, -exp, negative, rm, out inexact);
        // The range check applies to the rounded value: e.g. -0.4 rounds to 0, which fits unsigned.
        if (magnitude > limit)
            return Saturate(negative, limit, ref flags);
        if (inexact)
            flags |= FFlags.Inexact;
        return negative ? 0 - magnitude : magnitude;
    }

    /// <summary>Converts the integer (-1)^negative · magnitude, rounding if it needs more bits than the precision.</summary>
    public static ulong FromInteger(bool negative, ulong magnitude, int rm, ref uint flags) =>
        magnitude == 0 ? 0 : RoundPack(negative, 0, magnitude, rm, ref flags);

    /// <summary>Converts to format <typeparamref name="TTo"/>; exact when widening.</summary>
    public static ulong ConvertTo<TTo>(ulong a, int rm, ref uint flags)
        where TTo : struct, IFloatFormat
    {
        if (IsNaN(a))
        {
            if (IsSignalingNaN(a))
                flags |= FFlags.Invalid;
            return FloatCore<TTo>.CanonicalNaN;
        }
        bool negative = IsNegative(a);
        if (IsInfinity(a))
            return FloatCore<TTo>.SignedInfinity(negative);
        if (IsZero(a))
            return FloatCore<TTo>.SignedZero(negative);
        ulong sig = Unpack(a, out int exp);
        return FloatCore<TTo>.RoundPack(negative, exp, sig, rm, ref flags);
    }

    /// <summary>
    /// Rounds (-1)^negative · sig · 2^exp to this format, raising NX, UF and OF. sig must be non-zero
    /// and either exact or jammed with at least two bits below the rounding point.
    /// </summary>
    internal static ulong RoundPack(bool negative, int exp, ulong sig, int rm, ref uint flags)
    {
        int top = exp + 63 - BitOperations.LeadingZeroCount(sig);
        // Exponent of the last bit kept: a full precision below the leading one, but never finer
        // than the subnormal quantum.
        int lsb = Math.Max(top, MinExponent) - F;
        int shift = lsb - exp;
        bool inexact = false;
        ulong m = shift <= 0 ? sig << -shift : Significand.ShiftRightRound(sig, shift, negative, rm, out inexact);
        if (m == HiddenBit << 1)
        {
            // Rounding carried into a new binade.
            m >>= 1;
            lsb++;
        }

        if (inexact)
        {
            flags |= FFlags.Inexact;
            if (IsTinyAfterRounding(negative, exp, sig, top, rm))
                flags |= FFlags.Underflow;
        }
        if (m < HiddenBit)
            return SignedZero(negative) | m; // subnormal, or zero after rounding
        int biased = lsb + F + Bias;
        if (biased >= SpecialBiased)
            return Overflow(negative, rm, ref flags);
        return SignedZero(negative) | ((ulong)biased << F) | (m & FractionMask);
    }

    /// <summary>
    /// RoundPack for a 128-bit significand: anything wider than 64 bits is jammed down until its
    /// leading one is at bit 63, which leaves the jam at least 11 bits below the rounding point.
    /// </summary>
    private static ulong RoundPack(bool negative, int exp, UInt128 sig, int rm, ref uint flags)
    {
        int excess = 64 - (int)UInt128.LeadingZeroCount(sig);
        if (excess > 0)
        {
            sig = Significand.ShiftRightJam(sig, excess);
            exp += excess;
        }
        return RoundPack(negative, exp, (ulong)sig, rm, ref flags);
    }

    /// <summary>
    /// RISC-V detects tininess after rounding: a result is tiny when rounding it to full precision
    /// with an unbounded exponent range still leaves it below the smallest normal number.
    /// </summary>
    private static bool IsTinyAfterRounding(bool negative, int exp, ulong sig, int top, int rm)
    {
        if (top >= MinExponent)
            return false;
        if (top < MinExponent - 1)
            return true;
        // Just below the smallest normal: tiny unless rounding carries up to it.
        int shift = top - F - exp;
        return shift <= 0 || Significand.ShiftRightRound(sig, shift, negative, rm, out _) < HiddenBit << 1;
    }

    private static ulong Overflow(bool negative, int rm, ref uint flags)
    {
        flags |= FFlags.Overflow | FFlags.Inexact;
        // Rounding toward zero, or against the sign, stops at the largest finite number.
        bool toInfinity = rm switch
        {
            RoundingMode.TowardZero => false,
            RoundingMode.Down => negative,
            RoundingMode.Up => !negative,
            _ => true,
        };
        return toInfinity ? SignedInfinity(negative) : SignedZero(negative) | MaxFinite;
    }

    /// <summary>Splits a finite non-zero x into sig · 2^exp with the leading one of sig at bit F.</summary>
    private static ulong Unpack(ulong x, out int exp)
    {
        int biased = (int)(Magnitude(x) >> F);
        ulong fraction = x & FractionMask;
        if (biased != 0)
        {
            exp = biased - Bias - F;
            return fraction | HiddenBit;
        }
        int shift = BitOperations.LeadingZeroCount(fraction) - (63 - F);
        exp = MinExponent - F - shift;
        return fraction << shift;
    }

    /// <summary>The sign of an exact zero sum of opposite-signed operands: +0, but -0 when rounding down.</summary>
    private static ulong ExactZeroSum(int rm) => SignedZero(rm == RoundingMode.Down);

    private static ulong NaNResult(ulong a, ulong b, ref uint flags)
    {
        if (IsSignalingNaN(a) || IsSignalingNaN(b))
            flags |= FFlags.Invalid;
        return CanonicalNaN;
    }

    private static ulong Invalid(ref uint flags)
    {
        flags |= FFlags.Invalid;
        return CanonicalNaN;
    }

    private static ulong Saturate(bool negative, ulong limit, ref uint flags)
    {
        flags |= FFlags.Invalid;
        return negative ? 0 - limit : limit;
    }

    /// <summary>The NaN rules shared by fmin and fmax; false when both operands are numbers.</summary>
    private static bool TryPickNumber(ulong a, ulong b, ref uint flags, out ulong result)
    {
        if (IsSignalingNaN(a) || IsSignalingNaN(b))
            flags |= FFlags.Invalid;
        bool nanA = IsNaN(a), nanB = IsNaN(b);
        result = nanA ? (nanB ? CanonicalNaN : b) : a;
        return nanA || nanB;
    }

    /// <summary>Orders two non-NaN numbers, with -0 below +0.</summary>
    private static bool OrderedLess(ulong a, ulong b)
    {
        bool negA = IsNegative(a);
        if (negA != IsNegative(b))
            return negA;
        // Same sign: the bit patterns order like the magnitudes.
        return negA ? a > b : a < b;
    }

    /// <summary>floor(√n) for n below 2^126, with whether it is exact.</summary>
    private static ulong IntegerSqrt(UInt128 n, out bool exact)
    {
        // The double estimate is off by at most a few units; the loops make it exact.
        ulong r = (ulong)Math.Sqrt((double)n);
        while ((UInt128)r * r > n)
            r--;
        while ((UInt128)(r + 1) * (r + 1) <= n)
            r++;
        exact = (UInt128)r * r == n;
        return r;
    }
}
