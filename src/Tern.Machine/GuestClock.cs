// Guest time, in ticks of the 10 MHz timebase. In host mode it follows the host's monotonic
// clock; in icount mode it is derived from retired instructions, so a run is deterministic.
using System.Diagnostics;

namespace Tern.Machine;

/// <summary>The guest's notion of time (mtime).</summary>
public sealed class GuestClock
{
    /// <summary>Instructions per timebase tick in icount mode (a 1 GIPS virtual CPU: 100 per 10 MHz tick).</summary>
    public const ulong InstructionsPerTick = 100;

    private readonly Func<ulong> _instructions;
    private readonly long _hostStart = Stopwatch.GetTimestamp();
    private ulong _offset;
    private ulong _instructionBase;

    /// <summary>Creates a clock; <paramref name="instructions"/> reads the retired-instruction count.</summary>
    public GuestClock(ClockMode mode, Func<ulong> instructions)
    {
        Mode = mode;
        _instructions = instructions;
    }

    /// <summary>The clock's mode.</summary>
    public ClockMode Mode { get; }

    /// <summary>The current time in ticks.</summary>
    public ulong Now => Mode == ClockMode.Icount
        ? ((_instructionBase + _instructions()) / InstructionsPerTick) + _offset
        : (ulong)((Stopwatch.GetTimestamp() - _hostStart) * (double)Board.TimebaseFrequency / Stopwatch.Frequency) + _offset;

    /// <summary>Icount mode: moves time forward to <paramref name="ticks"/> while the guest sleeps in WFI.</summary>
    public void SkipTo(ulong ticks)
    {
        ulong now = Now;
        if (ticks > now)
            _offset += ticks - now;
    }

    /// <summary>Icount mode: instructions that may retire before time reaches <paramref name="ticks"/>.</summary>
    public ulong InstructionsUntil(ulong ticks)
    {
        ulong now = Now;
        return ticks <= now ? 0 : ((ticks - now) * InstructionsPerTick) - ((_instructionBase + _instructions()) % InstructionsPerTick);
    }

    /// <summary>Captures the clock: the time now and, for icount, the instructions that made it.</summary>
    public GuestClockState Save() => new(Now, _instructionBase + _instructions());

    /// <summary>
    /// Continues from a saved clock on a machine whose harts start counting from zero: time
    /// resumes where it was saved and never runs backwards.
    /// </summary>
    public void Restore(GuestClockState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        _instructionBase = Mode == ClockMode.Icount ? state.Instructions : 0;
        _offset = 0;
        ulong now = Now;
        _offset = state.Ticks - Math.Min(now, state.Ticks);
    }
}

/// <summary>The clock's saved state. Version 1.</summary>
public sealed record GuestClockState(ulong Ticks, ulong Instructions);
