// Shared vocabulary for the soft-float tests: fflags bits, rounding modes, notable bit patterns,
// and a generator of operands that favours the cases where IEEE arithmetic is easy to get wrong.
namespace Tern.Riscv.Tests.Fpu;

internal static class Fl
{
    public const uint NX = 1, UF = 2, OF = 4, DZ = 8, NV = 16;
}

internal static class Rm
{
    public const int RNE = 0, RTZ = 1, RDN = 2, RUP = 3, RMM = 4;

    public static readonly int[] All = [RNE, RTZ, RDN, RUP, RMM];
}

internal static class F32
{
    public const uint PosZero = 0x00000000, NegZero = 0x80000000;
    public const uint PosInf = 0x7f800000, NegInf = 0xff800000;
    public const uint QNaN = 0x7fc00000, SNaN = 0x7f800001, NegQNaNPayload = 0xffc12345;
    public const uint One = 0x3f800000, Two = 0x40000000, Three = 0x40400000, Half = 0x3f000000;
    public const uint MinSubnormal = 0x00000001, MaxSubnormal = 0x007fffff, MinNormal = 0x00800000;
    public const uint MaxFinite = 0x7f7fffff;

    public static uint Bits(float f) => BitConverter.SingleToUInt32Bits(f);

    public static float Value(uint bits) => BitConverter.UInt32BitsToSingle(bits);

    public static uint Neg(uint bits) => bits ^ 0x80000000;
}

internal static class F64
{
    public const ulong PosZero = 0, NegZero = 0x8000000000000000;
    public const ulong PosInf = 0x7ff0000000000000, NegInf = 0xfff0000000000000;
    public const ulong QNaN = 0x7ff8000000000000, SNaN = 0x7ff0000000000001, NegQNaNPayload = 0xfff8000000012345;
    public const ulong One = 0x3ff0000000000000, Two = 0x4000000000000000, Three = 0x4008000000000000;
    public const ulong MinSubnormal = 1, MaxSubnormal = 0x000fffffffffffff, MinNormal = 0x0010000000000000;
    public const ulong MaxFinite = 0x7fefffffffffffff;

    public static ulong Bits(double d) => BitConverter.DoubleToUInt64Bits(d);

    public static double Value(ulong bits) => BitConverter.UInt64BitsToDouble(bits);

    public static ulong Neg(ulong bits) => bits ^ 0x8000000000000000;
}

/// <summary>
/// Random bit patterns biased toward special values, subnormals, the overflow edge, near-ties
/// (runs of equal fraction bits) and pairs of operands close enough to cancel.
/// </summary>
internal sealed class OperandGenerator(int seed)
{
    private static readonly ulong[] Special64 =
    [
        F64.PosZero, F64.NegZero, F64.PosInf, F64.NegInf, F64.QNaN, F64.SNaN, F64.NegQNaNPayload,
        F64.One, F64.Two, F64.Three, F64.MinSubnormal, F64.MaxSubnormal, F64.MinNormal, F64.MaxFinite,
    ];

    private static readonly ulong[] Special32 =
    [
        F32.PosZero, F32.NegZero, F32.PosInf, F32.NegInf, F32.QNaN, F32.SNaN, F32.NegQNaNPayload,
        F32.One, F32.Two, F32.Three, F32.MinSubnormal, F32.MaxSubnormal, F32.MinNormal, F32.MaxFinite,
    ];

    private readonly Random random = new(seed);

    public Random Random => random;

    public ulong Next64() => NextBits(11, 52, Special64);

    public uint Next32() => (uint)NextBits(8, 23, Special32);

    /// <summary>An operand often near <paramref name="other"/> in magnitude, to provoke cancellation and carries.</summary>
    public ulong Near64(ulong other) => NearBits(other, 11, 52) ?? Next64();

    public uint Near32(uint other) => (uint)(NearBits(other, 8, 23) ?? Next32());

    private ulong? NearBits(ulong other, int expBits, int fracBits)
    {
        if (random.Next(3) == 0)
            return null;
        ulong expMask = (1UL << expBits) - 1;
        ulong exponent = (other >> fracBits) & expMask;
        long shifted = (long)exponent + random.Next(-3, 4);
        if (shifted < 0 || shifted >= (long)expMask)
            return null;
        ulong fraction = random.Next(2) == 0 ? other & ((1UL << fracBits) - 1) : RandomFraction(fracBits);
        fraction ^= (ulong)random.Next(4);
        ulong sign = (ulong)random.Next(2) << (expBits + fracBits);
        return sign | ((ulong)shifted << fracBits) | (fraction & ((1UL << fracBits) - 1));
    }

    private ulong NextBits(int expBits, int fracBits, ulong[] specials)
    {
        int kind = random.Next(10);
        if (kind == 0)
            return specials[random.Next(specials.Length)];
        ulong all = (1UL << (1 + expBits + fracBits)) - 1;
        if (kind <= 2)
            return (ulong)random.NextInt64() & all;

        int maxExp = (1 << expBits) - 1;
        int exponent = random.Next(4) switch
        {
            0 => random.Next(0, maxExp),                     // anywhere finite
            1 => random.Next(0, Math.Min(60, maxExp)),       // subnormal and just above
            2 => random.Next(Math.Max(0, maxExp - 40), maxExp), // near overflow
            _ => (maxExp / 2) + random.Next(-30, 31),          // near 1.0
        };
        ulong sign = (ulong)random.Next(2) << (expBits + fracBits);
        return sign | ((ulong)exponent << fracBits) | RandomFraction(fracBits);
    }

    /// <summary>Random fraction bits, often with long runs of zeros or ones at the bottom (ties, near-ties).</summary>
    private ulong RandomFraction(int fracBits)
    {
        ulong mask = (1UL << fracBits) - 1;
        ulong fraction = (ulong)random.NextInt64() & mask;
        int run = random.Next(fracBits + 1);
        ulong low = (1UL << run) - 1;
        return random.Next(3) switch
        {
            0 => fraction & ~low,
            1 => fraction | low,
            _ => fraction,
        };
    }
}
