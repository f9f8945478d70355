// Control and status registers: storage, privilege and read-only checks, WARL legalisation
// and the side effects of writes (translation mode, interrupt state, TLB flushes).
namespace Tern.Riscv;

public sealed unsafe partial class Hart
{
    private const ulong DelegableExceptions = 0x3FF | (1UL << 12) | (1UL << 13) | (1UL << 15);
    private const ulong SupervisorInterrupts = 0x222; // SSIP, STIP, SEIP
    private const ulong AllInterrupts = 0xAAA;        // S and M software, timer, external

    private ulong _mstatus;
    private ulong _medeleg, _mideleg, _mie, _mipSoft, _mipLines;
    private ulong _mtvec, _mscratch, _mepc, _mcause, _mtval, _menvcfg;
    private uint _mcounteren, _mcountinhibit, _scounteren;
    private ulong _stvec, _sscratch, _sepc, _scause, _stval, _senvcfg, _satp;
    private readonly ulong[] _pmpcfg = new ulong[16];
    private readonly ulong[] _pmpaddr = new ulong[64];
    private uint _fflags, _frm;
    private ulong _reservation = ulong.MaxValue;
    private ulong _stimecmp = ulong.MaxValue;

    // Sstc: with menvcfg.STCE set, STIP follows time >= stimecmp and is no longer software-writable.
    private const ulong MenvcfgStce = 1UL << 63;
    private const ulong MenvcfgWritable = MenvcfgStce | 1; // STCE, FIOM

    private bool SstcEnabled => (_menvcfg & MenvcfgStce) != 0;

    private ulong Mip => _mipLines | (SstcEnabled ? _mipSoft & ~(1UL << Cause.SupervisorTimer) : _mipSoft);

    /// <summary>The supervisor timer deadline (stimecmp) when Sstc is enabled by M-mode, else null.</summary>
    public ulong? SupervisorTimerDeadline => SstcEnabled ? _stimecmp : null;

    /// <summary>Re-evaluates the Sstc timer against the current time; the board calls it as time passes.</summary>
    public void UpdateTimer()
    {
        if (SstcEnabled)
            SetInterruptLine(Cause.SupervisorTimer, ReadTime() >= _stimecmp);
    }

    private void SetMenvcfg(ulong value)
    {
        bool wasEnabled = SstcEnabled;
        _menvcfg = value & MenvcfgWritable;
        if (SstcEnabled)
            UpdateTimer();
        else if (wasEnabled)
            SetInterruptLine(Cause.SupervisorTimer, false);
        RecomputeInterrupts();
    }

    private ulong MstatusWithSd => (_mstatus & Mstatus.Fs) == Mstatus.Fs ? _mstatus | Mstatus.Sd : _mstatus & ~Mstatus.Sd;

    private bool FpEnabled => (_mstatus & Mstatus.Fs) != 0;

    private void MarkFpDirty() => _mstatus |= Mstatus.Fs;

    private ulong Minstret => InstructionsRetired + _instretDelta;

    private ulong Mcycle => InstructionsRetired + _cycleDelta;

    /// <summary>Executes a Zicsr instruction. Returns false with an illegal-instruction trap recorded.</summary>
    private bool ExecuteCsr(ref Insn d)
    {
        int csr = d.Imm & 0xFFF;
        bool immediate = d.Op is Op.Csrrwi or Op.Csrrsi or Op.Csrrci;
        ulong src = immediate ? d.Rs1 : _x[d.Rs1];
        bool isWrite = d.Op is Op.Csrrw or Op.Csrrwi;
        bool writes = isWrite || (d.Rm & 2) == 0;
        if ((int)_priv < ((csr >> 8) & 3) || (writes && (csr >> 10) == 3) || !TryReadCsr(csr, out ulong old))
            return Fault(Cause.IllegalInstruction, d.Raw);
        if (writes)
        {
            ulong value = d.Op switch
            {
                Op.Csrrw or Op.Csrrwi => src,
                Op.Csrrs or Op.Csrrsi => old | src,
                _ => old & ~src,
            };
            if (!TryWriteCsr(csr, value))
                return Fault(Cause.IllegalInstruction, d.Raw);
        }
        _x[d.Rd] = old;
        return true;
    }

    private bool CounterAllowed(int csr)
    {
        int bit = csr & 31;
        if (_priv < Privilege.Machine && ((_mcounteren >> bit) & 1) == 0)
            return false;
        return _priv != Privilege.User || ((_scounteren >> bit) & 1) != 0;
    }

