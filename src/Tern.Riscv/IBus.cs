// The CPU's narrow view of everything that is not RAM: device registers reached by physical
// address. RAM itself is reached through GuestMemory's fast path, never through this.
namespace Tern.Riscv;

/// <summary>Memory-mapped I/O as the CPU sees it: a physical address, a size of 1, 2, 4 or 8 bytes.</summary>
public interface IBus
{
    /// <summary>Reads a device register. Returns false when nothing answers at that address (an access fault).</summary>
    bool TryRead(ulong address, int size, out ulong value);

    /// <summary>Writes a device register. Returns false when nothing answers at that address (an access fault).</summary>
    bool TryWrite(ulong address, int size, ulong value);
}

/// <summary>A bus with no devices: every MMIO access faults.</summary>
public sealed class EmptyBus : IBus
{
    /// <summary>The shared instance.</summary>
    public static readonly EmptyBus Instance = new();

    /// <inheritdoc/>
    public bool TryRead(ulong address, int size, out ulong value)
    {
        value = 0;
        return false;
    }

    /// <inheritdoc/>
    public bool TryWrite(ulong address, int size, ulong value) => false;
}
