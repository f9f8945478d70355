// fcvt between floats and integers (rounding, NX, and RISC-V's saturating NV cases at every
// boundary) and between the two float formats.
using Tern.Riscv.Fpu;

namespace Tern.Riscv.Tests.Fpu;

public class ConversionTests
{
    private static ulong D(double value) => F64.Bits(value);

    private static void AssertResult<T>(T expected, uint expectedFlags, T actual, uint actualFlags) =>
        Assert.Equal($"{expected} flags {expectedFlags}", $"{actual} flags {actualFlags}");

    [Theory]
    [InlineData(1.5, Rm.RNE, 2)]
    [InlineData(1.5, Rm.RTZ, 1)]
    [InlineData(1.5, Rm.RDN, 1)]
    [InlineData(1.5, Rm.RUP, 2)]
    [InlineData(1.5, Rm.RMM, 2)]
    [InlineData(2.5, Rm.RNE, 2)]
    [InlineData(2.5, Rm.RMM, 3)]
    [InlineData(-1.5, Rm.RNE, -2)]
    [InlineData(-1.5, Rm.RTZ, -1)]
    [InlineData(-1.5, Rm.RDN, -2)]
    [InlineData(-1.5, Rm.RUP, -1)]
    [InlineData(-1.5, Rm.RMM, -2)]
    [InlineData(-2.5, Rm.RNE, -2)]
    [InlineData(-2.5, Rm.RMM, -3)]
    [InlineData(0.25, Rm.RUP, 1)]
    [InlineData(-0.25, Rm.RDN, -1)]
    [InlineData(-0.25, Rm.RNE, 0)]
    public void ToInt32_rounds_inexact_values_per_mode_and_raises_NX(double value, int rm, int expected)
    {
        uint flags = 0;
        AssertResult(expected, Fl.NX, SoftFloat64.ToInt32(D(value), rm, ref flags), flags);
        flags = 0;
        AssertResult(expected, Fl.NX, SoftFloat32.ToInt32(F32.Bits((float)value), rm, ref flags), flags);
        flags = 0;
        AssertResult(expected, Fl.NX, SoftFloat64.ToInt64(D(value), rm, ref flags), flags);
    }

    [Theory]
    [InlineData(2147483647.0, Rm.RNE, int.MaxValue, 0u)]
    [InlineData(2147483647.5, Rm.RTZ, int.MaxValue, Fl.NX)]
    [InlineData(2147483647.5, Rm.RNE, int.MaxValue, Fl.NV)]   // rounds to 2^31, out of range
    [InlineData(2147483648.0, Rm.RTZ, int.MaxValue, Fl.NV)]
    [InlineData(-2147483648.0, Rm.RNE, int.MinValue, 0u)]
    [InlineData(-2147483648.5, Rm.RNE, int.MinValue, Fl.NX)]  // the tie goes to the even -2^31
    [InlineData(-2147483648.5, Rm.RDN, int.MinValue, Fl.NV)]
    [InlineData(-2147483649.0, Rm.RUP, int.MinValue, Fl.NV)]
    [InlineData(1e300, Rm.RNE, int.MaxValue, Fl.NV)]
    [InlineData(-1e300, Rm.RNE, int.MinValue, Fl.NV)]
    [InlineData(double.PositiveInfinity, Rm.RNE, int.MaxValue, Fl.NV)]
    [InlineData(double.NegativeInfinity, Rm.RNE, int.MinValue, Fl.NV)]
    public void ToInt32_saturates_out_of_range_results_with_NV_only(double value, int rm, int expected, uint expectedFlags)
    {
        uint flags = 0;
        AssertResult(expected, expectedFlags, SoftFloat64.ToInt32(D(value), rm, ref flags), flags);
    }

