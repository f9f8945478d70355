// Just enough of a RISC-V assembler for unit tests that place a few instructions by hand.
namespace Tern.Tests.Shared;

/// <summary>Just enough of an assembler for the CPU unit tests.</summary>
internal static class Enc
{
    public static uint I(uint opcode, int rd, int f3, int rs1, int imm) =>
        ((uint)(imm & 0xFFF) << 20) | ((uint)rs1 << 15) | ((uint)f3 << 12) | ((uint)rd << 7) | opcode;

    public static uint Addi(int rd, int rs1, int imm) => I(0x13, rd, 0, rs1, imm);
    public static uint Lui(int rd, int imm20) => ((uint)imm20 << 12) | ((uint)rd << 7) | 0x37;
    public static uint Jalr(int rd, int rs1, int imm) => I(0x67, rd, 0, rs1, imm);
    public static uint Ld(int rd, int rs1, int imm) => I(0x03, rd, 3, rs1, imm);
    public static uint Sd(int rs1, int rs2, int imm) =>
        ((uint)((imm >> 5) & 0x7F) << 25) | ((uint)rs2 << 20) | ((uint)rs1 << 15) | (3u << 12) | ((uint)(imm & 31) << 7) | 0x23;
    public static uint Add(int rd, int rs1, int rs2) => ((uint)rs2 << 20) | ((uint)rs1 << 15) | ((uint)rd << 7) | 0x33;
    public static uint Sub(int rd, int rs1, int rs2) => Add(rd, rs1, rs2) | (0x20u << 25);
    public static uint Csrrw(int rd, int csr, int rs1) => I(0x73, rd, 1, rs1, csr);
    public static uint Csrrs(int rd, int csr, int rs1) => I(0x73, rd, 2, rs1, csr);
    public static uint Jal(int rd, int offset) =>
        ((uint)((offset >> 20) & 1) << 31) | ((uint)((offset >> 1) & 0x3FF) << 21) | ((uint)((offset >> 11) & 1) << 20) |
        ((uint)((offset >> 12) & 0xFF) << 12) | ((uint)rd << 7) | 0x6F;
    public const uint Mret = 0x30200073;
    public const uint Ecall = 0x00000073;
    public const uint Wfi = 0x10500073;
    public static uint Auipc(int rd, int imm20) => ((uint)imm20 << 12) | ((uint)rd << 7) | 0x17;
    public static uint Sw(int rs1, int rs2, int imm) => Sd(rs1, rs2, imm) & ~(7u << 12) | (2u << 12);
    public static uint Sb(int rs1, int rs2, int imm) => Sd(rs1, rs2, imm) & ~(7u << 12);
    public static uint Csrrsi(int rd, int csr, int uimm) => I(0x73, rd, 6, uimm, csr);
}
