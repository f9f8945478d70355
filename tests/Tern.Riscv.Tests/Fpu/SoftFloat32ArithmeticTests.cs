// Hand-checked binary32 arithmetic: each rounding mode at ties and near-ties, every flag, signed
// zeros, subnormals, overflow, tininess after rounding, NaN canonicalisation and fma's single rounding.
using Tern.Riscv.Fpu;

namespace Tern.Riscv.Tests.Fpu;

public class SoftFloat32ArithmeticTests
{
    private const uint OnePlusUlp = 0x3f800001;      // 1 + 2^-23
    private const uint HalfUlpOfOne = 0x33800000;    // 2^-24
    private const uint OnePlusTwoUlps = 0x3f800002;

    private static void AssertResult(uint expected, uint expectedFlags, uint actual, uint actualFlags) =>
        Assert.Equal($"{expected:x8} flags {expectedFlags}", $"{actual:x8} flags {actualFlags}");

    [Fact]
    public void Add_of_exact_values_raises_no_flags()
    {
        uint flags = 0;
        AssertResult(F32.Three, 0, SoftFloat32.Add(F32.One, F32.Two, Rm.RNE, ref flags), flags);
    }

    [Theory]
    [InlineData(Rm.RNE, F32.One)]
    [InlineData(Rm.RTZ, F32.One)]
    [InlineData(Rm.RDN, F32.One)]
    [InlineData(Rm.RUP, OnePlusUlp)]
    [InlineData(Rm.RMM, OnePlusUlp)]
    public void Add_of_an_exact_tie_below_an_even_significand_rounds_per_mode(int rm, uint expected)
    {
        uint flags = 0;
        AssertResult(expected, Fl.NX, SoftFloat32.Add(F32.One, HalfUlpOfOne, rm, ref flags), flags);
    }

    [Theory]
    [InlineData(Rm.RNE, OnePlusTwoUlps)]
    [InlineData(Rm.RTZ, OnePlusUlp)]
    [InlineData(Rm.RDN, OnePlusUlp)]
    [InlineData(Rm.RUP, OnePlusTwoUlps)]
    [InlineData(Rm.RMM, OnePlusTwoUlps)]
    public void Add_of_an_exact_tie_above_an_odd_significand_rounds_to_even_in_RNE(int rm, uint expected)
    {
        uint flags = 0;
        AssertResult(expected, Fl.NX, SoftFloat32.Add(OnePlusUlp, HalfUlpOfOne, rm, ref flags), flags);
    }

    [Theory]
    [InlineData(Rm.RNE, 0xbf800000u)]
    [InlineData(Rm.RTZ, 0xbf800000u)]
    [InlineData(Rm.RDN, 0xbf800001u)]
    [InlineData(Rm.RUP, 0xbf800000u)]
    [InlineData(Rm.RMM, 0xbf800001u)]
    public void Add_rounds_negative_results_by_magnitude_in_RTZ_and_by_value_in_RDN_and_RUP(int rm, uint expected)
    {
        uint flags = 0;
        AssertResult(expected, Fl.NX, SoftFloat32.Add(F32.Neg(F32.One), F32.Neg(HalfUlpOfOne), rm, ref flags), flags);
    }

    [Theory]
    [InlineData(Rm.RNE, F32.PosZero)]
    [InlineData(Rm.RTZ, F32.PosZero)]
    [InlineData(Rm.RDN, F32.NegZero)]
    [InlineData(Rm.RUP, F32.PosZero)]
    [InlineData(Rm.RMM, F32.PosZero)]
    public void Add_of_a_number_and_its_negation_is_plus_zero_except_minus_zero_in_RDN(int rm, uint expected)
    {
        uint flags = 0;
        AssertResult(expected, 0, SoftFloat32.Add(F32.Three, F32.Neg(F32.Three), rm, ref flags), flags);
        AssertResult(expected, 0, SoftFloat32.Sub(F32.MinSubnormal, F32.MinSubnormal, rm, ref flags), flags);
        AssertResult(expected, 0, SoftFloat32.Add(F32.PosZero, F32.NegZero, rm, ref flags), flags);
    }

