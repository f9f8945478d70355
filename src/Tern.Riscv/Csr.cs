// CSR numbers and bit fields used by the hart (RISC-V privileged specification, 20211203).
namespace Tern.Riscv;

/// <summary>CSR addresses.</summary>
public static class Csr
{
#pragma warning disable CS1591 // the names are the specification's
    public const int Fflags = 0x001, Frm = 0x002, Fcsr = 0x003;
    public const int Cycle = 0xC00, Time = 0xC01, Instret = 0xC02, HpmCounter3 = 0xC03, HpmCounter31 = 0xC1F;
    public const int Sstatus = 0x100, Sie = 0x104, Stvec = 0x105, Scounteren = 0x106, Senvcfg = 0x10A;
    public const int Sscratch = 0x140, Sepc = 0x141, Scause = 0x142, Stval = 0x143, Sip = 0x144, Stimecmp = 0x14D, Satp = 0x180;
    public const int Mvendorid = 0xF11, Marchid = 0xF12, Mimpid = 0xF13, Mhartid = 0xF14, Mconfigptr = 0xF15;
    public const int Mstatus = 0x300, Misa = 0x301, Medeleg = 0x302, Mideleg = 0x303, Mie = 0x304, Mtvec = 0x305;
    public const int Mcounteren = 0x306, Menvcfg = 0x30A, Mcountinhibit = 0x320, Mhpmevent3 = 0x323, Mhpmevent31 = 0x33F;
    public const int Mscratch = 0x340, Mepc = 0x341, Mcause = 0x342, Mtval = 0x343, Mip = 0x344, Mtinst = 0x34A, Mtval2 = 0x34B;
    public const int Pmpcfg0 = 0x3A0, Pmpcfg15 = 0x3AF, Pmpaddr0 = 0x3B0, Pmpaddr63 = 0x3EF;
    public const int Mcycle = 0xB00, Minstret = 0xB02, MhpmCounter3 = 0xB03, MhpmCounter31 = 0xB1F;
#pragma warning restore CS1591
}

/// <summary>mstatus bits.</summary>
public static class Mstatus
{
#pragma warning disable CS1591
    public const ulong Sie = 1UL << 1, Mie = 1UL << 3, Spie = 1UL << 5, Mpie = 1UL << 7, Spp = 1UL << 8;
    public const int MppShift = 11;
    public const ulong Mpp = 3UL << MppShift;
    public const int FsShift = 13;
    public const ulong Fs = 3UL << FsShift;
    public const ulong Mprv = 1UL << 17, Sum = 1UL << 18, Mxr = 1UL << 19, Tvm = 1UL << 20, Tw = 1UL << 21, Tsr = 1UL << 22;
    public const ulong Uxl = 2UL << 32, Sxl = 2UL << 34;
    public const ulong Sd = 1UL << 63;
#pragma warning restore CS1591

    /// <summary>Bits of mstatus that software may write.</summary>
    public const ulong WriteMask = Sie | Mie | Spie | Mpie | Spp | Mpp | Fs | Mprv | Sum | Mxr | Tvm | Tw | Tsr;

    /// <summary>Bits of mstatus visible through sstatus.</summary>
    public const ulong SstatusMask = Sie | Spie | Spp | Fs | Sum | Mxr | Uxl | Sd;
}

/// <summary>Interrupt numbers (bit positions in mip/mie) and exception causes.</summary>
public static class Cause
{
#pragma warning disable CS1591
    public const int SupervisorSoftware = 1, MachineSoftware = 3, SupervisorTimer = 5, MachineTimer = 7;
    public const int SupervisorExternal = 9, MachineExternal = 11;

    public const ulong InstructionMisaligned = 0, InstructionAccessFault = 1, IllegalInstruction = 2, Breakpoint = 3;
    public const ulong LoadMisaligned = 4, LoadAccessFault = 5, StoreMisaligned = 6, StoreAccessFault = 7;
    public const ulong EcallFromU = 8, EcallFromS = 9, EcallFromM = 11;
    public const ulong InstructionPageFault = 12, LoadPageFault = 13, StorePageFault = 15;

    public const ulong InterruptBit = 1UL << 63;
#pragma warning restore CS1591
}

/// <summary>A privilege level.</summary>
public enum Privilege : byte
{
    /// <summary>User mode.</summary>
    User = 0,
    /// <summary>Supervisor mode.</summary>
    Supervisor = 1,
    /// <summary>Machine mode.</summary>
    Machine = 3,
}
