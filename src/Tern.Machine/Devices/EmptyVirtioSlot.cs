// A virtio-mmio slot with nothing plugged in: it identifies itself as virtio (magic and
// version) with device id 0, which drivers read as "no device here", as on QEMU.
namespace Tern.Machine.Devices;

/// <summary>An empty virtio-mmio slot.</summary>
public sealed class EmptyVirtioSlot : IMmioDevice
{
    /// <inheritdoc/>
    public bool Read(ulong offset, int size, out ulong value)
    {
        value = offset switch
        {
            0x000 => 0x74726976, // "virt"
            0x004 => 2,          // version
            0x00C => 0x554D4551, // vendor "QEMU"
            _ => 0,
        };
        return true;
    }

    /// <inheritdoc/>
    public bool Write(ulong offset, int size, ulong value) => true;
}
