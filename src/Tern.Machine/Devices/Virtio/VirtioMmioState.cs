// Saved state of a virtio-mmio slot and its virtqueues (the device type saves its own record).
namespace Tern.Machine.Devices.Virtio;

/// <summary>The transport's saved registers. Version 1 of the record.</summary>
public sealed record VirtioMmioState(
    int Version,
    uint DeviceId,
    uint Status,
    uint DeviceFeaturesSel,
    uint DriverFeaturesSel,
    ulong DriverFeatures,
    uint QueueSel,
    uint InterruptStatus,
    uint ConfigGeneration,
    uint GuestPageSize,
    VirtqueueState[] Queues);

/// <summary>
/// A split virtqueue's saved state: the driver's layout and the device's private indices.
/// <paramref name="SignalledUsed"/> is the used index at the last interrupt decision (for EVENT_IDX).
/// </summary>
public sealed record VirtqueueState(
    uint Num,
    bool Ready,
    ulong Desc,
    ulong Driver,
    ulong Device,
    uint Pfn,
    uint Align,
    ushort LastAvail,
    ushort UsedIndex,
    ushort SignalledUsed);
