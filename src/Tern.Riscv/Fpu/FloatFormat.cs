// Describes the two IEEE 754 binary interchange formats used by the RISC-V F and D
// extensions, so that FloatCore<TFormat> can implement every operation once for both.
// The formats are structs so the JIT specialises FloatCore per format and folds these
// properties into constants.
namespace Tern.Riscv.Fpu;

internal interface IFloatFormat
{
    /// <summary>Stored fraction bits; the precision is one more (the hidden bit).</summary>
    static abstract int FractionBits { get; }

    /// <summary>Width of the biased exponent field.</summary>
    static abstract int ExponentBits { get; }
}

/// <summary>IEEE 754 binary32 (RISC-V single precision).</summary>
internal readonly struct Binary32 : IFloatFormat
{
    public static int FractionBits => 23;

    public static int ExponentBits => 8;
}

/// <summary>IEEE 754 binary64 (RISC-V double precision).</summary>
internal readonly struct Binary64 : IFloatFormat
{
    public static int FractionBits => 52;

    public static int ExponentBits => 11;
}
