// The idle guest of `tern bench cluster`: a raw bare-metal RV64 image (loaded at 0x8000_0000,
// M-mode, no firmware) that prints "I" as its first console line, then sleeps in WFI on the
// CLINT timer and prints an "H" heartbeat line once a second of guest time. It is what an idle
// guest should cost a host: one timer interrupt and one short line a second, nothing between.
using System.Buffers.Binary;

namespace Tern.Cli.Commands;

/// <summary>Builds the idle guest's image.</summary>
public static class IdleGuest
{
    /// <summary>Guest time between heartbeats: 1 s of the board's 10 MHz timebase.</summary>
    public const int HeartbeatTicks = 10_000_000;

    private const int T0 = 5, T1 = 6, T2 = 7, T3 = 28, T4 = 29, T5 = 30, T6 = 31, A0 = 10;

    /// <summary>The raw image.</summary>
    public static byte[] Image()
    {
        uint[] code =
        [
            Lui(T0, 0x10000),            // 00 t0 = UART (0x1000_0000)
            Addi(T1, 0, 'I'),            // 04
            Sb(T0, T1),                  // 08
            Addi(T1, 0, '\n'),           // 0c
            Sb(T0, T1),                  // 10 first line: "I"
            Lui(T2, 0x200C),             // 14 t2 - 8 = mtime (0x0200_BFF8)
            Lui(T3, 0x2004),             // 18 t3 = mtimecmp of hart 0 (0x0200_4000)
            Addi(T4, 0, 1 << 7),         // 1c MTIE
            Csrw(0x304, T4),             // 20 mie = MTIE: WFI wakes on the timer; mstatus.MIE stays 0, so no trap
            Lui(T5, HeartbeatTicks >> 12 & 0xFFFFF), // 24
            Addi(T5, T5, HeartbeatTicks & 0xFFF),    // 28 t5 = ticks per heartbeat
            Ld(T6, T2, -8),              // 2c loop: t6 = mtime + period
            Add(T6, T6, T5),             // 30
            Sd(T3, T6),                  // 34 mtimecmp = t6
            Wfi,                         // 38 wait: sleep until the timer fires
            Ld(A0, T2, -8),              // 3c
            Bltu(A0, T6, -8),            // 40 not yet (a spurious wake-up): sleep again
            Addi(T1, 0, 'H'),            // 44
            Sb(T0, T1),                  // 48
            Addi(T1, 0, '\n'),           // 4c
            Sb(T0, T1),                  // 50 heartbeat: "H"
            Jal(0, -0x28),               // 54 back to loop
        ];
        var image = new byte[code.Length * 4];
        for (int i = 0; i < code.Length; i++)
            BinaryPrimitives.WriteUInt32LittleEndian(image.AsSpan(i * 4), code[i]);
        return image;
    }

    private const uint Wfi = 0x1050_0073;

    private static uint Lui(int rd, int imm20) => ((uint)imm20 << 12) | ((uint)rd << 7) | 0x37;

    private static uint Addi(int rd, int rs1, int imm) => ((uint)(imm & 0xFFF) << 20) | ((uint)rs1 << 15) | ((uint)rd << 7) | 0x13;

    private static uint Add(int rd, int rs1, int rs2) => ((uint)rs2 << 20) | ((uint)rs1 << 15) | ((uint)rd << 7) | 0x33;

    private static uint Ld(int rd, int rs1, int imm) => ((uint)(imm & 0xFFF) << 20) | ((uint)rs1 << 15) | (3u << 12) | ((uint)rd << 7) | 0x03;

    private static uint Sb(int rs1, int rs2) => ((uint)rs2 << 20) | ((uint)rs1 << 15) | 0x23;

    private static uint Sd(int rs1, int rs2) => ((uint)rs2 << 20) | ((uint)rs1 << 15) | (3u << 12) | 0x23;

    private static uint Csrw(int csr, int rs1) => ((uint)csr << 20) | ((uint)rs1 << 15) | (1u << 12) | 0x73;

    private static uint Bltu(int rs1, int rs2, int offset) =>
        ((uint)((offset >> 12) & 1) << 31) | ((uint)((offset >> 5) & 0x3F) << 25) | ((uint)rs2 << 20) | ((uint)rs1 << 15) |
        (6u << 12) | ((uint)((offset >> 1) & 0xF) << 8) | ((uint)((offset >> 11) & 1) << 7) | 0x63;

    private static uint Jal(int rd, int offset) =>
        ((uint)((offset >> 20) & 1) << 31) | ((uint)((offset >> 1) & 0x3FF) << 21) | ((uint)((offset >> 11) & 1) << 20) |
        ((uint)((offset >> 12) & 0xFF) << 12) | ((uint)rd << 7) | 0x6F;
}
