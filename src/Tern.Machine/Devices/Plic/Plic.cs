// The platform-level interrupt controller of QEMU's 'virt' board (SiFive PLIC layout):
// per-source priorities, pending bits, per-context enables, thresholds and claim/complete.
// Context 2h is hart h's M-mode, 2h+1 its S-mode; a context with a claimable interrupt above
// its threshold drives that hart's MEIP or SEIP line. Sources are level-triggered: pending
// follows the device's line, a claim holds the source until it is completed.
using Tern.Riscv;

namespace Tern.Machine.Devices.Plic;

/// <summary>The PLIC.</summary>
public sealed class Plic : IMmioDevice
{
    /// <summary>Number of interrupt sources, including the reserved source 0.</summary>
    public const int Sources = 96;

    /// <summary>Size of the register window.</summary>
    public const ulong WindowSize = 0x60_0000;

    private const ulong PendingBase = 0x1000, EnableBase = 0x2000, EnableStride = 0x80;
    private const ulong ContextBase = 0x20_0000, ContextStride = 0x1000;
    private const int Words = Sources / 32;

    private readonly Hart[] _harts;
    private readonly uint[] _priority = new uint[Sources];
    private readonly bool[] _level = new bool[Sources];
    private readonly bool[] _pending = new bool[Sources];
    private readonly bool[] _claimed = new bool[Sources];
    private readonly uint[][] _enable;
    private readonly uint[] _threshold;

    /// <summary>Creates a PLIC serving <paramref name="harts"/> (two contexts each).</summary>
    public Plic(Hart[] harts)
    {
        _harts = harts;
        int contexts = harts.Length * 2;
        _enable = new uint[contexts][];
        for (int c = 0; c < contexts; c++)
            _enable[c] = new uint[Words];
        _threshold = new uint[contexts];
    }

    /// <summary>Number of contexts (two per hart).</summary>
    public int Contexts => _threshold.Length;

    /// <summary>Sets a device's interrupt line. Call on the machine's thread.</summary>
    public void SetLevel(int source, bool level)
    {
        if (source <= 0 || source >= Sources)
            throw new ArgumentOutOfRangeException(nameof(source), source, "PLIC sources are 1..95");
        _level[source] = level;
        if (!_claimed[source])
            _pending[source] = level;
        Update();
    }

    /// <inheritdoc/>
    public bool Read(ulong offset, int size, out ulong value)
    {
        value = 0;
        if (size != 4 || (offset & 3) != 0)
            return false;
        if (offset < PendingBase)
        {
            int src = (int)(offset / 4);
            value = src < Sources ? _priority[src] : 0;
        }
        else if (offset < EnableBase)
        {
            int word = (int)((offset - PendingBase) / 4);
            if (word < Words)
                value = PendingWord(word);
        }
        else if (offset < ContextBase)
        {
            int ctx = (int)((offset - EnableBase) / EnableStride);
            int word = (int)((offset - EnableBase) % EnableStride / 4);
            if (ctx < Contexts && word < Words)
                value = _enable[ctx][word];
        }
        else
        {
            int ctx = (int)((offset - ContextBase) / ContextStride);
            ulong reg = (offset - ContextBase) % ContextStride;
            if (ctx < Contexts)
            {
                if (reg == 0)
                    value = _threshold[ctx];
                else if (reg == 4)
                    value = (ulong)Claim(ctx);
            }
        }
        return true;
    }

    /// <inheritdoc/>
    public bool Write(ulong offset, int size, ulong value)
    {
        if (size != 4 || (offset & 3) != 0)
            return false;
        uint v = (uint)value;
        if (offset < PendingBase)
        {
            int src = (int)(offset / 4);
            if (src is > 0 and < Sources)
                _priority[src] = v & 7;
        }
        else if (offset < EnableBase)
        {
            return true; // pending bits are read-only
        }
        else if (offset < ContextBase)
        {
            int ctx = (int)((offset - EnableBase) / EnableStride);
            int word = (int)((offset - EnableBase) % EnableStride / 4);
            if (ctx < Contexts && word < Words)
                _enable[ctx][word] = word == 0 ? v & ~1u : v; // source 0 does not exist
        }
        else
        {
            int ctx = (int)((offset - ContextBase) / ContextStride);
            ulong reg = (offset - ContextBase) % ContextStride;
            if (ctx < Contexts)
            {
                if (reg == 0)
                    _threshold[ctx] = v & 7;
                else if (reg == 4)
                    Complete(ctx, (int)v);
            }
        }
        Update();
        return true;
    }

    private uint PendingWord(int word)
    {
        uint bits = 0;
        for (int b = 0; b < 32; b++)
        {
            if (_pending[(word * 32) + b])
                bits |= 1u << b;
        }
        return bits;
    }

    private bool Enabled(int ctx, int src) => (_enable[ctx][src / 32] & (1u << (src % 32))) != 0;

    // The highest-priority pending, enabled source above the threshold (lowest id wins ties).
    private int Best(int ctx)
    {
        int best = 0;
        uint bestPriority = _threshold[ctx];
        for (int src = 1; src < Sources; src++)
        {
            if (_pending[src] && _priority[src] > bestPriority && Enabled(ctx, src))
            {
                best = src;
                bestPriority = _priority[src];
            }
        }
        return best;
    }

    private int Claim(int ctx)
    {
        int src = Best(ctx);
        if (src != 0)
        {
            _pending[src] = false;
            _claimed[src] = true;
            Update();
        }
        return src;
    }

    private void Complete(int ctx, int src)
    {
        if (src <= 0 || src >= Sources || !_claimed[src] || !Enabled(ctx, src))
            return; // completing something not claimed through this context is ignored
        _claimed[src] = false;
        _pending[src] = _level[src];
    }

    private void Update()
    {
        for (int ctx = 0; ctx < Contexts; ctx++)
        {
            int irq = (ctx & 1) == 0 ? Cause.MachineExternal : Cause.SupervisorExternal;
            _harts[ctx / 2].SetInterruptLine(irq, Best(ctx) != 0);
        }
    }

    /// <summary>Captures the PLIC's registers and line state.</summary>
    public PlicState Save() => new(
        (uint[])_priority.Clone(), (bool[])_level.Clone(), (bool[])_pending.Clone(), (bool[])_claimed.Clone(),
        Array.ConvertAll(_enable, e => (uint[])e.Clone()), (uint[])_threshold.Clone());

    /// <summary>Restores a state captured by <see cref="Save"/> and re-drives the harts' lines.</summary>
    public void Restore(PlicState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        if (state.Priority.Length != Sources || state.Level.Length != Sources || state.Pending.Length != Sources ||
            state.Claimed.Length != Sources || state.Enable.Length != Contexts || state.Threshold.Length != Contexts ||
            state.Enable.Any(e => e.Length != Words))
            throw new ArgumentException("PLIC state does not match this board's sources and contexts.", nameof(state));
        state.Priority.CopyTo(_priority, 0);
        state.Level.CopyTo(_level, 0);
        state.Pending.CopyTo(_pending, 0);
        state.Claimed.CopyTo(_claimed, 0);
        for (int c = 0; c < Contexts; c++)
            state.Enable[c].CopyTo(_enable[c], 0);
        state.Threshold.CopyTo(_threshold, 0);
        Update();
    }
}

/// <summary>The PLIC's saved state. Version 1.</summary>
public sealed record PlicState(uint[] Priority, bool[] Level, bool[] Pending, bool[] Claimed, uint[][] Enable, uint[] Threshold);
