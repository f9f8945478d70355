// What a virtio device type (block, network, entropy) supplies to the MMIO transport. The
// transport owns the registers, feature negotiation, the virtqueues and the interrupt line;
// the device owns its configuration space and what a request means.
namespace Tern.Machine.Devices.Virtio;

/// <summary>A virtio device type behind a <see cref="VirtioMmio"/> transport.</summary>
public interface IVirtioDevice
{
    /// <summary>Virtio device ID (1 = net, 2 = block, 4 = entropy).</summary>
    uint DeviceId { get; }

    /// <summary>Device-type feature bits offered (the transport adds the ring and version bits).</summary>
    ulong DeviceFeatures { get; }

    /// <summary>Number of virtqueues.</summary>
    int QueueCount { get; }

    /// <summary>Largest size of each virtqueue (a power of two).</summary>
    int QueueNumMax { get; }

    /// <summary>The device configuration space (little-endian), read by the guest at offset 0x100.</summary>
    ReadOnlySpan<byte> Config { get; }

    /// <summary>Called once by the transport that carries this device.</summary>
    void Attach(VirtioMmio transport);

    /// <summary>The driver reset the device (Status written with 0).</summary>
    void Reset();

    /// <summary>
    /// The driver notified queue <paramref name="queue"/>, or the driver just became ready
    /// (then every queue is offered). May throw <see cref="VirtioProtocolException"/>.
    /// </summary>
    void QueueNotify(int queue);

    /// <summary>
    /// Work that does not come from a notification (frames arriving for a network device).
    /// Called by <see cref="VirtioMmio.Poll"/> only while the driver is ready. May throw <see cref="VirtioProtocolException"/>.
    /// </summary>
    void Poll();
}