    [Theory]
    [InlineData(4294967295.0, Rm.RNE, uint.MaxValue, 0u)]
    [InlineData(4294967295.5, Rm.RDN, uint.MaxValue, Fl.NX)]
    [InlineData(4294967295.5, Rm.RNE, uint.MaxValue, Fl.NV)]
    [InlineData(4294967296.0, Rm.RNE, uint.MaxValue, Fl.NV)]
    [InlineData(-0.0, Rm.RNE, 0u, 0u)]
    [InlineData(-0.5, Rm.RTZ, 0u, Fl.NX)]                      // rounds to 0, which is representable
    [InlineData(-0.5, Rm.RNE, 0u, Fl.NX)]
    [InlineData(-0.5, Rm.RDN, 0u, Fl.NV)]                      // rounds to -1
    [InlineData(-1.0, Rm.RTZ, 0u, Fl.NV)]
    [InlineData(double.NegativeInfinity, Rm.RNE, 0u, Fl.NV)]
    [InlineData(double.PositiveInfinity, Rm.RNE, uint.MaxValue, Fl.NV)]
    public void ToUInt32_saturates_at_zero_and_all_ones(double value, int rm, uint expected, uint expectedFlags)
    {
        uint flags = 0;
        AssertResult(expected, expectedFlags, SoftFloat64.ToUInt32(D(value), rm, ref flags), flags);
    }

    [Theory]
    [InlineData(0x43dfffffffffffffUL, Rm.RNE, 9223372036854774784L, 0u)] // largest double below 2^63
    [InlineData(0x43e0000000000000UL, Rm.RNE, long.MaxValue, Fl.NV)]     // 2^63
    [InlineData(0xc3e0000000000000UL, Rm.RNE, long.MinValue, 0u)]        // -2^63
    [InlineData(0xc3e0000000000001UL, Rm.RUP, long.MinValue, Fl.NV)]
    [InlineData(F64.MinSubnormal, Rm.RUP, 1L, Fl.NX)]
    [InlineData(F64.MinSubnormal, Rm.RNE, 0L, Fl.NX)]
    [InlineData(F64.NegInf, Rm.RNE, long.MinValue, Fl.NV)]
    public void ToInt64_is_exact_up_to_the_boundaries_and_saturates_beyond(ulong value, int rm, long expected, uint expectedFlags)
    {
        uint flags = 0;
        AssertResult(expected, expectedFlags, SoftFloat64.ToInt64(value, rm, ref flags), flags);
    }

    [Theory]
    [InlineData(0x43efffffffffffffUL, Rm.RNE, 18446744073709549568UL, 0u)] // largest double below 2^64
    [InlineData(0x43f0000000000000UL, Rm.RNE, ulong.MaxValue, Fl.NV)]      // 2^64
    [InlineData(0xbff0000000000000UL, Rm.RNE, 0UL, Fl.NV)]                 // -1
    [InlineData(0xbfe0000000000000UL, Rm.RUP, 0UL, Fl.NX)]                 // -0.5 rounds up to -0
    [InlineData(F64.NegInf, Rm.RNE, 0UL, Fl.NV)]
    public void ToUInt64_is_exact_up_to_the_boundaries_and_saturates_beyond(ulong value, int rm, ulong expected, uint expectedFlags)
    {
        uint flags = 0;
        AssertResult(expected, expectedFlags, SoftFloat64.ToUInt64(value, rm, ref flags), flags);
    }

    [Fact]
    public void Single_to_integer_conversions_saturate_at_the_same_boundaries()
    {
        uint flags = 0;
        AssertResult(2147483520, 0u, SoftFloat32.ToInt32(0x4effffff, Rm.RNE, ref flags), flags);
        AssertResult(int.MaxValue, Fl.NV, SoftFloat32.ToInt32(0x4f000000, Rm.RNE, ref flags), flags);
        flags = 0;
        AssertResult(int.MinValue, 0u, SoftFloat32.ToInt32(0xcf000000, Rm.RNE, ref flags), flags);
        AssertResult(uint.MaxValue, Fl.NV, SoftFloat32.ToUInt32(0x4f800000, Rm.RNE, ref flags), flags);
        flags = 0;
        AssertResult(long.MaxValue, Fl.NV, SoftFloat32.ToInt64(0x5f000000, Rm.RNE, ref flags), flags);
        flags = 0;
        AssertResult(18446742974197923840UL, 0u, SoftFloat32.ToUInt64(0x5f7fffff, Rm.RNE, ref flags), flags);
        AssertResult(0UL, Fl.NV, SoftFloat32.ToUInt64(0xbf800000, Rm.RNE, ref flags), flags);
    }

