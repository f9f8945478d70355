// fmin/fmax (RISC-V 2.2 minimumNumber/maximumNumber), feq/flt/fle and fclass for both formats.
using Tern.Riscv.Fpu;

namespace Tern.Riscv.Tests.Fpu;

public class ComparisonTests
{
    [Fact]
    public void Min_and_max_order_minus_zero_below_plus_zero_in_either_operand_order()
    {
        uint flags = 0;
        Assert.Equal(F32.NegZero, SoftFloat32.Min(F32.PosZero, F32.NegZero, ref flags));
        Assert.Equal(F32.NegZero, SoftFloat32.Min(F32.NegZero, F32.PosZero, ref flags));
        Assert.Equal(F32.PosZero, SoftFloat32.Max(F32.NegZero, F32.PosZero, ref flags));
        Assert.Equal(F32.PosZero, SoftFloat32.Max(F32.PosZero, F32.NegZero, ref flags));
        Assert.Equal(F64.NegZero, SoftFloat64.Min(F64.PosZero, F64.NegZero, ref flags));
        Assert.Equal(F64.PosZero, SoftFloat64.Max(F64.NegZero, F64.PosZero, ref flags));
        Assert.Equal(0u, flags);
    }

    [Fact]
    public void Min_and_max_compare_by_value_across_signs_and_magnitudes()
    {
        uint flags = 0;
        Assert.Equal(F32.Neg(F32.Three), SoftFloat32.Min(F32.Neg(F32.Three), F32.Neg(F32.Two), ref flags));
        Assert.Equal(F32.Neg(F32.Two), SoftFloat32.Max(F32.Neg(F32.Three), F32.Neg(F32.Two), ref flags));
        Assert.Equal(F32.NegInf, SoftFloat32.Min(F32.MinSubnormal, F32.NegInf, ref flags));
        Assert.Equal(F32.MinSubnormal, SoftFloat32.Max(F32.MinSubnormal, F32.NegInf, ref flags));
        Assert.Equal(F64.Three, SoftFloat64.Max(F64.Two, F64.Three, ref flags));
        Assert.Equal(F64.Neg(F64.Three), SoftFloat64.Min(F64.Two, F64.Neg(F64.Three), ref flags));
        Assert.Equal(0u, flags);
    }

    [Fact]
    public void Min_and_max_with_one_quiet_NaN_return_the_other_operand_without_flags()
    {
        uint flags = 0;
        Assert.Equal(F32.One, SoftFloat32.Min(F32.QNaN, F32.One, ref flags));
        Assert.Equal(F32.NegInf, SoftFloat32.Max(F32.NegInf, F32.NegQNaNPayload, ref flags));
        Assert.Equal(F64.NegZero, SoftFloat64.Max(F64.NegQNaNPayload, F64.NegZero, ref flags));
        Assert.Equal(0u, flags);
    }

    [Fact]
    public void Min_and_max_with_a_signaling_NaN_raise_NV_but_still_return_the_number()
    {
        uint flags = 0;
        Assert.Equal(F32.One, SoftFloat32.Max(F32.One, F32.SNaN, ref flags));
        Assert.Equal(Fl.NV, flags);
        flags = 0;
        Assert.Equal(F64.Two, SoftFloat64.Min(F64.SNaN, F64.Two, ref flags));
        Assert.Equal(Fl.NV, flags);
    }

    [Fact]
    public void Min_and_max_of_two_NaNs_give_the_canonical_NaN()
    {
        uint flags = 0;
        Assert.Equal(SoftFloat32.CanonicalNaN, SoftFloat32.Min(F32.NegQNaNPayload, F32.NegQNaNPayload, ref flags));
        Assert.Equal(0u, flags);
        Assert.Equal(SoftFloat64.CanonicalNaN, SoftFloat64.Max(F64.SNaN, F64.NegQNaNPayload, ref flags));
        Assert.Equal(Fl.NV, flags);
    }

