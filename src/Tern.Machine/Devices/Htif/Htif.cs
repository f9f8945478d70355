// The Host-Target Interface of Spike and the RISC-V ISA test suites: the program writes a
// command to the 64-bit `tohost` word in RAM. Device 0 / command 0 with an odd payload is an
// exit (payload >> 1 is the code, 0 = pass); an even payload points to a proxied system call
// (only write(2) to the console is served); device 1 / command 1 prints one character.
using System.Buffers.Binary;
using Tern.Riscv;

namespace Tern.Machine.Devices.Htif;

/// <summary>HTIF over the tohost/fromhost words.</summary>
public sealed class Htif
{
    private const ulong SysWrite = 64;
    private readonly GuestMemory _memory;
    private readonly ulong _tohost;
    private readonly ulong? _fromhost;
    private readonly Stream _console;
    private readonly Action<int> _exit;

    /// <summary>Watches <paramref name="tohost"/> in <paramref name="memory"/>.</summary>
    public Htif(GuestMemory memory, ulong tohost, ulong? fromhost, Stream console, Action<int> exit)
    {
        if (!memory.Contains(tohost, 8))
            throw new ArgumentOutOfRangeException(nameof(tohost), $"tohost at 0x{tohost:x} is outside guest RAM");
        _memory = memory;
        _tohost = tohost;
        _fromhost = fromhost is { } f && memory.Contains(f, 8) ? f : null;
        _console = console;
        _exit = exit;
        memory.Watch(tohost);
    }

    /// <summary>Handles a CPU store into the watched page.</summary>
    public void OnWrite(ulong address, int size)
    {
        if (address + (ulong)size <= _tohost || address >= _tohost + 8)
            return;
        ulong value = Read64(_tohost);
        if (value == 0)
            return;
        ulong device = value >> 56, command = (value >> 48) & 0xFF, payload = value & 0xFFFF_FFFF_FFFF;
        Write64(_tohost, 0);
        if (device == 0 && command == 0)
        {
            if ((payload & 1) != 0)
            {
                _exit((int)Math.Min(payload >> 1, int.MaxValue));
                return;
            }
            Respond(SystemCall(payload));
        }
        else if (device == 1 && command == 1)
        {
            _console.WriteByte((byte)payload);
            Respond((1UL << 56) | (1UL << 48));
        }
    }

    private ulong SystemCall(ulong magic)
    {
        if (!_memory.Contains(magic, 64))
            return 1;
        ulong number = Read64(magic);
        ulong result = unchecked((ulong)-38); // -ENOSYS
        if (number == SysWrite)
        {
            ulong fd = Read64(magic + 8), buf = Read64(magic + 16), len = Read64(magic + 24);
            if (fd is 1 or 2 && len <= int.MaxValue && _memory.Contains(buf, len))
            {
                _console.Write(_memory.Span(buf, (int)len));
                result = len;
            }
            else
            {
                result = unchecked((ulong)-14); // -EFAULT
            }
        }
        Write64(magic, result);
        return 1;
    }

    private void Respond(ulong value)
    {
        if (_fromhost is { } f)
            Write64(f, value);
    }

    private ulong Read64(ulong address) => BinaryPrimitives.ReadUInt64LittleEndian(_memory.Span(address, 8));

    private void Write64(ulong address, ulong value)
    {
        BinaryPrimitives.WriteUInt64LittleEndian(_memory.Span(address, 8), value);
        _memory.NoteWritten(address, 8);
    }
}
