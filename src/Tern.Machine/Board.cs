// The physical memory map and interrupt numbers of QEMU's riscv64 'virt' board
// (hw/riscv/virt.c, QEMU 7.2), as Tern reproduces them. Devices are placed and the device
// tree is generated from these constants, so the board and its description cannot disagree.
namespace Tern.Machine;

/// <summary>Addresses, sizes and interrupt numbers of the 'virt' board.</summary>
public static class Board
{
    /// <summary>SiFive test finisher (power-off, reboot).</summary>
    public const ulong TestBase = 0x0010_0000, TestSize = 0x1000;
    /// <summary>Goldfish real-time clock.</summary>
    public const ulong RtcBase = 0x0010_1000, RtcSize = 0x1000;
    /// <summary>CLINT: msip, mtimecmp, mtime.</summary>
    public const ulong ClintBase = 0x0200_0000, ClintSize = 0x1_0000;
    /// <summary>PLIC.</summary>
    public const ulong PlicBase = 0x0C00_0000, PlicSize = 0x60_0000;
    /// <summary>NS16550A UART.</summary>
    public const ulong UartBase = 0x1000_0000, UartSize = 0x100;
    /// <summary>First virtio-mmio slot; the others follow every <see cref="VirtioStride"/> bytes.</summary>
    public const ulong VirtioBase = 0x1000_1000, VirtioStride = 0x1000;
    /// <summary>Number of virtio-mmio slots.</summary>
    public const int VirtioSlots = 8;
    /// <summary>Start of guest RAM.</summary>
    public const ulong RamBase = 0x8000_0000;
    /// <summary>Where a kernel goes when a firmware runs first (OpenSBI's FW_JUMP_ADDR).</summary>
    public const ulong KernelBase = 0x8020_0000;

    /// <summary>PLIC source of the UART.</summary>
    public const int UartIrq = 10;
    /// <summary>PLIC source of the RTC.</summary>
    public const int RtcIrq = 11;
    /// <summary>PLIC source of virtio slot 0; slot i uses <see cref="VirtioIrq"/> + i.</summary>
    public const int VirtioIrq = 1;

    /// <summary>Frequency of mtime (and the time CSR), in Hz.</summary>
    public const ulong TimebaseFrequency = 10_000_000;
    /// <summary>The UART's input clock as advertised in the device tree (QEMU's value).</summary>
    public const uint UartClock = 3_686_400;

    /// <summary>Largest number of harts a guest may have.</summary>
    public const int MaxHarts = 8;

    /// <summary>Base address of virtio slot <paramref name="slot"/>.</summary>
    public static ulong VirtioSlotBase(int slot) => VirtioBase + ((ulong)slot * VirtioStride);
}
