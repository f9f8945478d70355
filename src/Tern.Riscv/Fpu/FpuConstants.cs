// RISC-V fflags bits and rm encodings as the soft-float core produces and consumes them.
namespace Tern.Riscv.Fpu;

/// <summary>Accrued exception bits, laid out as in the RISC-V fflags CSR.</summary>
internal static class FFlags
{
    public const uint Inexact = 1;       // NX
    public const uint Underflow = 2;     // UF
    public const uint Overflow = 4;      // OF
    public const uint DivideByZero = 8;  // DZ
    public const uint Invalid = 16;      // NV
}

/// <summary>The static rounding modes of the RISC-V rm field (DYN is resolved by the caller).</summary>
internal static class RoundingMode
{
    public const int NearestEven = 0;    // RNE
    public const int TowardZero = 1;     // RTZ
    public const int Down = 2;           // RDN
    public const int Up = 3;             // RUP
    public const int NearestMaxMagnitude = 4; // RMM
}
