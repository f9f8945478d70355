// The Goldfish real-time clock QEMU's 'virt' board carries: nanoseconds since the Unix epoch
// (reading TIME_LOW latches TIME_HIGH), with a one-shot alarm that raises its interrupt.
// Wall time is host time plus an offset the guest may set, carried in snapshots.
namespace Tern.Machine.Devices.GoldfishRtc;

/// <summary>Goldfish RTC.</summary>
public sealed class GoldfishRtc(Func<long> nowNanoseconds, Action<bool> irq) : IMmioDevice
{
    private const ulong TimeLow = 0x00, TimeHigh = 0x04, AlarmLow = 0x08, AlarmHigh = 0x0C;
    private const ulong IrqEnabled = 0x10, ClearAlarm = 0x14, AlarmStatus = 0x18, ClearInterrupt = 0x1C;

    private long _offset;
    private uint _latchedHigh;
    private uint _alarmHigh;
    private long _alarm = -1;
    private bool _irqEnabled, _irqPending;

    private long Now => nowNanoseconds() + _offset;

    /// <summary>The armed alarm time in guest nanoseconds, or -1.</summary>
    public long Alarm => _alarm;

    /// <summary>Raises the interrupt when the alarm time has come. Call from the run loop.</summary>
    public void Poll()
    {
        if (_alarm >= 0 && Now >= _alarm)
        {
            _alarm = -1;
            _irqPending = true;
            irq(_irqEnabled);
        }
    }

    /// <inheritdoc/>
    public bool Read(ulong offset, int size, out ulong value)
    {
        value = 0;
        if (size != 4)
            return false;
        switch (offset)
        {
            case TimeLow:
                long now = Now;
                _latchedHigh = (uint)((ulong)now >> 32);
                value = (uint)now;
                break;
            case TimeHigh: value = _latchedHigh; break;
            case AlarmLow: value = _alarm < 0 ? 0 : (uint)_alarm; break;
            case AlarmHigh: value = _alarm < 0 ? 0 : (uint)((ulong)_alarm >> 32); break;
            case IrqEnabled: value = _irqEnabled ? 1UL : 0; break;
            case AlarmStatus: value = _alarm >= 0 ? 1UL : 0; break;
        }
        return true;
    }

    /// <inheritdoc/>
    public bool Write(ulong offset, int size, ulong value)
    {
        if (size != 4)
            return false;
        uint v = (uint)value;
        switch (offset)
        {
            case TimeLow:
                _offset = (long)(((ulong)_latchedHigh << 32) | v) - nowNanoseconds();
                break;
            case TimeHigh: _latchedHigh = v; break;
            case AlarmHigh: _alarmHigh = v; break;
            case AlarmLow:
                _alarm = (long)(((ulong)_alarmHigh << 32) | v);
                Poll();
                break;
            case IrqEnabled:
                _irqEnabled = (v & 1) != 0;
                irq(_irqEnabled && _irqPending);
                break;
            case ClearAlarm: _alarm = -1; break;
            case ClearInterrupt:
                _irqPending = false;
                irq(false);
                break;
        }
        return true;
    }

    /// <summary>Captures the RTC's state, including the guest's wall time now (so it continues on another host).</summary>
    public GoldfishRtcState Save() => new(Now, _latchedHigh, _alarmHigh, _alarm, _irqEnabled, _irqPending);

    /// <summary>Restores a state captured by <see cref="Save"/>: the guest's wall time continues from the saved instant.</summary>
    public void Restore(GoldfishRtcState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        (_offset, _latchedHigh, _alarmHigh, _alarm, _irqEnabled, _irqPending) =
            (state.Now - nowNanoseconds(), state.LatchedHigh, state.AlarmHigh, state.Alarm, state.IrqEnabled, state.IrqPending);
        irq(_irqEnabled && _irqPending);
    }
}

/// <summary>The RTC's saved state. Version 1.</summary>
public sealed record GoldfishRtcState(long Now, uint LatchedHigh, uint AlarmHigh, long Alarm, bool IrqEnabled, bool IrqPending);
