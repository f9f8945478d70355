// Saving and restoring the hart's whole architectural state (see HartState).
namespace Tern.Riscv;

public sealed unsafe partial class Hart
{
    /// <summary>Captures the architectural state. Call between runs, on the hart's thread.</summary>
    public HartState Save()
    {
        var x = new ulong[32];
        var f = new ulong[32];
        for (int i = 0; i < 32; i++)
        {
            x[i] = _x[i];
            f[i] = _f[i];
        }
        return new HartState
        {
            X = x,
            F = f,
            Pc = _pc,
            Privilege = _priv,
            Fcsr = (_frm << 5) | _fflags,
            Mstatus = _mstatus,
            Medeleg = _medeleg,
            Mideleg = _mideleg,
            Mie = _mie,
            Mip = _mipSoft,
            Mtvec = _mtvec,
            Mscratch = _mscratch,
            Mepc = _mepc,
            Mcause = _mcause,
            Mtval = _mtval,
            Mcounteren = _mcounteren,
            Menvcfg = _menvcfg,
            Mcountinhibit = _mcountinhibit,
            Stvec = _stvec,
            Sscratch = _sscratch,
            Sepc = _sepc,
            Scause = _scause,
            Stval = _stval,
            Scounteren = _scounteren,
            Senvcfg = _senvcfg,
            Satp = _satp,
            Stimecmp = _stimecmp,
            Mcycle = Mcycle,
            Minstret = Minstret,
            Pmpcfg = (ulong[])_pmpcfg.Clone(),
            Pmpaddr = (ulong[])_pmpaddr.Clone(),
            Reservation = _reservation,
            WaitingForInterrupt = WaitingForInterrupt,
        };
    }

    /// <summary>
    /// Loads a state captured by <see cref="Save"/>. Interrupt lines driven by devices (mip's
    /// MSIP, MTIP, MEIP, SEIP lines) are not part of it: the devices restore them.
    /// </summary>
    public void Restore(HartState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        if (state.X.Length != 32 || state.F.Length != 32 || state.Pmpcfg.Length != 16 || state.Pmpaddr.Length != 64)
            throw new ArgumentException("Hart state has register arrays of the wrong size.", nameof(state));
        if (state.Privilege is not (Privilege.User or Privilege.Supervisor or Privilege.Machine))
            throw new ArgumentException($"Hart state has an invalid privilege level {(int)state.Privilege}.", nameof(state));
        for (int i = 0; i < 32; i++)
        {
            _x[i] = i == 0 ? 0 : state.X[i];
            _f[i] = state.F[i];
        }
        _pc = state.Pc;
        _priv = state.Privilege;
        _fflags = state.Fcsr & 31;
        _frm = (state.Fcsr >> 5) & 7;
        _mstatus = (state.Mstatus & ~Mstatus.Sd) | Mstatus.Uxl | Mstatus.Sxl;
        _medeleg = state.Medeleg & DelegableExceptions;
        _mideleg = state.Mideleg & SupervisorInterrupts;
        _mie = state.Mie & AllInterrupts;
        _mipSoft = state.Mip & SupervisorInterrupts;
        _mtvec = state.Mtvec;
        _mscratch = state.Mscratch;
        _mepc = state.Mepc;
        _mcause = state.Mcause;
        _mtval = state.Mtval;
        _mcounteren = state.Mcounteren;
        _menvcfg = state.Menvcfg & MenvcfgWritable;
        _mcountinhibit = state.Mcountinhibit;
        _stvec = state.Stvec;
        _sscratch = state.Sscratch;
        _sepc = state.Sepc;
        _scause = state.Scause;
        _stval = state.Stval;
        _scounteren = state.Scounteren;
        _senvcfg = state.Senvcfg;
        _satp = state.Satp;
        _stimecmp = state.Stimecmp;
        _cycleDelta = state.Mcycle - InstructionsRetired;
        _instretDelta = state.Minstret - InstructionsRetired;
        state.Pmpcfg.CopyTo(_pmpcfg, 0);
        state.Pmpaddr.CopyTo(_pmpaddr, 0);
        _reservation = state.Reservation;
        WaitingForInterrupt = state.WaitingForInterrupt;
        FlushTlb();
        UpdateTranslationMode();
        UpdateTimer();
        RecomputeInterrupts();
    }
}
