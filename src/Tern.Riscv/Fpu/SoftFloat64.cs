// TEMPORARY stand-in until the soft-float implementation lands.
#pragma warning disable
namespace Tern.Riscv.Fpu;

public static class SoftFloat64
{
    public const ulong CanonicalNaN = 0x7ff8000000000000;
    static double F(ulong a) => BitConverter.UInt64BitsToDouble(a);
    static ulong B(double f) => double.IsNaN(f) ? CanonicalNaN : BitConverter.DoubleToUInt64Bits(f);
    public static ulong Add(ulong a, ulong b, int rm, ref uint flags) => B(F(a) + F(b));
    public static ulong Sub(ulong a, ulong b, int rm, ref uint flags) => B(F(a) - F(b));
    public static ulong Mul(ulong a, ulong b, int rm, ref uint flags) => B(F(a) * F(b));
    public static ulong Div(ulong a, ulong b, int rm, ref uint flags) => B(F(a) / F(b));
    public static ulong Sqrt(ulong a, int rm, ref uint flags) => B(Math.Sqrt(F(a)));
    public static ulong MulAdd(ulong a, ulong b, ulong c, int rm, ref uint flags) => B(Math.FusedMultiplyAdd(F(a), F(b), F(c)));
    public static ulong Min(ulong a, ulong b, ref uint flags) => B(Math.Min(F(a), F(b)));
    public static ulong Max(ulong a, ulong b, ref uint flags) => B(Math.Max(F(a), F(b)));
    public static bool Eq(ulong a, ulong b, ref uint flags) => F(a) == F(b);
    public static bool Lt(ulong a, ulong b, ref uint flags) => F(a) < F(b);
    public static bool Le(ulong a, ulong b, ref uint flags) => F(a) <= F(b);
    public static uint Classify(ulong a) => 0;
    public static int ToInt32(ulong a, int rm, ref uint flags) => (int)F(a);
    public static uint ToUInt32(ulong a, int rm, ref uint flags) => (uint)F(a);
    public static long ToInt64(ulong a, int rm, ref uint flags) => (long)F(a);
    public static ulong ToUInt64(ulong a, int rm, ref uint flags) => (ulong)F(a);
    public static ulong FromInt32(int v, int rm, ref uint flags) => B(v);
    public static ulong FromUInt32(uint v, int rm, ref uint flags) => B(v);
    public static ulong FromInt64(long v, int rm, ref uint flags) => B(v);
    public static ulong FromUInt64(ulong v, int rm, ref uint flags) => B(v);
    public static uint ToFloat32(ulong a, int rm, ref uint flags) => BitConverter.SingleToUInt32Bits((float)F(a));
}
