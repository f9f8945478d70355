// Saved state of virtio-net: the MAC address and counters. Frames queued in the backend are not
// device state; a frame lost across a snapshot is an ordinary network loss.
namespace Tern.Machine.Devices.Virtio;

/// <summary>virtio-net's saved state. Version 1 of the record.</summary>
public sealed record VirtioNetState(byte[] Mac, long FramesSent, long FramesReceived, long FramesDropped);
