// What a virtio-net device needs from the network behind it: somewhere to send the guest's
// Ethernet frames, and a queue of frames waiting for the guest. Send and TryReceive are called
// on the VM thread; frames may arrive from any thread (another VM's), so implementations are
// thread-safe and raise FrameAvailable so the board can wake a guest halted in WFI.
using System.Diagnostics.CodeAnalysis;

namespace Tern.Machine.Devices.Virtio;

/// <summary>The network behind a virtio-net device.</summary>
public interface INetBackend
{
    /// <summary>Sends an Ethernet frame (without the virtio-net header) from the guest. Called on the VM thread.</summary>
    void Send(ReadOnlySpan<byte> frame);

    /// <summary>Takes the next frame waiting for the guest, if any. Called on the VM thread.</summary>
    bool TryReceive([NotNullWhen(true)] out byte[]? frame);

    /// <summary>Raised, on any thread, when a frame is queued for the guest.</summary>
    event Action? FrameAvailable;
}
