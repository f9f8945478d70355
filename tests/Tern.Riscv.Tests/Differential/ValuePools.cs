// Interesting initial values for integer and floating-point registers and scratch memory:
// the edges where implementations tend to disagree (overflow, sign extension, NaN boxing,
// signalling NaNs, subnormals, conversion limits), mixed with random bits.
namespace Tern.Riscv.Tests.Differential;

/// <summary>Seeded pickers of interesting register and memory values.</summary>
internal static class ValuePools
{
    private static readonly ulong[] IntEdges =
    [
        0, 1, 2, 3, 0xFFFFFFFFFFFFFFFF, 0xFFFFFFFFFFFFFFFE,
        0x8000000000000000, 0x7FFFFFFFFFFFFFFF, 0x8000000000000001,
        0x0000000080000000, 0x000000007FFFFFFF, 0xFFFFFFFF80000000, 0xFFFFFFFF7FFFFFFF,
        0x00000000FFFFFFFF, 0x0000000100000000, 0xFFFFFFFF00000000, 0x00000000FFFFFFFE,
        0x5555555555555555, 0xAAAAAAAAAAAAAAAA, 0x00000000000007FF, 0xFFFFFFFFFFFFF800,
        0x0000000000000800, 0x000000000000003F, 0x0000000000000040, 0x0000000000000020, 0x000000000000001F,
    ];

    /// <summary>An interesting 64-bit integer.</summary>
    public static ulong Int(Rng r)
    {
        switch (r.Next(10))
        {
            case 0:
            case 1:
            case 2:
            case 3:
                return r.Pick(IntEdges);
            case 4:
                return (ulong)r.Range(-64, 64);
            case 5:
                return (ulong)(long)(int)r.NextU64();
            case 6:
                return (uint)r.NextU64();
            case 7:
                // Near a power of two.
                return (1UL << r.Next(64)) + (ulong)r.Range(-2, 2);
            default:
                return r.NextU64();
        }
    }

    private static readonly uint[] SingleEdges =
    [
        0x00000000, 0x80000000, // +-0
        0x7F800000, 0xFF800000, // +-inf
        0x7FC00000, 0xFFC00000, 0x7FC12345, // quiet NaNs (canonical and not)
        0x7F800001, 0x7FA00000, 0xFF800123, // signalling NaNs
        0x00000001, 0x007FFFFF, 0x80000001, 0x80400000, // subnormals
        0x00800000, 0x80800000, 0x7F7FFFFF, 0xFF7FFFFF, // min normal, max finite
        0x3F800000, 0xBF800000, 0x40000000, 0x3F000000, 0xBF000000, // 1, -1, 2, 0.5, -0.5
        0x3FC00000, 0x40200000, 0xBFC00000, 0xC0200000, // 1.5, 2.5, -1.5, -2.5
        0x3EAAAAAB, 0x40490FDB, // 1/3, pi
        0x4F000000, 0xCF000000, 0x4F800000, 0x5F000000, 0xDF000000, 0x5F800000, // 2^31, -2^31, 2^32, 2^63, -2^63, 2^64
        0x4EFFFFFF, 0x4F7FFFFF, 0x5EFFFFFF, 0x5F7FFFFF, 0xCF000001, 0xDF000001, // just inside / outside the integer ranges
        0x4B000000, 0x4B7FFFFF, 0x4B800001, // 2^23 region: rounding of ints
        0x33800000, 0x0C000000, 0x72000000, // tiny and huge products
    ];

    /// <summary>An interesting single-precision bit pattern (32 bits).</summary>
    public static uint Single(Rng r)
    {
        switch (r.Next(8))
        {
            case 0:
            case 1:
            case 2:
            case 3:
                return r.Pick(SingleEdges);
            case 4:
                // A "normal" value with exponent near 1.0.
                return (uint)(r.Next(2) << 31) | ((uint)r.Range(127 - 20, 127 + 20) << 23) | ((uint)r.NextU64() & 0x7FFFFF);
            case 5:
                // Small integer value, exactly representable.
                return BitConverter.SingleToUInt32Bits(r.Range(-1000, 1000) + (r.Next(4) * 0.25f));
            case 6:
                // Near a rounding boundary: a short mantissa plus a few ulps.
                return (uint)(r.Next(2) << 31) | ((uint)r.Range(100, 160) << 23) | (((uint)r.Next(16) << 19) + (uint)r.Range(0, 3));
            default:
                return (uint)r.NextU64();
        }
    }

