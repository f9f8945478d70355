// Saved state of a virtio-blk device: the disk geometry it promised the guest, and its counters.
// No request is ever in flight at a save point (requests complete synchronously).
namespace Tern.Machine.Devices.Virtio;

/// <summary>virtio-blk's saved state. Version 1 of the record.</summary>
public sealed record VirtioBlkState(ulong CapacitySectors, bool ReadOnly, long Reads, long Writes, long Flushes, long Failures);
