// virtio-net (device ID 1, virtio 1.2 section 5.1): a receive queue (0) and a transmit queue (1)
// in front of an INetBackend. The device offers only a MAC address and a link status: no
// checksum or segmentation offloads and no mergeable receive buffers, so every frame travels
// whole, behind a zeroed virtio_net_hdr (12 bytes on the modern interface, 10 on legacy).
// Transmits complete inside the notification; received frames are delivered by Poll (the
// board's run loop) and whenever the driver adds receive buffers. A frame that does not fit the
// next receive buffer is dropped; frames arriving while the driver is not ready or has no
// buffers wait in the backend, which bounds how many it keeps.
using System.Buffers.Binary;

namespace Tern.Machine.Devices.Virtio;

/// <summary>A virtio network card.</summary>
public sealed class VirtioNet : IVirtioDevice
{
    /// <summary>Feature bit: the MAC address in configuration space is valid.</summary>
    public const int FeatureMac = 5;

    /// <summary>Feature bit: the link status in configuration space is valid.</summary>
    public const int FeatureStatus = 16;

    /// <summary>Feature bit: mergeable receive buffers (not offered; named for the header-size rule).</summary>
    public const int FeatureMergeableRxBuffers = 15;

    /// <summary>Largest frame carried (without the virtio-net header).</summary>
    public const int MaxFrame = 65536;

    /// <summary>Index of the receive queue.</summary>
    public const int ReceiveQueue = 0;

    /// <summary>Index of the transmit queue.</summary>
    public const int TransmitQueue = 1;

    private const ushort LinkUp = 1;

    private readonly INetBackend _backend;
    private readonly int _queueNumMax;
    private readonly byte[] _config = new byte[8];
    private VirtioMmio? _transport;

    /// <summary>Creates a NIC with address <paramref name="mac"/> (6 bytes) on <paramref name="backend"/>.</summary>
    /// <summary>The network this NIC is attached to.</summary>
    public INetBackend Backend => _backend;

    /// <summary>Creates a NIC on <paramref name="backend"/> with the given MAC address.</summary>
    public VirtioNet(INetBackend backend, ReadOnlySpan<byte> mac, int queueNumMax = 256)
    {
        ArgumentNullException.ThrowIfNull(backend);
        if (mac.Length != 6)
            throw new ArgumentException("A MAC address has 6 bytes.", nameof(mac));
        _backend = backend;
        _queueNumMax = queueNumMax;
        mac.CopyTo(_config);
        BinaryPrimitives.WriteUInt16LittleEndian(_config.AsSpan(6), LinkUp);
    }

    /// <summary>QEMU's default address scheme, 52:54:00:12:34:56 + <paramref name="index"/>.</summary>
    public static byte[] DefaultMac(int index) => [0x52, 0x54, 0x00, 0x12, 0x34, (byte)(0x56 + index)];

    /// <inheritdoc/>
    public uint DeviceId => 1;

    /// <inheritdoc/>
    public ulong DeviceFeatures => (1UL << FeatureMac) | (1UL << FeatureStatus);

    /// <inheritdoc/>
    public int QueueCount => 2;

    /// <inheritdoc/>
    public int QueueNumMax => _queueNumMax;

    /// <inheritdoc/>
    public ReadOnlySpan<byte> Config => _config;

    /// <summary>The card's MAC address.</summary>
    public ReadOnlySpan<byte> Mac => _config.AsSpan(0, 6);

    /// <summary>Frames the guest sent.</summary>
    public long FramesSent { get; private set; }

    /// <summary>Frames delivered to the guest.</summary>
    public long FramesReceived { get; private set; }

    /// <summary>Frames dropped (too large for the guest's buffer, or malformed transmits).</summary>
    public long FramesDropped { get; private set; }

    // virtio_net_hdr grows num_buffers on the modern interface (and with mergeable buffers).
    private int HeaderLength =>
        _transport!.HasFeature(VirtioMmio.FeatureVersion1) || _transport.HasFeature(FeatureMergeableRxBuffers) ? 12 : 10;

    /// <inheritdoc/>
    public void Attach(VirtioMmio transport) => _transport = transport;

    /// <inheritdoc/>
    public void Reset()
    {
    }

    /// <inheritdoc/>
    public void QueueNotify(int queue)
    {
        if (queue == TransmitQueue)
            Transmit();
        else
            DeliverPending();
    }

    /// <inheritdoc/>
    public void Poll() => DeliverPending();

    private void Transmit()
    {
        var q = _transport!.Queue(TransmitQueue);
        int header = HeaderLength;
        while (q.Pop() is { } chain)
        {
            if (chain.ReadableLength < header)
                throw new VirtioProtocolException($"virtio-net: transmit of {chain.ReadableLength} bytes has no header");
            long length = chain.ReadableLength - header;
            if (length > MaxFrame)
            {
                FramesDropped++;
            }
            else
            {
                var frame = new byte[length];
                chain.CopyFrom(header, frame);
                _backend.Send(frame);
                FramesSent++;
            }
            q.Push(chain.Head, 0);
        }
    }

    // Moves waiting frames into the guest's receive buffers while both exist.
    private void DeliverPending()
    {
        var q = _transport!.Queue(ReceiveQueue);
        if (!q.Ready)
            return;
        int header = HeaderLength;
        Span<byte> hdr = stackalloc byte[12];
        hdr.Clear();
        if (header == 12)
            BinaryPrimitives.WriteUInt16LittleEndian(hdr[10..], 1); // num_buffers
        while (q.HasAvailable && _backend.TryReceive(out var frame))
        {
            var chain = q.Pop()!;
            if (header + (long)frame.Length > chain.WritableLength)
            {
                q.Unpop();
                FramesDropped++;
                continue;
            }
            chain.CopyTo(0, hdr[..header]);
            chain.CopyTo(header, frame);
            q.Push(chain.Head, (uint)(header + frame.Length));
            FramesReceived++;
        }
    }

    /// <summary>Captures the device's own state (the transport saves the queues).</summary>
    public VirtioNetState Save() => new(Mac.ToArray(), FramesSent, FramesReceived, FramesDropped);

    /// <summary>Loads a saved state, including the MAC address the guest knows the card by.</summary>
    public void Restore(VirtioNetState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        if (state.Mac is not { Length: 6 })
            throw new ArgumentException("Saved MAC address must have 6 bytes.", nameof(state));
        state.Mac.CopyTo(_config, 0);
        FramesSent = state.FramesSent;
        FramesReceived = state.FramesReceived;
        FramesDropped = state.FramesDropped;
    }
}