    [Theory]
    [InlineData(Rm.RNE)]
    [InlineData(Rm.RDN)]
    [InlineData(Rm.RUP)]
    public void Add_of_like_signed_zeros_keeps_their_sign(int rm)
    {
        uint flags = 0;
        AssertResult(F32.NegZero, 0, SoftFloat32.Add(F32.NegZero, F32.NegZero, rm, ref flags), flags);
        AssertResult(F32.PosZero, 0, SoftFloat32.Add(F32.PosZero, F32.PosZero, rm, ref flags), flags);
        AssertResult(F32.NegZero, 0, SoftFloat32.Sub(F32.NegZero, F32.PosZero, rm, ref flags), flags);
    }

    [Fact]
    public void Add_of_subnormals_is_exact_and_can_produce_the_smallest_normal()
    {
        uint flags = 0;
        AssertResult(0x00000002, 0, SoftFloat32.Add(F32.MinSubnormal, F32.MinSubnormal, Rm.RNE, ref flags), flags);
        AssertResult(F32.MinNormal, 0, SoftFloat32.Add(F32.MaxSubnormal, F32.MinSubnormal, Rm.RNE, ref flags), flags);
        AssertResult(F32.MaxSubnormal, 0, SoftFloat32.Sub(F32.MinNormal, F32.MinSubnormal, Rm.RNE, ref flags), flags);
    }

    [Theory]
    [InlineData(Rm.RNE, F32.PosInf, Fl.OF | Fl.NX)]
    [InlineData(Rm.RTZ, F32.MaxFinite, Fl.OF | Fl.NX)]
    [InlineData(Rm.RDN, F32.MaxFinite, Fl.OF | Fl.NX)]
    [InlineData(Rm.RUP, F32.PosInf, Fl.OF | Fl.NX)]
    [InlineData(Rm.RMM, F32.PosInf, Fl.OF | Fl.NX)]
    public void Add_overflow_gives_infinity_or_the_largest_finite_number_per_mode(int rm, uint expected, uint expectedFlags)
    {
        uint flags = 0;
        AssertResult(expected, expectedFlags, SoftFloat32.Add(F32.MaxFinite, F32.MaxFinite, rm, ref flags), flags);
    }

    [Theory]
    [InlineData(Rm.RNE, F32.NegInf)]
    [InlineData(Rm.RTZ, 0xff7fffffu)]
    [InlineData(Rm.RDN, F32.NegInf)]
    [InlineData(Rm.RUP, 0xff7fffffu)]
    [InlineData(Rm.RMM, F32.NegInf)]
    public void Negative_overflow_goes_to_minus_infinity_only_when_rounding_away_from_zero(int rm, uint expected)
    {
        uint flags = 0;
        AssertResult(expected, Fl.OF | Fl.NX, SoftFloat32.Mul(0xff7fffff, F32.Two, rm, ref flags), flags);
    }

    [Theory]
    [InlineData(Rm.RNE, F32.PosInf, Fl.OF | Fl.NX)]
    [InlineData(Rm.RTZ, F32.MaxFinite, Fl.NX)]
    [InlineData(Rm.RDN, F32.MaxFinite, Fl.NX)]
    [InlineData(Rm.RUP, F32.PosInf, Fl.OF | Fl.NX)]
    [InlineData(Rm.RMM, F32.PosInf, Fl.OF | Fl.NX)]
    public void Overflow_is_judged_after_rounding_so_a_result_that_rounds_down_to_max_finite_is_only_inexact(int rm, uint expected, uint expectedFlags)
    {
        // MaxFinite + half its ulp (2^103) is exactly halfway to 2^128.
        uint flags = 0;
        AssertResult(expected, expectedFlags, SoftFloat32.Add(F32.MaxFinite, 0x73000000, rm, ref flags), flags);
    }