    [Fact]
    public void Eq_treats_signed_zeros_as_equal_and_NaN_as_unequal_to_itself()
    {
        uint flags = 0;
        Assert.True(SoftFloat32.Eq(F32.PosZero, F32.NegZero, ref flags));
        Assert.True(SoftFloat32.Eq(F32.MinSubnormal, F32.MinSubnormal, ref flags));
        Assert.False(SoftFloat32.Eq(F32.QNaN, F32.QNaN, ref flags));
        Assert.False(SoftFloat64.Eq(F64.One, F64.Two, ref flags));
        Assert.True(SoftFloat64.Eq(F64.NegZero, F64.PosZero, ref flags));
        Assert.Equal(0u, flags);
    }

    [Fact]
    public void Eq_is_quiet_raising_NV_only_for_signaling_NaNs()
    {
        uint flags = 0;
        Assert.False(SoftFloat64.Eq(F64.One, F64.NegQNaNPayload, ref flags));
        Assert.Equal(0u, flags);
        Assert.False(SoftFloat64.Eq(F64.SNaN, F64.One, ref flags));
        Assert.Equal(Fl.NV, flags);
    }

    [Fact]
    public void Lt_and_le_are_signaling_raising_NV_for_quiet_NaNs_too()
    {
        uint flags = 0;
        Assert.False(SoftFloat32.Lt(F32.QNaN, F32.One, ref flags));
        Assert.Equal(Fl.NV, flags);
        flags = 0;
        Assert.False(SoftFloat64.Le(F64.One, F64.QNaN, ref flags));
        Assert.Equal(Fl.NV, flags);
    }

    [Fact]
    public void Lt_and_le_order_numbers_by_value_with_equal_signed_zeros()
    {
        uint flags = 0;
        Assert.False(SoftFloat32.Lt(F32.NegZero, F32.PosZero, ref flags));
        Assert.True(SoftFloat32.Le(F32.PosZero, F32.NegZero, ref flags));
        Assert.True(SoftFloat32.Lt(F32.Neg(F32.Three), F32.Neg(F32.Two), ref flags));
        Assert.False(SoftFloat32.Lt(F32.Neg(F32.Two), F32.Neg(F32.Two), ref flags));
        Assert.True(SoftFloat32.Le(F32.Neg(F32.Two), F32.Neg(F32.Two), ref flags));
        Assert.True(SoftFloat32.Lt(F32.NegInf, F32.Neg(F32.MaxFinite), ref flags));
        Assert.True(SoftFloat64.Lt(F64.Neg(F64.MinSubnormal), F64.PosZero, ref flags));
        Assert.False(SoftFloat64.Le(F64.MinSubnormal, F64.NegZero, ref flags));
        Assert.True(SoftFloat64.Lt(F64.MaxFinite, F64.PosInf, ref flags));
        Assert.Equal(0u, flags);
    }

    [Theory]
    [InlineData(F32.NegInf, 0)]
    [InlineData(0xbf800000u, 1)]
    [InlineData(0x807fffffu, 2)]
    [InlineData(F32.NegZero, 3)]
    [InlineData(F32.PosZero, 4)]
    [InlineData(F32.MinSubnormal, 5)]
    [InlineData(F32.MinNormal, 6)]
    [InlineData(F32.PosInf, 7)]
    [InlineData(F32.SNaN, 8)]
    [InlineData(0xffbfffffu, 8)]
    [InlineData(F32.QNaN, 9)]
    [InlineData(F32.NegQNaNPayload, 9)]
    public void Classify_binary32_sets_exactly_the_bit_of_the_operand_class(uint operand, int bit) =>
        Assert.Equal(1u << bit, SoftFloat32.Classify(operand));

    [Theory]
    [InlineData(F64.NegInf, 0)]
    [InlineData(0xbff0000000000000ul, 1)]
    [InlineData(0x8000000000000001ul, 2)]
    [InlineData(F64.NegZero, 3)]
    [InlineData(F64.PosZero, 4)]
    [InlineData(F64.MaxSubnormal, 5)]
    [InlineData(F64.MaxFinite, 6)]
    [InlineData(F64.PosInf, 7)]
    [InlineData(F64.SNaN, 8)]
    [InlineData(F64.QNaN, 9)]
    [InlineData(F64.NegQNaNPayload, 9)]
    public void Classify_binary64_sets_exactly_the_bit_of_the_operand_class(ulong operand, int bit) =>
        Assert.Equal(1u << bit, SoftFloat64.Classify(operand));
}
