// One RISC-V hart (RV64GC, M/S/U, Sv39): architectural state, the run loop, traps and
// interrupts. Execution, the MMU, CSRs, atomics and floating point live in the other
// Hart.*.cs files. A hart is not thread-safe: one thread runs it; other threads may only
// call RequestStop.
using System.Runtime.InteropServices;

namespace Tern.Riscv;

/// <summary>A RISC-V RV64GC hart.</summary>
public sealed unsafe partial class Hart : IDisposable
{
    /// <summary>misa: MXL=64, extensions A C D F I M S U.</summary>
    public const ulong MisaValue = (2UL << 62) | (1 << 0) | (1 << 2) | (1 << 3) | (1 << 5) | (1 << 8) | (1 << 12) | (1 << 18) | (1 << 20);

    private const int MaxBlockInstructions = 64;

    private readonly GuestMemory _mem;
    private readonly IBus _bus;
    private readonly CodeCache _code;
    private readonly byte* _ram;
    private readonly ulong _ramBase;
    private readonly ulong _ramSize;

    // x0..x31 plus a sink at index 32 that absorbs writes to x0; f0..f31.
    private ulong* _x;
    private ulong* _f;

    private ulong _pc;
    private Privilege _priv = Privilege.Machine;

    // Retired instructions since creation (drives budgets), and the guest-visible offsets.
    private ulong _executed;
    private uint _inBlock;
    private ulong _instretDelta;
    private ulong _cycleDelta;

    private volatile bool _stopRequested;
    private long _epoch;
    private bool _interruptPending;
    private ulong _trapCause;
    private ulong _trapValue;

    /// <summary>Creates hart <paramref name="hartId"/> over <paramref name="memory"/> and <paramref name="bus"/>.</summary>
    public Hart(int hartId, GuestMemory memory, IBus bus)
    {
        HartId = (ulong)hartId;
        _mem = memory;
        _bus = bus;
        _code = memory.Code ??= new CodeCache(memory.PageCount);
        _ram = memory.Host;
        _ramBase = memory.Base;
        _ramSize = memory.Size;
        _x = (ulong*)NativeMemory.AllocZeroed(33 * sizeof(ulong));
        _f = (ulong*)NativeMemory.AllocZeroed(32 * sizeof(ulong));
        _tlb = (TlbEntry*)NativeMemory.Alloc((nuint)(TlbSets * TlbSize * sizeof(TlbEntry)));
        FlushTlb();
        memory.CodePageRegistered += OnCodePageRegistered;
        memory.WriteMappingsRevoked += FlushWriteTlb;
        _mstatus = Mstatus.Uxl | Mstatus.Sxl;
        UpdateTranslationMode();
    }

    /// <summary>The hart id (mhartid).</summary>
    public ulong HartId { get; }

    /// <summary>The program counter.</summary>
    public ulong Pc
    {
        get => _pc;
        set => _pc = value;
    }

    /// <summary>The current privilege level.</summary>
    public Privilege Privilege => _priv;

    /// <summary>Instructions retired since the hart was created (not affected by guest writes to minstret).</summary>
    public ulong InstructionsRetired => _executed + _inBlock;

    /// <summary>True while the hart sleeps in WFI.</summary>
    public bool WaitingForInterrupt { get; private set; }

    /// <summary>Supplies the value of the time CSR (and nothing else); the machine owns the clock.</summary>
    public Func<ulong> ReadTime { get; set; } = static () => 0;

    /// <summary>Privilege levels whose ECALLs stop the run with <see cref="StopReason.EnvironmentCall"/> instead of trapping (bit n = level n).</summary>
    public int InterceptEcallFrom { get; set; }

    /// <summary>Called for each trap taken, with the cause (interrupt bit included) and tval. For statistics.</summary>
    public Action<ulong, ulong>? TrapObserver { get; set; }

    /// <summary>Reads integer register <paramref name="index"/>.</summary>
    public ulong GetX(int index) => (uint)index < 32 ? _x[index] : throw new ArgumentOutOfRangeException(nameof(index));

    /// <summary>Writes integer register <paramref name="index"/> (writes to x0 are ignored).</summary>
    public void SetX(int index, ulong value)
    {
        if ((uint)index >= 32)
            throw new ArgumentOutOfRangeException(nameof(index));
        if (index != 0)
            _x[index] = value;
    }

    /// <summary>Reads floating-point register <paramref name="index"/> as raw bits.</summary>
    public ulong GetF(int index) => (uint)index < 32 ? _f[index] : throw new ArgumentOutOfRangeException(nameof(index));

    /// <summary>
    /// Drops the LR reservation. The machine calls it when another hart has run since this one
    /// last did, so an SC never succeeds across another hart's stores (it may fail spuriously,
    /// which the specification allows).
    /// </summary>
    public void ClearReservation() => _reservation = ulong.MaxValue;

    /// <summary>Asks the hart to return from <see cref="Run"/> at the next block boundary. Safe from any thread.</summary>
    public void RequestStop() => _stopRequested = true;