    [Fact]
    public void Add_of_opposite_infinities_is_invalid_and_gives_the_canonical_NaN()
    {
        uint flags = 0;
        AssertResult(SoftFloat32.CanonicalNaN, Fl.NV, SoftFloat32.Add(F32.PosInf, F32.NegInf, Rm.RNE, ref flags), flags);
        flags = 0;
        AssertResult(SoftFloat32.CanonicalNaN, Fl.NV, SoftFloat32.Sub(F32.PosInf, F32.PosInf, Rm.RNE, ref flags), flags);
        flags = 0;
        AssertResult(F32.NegInf, 0, SoftFloat32.Add(F32.NegInf, F32.MaxFinite, Rm.RNE, ref flags), flags);
    }

    [Fact]
    public void NaN_operands_give_the_canonical_NaN_and_only_signaling_ones_raise_NV()
    {
        uint flags = 0;
        AssertResult(SoftFloat32.CanonicalNaN, 0, SoftFloat32.Add(F32.NegQNaNPayload, F32.One, Rm.RNE, ref flags), flags);
        AssertResult(SoftFloat32.CanonicalNaN, 0, SoftFloat32.Mul(F32.One, F32.NegQNaNPayload, Rm.RNE, ref flags), flags);
        AssertResult(SoftFloat32.CanonicalNaN, 0, SoftFloat32.Div(F32.QNaN, F32.QNaN, Rm.RNE, ref flags), flags);
        AssertResult(SoftFloat32.CanonicalNaN, 0, SoftFloat32.Sqrt(F32.NegQNaNPayload, Rm.RNE, ref flags), flags);
        AssertResult(SoftFloat32.CanonicalNaN, Fl.NV, SoftFloat32.Sub(F32.One, F32.SNaN, Rm.RNE, ref flags), flags);
        flags = 0;
        AssertResult(SoftFloat32.CanonicalNaN, Fl.NV, SoftFloat32.Mul(F32.SNaN, F32.PosZero, Rm.RNE, ref flags), flags);
        flags = 0;
        AssertResult(SoftFloat32.CanonicalNaN, Fl.NV, SoftFloat32.Sqrt(F32.SNaN, Rm.RNE, ref flags), flags);
    }

    [Fact]
    public void Mul_of_infinity_by_zero_is_invalid()
    {
        uint flags = 0;
        AssertResult(SoftFloat32.CanonicalNaN, Fl.NV, SoftFloat32.Mul(F32.NegZero, F32.PosInf, Rm.RNE, ref flags), flags);
    }

    [Fact]
    public void Mul_gives_zeros_the_exclusive_or_of_the_signs()
    {
        uint flags = 0;
        AssertResult(F32.NegZero, 0, SoftFloat32.Mul(F32.NegZero, F32.Three, Rm.RNE, ref flags), flags);
        AssertResult(F32.PosZero, 0, SoftFloat32.Mul(F32.NegZero, F32.Neg(F32.Three), Rm.RNE, ref flags), flags);
        AssertResult(F32.NegInf, 0, SoftFloat32.Mul(F32.PosInf, F32.Neg(F32.MinSubnormal), Rm.RNE, ref flags), flags);
    }

    [Fact]
    public void Mul_with_an_exact_subnormal_result_does_not_underflow()
    {
        uint flags = 0;
        AssertResult(0x00400000, 0, SoftFloat32.Mul(F32.MinNormal, F32.Half, Rm.RNE, ref flags), flags);
        AssertResult(F32.MinNormal, 0, SoftFloat32.Mul(0x00400000, F32.Two, Rm.RNE, ref flags), flags);
    }

