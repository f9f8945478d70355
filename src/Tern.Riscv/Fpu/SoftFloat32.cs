// TEMPORARY stand-in until the soft-float implementation lands.
#pragma warning disable
namespace Tern.Riscv.Fpu;

public static class SoftFloat32
{
    public const uint CanonicalNaN = 0x7fc00000;
    static float F(uint a) => BitConverter.UInt32BitsToSingle(a);
    static uint B(float f) => float.IsNaN(f) ? CanonicalNaN : BitConverter.SingleToUInt32Bits(f);
    public static uint Add(uint a, uint b, int rm, ref uint flags) => B(F(a) + F(b));
    public static uint Sub(uint a, uint b, int rm, ref uint flags) => B(F(a) - F(b));
    public static uint Mul(uint a, uint b, int rm, ref uint flags) => B(F(a) * F(b));
    public static uint Div(uint a, uint b, int rm, ref uint flags) => B(F(a) / F(b));
    public static uint Sqrt(uint a, int rm, ref uint flags) => B(MathF.Sqrt(F(a)));
    public static uint MulAdd(uint a, uint b, uint c, int rm, ref uint flags) => B(MathF.FusedMultiplyAdd(F(a), F(b), F(c)));
    public static uint Min(uint a, uint b, ref uint flags) => B(MathF.Min(F(a), F(b)));
    public static uint Max(uint a, uint b, ref uint flags) => B(MathF.Max(F(a), F(b)));
    public static bool Eq(uint a, uint b, ref uint flags) => F(a) == F(b);
    public static bool Lt(uint a, uint b, ref uint flags) => F(a) < F(b);
    public static bool Le(uint a, uint b, ref uint flags) => F(a) <= F(b);
    public static uint Classify(uint a) => 0;
    public static int ToInt32(uint a, int rm, ref uint flags) => (int)F(a);
    public static uint ToUInt32(uint a, int rm, ref uint flags) => (uint)F(a);
    public static long ToInt64(uint a, int rm, ref uint flags) => (long)F(a);
    public static ulong ToUInt64(uint a, int rm, ref uint flags) => (ulong)F(a);
    public static uint FromInt32(int v, int rm, ref uint flags) => B(v);
    public static uint FromUInt32(uint v, int rm, ref uint flags) => B(v);
    public static uint FromInt64(long v, int rm, ref uint flags) => B(v);
    public static uint FromUInt64(ulong v, int rm, ref uint flags) => B(v);
    public static ulong ToFloat64(uint a, ref uint flags) => BitConverter.DoubleToUInt64Bits(F(a));
}
