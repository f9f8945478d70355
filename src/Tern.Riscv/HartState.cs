// The whole architectural state of one hart as a plain value: what snapshots and live
// migration carry. Restoring it into a hart reproduces execution exactly.
namespace Tern.Riscv;

/// <summary>A hart's architectural state. Version 1.</summary>
public sealed record HartState
{
    /// <summary>x0..x31 (x0 always 0).</summary>
    public required ulong[] X { get; init; }
    /// <summary>f0..f31 as raw bits (single-precision values NaN-boxed).</summary>
    public required ulong[] F { get; init; }
    /// <summary>The program counter.</summary>
    public ulong Pc { get; init; }
    /// <summary>The current privilege level.</summary>
    public Privilege Privilege { get; init; }
    /// <summary>fflags (bits 4:0) and frm (bits 7:5).</summary>
    public uint Fcsr { get; init; }
#pragma warning disable CS1591 // the CSRs are named as in the specification
    public ulong Mstatus { get; init; }
    public ulong Medeleg { get; init; }
    public ulong Mideleg { get; init; }
    public ulong Mie { get; init; }
    public ulong Mip { get; init; }
    public ulong Mtvec { get; init; }
    public ulong Mscratch { get; init; }
    public ulong Mepc { get; init; }
    public ulong Mcause { get; init; }
    public ulong Mtval { get; init; }
    public uint Mcounteren { get; init; }
    public ulong Menvcfg { get; init; }
    public uint Mcountinhibit { get; init; }
    public ulong Stvec { get; init; }
    public ulong Sscratch { get; init; }
    public ulong Sepc { get; init; }
    public ulong Scause { get; init; }
    public ulong Stval { get; init; }
    public uint Scounteren { get; init; }
    public ulong Senvcfg { get; init; }
    public ulong Satp { get; init; }
    public ulong Stimecmp { get; init; } = ulong.MaxValue;
    public ulong Mcycle { get; init; }
    public ulong Minstret { get; init; }
    public required ulong[] Pmpcfg { get; init; }
    public required ulong[] Pmpaddr { get; init; }
#pragma warning restore CS1591
    /// <summary>Physical address of the LR reservation, or ulong.MaxValue when none is held.</summary>
    public ulong Reservation { get; init; } = ulong.MaxValue;
    /// <summary>True when the hart is stopped in WFI waiting for an interrupt.</summary>
    public bool WaitingForInterrupt { get; init; }

    /// <summary>Value equality over every field, including the arrays.</summary>
    public bool Equals(HartState? other) =>
        other is not null && X.AsSpan().SequenceEqual(other.X) && F.AsSpan().SequenceEqual(other.F) &&
        Pmpcfg.AsSpan().SequenceEqual(other.Pmpcfg) && Pmpaddr.AsSpan().SequenceEqual(other.Pmpaddr) &&
        Pc == other.Pc && Privilege == other.Privilege && Fcsr == other.Fcsr && Mstatus == other.Mstatus &&
        Medeleg == other.Medeleg && Mideleg == other.Mideleg && Mie == other.Mie && Mip == other.Mip &&
        Mtvec == other.Mtvec && Mscratch == other.Mscratch && Mepc == other.Mepc && Mcause == other.Mcause &&
        Mtval == other.Mtval && Mcounteren == other.Mcounteren && Menvcfg == other.Menvcfg &&
        Mcountinhibit == other.Mcountinhibit && Stvec == other.Stvec && Sscratch == other.Sscratch &&
        Sepc == other.Sepc && Scause == other.Scause && Stval == other.Stval && Scounteren == other.Scounteren &&
        Senvcfg == other.Senvcfg && Satp == other.Satp && Stimecmp == other.Stimecmp && Mcycle == other.Mcycle && Minstret == other.Minstret &&
        Reservation == other.Reservation && WaitingForInterrupt == other.WaitingForInterrupt;

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(Pc, Privilege, Mstatus, Minstret, X[1], X[2], X[10]);
}
