// Saved state of virtio-rng: only a counter, the device keeps nothing else between requests.
namespace Tern.Machine.Devices.Virtio;

/// <summary>virtio-rng's saved state. Version 1 of the record.</summary>
public sealed record VirtioRngState(long BytesProvided);
