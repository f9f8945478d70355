// virtio-blk (device ID 2, virtio 1.2 section 5.2): one request queue; reads, writes, flushes
// and GET_ID against an IBlockBackend. A request is a header (type, sector) the device reads,
// optional data, and a status byte the device writes last. Requests complete synchronously in
// the QueueNotify write that announces them, so between guest instructions nothing is in
// flight: a board draining the disk before a snapshot or switchover only has to stop the harts.
using System.Buffers.Binary;
using System.Text;

namespace Tern.Machine.Devices.Virtio;

/// <summary>A virtio block device.</summary>
public sealed class VirtioBlk : IVirtioDevice
{
    /// <summary>Request type: read sectors.</summary>
    public const uint TypeIn = 0;

    /// <summary>Request type: write sectors.</summary>
    public const uint TypeOut = 1;

    /// <summary>Request type: flush the write cache.</summary>
    public const uint TypeFlush = 4;

    /// <summary>Request type: read the device ID string.</summary>
    public const uint TypeGetId = 8;

    /// <summary>Status: success.</summary>
    public const byte StatusOk = 0;

    /// <summary>Status: the request failed.</summary>
    public const byte StatusIoError = 1;

    /// <summary>Status: the request type is not supported.</summary>
    public const byte StatusUnsupported = 2;

    /// <summary>Feature bit: size_max is valid.</summary>
    public const int FeatureSizeMax = 1;

    /// <summary>Feature bit: seg_max is valid.</summary>
    public const int FeatureSegMax = 2;

    /// <summary>Feature bit: the disk is read-only.</summary>
    public const int FeatureReadOnly = 5;

    /// <summary>Feature bit: blk_size is valid.</summary>
    public const int FeatureBlkSize = 6;

    /// <summary>Feature bit: the flush command exists.</summary>
    public const int FeatureFlush = 9;

    /// <summary>Sector size of the request protocol.</summary>
    public const int SectorSize = 512;

    /// <summary>Largest segment the driver should use, advertised in size_max (a hint; larger ones still work).</summary>
    public const uint SizeMax = 1 << 20;

    /// <summary>Length of the GET_ID string.</summary>
    public const int IdLength = 20;

    private const int HeaderSize = 16;

    private readonly IBlockBackend _backend;
    private readonly int _queueNumMax;
    private readonly byte[] _config = new byte[24];
    private VirtioMmio? _transport;

    /// <summary>Creates a disk on <paramref name="backend"/> with a request queue of up to <paramref name="queueNumMax"/> entries.</summary>
    public VirtioBlk(IBlockBackend backend, int queueNumMax = 256)
    {
        ArgumentNullException.ThrowIfNull(backend);
        if (backend.Length < 0 || backend.Length % SectorSize != 0)
            throw new ArgumentException($"Block backend length {backend.Length} is not a multiple of {SectorSize}.", nameof(backend));
        if (queueNumMax < 4)
            throw new ArgumentOutOfRangeException(nameof(queueNumMax), queueNumMax, "A block queue needs at least 4 entries.");
        _backend = backend;
        _queueNumMax = queueNumMax;
        CapacitySectors = (ulong)backend.Length / SectorSize;
        BinaryPrimitives.WriteUInt64LittleEndian(_config, CapacitySectors);
        BinaryPrimitives.WriteUInt32LittleEndian(_config.AsSpan(8), SizeMax);
        BinaryPrimitives.WriteUInt32LittleEndian(_config.AsSpan(12), (uint)(queueNumMax - 2));
        BinaryPrimitives.WriteUInt32LittleEndian(_config.AsSpan(20), SectorSize);
    }

    /// <inheritdoc/>
    public uint DeviceId => 2;

    /// <inheritdoc/>
    public ulong DeviceFeatures =>
        (1UL << FeatureSizeMax) | (1UL << FeatureSegMax) | (1UL << FeatureBlkSize) | (1UL << FeatureFlush) |
        (_backend.ReadOnly ? 1UL << FeatureReadOnly : 0);

    /// <inheritdoc/>
    public int QueueCount => 1;

    /// <inheritdoc/>
    public int QueueNumMax => _queueNumMax;

    /// <inheritdoc/>
    public ReadOnlySpan<byte> Config => _config;

    /// <summary>Capacity in 512-byte sectors.</summary>
    public ulong CapacitySectors { get; }

    /// <summary>
    /// Requests being processed. Always 0 between guest instructions (requests complete inside
    /// the notification); the board may assert it before saving or switching over.
    /// </summary>
    public int InFlight { get; private set; }

