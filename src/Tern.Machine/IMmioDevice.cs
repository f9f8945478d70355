// The contract every memory-mapped device implements, and the bus that routes physical
// addresses to them.
using Tern.Riscv;

namespace Tern.Machine;

/// <summary>A device register window. Offsets are relative to the window's base.</summary>
public interface IMmioDevice
{
    /// <summary>Reads a register; false when the offset/size is not a register (an access fault).</summary>
    bool Read(ulong offset, int size, out ulong value);

    /// <summary>Writes a register; false when the offset/size is not a register (an access fault).</summary>
    bool Write(ulong offset, int size, ulong value);
}

/// <summary>Routes CPU MMIO accesses to devices by address range.</summary>
public sealed class MmioBus : IBus
{
    private readonly List<(ulong Base, ulong Size, IMmioDevice Device, string Name)> _ranges = [];

    /// <summary>Called with the device name on every access (statistics).</summary>
    public Action<string>? Observer { get; set; }

    /// <summary>Maps <paramref name="device"/> at [<paramref name="baseAddress"/>, +<paramref name="size"/>).</summary>
    public void Map(ulong baseAddress, ulong size, IMmioDevice device, string name = "device")
    {
        foreach (var r in _ranges)
        {
            if (baseAddress < r.Base + r.Size && r.Base < baseAddress + size)
                throw new ArgumentException($"MMIO range 0x{baseAddress:x}+0x{size:x} overlaps 0x{r.Base:x}+0x{r.Size:x}.");
        }
        _ranges.Add((baseAddress, size, device, name));
    }

    /// <inheritdoc/>
    public bool TryRead(ulong address, int size, out ulong value)
    {
        foreach (var (b, s, dev, name) in _ranges)
        {
            if (address - b < s)
            {
                Observer?.Invoke(name);
                return dev.Read(address - b, size, out value);
            }
        }
        value = 0;
        return false;
    }

    /// <inheritdoc/>
    public bool TryWrite(ulong address, int size, ulong value)
    {
        foreach (var (b, s, dev, name) in _ranges)
        {
            if (address - b < s)
            {
                Observer?.Invoke(name);
                return dev.Write(address - b, size, value);
            }
        }
        return false;
    }
}