    /// <summary>Reads a CSR as the current privilege level would. False when it does not exist or is not accessible.</summary>
    public bool TryReadCsr(int csr, out ulong value)
    {
        value = 0;
        switch (csr)
        {
            case Csr.Fflags: value = _fflags; return FpEnabled;
            case Csr.Frm: value = _frm; return FpEnabled;
            case Csr.Fcsr: value = (_frm << 5) | _fflags; return FpEnabled;
            case Csr.Cycle: value = Mcycle; return CounterAllowed(csr);
            case Csr.Time: value = ReadTime(); return CounterAllowed(csr);
            case Csr.Instret: value = Minstret; return CounterAllowed(csr);
            case >= Csr.HpmCounter3 and <= Csr.HpmCounter31: return CounterAllowed(csr);
            case Csr.Sstatus: value = MstatusWithSd & Mstatus.SstatusMask; return true;
            case Csr.Sie: value = _mie & _mideleg; return true;
            case Csr.Stvec: value = _stvec; return true;
            case Csr.Scounteren: value = _scounteren; return true;
            case Csr.Senvcfg: value = _senvcfg; return true;
            case Csr.Sscratch: value = _sscratch; return true;
            case Csr.Sepc: value = _sepc; return true;
            case Csr.Scause: value = _scause; return true;
            case Csr.Stval: value = _stval; return true;
            case Csr.Sip: value = Mip & _mideleg; return true;
            case Csr.Stimecmp: value = _stimecmp; return StimecmpAccessible;
            case Csr.Satp:
                value = _satp;
                return !(_priv == Privilege.Supervisor && (_mstatus & Mstatus.Tvm) != 0);
            case Csr.Mvendorid or Csr.Marchid or Csr.Mimpid or Csr.Mconfigptr: return true;
            case Csr.Mhartid: value = HartId; return true;
            case Csr.Mstatus: value = MstatusWithSd; return true;
            case Csr.Misa: value = MisaValue; return true;
            case Csr.Medeleg: value = _medeleg; return true;
            case Csr.Mideleg: value = _mideleg; return true;
            case Csr.Mie: value = _mie; return true;
            case Csr.Mtvec: value = _mtvec; return true;
            case Csr.Mcounteren: value = _mcounteren; return true;
            case Csr.Menvcfg: value = _menvcfg; return true;
            case Csr.Mcountinhibit: value = _mcountinhibit; return true;
            case >= Csr.Mhpmevent3 and <= Csr.Mhpmevent31: return true;
            case Csr.Mscratch: value = _mscratch; return true;
            case Csr.Mepc: value = _mepc; return true;
            case Csr.Mcause: value = _mcause; return true;
            case Csr.Mtval: value = _mtval; return true;
            case Csr.Mip: value = Mip; return true;
            case Csr.Mtinst or Csr.Mtval2: return true;
            case >= Csr.Pmpcfg0 and <= Csr.Pmpcfg15:
                value = _pmpcfg[csr - Csr.Pmpcfg0];
                return (csr & 1) == 0; // RV64 has only the even pmpcfg registers
            case >= Csr.Pmpaddr0 and <= Csr.Pmpaddr63: value = _pmpaddr[csr - Csr.Pmpaddr0]; return true;
            case Csr.Mcycle: value = Mcycle; return true;
            case Csr.Minstret: value = Minstret; return true;
            case >= Csr.MhpmCounter3 and <= Csr.MhpmCounter31: return true;
            default: return false;
        }
    }

