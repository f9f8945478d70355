// Hand-checked binary64 arithmetic: the same rules as binary32 at the wider format's boundaries,
// where the significand arithmetic needs 128-bit intermediates.
using Tern.Riscv.Fpu;

namespace Tern.Riscv.Tests.Fpu;

public class SoftFloat64ArithmeticTests
{
    private const ulong OnePlusUlp = 0x3ff0000000000001;   // 1 + 2^-52
    private const ulong OnePlusTwoUlps = 0x3ff0000000000002;
    private const ulong HalfUlpOfOne = 0x3ca0000000000000; // 2^-53

    private static void AssertResult(ulong expected, uint expectedFlags, ulong actual, uint actualFlags) =>
        Assert.Equal($"{expected:x16} flags {expectedFlags}", $"{actual:x16} flags {actualFlags}");

    [Theory]
    [InlineData(Rm.RNE, F64.One)]
    [InlineData(Rm.RTZ, F64.One)]
    [InlineData(Rm.RDN, F64.One)]
    [InlineData(Rm.RUP, OnePlusUlp)]
    [InlineData(Rm.RMM, OnePlusUlp)]
    public void Add_of_an_exact_tie_rounds_per_mode(int rm, ulong expected)
    {
        uint flags = 0;
        AssertResult(expected, Fl.NX, SoftFloat64.Add(F64.One, HalfUlpOfOne, rm, ref flags), flags);
    }

    [Theory]
    [InlineData(Rm.RNE, 0x3ff0000000000000ul)]
    [InlineData(Rm.RTZ, 0x3fefffffffffffff)]
    [InlineData(Rm.RDN, 0x3fefffffffffffff)]
    [InlineData(Rm.RUP, 0x3ff0000000000000ul)]
    [InlineData(Rm.RMM, 0x3ff0000000000000ul)]
    public void Sub_of_a_far_smaller_number_rounds_into_the_binade_below_in_directed_modes(int rm, ulong expected)
    {
        // 1 - 2^-60 lies just below 1, where the ulp is 2^-53.
        uint flags = 0;
        AssertResult(expected, Fl.NX, SoftFloat64.Sub(F64.One, F64.Bits(Math.ScaleB(1, -60)), rm, ref flags), flags);
    }

    [Fact]
    public void Add_of_a_number_and_its_negation_is_minus_zero_only_in_RDN()
    {
        uint flags = 0;
        AssertResult(F64.PosZero, 0, SoftFloat64.Add(F64.Three, F64.Neg(F64.Three), Rm.RNE, ref flags), flags);
        AssertResult(F64.NegZero, 0, SoftFloat64.Add(F64.Three, F64.Neg(F64.Three), Rm.RDN, ref flags), flags);
        AssertResult(F64.NegZero, 0, SoftFloat64.Add(F64.NegZero, F64.NegZero, Rm.RNE, ref flags), flags);
    }

    [Theory]
    [InlineData(Rm.RNE, F64.PosInf)]
    [InlineData(Rm.RTZ, F64.MaxFinite)]
    [InlineData(Rm.RDN, F64.MaxFinite)]
    [InlineData(Rm.RUP, F64.PosInf)]
    [InlineData(Rm.RMM, F64.PosInf)]
    public void Mul_overflow_gives_infinity_or_the_largest_finite_number_per_mode(int rm, ulong expected)
    {
        uint flags = 0;
        AssertResult(expected, Fl.OF | Fl.NX, SoftFloat64.Mul(F64.MaxFinite, F64.MaxFinite, rm, ref flags), flags);
    }

    [Theory]
    [InlineData(Rm.RNE, F64.PosZero)]
    [InlineData(Rm.RTZ, F64.PosZero)]
    [InlineData(Rm.RDN, F64.PosZero)]
    [InlineData(Rm.RUP, F64.MinSubnormal)]
    [InlineData(Rm.RMM, F64.PosZero)]
    public void Mul_far_below_the_subnormal_range_underflows_to_zero_or_the_smallest_subnormal(int rm, ulong expected)
    {
        uint flags = 0;
        AssertResult(expected, Fl.UF | Fl.NX, SoftFloat64.Mul(F64.MinSubnormal, F64.MinSubnormal, rm, ref flags), flags);
    }

    [Theory]
    [InlineData(Rm.RNE, F64.MinNormal, Fl.NX)]
    [InlineData(Rm.RTZ, F64.MaxSubnormal, Fl.UF | Fl.NX)]
    [InlineData(Rm.RDN, F64.MaxSubnormal, Fl.UF | Fl.NX)]
    [InlineData(Rm.RUP, F64.MinNormal, Fl.NX)]
    [InlineData(Rm.RMM, F64.MinNormal, Fl.NX)]
    public void Underflow_uses_tininess_after_rounding(int rm, ulong expected, uint expectedFlags)
    {
        // 786429 × 22906579627 = 2^54 - 1, so the product below is 2^-1022 - 2^-1076: halfway, at
        // full precision, between the largest number below 2^-1022 and 2^-1022 itself.
        ulong a = F64.Bits(Math.ScaleB(786429, -538)), b = F64.Bits(Math.ScaleB(22906579627, -538));
        uint flags = 0;
        AssertResult(expected, expectedFlags, SoftFloat64.Mul(a, b, rm, ref flags), flags);
    }

    [Fact]
    public void Subnormal_operands_are_used_at_full_value()
    {
        uint flags = 0;
        AssertResult(F64.MinNormal, 0, SoftFloat64.Add(F64.MaxSubnormal, F64.MinSubnormal, Rm.RNE, ref flags), flags);
        AssertResult(F64.Bits(Math.ScaleB(1, 52)), 0, SoftFloat64.Div(F64.MinNormal, F64.MinSubnormal, Rm.RNE, ref flags), flags);
        AssertResult(F64.Bits(Math.ScaleB(1, -537)), 0, SoftFloat64.Sqrt(F64.Bits(Math.ScaleB(1, -1074)), Rm.RNE, ref flags), flags);
    }