    /// <summary>
    /// Raises or lowers a hardware interrupt line (MSIP, MTIP, MEIP, SEIP) as a device sees it.
    /// Call on the thread that runs the hart.
    /// </summary>
    public void SetInterruptLine(int irq, bool level)
    {
        ulong bit = 1UL << irq;
        ulong old = _mipLines;
        _mipLines = level ? old | bit : old & ~bit;
        if (old != _mipLines)
        {
            if (level)
                WaitingForInterrupt &= (Mip & _mie) == 0;
            RecomputeInterrupts();
        }
    }

    /// <summary>True when an interrupt that would wake WFI is pending (enabled in mie, whatever the global enables).</summary>
    public bool HasWakeupInterrupt => (Mip & _mie) != 0;

    /// <summary>
    /// Runs until <paramref name="budget"/> instructions have retired, WFI sleeps, an intercepted
    /// ECALL arrives or a stop is requested. Never throws for anything the guest does.
    /// </summary>
    public StopReason Run(ulong budget)
    {
        ulong target = _executed + budget;
        if (WaitingForInterrupt)
        {
            if ((Mip & _mie) == 0)
                return StopReason.WaitForInterrupt;
            WaitingForInterrupt = false;
        }
        while (true)
        {
            if (_stopRequested)
            {
                _stopRequested = false;
                return StopReason.Requested;
            }
            if (_interruptPending)
                TakeInterrupt();
            if (_executed >= target)
                return StopReason.BudgetSpent;
            var block = FetchBlock();
            if (block is null)
                continue; // the fetch trapped; the handler runs next
            var stop = ExecuteBlocks(block, target);
            if (stop != StopReason.BudgetSpent)
                return stop;
        }
    }

    // ---- traps and interrupts ----

    private void RaiseException(ulong cause, ulong tval, ulong epc) => TakeTrap(cause, tval, epc, interrupt: false);

    private void TakeTrap(ulong cause, ulong tval, ulong epc, bool interrupt)
    {
        TrapObserver?.Invoke(interrupt ? cause | Cause.InterruptBit : cause, tval);
        ulong deleg = interrupt ? _mideleg : _medeleg;
        if (_priv <= Privilege.Supervisor && ((deleg >> (int)cause) & 1) != 0)
        {
            _scause = interrupt ? cause | Cause.InterruptBit : cause;
            _sepc = epc;
            _stval = tval;
            ulong s = _mstatus & ~(Mstatus.Spp | Mstatus.Spie | Mstatus.Sie);
            if (_priv == Privilege.Supervisor)
                s |= Mstatus.Spp;
            if ((_mstatus & Mstatus.Sie) != 0)
                s |= Mstatus.Spie;
            _mstatus = s;
            _pc = (_stvec & ~3UL) + ((_stvec & 1) != 0 && interrupt ? 4 * cause : 0);
            SetPrivilege(Privilege.Supervisor);
        }
        else
        {
            _mcause = interrupt ? cause | Cause.InterruptBit : cause;
            _mepc = epc;
            _mtval = tval;
            ulong m = _mstatus & ~(Mstatus.Mpp | Mstatus.Mpie | Mstatus.Mie);
            m |= (ulong)_priv << Mstatus.MppShift;
            if ((_mstatus & Mstatus.Mie) != 0)
                m |= Mstatus.Mpie;
            _mstatus = m;
            _pc = (_mtvec & ~3UL) + ((_mtvec & 1) != 0 && interrupt ? 4 * cause : 0);
            SetPrivilege(Privilege.Machine);
        }
    }

    private void TakeInterrupt()
    {
        int irq = SelectInterrupt();
        if (irq >= 0)
        {
            WaitingForInterrupt = false;
            TakeTrap((ulong)irq, 0, _pc, interrupt: true);
        }
    }

    // Priority order of the privileged specification: MEI, MSI, MTI, SEI, SSI, STI.
    private static ReadOnlySpan<byte> InterruptPriority => [11, 3, 7, 9, 1, 5];

    private int SelectInterrupt()
    {
        ulong pending = Mip & _mie;
        if (pending == 0)
            return -1;
        ulong m = pending & ~_mideleg;
        if (m != 0 && (_priv < Privilege.Machine || (_mstatus & Mstatus.Mie) != 0))
            return Highest(m);
        ulong s = pending & _mideleg;
        if (s != 0 && (_priv < Privilege.Supervisor || (_priv == Privilege.Supervisor && (_mstatus & Mstatus.Sie) != 0)))
            return Highest(s);
        return -1;
    }

    private static int Highest(ulong bits)
    {
        foreach (byte irq in InterruptPriority)
        {
            if ((bits & (1UL << irq)) != 0)
                return irq;
        }
        return -1;
    }

    private void RecomputeInterrupts() => _interruptPending = SelectInterrupt() >= 0;

    private void SetPrivilege(Privilege p)
    {
        _priv = p;
        _epoch = _code.NewEpoch();
        UpdateTranslationMode();
        RecomputeInterrupts();
    }

    /// <summary>Frees the register files and TLB.</summary>
    public void Dispose()
    {
        _mem.CodePageRegistered -= OnCodePageRegistered;
        _mem.WriteMappingsRevoked -= FlushWriteTlb;
        if (_x != null)
        {
            NativeMemory.Free(_x);
            NativeMemory.Free(_f);
            NativeMemory.Free(_tlb);
            _x = null;
            _f = null;
            _tlb = null;
        }
    }
}
