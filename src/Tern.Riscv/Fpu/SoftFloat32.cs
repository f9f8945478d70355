// Single-precision (RISC-V F extension) floating-point unit in software. Operands and results
// are raw binary32 bit patterns, rm is the static rounding mode (0 RNE, 1 RTZ, 2 RDN, 3 RUP,
// 4 RMM) and flags accumulates fflags bits (NX 1, UF 2, OF 4, DZ 8, NV 16).
namespace Tern.Riscv.Fpu;

public static class SoftFloat32
{
    public const uint CanonicalNaN = 0x7fc00000;

    public static uint Add(uint a, uint b, int rm, ref uint flags) => (uint)FloatCore<Binary32>.Add(a, b, rm, ref flags);

    public static uint Sub(uint a, uint b, int rm, ref uint flags) => (uint)FloatCore<Binary32>.Sub(a, b, rm, ref flags);

    public static uint Mul(uint a, uint b, int rm, ref uint flags) => (uint)FloatCore<Binary32>.Mul(a, b, rm, ref flags);

    public static uint Div(uint a, uint b, int rm, ref uint flags) => (uint)FloatCore<Binary32>.Div(a, b, rm, ref flags);

    public static uint Sqrt(uint a, int rm, ref uint flags) => (uint)FloatCore<Binary32>.Sqrt(a, rm, ref flags);

    /// <summary>Fused a · b + c, rounded once. fmsub, fnmsub and fnmadd flip the signs of the inputs.</summary>
    public static uint MulAdd(uint a, uint b, uint c, int rm, ref uint flags) =>
        (uint)FloatCore<Binary32>.MulAdd(a, b, c, rm, ref flags);

    public static uint Min(uint a, uint b, ref uint flags) => (uint)FloatCore<Binary32>.Min(a, b, ref flags);

    public static uint Max(uint a, uint b, ref uint flags) => (uint)FloatCore<Binary32>.Max(a, b, ref flags);

    public static bool Eq(uint a, uint b, ref uint flags) => FloatCore<Binary32>.Eq(a, b, ref flags);

    public static bool Lt(uint a, uint b, ref uint flags) => FloatCore<Binary32>.Lt(a, b, ref flags);

    public static bool Le(uint a, uint b, ref uint flags) => FloatCore<Binary32>.Le(a, b, ref flags);

    public static uint Classify(uint a) => FloatCore<Binary32>.Classify(a);

    public static int ToInt32(uint a, int rm, ref uint flags) =>
        (int)FloatCore<Binary32>.ToInteger(a, rm, signed: true, width: 32, ref flags);

    public static uint ToUInt32(uint a, int rm, ref uint flags) =>
        (uint)FloatCore<Binary32>.ToInteger(a, rm, signed: false, width: 32, ref flags);

    public static long ToInt64(uint a, int rm, ref uint flags) =>
        (long)FloatCore<Binary32>.ToInteger(a, rm, signed: true, width: 64, ref flags);

    public static ulong ToUInt64(uint a, int rm, ref uint flags) =>
        FloatCore<Binary32>.ToInteger(a, rm, signed: false, width: 64, ref flags);

    public static uint FromInt32(int v, int rm, ref uint flags) => FromInt64(v, rm, ref flags);

    public static uint FromUInt32(uint v, int rm, ref uint flags) => FromUInt64(v, rm, ref flags);

    public static uint FromInt64(long v, int rm, ref uint flags) =>
        (uint)FloatCore<Binary32>.FromInteger(v < 0, v < 0 ? 0 - (ulong)v : (ulong)v, rm, ref flags);

    public static uint FromUInt64(ulong v, int rm, ref uint flags) =>
        (uint)FloatCore<Binary32>.FromInteger(false, v, rm, ref flags);

    /// <summary>fcvt.d.s: always exact; a signaling NaN raises NV and every NaN becomes the canonical one.</summary>
    public static ulong ToFloat64(uint a, ref uint flags) =>
        FloatCore<Binary32>.ConvertTo<Binary64>(a, RoundingMode.NearestEven, ref flags);
}
