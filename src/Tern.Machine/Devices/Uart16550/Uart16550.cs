// The NS16550A UART of the 'virt' board: 16-byte receive FIFO, transmit straight to the
// console (so the transmitter is always empty again at once), divisor latch, scratch
// register, modem-control loopback, and the interrupt identification rules of the data
// sheet (line status > received data > transmitter empty > modem status). Input bytes may
// be queued from any thread; they enter the FIFO on the machine's thread in Poll().
using System.Collections.Concurrent;

namespace Tern.Machine.Devices.Uart16550;

/// <summary>NS16550A UART.</summary>
public sealed class Uart16550 : IMmioDevice
{
    private const int FifoSize = 16;
    private const byte IerRx = 1, IerThre = 2, IerLine = 4, IerModem = 8;
    private const byte LsrDataReady = 0x01, LsrOverrun = 0x02, LsrThrEmpty = 0x20, LsrTxIdle = 0x40;
    private const byte IirNone = 0x01, IirLine = 0x06, IirRx = 0x04, IirThre = 0x02, IirModem = 0x00;
    private const byte McrLoop = 0x10;

    private readonly Stream _output;
    private readonly Action<bool> _irq;
    private readonly ConcurrentQueue<byte> _input = new();
    private readonly Queue<byte> _rx = new();
    private byte _ier, _lcr, _mcr, _scr, _dll = 12, _dlm, _fcr, _msr;
    private bool _thrPending, _overrun;

    /// <summary>Creates a UART writing to <paramref name="output"/> and driving <paramref name="irq"/>.</summary>
    public Uart16550(Stream output, Action<bool> irq)
    {
        _output = output;
        _irq = irq;
    }

    /// <summary>Set when input is waiting; the run loop uses it to wake an idle guest.</summary>
    public bool HasInput => !_input.IsEmpty || _rx.Count > 0;

    /// <summary>Queues bytes typed by the user. Safe from any thread.</summary>
    public void Enqueue(ReadOnlySpan<byte> bytes)
    {
        foreach (byte b in bytes)
            _input.Enqueue(b);
    }

    /// <summary>Moves queued input into the receive FIFO. Call on the machine's thread.</summary>
    public void Poll()
    {
        bool changed = false;
        while (_rx.Count < FifoSize && _input.TryDequeue(out byte b))
        {
            _rx.Enqueue(b);
            changed = true;
        }
        if (changed)
            UpdateIrq();
    }

    private bool Dlab => (_lcr & 0x80) != 0;
    private bool FifoEnabled => (_fcr & 1) != 0;

    /// <inheritdoc/>
    public bool Read(ulong offset, int size, out ulong value)
    {
        value = 0;
        if (offset >= 8)
            return true;
        switch (offset)
        {
            case 0:
                if (Dlab)
                {
                    value = _dll;
                }
                else if (_rx.Count > 0)
                {
                    value = _rx.Dequeue();
                    Poll();
                    UpdateIrq();
                }
                break;
            case 1: value = Dlab ? _dlm : _ier; break;
            case 2:
                {
                    byte id = Identify();
                    if (id == IirThre)
                    {
                        _thrPending = false; // reading IIR acknowledges a transmitter-empty interrupt
                        UpdateIrq();
                    }
                    value = (ulong)(id | (FifoEnabled ? 0xC0 : 0));
                    break;
                }
            case 3: value = _lcr; break;
            case 4: value = _mcr; break;
            case 5:
                value = (ulong)(LsrThrEmpty | LsrTxIdle | (_rx.Count > 0 ? LsrDataReady : 0) | (_overrun ? LsrOverrun : 0));
                if (_overrun)
                {
                    _overrun = false; // reading LSR clears the error bits
                    UpdateIrq();
                }
                break;
            case 6: value = ModemStatus(); break;
            default: value = _scr; break;
        }
        return true;
    }

    /// <inheritdoc/>
    public bool Write(ulong offset, int size, ulong value)
    {
        if (offset >= 8)
            return true;
        byte v = (byte)value;
        switch (offset)
        {
            case 0:
                if (Dlab)
                {
                    _dll = v;
                }
                else if ((_mcr & McrLoop) != 0)
                {
                    Receive(v); // loopback: what is sent comes straight back
                    _thrPending = true;
                }
                else
                {
                    _output.WriteByte(v);
                    _thrPending = true;
                }
                break;
            case 1:
                if (Dlab)
                {
                    _dlm = v;
                }
                else
                {
                    if ((v & IerThre) != 0 && (_ier & IerThre) == 0)
                        _thrPending = true; // enabling THRE with an empty transmitter interrupts at once
                    _ier = (byte)(v & 0x0F);
                }
                break;
            case 2:
                _fcr = (byte)(v & 0xC9);
                if ((v & 2) != 0)
                    _rx.Clear();
                break;
            case 3: _lcr = v; break;
            case 4: _mcr = (byte)(v & 0x1F); break;
            case 5: break; // LSR is read-only
            case 6: break; // MSR is read-only
            default: _scr = v; break;
        }
        UpdateIrq();
        return true;
    }

    private void Receive(byte b)
    {
        if (_rx.Count < FifoSize)
            _rx.Enqueue(b);
        else
            _overrun = true;
    }

    private byte ModemStatus()
    {
        if ((_mcr & McrLoop) == 0)
            return (byte)(_msr | 0xB0); // DCD, DSR, CTS asserted: a cable is always plugged in
        // Loopback: DTR->DSR, RTS->CTS, OUT1->RI, OUT2->DCD.
        return (byte)((((_mcr & 1) != 0) ? 0x20 : 0) | (((_mcr & 2) != 0) ? 0x10 : 0) | (((_mcr & 4) != 0) ? 0x40 : 0) | (((_mcr & 8) != 0) ? 0x80 : 0));
    }

    private byte Identify()
    {
        if ((_ier & IerLine) != 0 && _overrun)
            return IirLine;
        if ((_ier & IerRx) != 0 && _rx.Count > 0)
            return IirRx;
        if ((_ier & IerThre) != 0 && _thrPending)
            return IirThre;
        if ((_ier & IerModem) != 0 && (_msr & 0x0F) != 0)
            return IirModem;
        return IirNone;
    }

    private void UpdateIrq() => _irq(Identify() != IirNone);

    /// <summary>Captures the UART's registers and receive FIFO (input not yet polled is included).</summary>
    public Uart16550State Save() => new(_ier, _lcr, _mcr, _scr, _dll, _dlm, _fcr, _msr, _thrPending, _overrun, [.. _rx, .. _input]);

    /// <summary>Restores a state captured by <see cref="Save"/>.</summary>
    public void Restore(Uart16550State state)
    {
        ArgumentNullException.ThrowIfNull(state);
        (_ier, _lcr, _mcr, _scr, _dll, _dlm, _fcr, _msr) = ((byte)(state.Ier & 0x0F), state.Lcr, (byte)(state.Mcr & 0x1F), state.Scr, state.Dll, state.Dlm, (byte)(state.Fcr & 0xC9), state.Msr);
        (_thrPending, _overrun) = (state.ThrPending, state.Overrun);
        _rx.Clear();
        _input.Clear();
        foreach (byte b in state.Received)
        {
            if (_rx.Count < FifoSize)
                _rx.Enqueue(b);
            else
                _input.Enqueue(b);
        }
        UpdateIrq();
    }
}

/// <summary>The UART's saved state. Version 1.</summary>
public sealed record Uart16550State(byte Ier, byte Lcr, byte Mcr, byte Scr, byte Dll, byte Dlm, byte Fcr, byte Msr, bool ThrPending, bool Overrun, byte[] Received);