    /// <summary>Completed read requests.</summary>
    public long Reads { get; private set; }

    /// <summary>Completed write requests.</summary>
    public long Writes { get; private set; }

    /// <summary>Completed flush requests.</summary>
    public long Flushes { get; private set; }

    /// <summary>Requests answered with VIRTIO_BLK_S_IOERR or VIRTIO_BLK_S_UNSUPP.</summary>
    public long Failures { get; private set; }

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
        while (q.Pop() is { } chain)
        {
            InFlight++;
            try
            {
                uint written = Handle(chain);
                q.Push(chain.Head, written);
            }
            finally
            {
                InFlight--;
            }
        }
    }

    // Carries out one request and writes its status; returns the bytes written to the guest.
    private uint Handle(DescriptorChain chain)
    {
        if (chain.ReadableLength < HeaderSize)
            throw new VirtioProtocolException($"virtio-blk: request header of {chain.ReadableLength} bytes");
        if (chain.WritableLength < 1)
            throw new VirtioProtocolException("virtio-blk: request without a status byte");
        Span<byte> header = stackalloc byte[HeaderSize];
        chain.CopyFrom(0, header);
        uint type = BinaryPrimitives.ReadUInt32LittleEndian(header);
        ulong sector = BinaryPrimitives.ReadUInt64LittleEndian(header[8..]);
        long statusAt = chain.WritableLength - 1;
        long written = 0;
        byte status;
        switch (type)
        {
            case TypeIn:
                status = Transfer(chain, sector, chain.WritableLength - 1, read: true);
                written = status == StatusOk ? chain.WritableLength - 1 : 0;
                if (status == StatusOk)
                    Reads++;
                break;
            case TypeOut:
                status = _backend.ReadOnly ? StatusIoError : Transfer(chain, sector, chain.ReadableLength - HeaderSize, read: false);
                if (status == StatusOk)
                    Writes++;
                break;
            case TypeFlush:
                status = _backend.Flush() ? StatusOk : StatusIoError;
                if (status == StatusOk)
                    Flushes++;
                break;
            case TypeGetId:
                Span<byte> id = stackalloc byte[IdLength];
                Encoding.ASCII.GetBytes(_backend.Id.AsSpan(0, Math.Min(_backend.Id.Length, IdLength)), id);
                written = chain.CopyTo(0, id[..(int)Math.Min(IdLength, chain.WritableLength - 1)]);
                status = StatusOk;
                break;
            default:
                status = StatusUnsupported;
                break;
        }
        if (status != StatusOk)
            Failures++;
        chain.CopyTo(statusAt, [status]);
        return (uint)Math.Min(written + 1, uint.MaxValue);
    }

    // Moves [sector, +length) between the disk and the request's data buffers, straight from and
    // into guest RAM. The data starts after the header for writes and at 0 for reads.
    private byte Transfer(DescriptorChain chain, ulong sector, long length, bool read)
    {
        if (length % SectorSize != 0 || sector > CapacitySectors || (ulong)length / SectorSize > CapacitySectors - sector)
            return StatusIoError;
        long disk = (long)(sector * SectorSize);
        var memory = _transport!.Memory;
        bool ok = read
            ? chain.ForEachPiece(writable: true, 0, length, (addr, n, pos) =>
            {
                bool done = _backend.Read(disk + pos, memory.Span(addr, n));
                memory.NoteWritten(addr, (ulong)n);
                return done;
            })
            : chain.ForEachPiece(writable: false, HeaderSize, length, (addr, n, pos) =>
                _backend.Write(disk + pos, memory.Span(addr, n)));
        return ok ? StatusOk : StatusIoError;
    }

    /// <summary>Captures the device's own state (the transport saves the queues).</summary>
    public VirtioBlkState Save() => new(CapacitySectors, _backend.ReadOnly, Reads, Writes, Flushes, Failures);

    /// <summary>Loads a saved state; refuses one taken with a disk of another size or writability.</summary>
    public void Restore(VirtioBlkState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        if (state.CapacitySectors != CapacitySectors)
            throw new ArgumentException($"Saved disk has {state.CapacitySectors} sectors; this backend has {CapacitySectors}.", nameof(state));
        if (state.ReadOnly != _backend.ReadOnly)
            throw new ArgumentException("Saved disk writability differs from this backend's.", nameof(state));
        Reads = state.Reads;
        Writes = state.Writes;
        Flushes = state.Flushes;
        Failures = state.Failures;
    }
}
