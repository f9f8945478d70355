// A minimal NS16550A: transmit straight to the console, line status always ready to send.
// (The machine issue completes receive FIFOs and interrupts.)
namespace Tern.Machine.Devices.Uart16550;

/// <summary>NS16550A UART.</summary>
public sealed class Uart16550(Stream output) : IMmioDevice
{
    private const byte LsrThrEmpty = 0x20, LsrTxIdle = 0x40;
    private readonly byte[] _regs = new byte[8];

    /// <inheritdoc/>
    public bool Read(ulong offset, int size, out ulong value)
    {
        value = 0;
        if (offset >= 8)
            return true;
        value = offset switch
        {
            0 => Dlab ? _regs[0] : 0u,
            2 => 0x01u, // IIR: no interrupt pending
            5 => LsrThrEmpty | LsrTxIdle,
            _ => _regs[offset],
        };
        return true;
    }

    private bool Dlab => (_regs[3] & 0x80) != 0;

    /// <inheritdoc/>
    public bool Write(ulong offset, int size, ulong value)
    {
        if (offset >= 8)
            return true;
        if (offset == 0 && !Dlab)
        {
            output.WriteByte((byte)value);
            return true;
        }
        if (offset is not 5)
            _regs[offset] = (byte)value;
        return true;
    }
}