    [Theory]
    [InlineData(F32.QNaN)]
    [InlineData(F32.SNaN)]
    [InlineData(F32.NegQNaNPayload)]
    public void NaN_converts_like_plus_infinity_to_the_largest_integer_with_NV(uint nan)
    {
        uint flags = 0;
        AssertResult(int.MaxValue, Fl.NV, SoftFloat32.ToInt32(nan, Rm.RNE, ref flags), flags);
        AssertResult(uint.MaxValue, Fl.NV, SoftFloat32.ToUInt32(nan, Rm.RNE, ref flags), flags);
        AssertResult(long.MaxValue, Fl.NV, SoftFloat32.ToInt64(nan, Rm.RNE, ref flags), flags);
        AssertResult(ulong.MaxValue, Fl.NV, SoftFloat32.ToUInt64(nan, Rm.RNE, ref flags), flags);
        ulong wide = SoftFloat64.CanonicalNaN | F64.NegZero;
        AssertResult(int.MaxValue, Fl.NV, SoftFloat64.ToInt32(wide, Rm.RNE, ref flags), flags);
        AssertResult(uint.MaxValue, Fl.NV, SoftFloat64.ToUInt32(wide, Rm.RNE, ref flags), flags);
        AssertResult(long.MaxValue, Fl.NV, SoftFloat64.ToInt64(wide, Rm.RNE, ref flags), flags);
        AssertResult(ulong.MaxValue, Fl.NV, SoftFloat64.ToUInt64(wide, Rm.RNE, ref flags), flags);
    }

    [Theory]
    [InlineData(Rm.RNE, 0x4b800000u)] // 16777216
    [InlineData(Rm.RTZ, 0x4b800000u)]
    [InlineData(Rm.RDN, 0x4b800000u)]
    [InlineData(Rm.RUP, 0x4b800001u)] // 16777218
    [InlineData(Rm.RMM, 0x4b800001u)]
    public void FromInt32_rounds_integers_wider_than_the_single_precision_per_mode(int rm, uint expected)
    {
        uint flags = 0;
        AssertResult(expected, Fl.NX, SoftFloat32.FromInt32(16777217, rm, ref flags), flags);
    }

    [Fact]
    public void Integer_to_float_conversions_are_exact_when_the_value_fits()
    {
        uint flags = 0;
        AssertResult(0xcf000000u, 0u, SoftFloat32.FromInt32(int.MinValue, Rm.RNE, ref flags), flags);
        AssertResult(F32.PosZero, 0u, SoftFloat32.FromInt32(0, Rm.RDN, ref flags), flags);
        AssertResult(0xbf800000u, 0u, SoftFloat32.FromInt64(-1, Rm.RNE, ref flags), flags);
        AssertResult(0xc3e0000000000000UL, 0u, SoftFloat64.FromInt64(long.MinValue, Rm.RNE, ref flags), flags);
        AssertResult(F64.Bits(uint.MaxValue), 0u, SoftFloat64.FromUInt32(uint.MaxValue, Rm.RNE, ref flags), flags);
        AssertResult(F64.Bits(int.MinValue), 0u, SoftFloat64.FromInt32(int.MinValue, Rm.RNE, ref flags), flags);
        AssertResult(F64.PosZero, 0u, SoftFloat64.FromUInt64(0, Rm.RNE, ref flags), flags);
    }