    /// <summary>Writes a CSR with WARL legalisation and side effects. False when the write is not allowed.</summary>
    public bool TryWriteCsr(int csr, ulong value)
    {
        switch (csr)
        {
            case Csr.Fflags: _fflags = (uint)value & 31; MarkFpDirty(); return true;
            case Csr.Frm: _frm = (uint)value & 7; MarkFpDirty(); return true;
            case Csr.Fcsr: _fflags = (uint)value & 31; _frm = (uint)(value >> 5) & 7; MarkFpDirty(); return true;
            case Csr.Sstatus:
                {
                    const ulong writable = Mstatus.Sie | Mstatus.Spie | Mstatus.Spp | Mstatus.Fs | Mstatus.Sum | Mstatus.Mxr;
                    SetMstatus((_mstatus & ~writable) | (value & writable));
                    return true;
                }
            case Csr.Sie: _mie = (_mie & ~_mideleg) | (value & _mideleg & AllInterrupts); RecomputeInterrupts(); return true;
            case Csr.Stvec: _stvec = LegalTvec(value, _stvec); return true;
            case Csr.Scounteren: _scounteren = (uint)value; return true;
            case Csr.Senvcfg: _senvcfg = value & 1; return true;
            case Csr.Sscratch: _sscratch = value; return true;
            case Csr.Sepc: _sepc = value & ~1UL; return true;
            case Csr.Scause: _scause = value; return true;
            case Csr.Stval: _stval = value; return true;
            case Csr.Sip:
                {
                    ulong writable = _mideleg & (1UL << Cause.SupervisorSoftware);
                    _mipSoft = (_mipSoft & ~writable) | (value & writable);
                    RecomputeInterrupts();
                    return true;
                }
            case Csr.Stimecmp:
                if (!StimecmpAccessible)
                    return false;
                _stimecmp = value;
                UpdateTimer();
                return true;
            case Csr.Satp:
                {
                    if (_priv == Privilege.Supervisor && (_mstatus & Mstatus.Tvm) != 0)
                        return false;
                    ulong mode = value >> 60;
                    if (mode is 0 or 8) // Bare or Sv39; other modes leave satp unchanged (WARL)
                    {
                        _satp = value & ((0xFUL << 60) | (0xFFFFUL << 44) | 0xFFF_FFFF_FFFFUL);
                        FlushPagedTlb();
                    }
                    return true;
                }
            case Csr.Mstatus:
                {
                    ulong v = (_mstatus & ~Mstatus.WriteMask) | (value & Mstatus.WriteMask);
                    if (((v >> Mstatus.MppShift) & 3) == 2) // reserved MPP: keep the old value
                        v = (v & ~Mstatus.Mpp) | (_mstatus & Mstatus.Mpp);
                    SetMstatus(v);
                    return true;
                }
            case Csr.Misa: return true; // fixed: the extensions cannot be switched off
            case Csr.Medeleg: _medeleg = value & DelegableExceptions; return true;
            case Csr.Mideleg: _mideleg = value & SupervisorInterrupts; RecomputeInterrupts(); return true;
            case Csr.Mie: _mie = value & AllInterrupts; RecomputeInterrupts(); return true;
            case Csr.Mtvec: _mtvec = LegalTvec(value, _mtvec); return true;
            case Csr.Mcounteren: _mcounteren = (uint)value; return true;
            case Csr.Menvcfg: SetMenvcfg(value); return true;
            case Csr.Mcountinhibit: _mcountinhibit = (uint)value & ~2u; return true;
            case >= Csr.Mhpmevent3 and <= Csr.Mhpmevent31: return true;
            case Csr.Mscratch: _mscratch = value; return true;
            case Csr.Mepc: _mepc = value & ~1UL; return true;
            case Csr.Mcause: _mcause = value; return true;
            case Csr.Mtval: _mtval = value; return true;
            case Csr.Mip: _mipSoft = value & SupervisorInterrupts; RecomputeInterrupts(); return true;
            case Csr.Mtinst or Csr.Mtval2: return true;
            case >= Csr.Pmpcfg0 and <= Csr.Pmpcfg15:
                if ((csr & 1) != 0)
                    return false;
                _pmpcfg[csr - Csr.Pmpcfg0] = value;
                return true;
            case >= Csr.Pmpaddr0 and <= Csr.Pmpaddr63: _pmpaddr[csr - Csr.Pmpaddr0] = value & ((1UL << 54) - 1); return true;
            // The writing instruction's own retirement is not counted, so the next one reads back the value written.
            case Csr.Mcycle: _cycleDelta = value - (InstructionsRetired + 1); return true;
            case Csr.Minstret: _instretDelta = value - (InstructionsRetired + 1); return true;
            case >= Csr.MhpmCounter3 and <= Csr.MhpmCounter31: return true;
            default: return false;
        }
    }

    // M-mode always reaches stimecmp; S-mode only when M enabled Sstc and the time counter (mcounteren.TM).
    private bool StimecmpAccessible => _priv == Privilege.Machine || (SstcEnabled && (_mcounteren & 2) != 0);

    private static ulong LegalTvec(ulong value, ulong old) => (value & 3) < 2 ? value : (value & ~3UL) | (old & 3);

    private void SetMstatus(ulong value)
    {
        const ulong translationBits = Mstatus.Sum | Mstatus.Mxr;
        ulong old = _mstatus;
        _mstatus = value;
        if (((old ^ value) & translationBits) != 0)
            FlushPagedTlb();
        UpdateTranslationMode();
        RecomputeInterrupts();
    }

    private bool Mret()
    {
        if (_priv != Privilege.Machine)
            return false;
        var target = (Privilege)((_mstatus >> Mstatus.MppShift) & 3);
        ulong s = _mstatus & ~(Mstatus.Mie | Mstatus.Mpp);
        if ((_mstatus & Mstatus.Mpie) != 0)
            s |= Mstatus.Mie;
        s |= Mstatus.Mpie;
        if (target != Privilege.Machine)
            s &= ~Mstatus.Mprv;
        _mstatus = s;
        _pc = _mepc;
        SetPrivilege(target);
        return true;
    }

    private bool Sret()
    {
        if (_priv == Privilege.User || (_priv == Privilege.Supervisor && (_mstatus & Mstatus.Tsr) != 0))
            return false;
        var target = (_mstatus & Mstatus.Spp) != 0 ? Privilege.Supervisor : Privilege.User;
        ulong s = _mstatus & ~(Mstatus.Sie | Mstatus.Spp | Mstatus.Mprv);
        if ((_mstatus & Mstatus.Spie) != 0)
            s |= Mstatus.Sie;
        s |= Mstatus.Spie;
        _mstatus = s;
        _pc = _sepc;
        SetPrivilege(target);
        return true;
    }
}
