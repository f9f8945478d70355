// The core-local interruptor: per-hart software interrupt (msip) and timer compare
// (mtimecmp) registers and the shared mtime counter, at QEMU's offsets.
using Tern.Riscv;

namespace Tern.Machine.Devices.Clint;

/// <summary>SiFive-compatible CLINT.</summary>
public sealed class Clint : IMmioDevice
{
    private const ulong MtimecmpBase = 0x4000, MtimeOffset = 0xBFF8;
    private readonly Hart[] _harts;
    private readonly GuestClock _clock;
    private readonly ulong[] _mtimecmp;
    private readonly bool[] _msip;

    /// <summary>Creates a CLINT for <paramref name="harts"/> driven by <paramref name="clock"/>.</summary>
    public Clint(Hart[] harts, GuestClock clock)
    {
        _harts = harts;
        _clock = clock;
        _mtimecmp = new ulong[harts.Length];
        Array.Fill(_mtimecmp, ulong.MaxValue);
        _msip = new bool[harts.Length];
    }

    /// <summary>Called after a guest reprograms a timer, so the run loop can recompute its slice.</summary>
    public Action? TimerChanged { get; set; }

    /// <summary>
    /// The earliest timer deadline still in the future, in ticks (ulong.MaxValue when none).
    /// Deadlines already passed have raised MTIP; a hart that masks it must not hold time back.
    /// </summary>
    public ulong NextDeadline
    {
        get
        {
            ulong now = _clock.Now;
            ulong next = ulong.MaxValue;
            foreach (ulong t in _mtimecmp)
            {
                if (t > now && t < next)
                    next = t;
            }
            return next;
        }
    }

    /// <summary>Captures the timer compare and software-interrupt registers.</summary>
    public ClintState Save() => new((ulong[])_mtimecmp.Clone(), (bool[])_msip.Clone());

    /// <summary>Restores registers captured by <see cref="Save"/> and re-drives the harts' lines.</summary>
    public void Restore(ClintState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        if (state.Mtimecmp.Length != _harts.Length || state.Msip.Length != _harts.Length)
            throw new ArgumentException($"CLINT state is for {state.Mtimecmp.Length} harts, this machine has {_harts.Length}.", nameof(state));
        state.Mtimecmp.CopyTo(_mtimecmp, 0);
        state.Msip.CopyTo(_msip, 0);
        for (int i = 0; i < _harts.Length; i++)
            _harts[i].SetInterruptLine(Cause.MachineSoftware, _msip[i]);
        UpdateTimers();
    }

    /// <summary>Raises or lowers each hart's MTIP from the current time.</summary>
    public void UpdateTimers()
    {
        ulong now = _clock.Now;
        for (int i = 0; i < _harts.Length; i++)
            _harts[i].SetInterruptLine(Cause.MachineTimer, now >= _mtimecmp[i]);
    }

    /// <inheritdoc/>
    public bool Read(ulong offset, int size, out ulong value)
    {
        value = 0;
        if (size is not (4 or 8))
            return false;
        if (offset < (ulong)_harts.Length * 4)
        {
            value = _msip[offset / 4] ? 1UL : 0;
            return size == 4 && offset % 4 == 0;
        }
        ulong reg;
        ulong baseOffset;
        if (offset >= MtimecmpBase && offset < MtimecmpBase + ((ulong)_harts.Length * 8))
        {
            baseOffset = MtimecmpBase + ((offset - MtimecmpBase) & ~7UL);
            reg = _mtimecmp[(offset - MtimecmpBase) / 8];
        }
        else if (offset >= MtimeOffset && offset < MtimeOffset + 8)
        {
            baseOffset = MtimeOffset;
            reg = _clock.Now;
        }
        else
        {
            return true; // reserved space reads as zero
        }
        int shift = (int)(offset - baseOffset) * 8;
        value = size == 8 ? reg : (uint)(reg >> shift);
        return size == 4 || shift == 0;
    }

    /// <inheritdoc/>
    public bool Write(ulong offset, int size, ulong value)
    {
        if (size is not (4 or 8))
            return false;
        if (offset < (ulong)_harts.Length * 4)
        {
            int hart = (int)(offset / 4);
            _msip[hart] = (value & 1) != 0;
            _harts[hart].SetInterruptLine(Cause.MachineSoftware, _msip[hart]);
            return true;
        }
        if (offset >= MtimecmpBase && offset < MtimecmpBase + ((ulong)_harts.Length * 8))
        {
            int hart = (int)((offset - MtimecmpBase) / 8);
            int shift = (int)((offset - MtimecmpBase) % 8) * 8;
            ulong old = _mtimecmp[hart];
            _mtimecmp[hart] = size == 8 ? value : (old & ~(0xFFFF_FFFFUL << shift)) | ((value & 0xFFFF_FFFF) << shift);
            _harts[hart].SetInterruptLine(Cause.MachineTimer, _clock.Now >= _mtimecmp[hart]);
            TimerChanged?.Invoke();
            return true;
        }
        return true; // mtime is read-only here (guest time is owned by the machine); reserved space ignores writes
    }
}

/// <summary>The CLINT's saved state. Version 1.</summary>
public sealed record ClintState(ulong[] Mtimecmp, bool[] Msip);
