// The physical memory map of QEMU's riscv64 'virt' board (hw/riscv/virt.c, QEMU 7.2), as
// Tern reproduces it. Every device and the device tree are placed from these constants.
namespace Tern.Machine;

/// <summary>Addresses and sizes of the 'virt' board.</summary>
public static class Board
{
    /// <summary>SiFive test finisher (power-off, reboot).</summary>
    public const ulong TestBase = 0x0010_0000, TestSize = 0x1000;
    /// <summary>CLINT: msip, mtimecmp, mtime.</summary>
    public const ulong ClintBase = 0x0200_0000, ClintSize = 0x1_0000;
    /// <summary>NS16550A UART.</summary>
    public const ulong UartBase = 0x1000_0000, UartSize = 0x100;
    /// <summary>Start of guest RAM.</summary>
    public const ulong RamBase = 0x8000_0000;
    /// <summary>Frequency of mtime (and the time CSR), in Hz.</summary>
    public const ulong TimebaseFrequency = 10_000_000;
}