    [Theory]
    [InlineData(Rm.RNE, 0x3fd5555555555555ul)]
    [InlineData(Rm.RTZ, 0x3fd5555555555555ul)]
    [InlineData(Rm.RDN, 0x3fd5555555555555ul)]
    [InlineData(Rm.RUP, 0x3fd5555555555556ul)]
    [InlineData(Rm.RMM, 0x3fd5555555555555ul)]
    public void Div_of_one_by_three_rounds_per_mode(int rm, ulong expected)
    {
        uint flags = 0;
        AssertResult(expected, Fl.NX, SoftFloat64.Div(F64.One, F64.Three, rm, ref flags), flags);
    }

    [Fact]
    public void Div_by_zero_raises_DZ_and_zero_by_zero_raises_NV()
    {
        uint flags = 0;
        AssertResult(F64.NegInf, Fl.DZ, SoftFloat64.Div(F64.Neg(F64.Three), F64.PosZero, Rm.RNE, ref flags), flags);
        flags = 0;
        AssertResult(SoftFloat64.CanonicalNaN, Fl.NV, SoftFloat64.Div(F64.NegZero, F64.PosZero, Rm.RNE, ref flags), flags);
    }

    [Theory]
    [InlineData(Rm.RNE, 0x3ff6a09e667f3bcdul)]
    [InlineData(Rm.RTZ, 0x3ff6a09e667f3bccul)]
    [InlineData(Rm.RDN, 0x3ff6a09e667f3bccul)]
    [InlineData(Rm.RUP, 0x3ff6a09e667f3bcdul)]
    [InlineData(Rm.RMM, 0x3ff6a09e667f3bcdul)]
    public void Sqrt_of_two_rounds_per_mode(int rm, ulong expected)
    {
        uint flags = 0;
        AssertResult(expected, Fl.NX, SoftFloat64.Sqrt(F64.Two, rm, ref flags), flags);
    }

    [Fact]
    public void Sqrt_of_a_negative_number_is_invalid_but_of_minus_zero_is_minus_zero()
    {
        uint flags = 0;
        AssertResult(F64.NegZero, 0, SoftFloat64.Sqrt(F64.NegZero, Rm.RNE, ref flags), flags);
        AssertResult(SoftFloat64.CanonicalNaN, Fl.NV, SoftFloat64.Sqrt(F64.Neg(F64.One), Rm.RNE, ref flags), flags);
    }

    [Fact]
    public void MulAdd_rounds_once_where_mul_then_add_would_lose_the_low_product_bits()
    {
        // (1 + 2^-52)² = 1 + 2^-51 + 2^-104; the fused result keeps the 2^-104.
        uint flags = 0;
        AssertResult(F64.Bits(Math.ScaleB(1, -104)), 0, SoftFloat64.MulAdd(OnePlusUlp, OnePlusUlp, F64.Neg(OnePlusTwoUlps), Rm.RNE, ref flags), flags);
    }

    [Theory]
    [InlineData(Rm.RNE, 0x3ff0000000000000ul)]
    [InlineData(Rm.RTZ, 0x3fefffffffffffff)]
    [InlineData(Rm.RDN, 0x3fefffffffffffff)]
    [InlineData(Rm.RUP, 0x3ff0000000000000ul)]
    [InlineData(Rm.RMM, 0x3ff0000000000000ul)]
    public void MulAdd_rounds_a_result_just_below_a_power_of_two_in_the_lower_binade(int rm, ulong expected)
    {
        // 1 · 1 - 2^-1074: the addend is far below the product, so only its sign survives as sticky.
        uint flags = 0;
        AssertResult(expected, Fl.NX, SoftFloat64.MulAdd(F64.One, F64.One, F64.Neg(F64.MinSubnormal), rm, ref flags), flags);
    }

    [Fact]
    public void MulAdd_keeps_an_intermediate_product_beyond_the_format_range()
    {
        // MaxFinite · 2 would overflow on its own; minus MaxFinite it is exactly MaxFinite.
        uint flags = 0;
        AssertResult(F64.MaxFinite, 0, SoftFloat64.MulAdd(F64.MaxFinite, F64.Two, F64.Neg(F64.MaxFinite), Rm.RNE, ref flags), flags);
        // 2^-600 · 2^-600 is far below the subnormals, yet it decides the direction of RUP.
        ulong tiny = F64.Bits(Math.ScaleB(1, -600));
        AssertResult(OnePlusUlp, Fl.NX, SoftFloat64.MulAdd(tiny, tiny, F64.One, Rm.RUP, ref flags), flags);
    }

    [Fact]
    public void MulAdd_of_infinity_times_zero_is_invalid_even_with_a_quiet_NaN_addend()
    {
        uint flags = 0;
        AssertResult(SoftFloat64.CanonicalNaN, Fl.NV, SoftFloat64.MulAdd(F64.PosZero, F64.NegInf, F64.NegQNaNPayload, Rm.RNE, ref flags), flags);
    }

    [Fact]
    public void NaN_results_are_canonical_regardless_of_input_payload_and_sign()
    {
        uint flags = 0;
        AssertResult(SoftFloat64.CanonicalNaN, 0, SoftFloat64.Add(F64.NegQNaNPayload, F64.One, Rm.RNE, ref flags), flags);
        AssertResult(SoftFloat64.CanonicalNaN, Fl.NV, SoftFloat64.Mul(F64.One, F64.SNaN | F64.NegZero, Rm.RNE, ref flags), flags);
    }
}
