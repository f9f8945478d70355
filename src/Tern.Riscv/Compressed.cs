// The C extension: each 16-bit instruction is rewritten to the 32-bit instruction it stands
// for (RVC spec, "RVC instruction set listings"), so the rest of the CPU never sees it.
namespace Tern.Riscv;

/// <summary>Expands RV64C instructions to their 32-bit equivalents.</summary>
public static class Compressed
{
    /// <summary>Returns the 32-bit equivalent of a compressed instruction, or 0 when it is reserved or illegal.</summary>
    public static uint Expand(ushort c)
    {
        uint i = c;
        uint op = i & 3;
        uint f3 = (i >> 13) & 7;
        uint rdFull = (i >> 7) & 31;
        uint rs2Full = (i >> 2) & 31;
        uint rdP = ((i >> 2) & 7) + 8;  // rd' / rs2' in bits 4:2
        uint rs1P = ((i >> 7) & 7) + 8; // rs1' / rd' in bits 9:7
        int imm6 = SignExtend(((i >> 7) & 0x20) | ((i >> 2) & 0x1F), 6);

        switch (op)
        {
            case 0:
                switch (f3)
                {
                    case 0: // c.addi4spn
                        {
                            uint imm = ((i >> 7) & 0x30) | ((i >> 1) & 0x3C0) | ((i >> 4) & 0x4) | ((i >> 2) & 0x8);
                            return imm == 0 ? 0 : IType(0x13, 0, rdP, 2, (int)imm);
                        }
                    case 1: return IType(0x07, 3, rdP, rs1P, (int)UimmD(i));   // c.fld
                    case 2: return IType(0x03, 2, rdP, rs1P, (int)UimmW(i));   // c.lw
                    case 3: return IType(0x03, 3, rdP, rs1P, (int)UimmD(i));   // c.ld
                    case 5: return SType(0x27, 3, rs1P, rdP, (int)UimmD(i));   // c.fsd
                    case 6: return SType(0x23, 2, rs1P, rdP, (int)UimmW(i));   // c.sw
                    case 7: return SType(0x23, 3, rs1P, rdP, (int)UimmD(i));   // c.sd
                    default: return 0;
                }
            case 1:
                switch (f3)
                {
                    case 0: return IType(0x13, 0, rdFull, rdFull, imm6);                     // c.addi (c.nop)
                    case 1: return rdFull == 0 ? 0 : IType(0x1B, 0, rdFull, rdFull, imm6);  // c.addiw
                    case 2: return IType(0x13, 0, rdFull, 0, imm6);                          // c.li
                    case 3:
                        if (rdFull == 2)
                        {
                            int imm = SignExtend(((i >> 3) & 0x200) | ((i >> 2) & 0x10) | ((i << 1) & 0x40) | ((i << 4) & 0x180) | ((i << 3) & 0x20), 10);
                            return imm == 0 ? 0 : IType(0x13, 0, 2, 2, imm);                 // c.addi16sp
                        }
                        if (imm6 == 0)
                            return 0;
                        return ((uint)(imm6 << 12) & 0xFFFFF000) | (rdFull << 7) | 0x37;    // c.lui
                    case 4:
                        {
                            uint f2 = (i >> 10) & 3;
                            uint shamt = ((i >> 7) & 0x20) | ((i >> 2) & 0x1F);
                            switch (f2)
                            {
                                case 0: return IType(0x13, 5, rs1P, rs1P, (int)shamt);           // c.srli
                                case 1: return IType(0x13, 5, rs1P, rs1P, (int)(shamt | 0x400)); // c.srai
                                case 2: return IType(0x13, 7, rs1P, rs1P, imm6);                 // c.andi
                                default:
                                    uint sel = (i >> 5) & 3;
                                    if ((i & 0x1000) == 0)
                                    {
                                        return sel switch
                                        {
                                            0 => RType(0x33, 0, 0x20, rs1P, rs1P, rdP), // c.sub
                                            1 => RType(0x33, 4, 0, rs1P, rs1P, rdP),    // c.xor
                                            2 => RType(0x33, 6, 0, rs1P, rs1P, rdP),    // c.or
                                            _ => RType(0x33, 7, 0, rs1P, rs1P, rdP),    // c.and
                                        };
                                    }
                                    return sel switch
                                    {
                                        0 => RType(0x3B, 0, 0x20, rs1P, rs1P, rdP),     // c.subw
                                        1 => RType(0x3B, 0, 0, rs1P, rs1P, rdP),        // c.addw
                                        _ => 0,
                                    };
                            }
                        }
                    case 5: return JType(0, JumpImm(i));                 // c.j
                    case 6: return BType(0, rs1P, 0, BranchImm(i));      // c.beqz
                    default: return BType(1, rs1P, 0, BranchImm(i));     // c.bnez
                }
            default:
                switch (f3)
                {
                    case 0: // c.slli
                        return IType(0x13, 1, rdFull, rdFull, (int)(((i >> 7) & 0x20) | ((i >> 2) & 0x1F)));
                    case 1: return IType(0x07, 3, rdFull, 2, (int)UimmDsp(i));                   // c.fldsp
                    case 2: return rdFull == 0 ? 0 : IType(0x03, 2, rdFull, 2, (int)UimmWsp(i));  // c.lwsp
                    case 3: return rdFull == 0 ? 0 : IType(0x03, 3, rdFull, 2, (int)UimmDsp(i));  // c.ldsp
                    case 4:
                        if ((i & 0x1000) == 0)
                        {
                            if (rs2Full == 0)
                                return rdFull == 0 ? 0 : IType(0x67, 0, 0, rdFull, 0);     // c.jr
                            return RType(0x33, 0, 0, rdFull, 0, rs2Full);                 // c.mv
                        }
                        if (rs2Full == 0)
                        {
                            if (rdFull == 0)
                                return 0x00100073;                                        // c.ebreak
                            return IType(0x67, 0, 1, rdFull, 0);                          // c.jalr
                        }
                        return RType(0x33, 0, 0, rdFull, rdFull, rs2Full);                // c.add
                    case 5: return SType(0x27, 3, 2, rs2Full, (int)UimmSdsp(i));          // c.fsdsp
                    case 6: return SType(0x23, 2, 2, rs2Full, (int)UimmSwsp(i));          // c.swsp
                    default: return SType(0x23, 3, 2, rs2Full, (int)UimmSdsp(i));         // c.sdsp
                }
        }
    }

