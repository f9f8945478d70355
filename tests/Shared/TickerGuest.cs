// Hand-assembled bare-metal guests for tests that need a guest which keeps running and
// keeps talking ("T" lines forever), or one that resets itself after each "R" line.
namespace Tern.Tests.Shared;

internal static class TickerGuest
{
    public static byte[] Elf()
    {
        const ulong ram = 0x8000_0000;
        var code = ElfBuilder.Words(
            Lui(5, 0x10000),          // t0 = UART
            Addi(6, 0, 'T'),
            Addi(7, 0, '\n'),
            Sb(5, 6),                 // loop:
            Sb(5, 7),
            Lui(28, 0x100),           // t3 = 1 Mi
            Addi(28, 28, -1),         // delay:
            Bne(28, 0, -4),
            Jal(0, -0x14));           // back to loop
        return ElfBuilder.Build(ram, code, ram);
    }

    // Prints "R\n", then asks the SiFive finisher for a reset (0x7777).
    public static byte[] Resetter()
    {
        const ulong ram = 0x8000_0000;
        var code = ElfBuilder.Words(
            Lui(5, 0x10000),          // t0 = UART
            Addi(6, 0, 'R'),
            Addi(7, 0, '\n'),
            Sb(5, 6),
            Sb(5, 7),
            Lui(5, 0x100),            // t0 = finisher
            Lui(6, 0x7),
            Addi(6, 6, 0x777),        // t1 = 0x7777
            Sw(5, 6),
            Jal(0, 0));               // wait for the reset
        return ElfBuilder.Build(ram, code, ram);
    }

    private static uint Sw(int rs1, int rs2) => ((uint)rs2 << 20) | ((uint)rs1 << 15) | (2u << 12) | 0x23;

    private static uint Lui(int rd, int imm20) => ((uint)imm20 << 12) | ((uint)rd << 7) | 0x37;

    private static uint Addi(int rd, int rs1, int imm) => ((uint)(imm & 0xFFF) << 20) | ((uint)rs1 << 15) | ((uint)rd << 7) | 0x13;

    private static uint Sb(int rs1, int rs2) => ((uint)rs2 << 20) | ((uint)rs1 << 15) | 0x23;

    private static uint Bne(int rs1, int rs2, int offset) =>
        ((uint)((offset >> 12) & 1) << 31) | ((uint)((offset >> 5) & 0x3F) << 25) | ((uint)rs2 << 20) | ((uint)rs1 << 15) |
        (1u << 12) | ((uint)((offset >> 1) & 0xF) << 8) | ((uint)((offset >> 11) & 1) << 7) | 0x63;

    private static uint Jal(int rd, int offset) =>
        ((uint)((offset >> 20) & 1) << 31) | ((uint)((offset >> 1) & 0x3FF) << 21) | ((uint)((offset >> 11) & 1) << 20) |
        ((uint)((offset >> 12) & 0xFF) << 12) | ((uint)rd << 7) | 0x6F;
}
