// Double-precision (RISC-V D extension) floating-point unit in software. Operands and results
// are raw binary64 bit patterns, rm is the static rounding mode (0 RNE, 1 RTZ, 2 RDN, 3 RUP,
// 4 RMM) and flags accumulates fflags bits (NX 1, UF 2, OF 4, DZ 8, NV 16).
namespace Tern.Riscv.Fpu;

public static class SoftFloat64
{
    public const ulong CanonicalNaN = 0x7ff8000000000000;

    public static ulong Add(ulong a, ulong b, int rm, ref uint flags) => FloatCore<Binary64>.Add(a, b, rm, ref flags);

    public static ulong Sub(ulong a, ulong b, int rm, ref uint flags) => FloatCore<Binary64>.Sub(a, b, rm, ref flags);

    public static ulong Mul(ulong a, ulong b, int rm, ref uint flags) => FloatCore<Binary64>.Mul(a, b, rm, ref flags);

    public static ulong Div(ulong a, ulong b, int rm, ref uint flags) => FloatCore<Binary64>.Div(a, b, rm, ref flags);

    public static ulong Sqrt(ulong a, int rm, ref uint flags) => FloatCore<Binary64>.Sqrt(a, rm, ref flags);

    /// <summary>Fused a · b + c, rounded once. fmsub, fnmsub and fnmadd flip the signs of the inputs.</summary>
    public static ulong MulAdd(ulong a, ulong b, ulong c, int rm, ref uint flags) =>
        FloatCore<Binary64>.MulAdd(a, b, c, rm, ref flags);

    public static ulong Min(ulong a, ulong b, ref uint flags) => FloatCore<Binary64>.Min(a, b, ref flags);

    public static ulong Max(ulong a, ulong b, ref uint flags) => FloatCore<Binary64>.Max(a, b, ref flags);

    public static bool Eq(ulong a, ulong b, ref uint flags) => FloatCore<Binary64>.Eq(a, b, ref flags);

    public static bool Lt(ulong a, ulong b, ref uint flags) => FloatCore<Binary64>.Lt(a, b, ref flags);

    public static bool Le(ulong a, ulong b, ref uint flags) => FloatCore<Binary64>.Le(a, b, ref flags);

    public static uint Classify(ulong a) => FloatCore<Binary64>.Classify(a);

    public static int ToInt32(ulong a, int rm, ref uint flags) =>
        (int)FloatCore<Binary64>.ToInteger(a, rm, signed: true, width: 32, ref flags);

    public static uint ToUInt32(ulong a, int rm, ref uint flags) =>
        (uint)FloatCore<Binary64>.ToInteger(a, rm, signed: false, width: 32, ref flags);

    public static long ToInt64(ulong a, int rm, ref uint flags) =>
        (long)FloatCore<Binary64>.ToInteger(a, rm, signed: true, width: 64, ref flags);

    public static ulong ToUInt64(ulong a, int rm, ref uint flags) =>
        FloatCore<Binary64>.ToInteger(a, rm, signed: false, width: 64, ref flags);

    public static ulong FromInt32(int v, int rm, ref uint flags) => FromInt64(v, rm, ref flags);

    public static ulong FromUInt32(uint v, int rm, ref uint flags) => FromUInt64(v, rm, ref flags);

    public static ulong FromInt64(long v, int rm, ref uint flags) =>
        FloatCore<Binary64>.FromInteger(v < 0, v < 0 ? 0 - (ulong)v : (ulong)v, rm, ref flags);

    public static ulong FromUInt64(ulong v, int rm, ref uint flags) =>
        FloatCore<Binary64>.FromInteger(false, v, rm, ref flags);

    /// <summary>fcvt.s.d: rounds by rm; a signaling NaN raises NV and every NaN becomes the canonical one.</summary>
    public static uint ToFloat32(ulong a, int rm, ref uint flags) =>
        (uint)FloatCore<Binary64>.ConvertTo<Binary32>(a, rm, ref flags);
}
