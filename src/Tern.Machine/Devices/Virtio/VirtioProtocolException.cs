// Raised inside the virtio devices when the guest breaks the protocol (a bad descriptor, a ring
// outside RAM, a loop). The transport catches it at its boundary and turns it into the
// DEVICE_NEEDS_RESET state; it never escapes to the machine.
namespace Tern.Machine.Devices.Virtio;

/// <summary>The guest driver violated the virtio protocol; the device needs a reset.</summary>
public sealed class VirtioProtocolException : Exception
{
    /// <summary>Creates the exception with no message.</summary>
    public VirtioProtocolException()
    {
    }

    /// <summary>Creates the exception with a message naming the violation.</summary>
    public VirtioProtocolException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and an inner exception.</summary>
    public VirtioProtocolException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