    [Theory]
    [InlineData(Rm.RNE, F32.PosZero)]
    [InlineData(Rm.RTZ, F32.PosZero)]
    [InlineData(Rm.RDN, F32.PosZero)]
    [InlineData(Rm.RUP, F32.MinSubnormal)]
    [InlineData(Rm.RMM, F32.MinSubnormal)]
    public void Mul_halving_the_smallest_subnormal_underflows_to_zero_or_the_smallest_subnormal(int rm, uint expected)
    {
        uint flags = 0;
        AssertResult(expected, Fl.UF | Fl.NX, SoftFloat32.Mul(F32.MinSubnormal, F32.Half, rm, ref flags), flags);
        flags = 0;
        uint negativeExpected = rm switch { Rm.RDN => F32.Neg(F32.MinSubnormal), Rm.RUP => F32.NegZero, _ => F32.Neg(expected) };
        AssertResult(negativeExpected, Fl.UF | Fl.NX, SoftFloat32.Mul(F32.Neg(F32.MinSubnormal), F32.Half, rm, ref flags), flags);
    }

    [Theory]
    [InlineData(Rm.RNE, F32.MinNormal, Fl.NX)]
    [InlineData(Rm.RTZ, F32.MaxSubnormal, Fl.UF | Fl.NX)]
    [InlineData(Rm.RDN, F32.MaxSubnormal, Fl.UF | Fl.NX)]
    [InlineData(Rm.RUP, F32.MinNormal, Fl.NX)]
    [InlineData(Rm.RMM, F32.MinNormal, Fl.NX)]
    public void Underflow_uses_tininess_after_rounding_so_a_result_rounding_up_to_min_normal_is_not_tiny(int rm, uint expected, uint expectedFlags)
    {
        // 18631·2^-80 × 1801·2^-71 = (2^25 - 1)·2^-151 = 2^-126 - 2^-151: halfway, at full precision,
        // between the largest number below 2^-126 and 2^-126 itself.
        uint flags = 0;
        AssertResult(expected, expectedFlags, SoftFloat32.Mul(0x1e918e00, 0x21612000, rm, ref flags), flags);
    }

    [Fact]
    public void Underflow_is_raised_for_a_tiny_result_even_when_the_subnormal_rounding_delivers_min_normal()
    {
        // 12913·2^-80 × 5197·2^-72 = (2^26 - 3)·2^-152 = 2^-126 - 0.75·2^-150: at full precision it rounds
        // to just below 2^-126 (tiny), but the coarser subnormal grid rounds it up to 2^-126.
        uint a = F32.Bits(12913 * MathF.ScaleB(1, -80)), b = F32.Bits(5197 * MathF.ScaleB(1, -72));
        uint flags = 0;
        AssertResult(F32.MinNormal, Fl.UF | Fl.NX, SoftFloat32.Mul(a, b, Rm.RNE, ref flags), flags);
    }

    [Theory]
    [InlineData(Rm.RNE, 0x3eaaaaabu)]
    [InlineData(Rm.RTZ, 0x3eaaaaaau)]
    [InlineData(Rm.RDN, 0x3eaaaaaau)]
    [InlineData(Rm.RUP, 0x3eaaaaabu)]
    [InlineData(Rm.RMM, 0x3eaaaaabu)]
    public void Div_of_one_by_three_rounds_per_mode(int rm, uint expected)
    {
        uint flags = 0;
        AssertResult(expected, Fl.NX, SoftFloat32.Div(F32.One, F32.Three, rm, ref flags), flags);
    }

    [Fact]
    public void Div_of_a_finite_non_zero_number_by_zero_raises_DZ_and_gives_signed_infinity()
    {
        uint flags = 0;
        AssertResult(F32.PosInf, Fl.DZ, SoftFloat32.Div(F32.One, F32.PosZero, Rm.RNE, ref flags), flags);
        flags = 0;
        AssertResult(F32.NegInf, Fl.DZ, SoftFloat32.Div(F32.One, F32.NegZero, Rm.RNE, ref flags), flags);
        flags = 0;
        AssertResult(F32.PosInf, Fl.DZ, SoftFloat32.Div(F32.Neg(F32.MinSubnormal), F32.NegZero, Rm.RNE, ref flags), flags);
    }

