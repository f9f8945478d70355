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
        ? (_instructions() / InstructionsPerTick) + _offset
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
        return ticks <= now ? 0 : ((ticks - now) * InstructionsPerTick) - (_instructions() % InstructionsPerTick);
    }
}
