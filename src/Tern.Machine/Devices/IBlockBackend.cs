// What a virtio-blk device needs from the storage behind it: a plain file, a logical volume of
// the extent pool, or a remote volume. Calls are synchronous and made on the machine's thread.
namespace Tern.Machine.Devices;

/// <summary>Storage behind a guest disk.</summary>
public interface IBlockBackend
{
    /// <summary>Capacity in bytes (a multiple of 512).</summary>
    long Length { get; }

    /// <summary>True when writes are refused.</summary>
    bool ReadOnly { get; }

    /// <summary>An identifier for VIRTIO_BLK_T_GET_ID (at most 20 bytes used).</summary>
    string Id { get; }

    /// <summary>Reads <paramref name="destination"/>.Length bytes at <paramref name="offset"/>. False on an I/O error.</summary>
    bool Read(long offset, Span<byte> destination);

    /// <summary>Writes <paramref name="data"/> at <paramref name="offset"/>. False on an I/O error.</summary>
    bool Write(long offset, ReadOnlySpan<byte> data);

    /// <summary>Makes completed writes durable. False on an I/O error.</summary>
    bool Flush();
}
