// Byte-addressed I/O on the storage under one physical volume. A local file implements it
// here; the cluster issue fills the same interface with a remote extent server, so nothing
// above this line knows where a PV's bytes live.
using Microsoft.Win32.SafeHandles;

namespace Tern.Storage;

/// <summary>Raw I/O on the bytes of one physical volume, at byte offsets from its start.</summary>
public interface IPhysicalVolumeIo : IDisposable
{
    /// <summary>A name for messages: the file path, or host:path for a remote volume.</summary>
    string Name { get; }

    /// <summary>Size of the volume in bytes.</summary>
    long Length { get; }

    /// <summary>Fills <paramref name="buffer"/> from <paramref name="offset"/>; bytes past the end read as zeros.</summary>
    ValueTask ReadAsync(long offset, Memory<byte> buffer, CancellationToken cancellationToken = default);

    /// <summary>Writes all of <paramref name="data"/> at <paramref name="offset"/> (not durable until <see cref="FlushAsync"/>).</summary>
    ValueTask WriteAsync(long offset, ReadOnlyMemory<byte> data, CancellationToken cancellationToken = default);

    /// <summary>Makes every completed write durable (fsync).</summary>
    ValueTask FlushAsync(CancellationToken cancellationToken = default);
}

/// <summary>
/// A PV's I/O that can read on the calling thread (a local file, or a wrapper over one), so
/// that a large verified read can hand pieces to the verification helper while it copies.
/// </summary>
internal interface ISynchronousReads
{
    /// <summary>Whether <see cref="Read"/> may be used.</summary>
    bool CanReadSynchronously { get; }

    /// <summary>Fills <paramref name="span"/> from <paramref name="offset"/> on this thread; bytes past the end read as zeros.</summary>
    void Read(long offset, Span<byte> span);
}

/// <summary>A physical volume stored in a local file (or block device node).</summary>
public sealed class FilePhysicalVolumeIo : IPhysicalVolumeIo, ISynchronousReads
{
    private readonly SafeFileHandle _handle;

    private FilePhysicalVolumeIo(string path, SafeFileHandle handle, long length)
    {
        Name = path;
        _handle = handle;
        Length = length;
    }

    /// <inheritdoc/>
    public string Name { get; }

    /// <inheritdoc/>
    public long Length { get; }

    /// <summary>Opens an existing file for reading and writing.</summary>
    public static FilePhysicalVolumeIo Open(string path)
    {
        string full = Path.GetFullPath(path);
        var handle = File.OpenHandle(full, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite);
        return new FilePhysicalVolumeIo(full, handle, RandomAccess.GetLength(handle));
    }

    /// <summary>Opens <paramref name="path"/>, creating it as a sparse file of <paramref name="length"/> bytes when it does not exist.</summary>
    public static FilePhysicalVolumeIo OpenOrCreate(string path, long length)
    {
        string full = Path.GetFullPath(path);
        bool existed = File.Exists(full);
        var handle = File.OpenHandle(full, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.ReadWrite);
        if (!existed)
            RandomAccess.SetLength(handle, length);
        return new FilePhysicalVolumeIo(full, handle, RandomAccess.GetLength(handle));
    }

    /// <inheritdoc/>
    public ValueTask ReadAsync(long offset, Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        Read(offset, buffer.Span);
        return ValueTask.CompletedTask;
    }

    bool ISynchronousReads.CanReadSynchronously => true;

    /// <summary>Fills <paramref name="span"/> from <paramref name="offset"/>, on this thread; bytes past the end read as zeros.</summary>
    public void Read(long offset, Span<byte> span)
    {
        while (!span.IsEmpty)
        {
            int n = RandomAccess.Read(_handle, span, offset);
            if (n == 0)
            {
                span.Clear();
                break;
            }
            span = span[n..];
            offset += n;
        }
    }

    /// <inheritdoc/>
    public ValueTask WriteAsync(long offset, ReadOnlyMemory<byte> data, CancellationToken cancellationToken = default)
    {
        RandomAccess.Write(_handle, data.Span, offset);
        return ValueTask.CompletedTask;
    }

    /// <inheritdoc/>
    public ValueTask FlushAsync(CancellationToken cancellationToken = default)
    {
        RandomAccess.FlushToDisk(_handle);
        return ValueTask.CompletedTask;
    }

    /// <inheritdoc/>
    public void Dispose() => _handle.Dispose();
}
