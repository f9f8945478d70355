// One encoded RISC-V instruction together with its assembly text, as produced by Rv.
namespace Tern.Riscv.Tests.Differential;

/// <summary>An encoded instruction: its bits, its length in bytes (2 or 4) and a mnemonic.</summary>
internal readonly record struct Encoded(uint Bits, int Length, string Text)
{
    /// <summary>A 32-bit instruction.</summary>
    public static Encoded Word(uint bits, string text) => new(bits, 4, text);

    /// <summary>A 16-bit (compressed) instruction.</summary>
    public static Encoded Half(uint bits, string text) => new(bits & 0xFFFF, 2, text);

    /// <summary>The bits as hex, 4 or 8 digits depending on the length.</summary>
    public string Hex => Length == 2 ? Bits.ToString("x4") : Bits.ToString("x8");

    public override string ToString() => $"{Hex,-8}  {Text}";
}
