// One request popped from a split virtqueue: the buffers of a descriptor chain, already checked
// against guest RAM, split into the device-readable part followed by the device-writable part.
// Devices never assume a framing (VIRTIO_F_ANY_LAYOUT): they address the readable and writable
// parts as flat byte streams, and the copy helpers walk the segments.
using Tern.Riscv;

namespace Tern.Machine.Devices.Virtio;

/// <summary>A guest buffer segment of a descriptor chain (inside guest RAM).</summary>
public readonly record struct DescriptorSegment(ulong Address, uint Length);

/// <summary>The buffers of one available descriptor chain.</summary>
public sealed class DescriptorChain
{
    // Copies touch guest RAM in pieces of at most this size, so no span exceeds int range.
    internal const int MaxPiece = 1 << 20;

    private readonly GuestMemory _memory;
    private readonly List<DescriptorSegment> _readable = [];
    private readonly List<DescriptorSegment> _writable = [];

    internal DescriptorChain(GuestMemory memory) => _memory = memory;

    /// <summary>Index of the chain's head descriptor (the id reported in the used ring).</summary>
    public ushort Head { get; private set; }

    /// <summary>Device-readable segments, in chain order.</summary>
    public IReadOnlyList<DescriptorSegment> Readable => _readable;

    /// <summary>Device-writable segments, in chain order.</summary>
    public IReadOnlyList<DescriptorSegment> Writable => _writable;

    /// <summary>Total bytes the device may read.</summary>
    public long ReadableLength { get; private set; }

    /// <summary>Total bytes the device may write.</summary>
    public long WritableLength { get; private set; }

    internal void Clear(ushort head)
    {
        Head = head;
        _readable.Clear();
        _writable.Clear();
        ReadableLength = 0;
        WritableLength = 0;
    }

    internal void Add(ulong address, uint length, bool writable)
    {
        if (length == 0)
            return;
        if (writable)
        {
            _writable.Add(new DescriptorSegment(address, length));
            WritableLength += length;
        }
        else
        {
            _readable.Add(new DescriptorSegment(address, length));
            ReadableLength += length;
        }
    }

    /// <summary>Copies readable bytes starting at <paramref name="offset"/> into <paramref name="destination"/>; returns the count copied.</summary>
    public int CopyFrom(long offset, Span<byte> destination)
    {
        int done = 0;
        foreach (var seg in _readable)
        {
            if (done == destination.Length)
                break;
            if (offset >= seg.Length)
            {
                offset -= seg.Length;
                continue;
            }
            int n = (int)Math.Min(seg.Length - offset, destination.Length - done);
            _memory.Read(seg.Address + (ulong)offset, destination.Slice(done, n));
            done += n;
            offset = 0;
        }
        return done;
    }

    /// <summary>Copies <paramref name="source"/> into the writable bytes starting at <paramref name="offset"/> (a DMA write); returns the count copied.</summary>
    public int CopyTo(long offset, ReadOnlySpan<byte> source)
    {
        int done = 0;
        foreach (var seg in _writable)
        {
            if (done == source.Length)
                break;
            if (offset >= seg.Length)
            {
                offset -= seg.Length;
                continue;
            }
            int n = (int)Math.Min(seg.Length - offset, source.Length - done);
            _memory.Write(seg.Address + (ulong)offset, source.Slice(done, n));
            done += n;
            offset = 0;
        }
        return done;
    }

    /// <summary>
    /// Visits the guest RAM behind readable (or writable) bytes [<paramref name="offset"/>, +<paramref name="length"/>)
    /// in pieces of at most 1 MiB, passing each piece's guest address and its offset from <paramref name="offset"/>.
    /// Stops early and returns false when <paramref name="visit"/> does. Writers must call
    /// <see cref="GuestMemory.NoteWritten"/> for what they change (or use <see cref="CopyTo"/>).
    /// </summary>
    public bool ForEachPiece(bool writable, long offset, long length, Func<ulong, int, long, bool> visit)
    {
        long pos = 0;
        foreach (var seg in writable ? _writable : _readable)
        {
            if (pos == length)
                break;
            if (offset >= seg.Length)
            {
                offset -= seg.Length;
                continue;
            }
            long avail = Math.Min(seg.Length - offset, length - pos);
            for (long p = 0; p < avail; p += MaxPiece)
            {
                int n = (int)Math.Min(MaxPiece, avail - p);
                if (!visit(seg.Address + (ulong)(offset + p), n, pos + p))
                    return false;
            }
            pos += avail;
            offset = 0;
        }
        return true;
    }
}