    [Fact]
    public void Div_of_infinity_by_zero_is_infinity_without_DZ()
    {
        uint flags = 0;
        AssertResult(F32.NegInf, 0, SoftFloat32.Div(F32.NegInf, F32.PosZero, Rm.RNE, ref flags), flags);
        AssertResult(F32.NegZero, 0, SoftFloat32.Div(F32.One, F32.NegInf, Rm.RNE, ref flags), flags);
    }

    [Fact]
    public void Div_of_zero_by_zero_and_infinity_by_infinity_is_invalid()
    {
        uint flags = 0;
        AssertResult(SoftFloat32.CanonicalNaN, Fl.NV, SoftFloat32.Div(F32.PosZero, F32.NegZero, Rm.RNE, ref flags), flags);
        flags = 0;
        AssertResult(SoftFloat32.CanonicalNaN, Fl.NV, SoftFloat32.Div(F32.NegInf, F32.PosInf, Rm.RNE, ref flags), flags);
    }

    [Theory]
    [InlineData(Rm.RNE, F32.PosInf, Fl.OF | Fl.NX)]
    [InlineData(Rm.RTZ, F32.MaxFinite, Fl.OF | Fl.NX)]
    [InlineData(Rm.RUP, F32.PosInf, Fl.OF | Fl.NX)]
    public void Div_by_a_subnormal_can_overflow(int rm, uint expected, uint expectedFlags)
    {
        uint flags = 0;
        AssertResult(expected, expectedFlags, SoftFloat32.Div(F32.One, F32.MinSubnormal, rm, ref flags), flags);
    }

    [Theory]
    [InlineData(Rm.RNE, 0x3fb504f3u)]
    [InlineData(Rm.RTZ, 0x3fb504f3u)]
    [InlineData(Rm.RDN, 0x3fb504f3u)]
    [InlineData(Rm.RUP, 0x3fb504f4u)]
    [InlineData(Rm.RMM, 0x3fb504f3u)]
    public void Sqrt_of_two_rounds_per_mode(int rm, uint expected)
    {
        uint flags = 0;
        AssertResult(expected, Fl.NX, SoftFloat32.Sqrt(F32.Two, rm, ref flags), flags);
    }

    [Fact]
    public void Sqrt_handles_exact_squares_zeros_infinity_and_subnormals()
    {
        uint flags = 0;
        AssertResult(F32.Two, 0, SoftFloat32.Sqrt(F32.Bits(4f), Rm.RNE, ref flags), flags);
        AssertResult(F32.NegZero, 0, SoftFloat32.Sqrt(F32.NegZero, Rm.RNE, ref flags), flags);
        AssertResult(F32.PosInf, 0, SoftFloat32.Sqrt(F32.PosInf, Rm.RNE, ref flags), flags);
        // √(2^-148) = 2^-74 exactly; √(2^-149) is inexact.
        AssertResult(F32.Bits(MathF.ScaleB(1, -74)), 0, SoftFloat32.Sqrt(0x00000002, Rm.RNE, ref flags), flags);
        AssertResult(F32.Bits(MathF.Sqrt(F32.Value(F32.MinSubnormal))), Fl.NX, SoftFloat32.Sqrt(F32.MinSubnormal, Rm.RNE, ref flags), flags);
    }

    [Fact]
    public void Sqrt_of_a_negative_number_is_invalid()
    {
        uint flags = 0;
        AssertResult(SoftFloat32.CanonicalNaN, Fl.NV, SoftFloat32.Sqrt(F32.Neg(F32.MinSubnormal), Rm.RNE, ref flags), flags);
        flags = 0;
        AssertResult(SoftFloat32.CanonicalNaN, Fl.NV, SoftFloat32.Sqrt(F32.NegInf, Rm.RNE, ref flags), flags);
    }