    private static readonly ulong[] DoubleEdges =
    [
        0x0000000000000000, 0x8000000000000000,
        0x7FF0000000000000, 0xFFF0000000000000,
        0x7FF8000000000000, 0xFFF8000000000000, 0x7FF8000000012345,
        0x7FF0000000000001, 0x7FF4000000000000, 0xFFF0000000000123,
        0x0000000000000001, 0x000FFFFFFFFFFFFF, 0x8000000000000001, 0x8008000000000000,
        0x0010000000000000, 0x8010000000000000, 0x7FEFFFFFFFFFFFFF, 0xFFEFFFFFFFFFFFFF,
        0x3FF0000000000000, 0xBFF0000000000000, 0x4000000000000000, 0x3FE0000000000000, 0xBFE0000000000000,
        0x3FF8000000000000, 0x4004000000000000, 0xBFF8000000000000, 0xC004000000000000,
        0x3FD5555555555555, 0x400921FB54442D18,
        0x41E0000000000000, 0xC1E0000000000000, 0x41F0000000000000, 0x43E0000000000000, 0xC3E0000000000000, 0x43F0000000000000,
        0x41DFFFFFFFC00000, 0x41EFFFFFFFE00000, 0xC1E0000000200000, 0x41EFFFFFFFF00000, 0x43DFFFFFFFFFFFFF, 0xC3E0000000000001,
        0x4330000000000000, 0x4330000000000001, 0x433FFFFFFFFFFFFF,
        0x47EFFFFFE0000000, 0x47EFFFFFF0000000, 0x47F0000000000000, // around float max
        0x36A0000000000000, 0x3690000000000000, 0x3810000000000000, 0x380FFFFFFFFFFFFF, // around float subnormal/normal limits
        0x3FF0000010000000, 0x3FF0000008000000, 0x3FF0000018000000, // halfway cases when narrowing to float
    ];

    /// <summary>An interesting double-precision bit pattern.</summary>
    public static ulong Double(Rng r)
    {
        switch (r.Next(8))
        {
            case 0:
            case 1:
            case 2:
            case 3:
                return r.Pick(DoubleEdges);
            case 4:
                return ((ulong)r.Next(2) << 63) | ((ulong)r.Range(1023 - 40, 1023 + 40) << 52) | (r.NextU64() & 0xFFFFFFFFFFFFF);
            case 5:
                return BitConverter.DoubleToUInt64Bits(r.Range(-100000, 100000) + (r.Next(8) * 0.125));
            case 6:
                // A double that is a float widened, possibly with a low bit set.
                return BitConverter.DoubleToUInt64Bits(BitConverter.UInt32BitsToSingle(Single(r))) ^ (r.Chance(0.5) ? 1UL << r.Next(29) : 0);
            default:
                return r.NextU64();
        }
    }

    /// <summary>A NaN-boxed single.</summary>
    public static ulong BoxedSingle(Rng r) => 0xFFFFFFFF00000000UL | Single(r);

    /// <summary>A single that is not properly NaN-boxed (reads as the canonical NaN in single ops).</summary>
    public static ulong UnboxedSingle(Rng r) => r.Next(3) switch
    {
        0 => 0xFFFFFFFE00000000UL | Single(r),
        1 => (ulong)Single(r),
        _ => r.NextU64(),
    };

    /// <summary>An FP register value: mostly boxed singles when only F is exercised, a mix otherwise.</summary>
    public static ulong FpRegister(Rng r, bool doubles)
    {
        int roll = r.Next(100);
        if (!doubles)
        {
            return roll < 85 ? BoxedSingle(r) : UnboxedSingle(r);
        }

        return roll < 50 ? Double(r) : roll < 85 ? BoxedSingle(r) : UnboxedSingle(r);
    }

    /// <summary>One 64-bit chunk of initial scratch memory.</summary>
    public static ulong Memory(Rng r) => r.Next(4) switch
    {
        0 => Int(r),
        1 => Double(r),
        2 => ((ulong)Single(r) << 32) | Single(r),
        _ => r.NextU64(),
    };
}
