// virtio-rng (device ID 4, virtio 1.2 section 5.4): one request queue; each device-writable
// buffer is filled with bytes from the host's cryptographic random number generator. At most
// 64 KiB are written per request (the driver learns the count from the used length), so a
// hostile guest cannot make one notification cost more than that.
using System.Security.Cryptography;

namespace Tern.Machine.Devices.Virtio;

/// <summary>A virtio entropy device.</summary>
public sealed class VirtioRng : IVirtioDevice
{
    /// <summary>Most bytes written for one request.</summary>
    public const int MaxRequestBytes = 64 * 1024;

    private VirtioMmio? _transport;

    /// <inheritdoc/>
    public uint DeviceId => 4;

    /// <inheritdoc/>
    public ulong DeviceFeatures => 0;

    /// <inheritdoc/>
    public int QueueCount => 1;

    /// <inheritdoc/>
    public int QueueNumMax => 64;

    /// <inheritdoc/>
    public ReadOnlySpan<byte> Config => [];

    /// <summary>Random bytes handed to the guest so far.</summary>
    public long BytesProvided { get; private set; }

    /// <inheritdoc/>
    public void Attach(VirtioMmio transport) => _transport = transport;

    /// <inheritdoc/>
    public void Reset()
    {
    }

    /// <inheritdoc/>
    public void Poll()
    {
    }

    /// <inheritdoc/>
    public void QueueNotify(int queue)
    {
        var q = _transport!.Queue(queue);
        var memory = _transport.Memory;
        while (q.Pop() is { } chain)
        {
            long length = Math.Min(chain.WritableLength, MaxRequestBytes);
            chain.ForEachPiece(writable: true, 0, length, (addr, n, _) =>
            {
                RandomNumberGenerator.Fill(memory.Span(addr, n));
                memory.NoteWritten(addr, (ulong)n);
                return true;
            });
            BytesProvided += length;
            q.Push(chain.Head, (uint)length);
        }
    }

    /// <summary>Captures the device's own state (the transport saves the queue).</summary>
    public VirtioRngState Save() => new(BytesProvided);

    /// <summary>Loads a saved state.</summary>
    public void Restore(VirtioRngState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        if (state.BytesProvided < 0)
            throw new ArgumentException("Saved byte count is negative.", nameof(state));
        BytesProvided = state.BytesProvided;
    }
}

