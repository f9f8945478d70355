// A guest disk stored in a plain host file (a raw image). Capacity is the file's length rounded
// down to whole sectors, as QEMU does for raw images; Flush is an fsync of the file.
using Microsoft.Win32.SafeHandles;

namespace Tern.Machine.Devices.Virtio;

/// <summary>An <see cref="IBlockBackend"/> over a raw image file.</summary>
public sealed class FileBlockBackend : IBlockBackend, IDisposable
{
    private readonly SafeFileHandle _handle;

    /// <summary>Opens <paramref name="path"/> (read-write unless <paramref name="readOnly"/>); <paramref name="id"/> defaults to the file name.</summary>
    public FileBlockBackend(string path, bool readOnly = false, string? id = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        _handle = File.OpenHandle(path, FileMode.Open, readOnly ? FileAccess.Read : FileAccess.ReadWrite,
            readOnly ? FileShare.Read : FileShare.None);
        ReadOnly = readOnly;
        Length = RandomAccess.GetLength(_handle) & ~511L;
        Id = id ?? Path.GetFileName(path);
    }

    /// <inheritdoc/>
    public long Length { get; }

    /// <inheritdoc/>
    public bool ReadOnly { get; }

    /// <inheritdoc/>
    public string Id { get; }

    /// <inheritdoc/>
    public bool Read(long offset, Span<byte> destination)
    {
        if (offset < 0 || offset > Length - destination.Length)
            return false;
        try
        {
            while (!destination.IsEmpty)
            {
                int n = RandomAccess.Read(_handle, destination, offset);
                if (n <= 0)
                    return false; // the file shrank under us
                destination = destination[n..];
                offset += n;
            }
            return true;
        }
        catch (IOException)
        {
            return false;
        }
    }

    /// <inheritdoc/>
    public bool Write(long offset, ReadOnlySpan<byte> data)
    {
        if (ReadOnly || offset < 0 || offset > Length - data.Length)
            return false;
        try
        {
            RandomAccess.Write(_handle, data, offset);
            return true;
        }
        catch (IOException)
        {
            return false;
        }
    }

    /// <inheritdoc/>
    public bool Flush()
    {
        if (ReadOnly)
            return true;
        try
        {
            RandomAccess.FlushToDisk(_handle);
            return true;
        }
        catch (IOException)
        {
            return false;
        }
    }

    /// <summary>Closes the file.</summary>
    public void Dispose() => _handle.Dispose();
}
