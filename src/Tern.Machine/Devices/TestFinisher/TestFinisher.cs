// The SiFive test device QEMU's 'virt' board uses to end a run: 0x5555 powers off with
// success, 0x3333 | (code << 16) with a failure code, 0x7777 asks for a reset.
namespace Tern.Machine.Devices.TestFinisher;

/// <summary>The SiFive test finisher.</summary>
public sealed class TestFinisher(Action<int> powerOff, Action reset) : IMmioDevice
{
    /// <inheritdoc/>
    public bool Read(ulong offset, int size, out ulong value)
    {
        value = 0;
        return true;
    }

    /// <inheritdoc/>
    public bool Write(ulong offset, int size, ulong value)
    {
        if (offset != 0)
            return true;
        switch (value & 0xFFFF)
        {
            case 0x5555: powerOff(0); break;
            case 0x3333: powerOff((int)((value >> 16) & 0xFFFF)); break;
            case 0x7777: reset(); break;
        }
        return true;
    }
}