    [Theory]
    [InlineData(Rm.RNE, 0x5f800000u)] // 2^64
    [InlineData(Rm.RTZ, 0x5f7fffffu)]
    [InlineData(Rm.RUP, 0x5f800000u)]
    public void FromUInt64_of_all_ones_rounds_per_mode(int rm, uint expected)
    {
        uint flags = 0;
        AssertResult(expected, Fl.NX, SoftFloat32.FromUInt64(ulong.MaxValue, rm, ref flags), flags);
        flags = 0;
        ulong expectedDouble = rm == Rm.RTZ ? 0x43efffffffffffffUL : 0x43f0000000000000UL;
        AssertResult(expectedDouble, Fl.NX, SoftFloat64.FromUInt64(ulong.MaxValue, rm, ref flags), flags);
    }

    [Fact]
    public void ToFloat64_is_exact_including_subnormals_and_signed_zero()
    {
        uint flags = 0;
        AssertResult(F64.Bits(Math.ScaleB(1, -149)), 0u, SoftFloat32.ToFloat64(F32.MinSubnormal, ref flags), flags);
        AssertResult(F64.Bits(-F32.Value(F32.MaxFinite)), 0u, SoftFloat32.ToFloat64(0xff7fffff, ref flags), flags);
        AssertResult(F64.NegZero, 0u, SoftFloat32.ToFloat64(F32.NegZero, ref flags), flags);
        AssertResult(F64.NegInf, 0u, SoftFloat32.ToFloat64(F32.NegInf, ref flags), flags);
    }

    [Fact]
    public void Float_to_float_conversions_canonicalise_NaNs_and_signal_only_for_signaling_ones()
    {
        uint flags = 0;
        AssertResult(SoftFloat64.CanonicalNaN, 0u, SoftFloat32.ToFloat64(F32.NegQNaNPayload, ref flags), flags);
        AssertResult(SoftFloat32.CanonicalNaN, 0u, SoftFloat64.ToFloat32(F64.NegQNaNPayload, Rm.RNE, ref flags), flags);
        AssertResult(SoftFloat64.CanonicalNaN, Fl.NV, SoftFloat32.ToFloat64(F32.SNaN, ref flags), flags);
        flags = 0;
        AssertResult(SoftFloat32.CanonicalNaN, Fl.NV, SoftFloat64.ToFloat32(F64.SNaN, Rm.RNE, ref flags), flags);
    }

    [Theory]
    [InlineData(Rm.RNE, F32.PosInf)]
    [InlineData(Rm.RTZ, F32.MaxFinite)]
    [InlineData(Rm.RDN, F32.MaxFinite)]
    [InlineData(Rm.RUP, F32.PosInf)]
    [InlineData(Rm.RMM, F32.PosInf)]
    public void ToFloat32_overflow_depends_on_the_rounding_mode(int rm, uint expected)
    {
        uint flags = 0;
        AssertResult(expected, Fl.OF | Fl.NX, SoftFloat64.ToFloat32(D(1e39), rm, ref flags), flags);
    }

    [Theory]
    [InlineData(Rm.RNE, F32.PosZero)]
    [InlineData(Rm.RDN, F32.PosZero)]
    [InlineData(Rm.RUP, F32.MinSubnormal)]
    public void ToFloat32_of_a_tiny_double_underflows(int rm, uint expected)
    {
        uint flags = 0;
        AssertResult(expected, Fl.UF | Fl.NX, SoftFloat64.ToFloat32(D(1e-300), rm, ref flags), flags);
    }

    [Theory]
    [InlineData(Rm.RNE, F32.One)]
    [InlineData(Rm.RTZ, F32.One)]
    [InlineData(Rm.RUP, 0x3f800001u)]
    [InlineData(Rm.RMM, 0x3f800001u)]
    public void ToFloat32_rounds_a_tie_per_mode(int rm, uint expected)
    {
        uint flags = 0;
        AssertResult(expected, Fl.NX, SoftFloat64.ToFloat32(D(1 + Math.ScaleB(1, -24)), rm, ref flags), flags);
    }
}