    private static int SignExtend(uint value, int bits) => (int)(value << (32 - bits)) >> (32 - bits);

    private static uint UimmW(uint i) => ((i >> 7) & 0x38) | ((i >> 4) & 0x4) | ((i << 1) & 0x40);
    private static uint UimmD(uint i) => ((i >> 7) & 0x38) | ((i << 1) & 0xC0);
    private static uint UimmWsp(uint i) => ((i >> 7) & 0x20) | ((i >> 2) & 0x1C) | ((i << 4) & 0xC0);
    private static uint UimmDsp(uint i) => ((i >> 7) & 0x20) | ((i >> 2) & 0x18) | ((i << 4) & 0x1C0);
    private static uint UimmSwsp(uint i) => ((i >> 7) & 0x3C) | ((i >> 1) & 0xC0);
    private static uint UimmSdsp(uint i) => ((i >> 7) & 0x38) | ((i >> 1) & 0x1C0);

    private static int JumpImm(uint i) => SignExtend(
        ((i >> 1) & 0x800) | ((i >> 7) & 0x10) | ((i >> 1) & 0x300) | ((i << 2) & 0x400) |
        ((i >> 1) & 0x40) | ((i << 1) & 0x80) | ((i >> 2) & 0xE) | ((i << 3) & 0x20), 12);

    private static int BranchImm(uint i) => SignExtend(
        ((i >> 4) & 0x100) | ((i >> 7) & 0x18) | ((i << 1) & 0xC0) | ((i >> 2) & 0x6) | ((i << 3) & 0x20), 9);

    private static uint RType(uint opc, uint f3, uint f7, uint rd, uint rs1, uint rs2) =>
        (f7 << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | opc;

    private static uint IType(uint opc, uint f3, uint rd, uint rs1, int imm) =>
        ((uint)(imm & 0xFFF) << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | opc;

    private static uint SType(uint opc, uint f3, uint rs1, uint rs2, int imm) =>
        ((uint)((imm >> 5) & 0x7F) << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) | ((uint)(imm & 31) << 7) | opc;

    private static uint BType(uint f3, uint rs1, uint rs2, int imm) =>
        ((uint)((imm >> 12) & 1) << 31) | ((uint)((imm >> 5) & 0x3F) << 25) | (rs2 << 20) | (rs1 << 15) |
        (f3 << 12) | ((uint)((imm >> 1) & 0xF) << 8) | ((uint)((imm >> 11) & 1) << 7) | 0x63;

    private static uint JType(uint rd, int imm) =>
        ((uint)((imm >> 20) & 1) << 31) | ((uint)((imm >> 1) & 0x3FF) << 21) | ((uint)((imm >> 11) & 1) << 20) |
        ((uint)((imm >> 12) & 0xFF) << 12) | (rd << 7) | 0x6F;
}