    [Fact]
    public void MulAdd_rounds_once_where_mul_then_add_would_lose_the_low_product_bits()
    {
        // (1 + 2^-23)² = 1 + 2^-22 + 2^-46; subtracting 1 + 2^-22 leaves exactly 2^-46, which a
        // separately rounded product would have lost.
        uint minusRoundedProduct = F32.Neg(OnePlusTwoUlps);
        uint flags = 0;
        AssertResult(F32.Bits(MathF.ScaleB(1, -46)), 0, SoftFloat32.MulAdd(OnePlusUlp, OnePlusUlp, minusRoundedProduct, Rm.RNE, ref flags), flags);
        uint product = SoftFloat32.Mul(OnePlusUlp, OnePlusUlp, Rm.RNE, ref flags);
        Assert.Equal(F32.PosZero, SoftFloat32.Add(product, minusRoundedProduct, Rm.RNE, ref flags));
    }

    [Theory]
    [InlineData(Rm.RNE, OnePlusTwoUlps)]
    [InlineData(Rm.RTZ, OnePlusTwoUlps)]
    [InlineData(Rm.RUP, 0x3f800003u)]
    public void MulAdd_with_a_zero_addend_still_rounds_the_product(int rm, uint expected)
    {
        uint flags = 0;
        AssertResult(expected, Fl.NX, SoftFloat32.MulAdd(OnePlusUlp, OnePlusUlp, F32.NegZero, rm, ref flags), flags);
    }

    [Fact]
    public void MulAdd_of_infinity_times_zero_is_invalid_even_with_a_quiet_NaN_addend()
    {
        uint flags = 0;
        AssertResult(SoftFloat32.CanonicalNaN, Fl.NV, SoftFloat32.MulAdd(F32.PosInf, F32.PosZero, F32.QNaN, Rm.RNE, ref flags), flags);
        flags = 0;
        AssertResult(SoftFloat32.CanonicalNaN, Fl.NV, SoftFloat32.MulAdd(F32.NegZero, F32.NegInf, F32.One, Rm.RNE, ref flags), flags);
        flags = 0;
        AssertResult(SoftFloat32.CanonicalNaN, 0, SoftFloat32.MulAdd(F32.QNaN, F32.PosZero, F32.One, Rm.RNE, ref flags), flags);
        AssertResult(SoftFloat32.CanonicalNaN, Fl.NV, SoftFloat32.MulAdd(F32.One, F32.One, F32.SNaN, Rm.RNE, ref flags), flags);
    }

    [Fact]
    public void MulAdd_of_an_infinite_product_and_the_opposite_infinity_is_invalid()
    {
        uint flags = 0;
        AssertResult(SoftFloat32.CanonicalNaN, Fl.NV, SoftFloat32.MulAdd(F32.PosInf, F32.Neg(F32.Two), F32.PosInf, Rm.RNE, ref flags), flags);
        flags = 0;
        AssertResult(F32.NegInf, 0, SoftFloat32.MulAdd(F32.PosInf, F32.Neg(F32.Two), F32.NegInf, Rm.RNE, ref flags), flags);
        AssertResult(F32.PosInf, 0, SoftFloat32.MulAdd(F32.MaxFinite, F32.Two, F32.PosInf, Rm.RNE, ref flags), flags);
    }

    [Theory]
    [InlineData(Rm.RNE, F32.PosZero)]
    [InlineData(Rm.RDN, F32.NegZero)]
    [InlineData(Rm.RUP, F32.PosZero)]
    public void MulAdd_exact_zero_results_follow_the_addition_sign_rules(int rm, uint oppositeSigns)
    {
        uint flags = 0;
        AssertResult(oppositeSigns, 0, SoftFloat32.MulAdd(F32.Two, F32.Three, F32.Bits(-6f), rm, ref flags), flags);
        AssertResult(oppositeSigns, 0, SoftFloat32.MulAdd(F32.NegZero, F32.Two, F32.PosZero, rm, ref flags), flags);
        AssertResult(F32.NegZero, 0, SoftFloat32.MulAdd(F32.NegZero, F32.Two, F32.NegZero, rm, ref flags), flags);
        AssertResult(F32.Three, 0, SoftFloat32.MulAdd(F32.NegZero, F32.Two, F32.Three, rm, ref flags), flags);
    }
}
