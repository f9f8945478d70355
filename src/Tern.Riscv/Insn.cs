// The predecoded form of one instruction, as stored in the code cache. Kept small (20 bytes)
// so that a block's instructions sit in a few cache lines.
using System.Runtime.InteropServices;

namespace Tern.Riscv;

/// <summary>A decoded instruction.</summary>
[StructLayout(LayoutKind.Sequential)]
public struct Insn
{
    /// <summary>The operation.</summary>
    public Op Op;
    /// <summary>Destination register (integer or float). Integer writes to x0 are redirected to a sink register.</summary>
    public byte Rd;
    /// <summary>First source register.</summary>
    public byte Rs1;
    /// <summary>Second source register.</summary>
    public byte Rs2;
    /// <summary>Third source register (fused multiply-add).</summary>
    public byte Rs3;
    /// <summary>Rounding mode field for floating-point operations; for CSR operations, 1 when rd or rs1 is x0-like (see decoder).</summary>
    public byte Rm;
    /// <summary>Instruction length in bytes: 2 or 4.</summary>
    public byte Length;
    /// <summary>Byte offset of this instruction from the start of its block.</summary>
    public ushort PcOffset;
    /// <summary>Sign-extended immediate (or CSR number).</summary>
    public int Imm;
    /// <summary>The raw instruction bits as fetched (16 bits for compressed).</summary>
    public uint Raw;
}
