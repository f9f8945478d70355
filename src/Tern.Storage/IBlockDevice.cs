// The block-device contract a guest's virtio-blk device is served through (Tern.Machine's
// block backend adapts to it): byte-addressed reads and writes, a flush that makes every
// completed write durable, and a length.
namespace Tern.Storage;

/// <summary>A random-access block device.</summary>
public interface IBlockDevice
{
    /// <summary>Size in bytes.</summary>
    long Length { get; }

    /// <summary>Reads <paramref name="buffer"/>.Length bytes at <paramref name="offset"/>.</summary>
    ValueTask ReadAsync(long offset, Memory<byte> buffer, CancellationToken cancellationToken = default);

    /// <summary>Writes <paramref name="data"/> at <paramref name="offset"/>.</summary>
    ValueTask WriteAsync(long offset, ReadOnlyMemory<byte> data, CancellationToken cancellationToken = default);

    /// <summary>Completes when every write completed before the call is durable on every copy.</summary>
    ValueTask FlushAsync(CancellationToken cancellationToken = default);
}
