namespace Tern.Riscv;

/// <summary>Why <see cref="Hart.Run"/> returned.</summary>
public enum StopReason
{
    /// <summary>The instruction budget was spent.</summary>
    BudgetSpent,
    /// <summary>The hart executed WFI and no enabled interrupt is pending: wait for one.</summary>
    WaitForInterrupt,
    /// <summary>An ECALL the host intercepts (see <see cref="Hart.InterceptEcallFrom"/>); pc points at the ECALL.</summary>
    EnvironmentCall,
    /// <summary>A device or the host asked the hart to stop (power-off, pause, exit).</summary>
    Requested,
}
