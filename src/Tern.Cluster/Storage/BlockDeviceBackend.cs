// The one adapter from the extent pool's asynchronous IBlockDevice (an LV) to the machine's
// synchronous IBlockBackend (what a virtio-blk device calls on the machine's thread). Used by a
// cluster guest's disk (GuestDisk) and by `tern run --disk lv:VG/LV` (VolumeDisk). A request
// outside the device, an I/O error or a refusal of the pool (StorageException: a fenced write, a
// full thin pool) becomes a failed request, i.e. an I/O error for the guest, never an exception
// on the machine's thread; the last reason is kept for reports.
using System.Buffers;
using Tern.Machine.Devices;
using Tern.Storage;

namespace Tern.Cluster.Storage;

/// <summary>An <see cref="IBlockDevice"/> serving a virtio-blk device.</summary>
public abstract class BlockDeviceBackend : IBlockBackend
{
    private readonly IBlockDevice _device;

    /// <summary>Serves <paramref name="device"/> under the name <paramref name="id"/>.</summary>
    protected BlockDeviceBackend(IBlockDevice device, string id)
    {
        ArgumentNullException.ThrowIfNull(device);
        _device = device;
        Id = id;
    }

    /// <summary>
    /// Whether a write that mapped a chunk of a thin pool or snapshot store (a thin volume's first
    /// write to it, an origin's first write to a block it shares with a snapshot) commits the
    /// mapping before it completes (one flush per newly mapped chunk). Without it the mapping
    /// lives only in this process until the guest flushes, which is enough for one host; a
    /// cluster guest's next generation may open the volume elsewhere before this one lets go (a
    /// live migration's target) and must see every write the guest saw complete.
    /// </summary>
    protected bool CommitNewMappings { get; set; }

    /// <summary>The last I/O error, for reports (null: none).</summary>
    public string? LastError { get; private set; }

    /// <summary>
    /// Told each failed request's error with its causes ("IOException: … ← IOException: …"), on
    /// the thread that saw it (the machine's); for logs. Must not throw.
    /// </summary>
    public Action<string>? ErrorReported { get; set; }

    // Keeps the error for reports and tells the listener, with the chain of causes: a mirror's
    // "no copy is writable" says why in its inner exception (a refusal, a timeout).
    private void Failed(Exception e)
    {
        LastError = e.Message;
        if (ErrorReported is not { } listener)
            return;
        var text = new System.Text.StringBuilder();
        for (var x = e; x is not null; x = x.InnerException)
        {
            if (text.Length > 0)
                text.Append(" <- ");
            text.Append(x.GetType().Name).Append(": ").Append(x.Message);
        }
        listener(text.ToString());
    }

    /// <summary>The device's length in whole 512-byte sectors; read at each call, so a grown LV is seen at once.</summary>
    public long Length => _device.Length & ~511L;

    /// <inheritdoc/>
    public bool ReadOnly => false;

    /// <inheritdoc/>
    public string Id { get; }

    /// <inheritdoc/>
    public bool Read(long offset, Span<byte> destination)
    {
        if (offset < 0 || offset > Length - destination.Length)
            return false;
        byte[] buffer = ArrayPool<byte>.Shared.Rent(destination.Length);
        try
        {
            Wait(_device.ReadAsync(offset, buffer.AsMemory(0, destination.Length)));
            buffer.AsSpan(0, destination.Length).CopyTo(destination);
            return true;
        }
        catch (Exception e) when (e is IOException or StorageException)
        {
            Failed(e);
            return false;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <inheritdoc/>
    public bool Write(long offset, ReadOnlySpan<byte> data)
    {
        if (offset < 0 || offset > Length - data.Length)
            return false;
        byte[] buffer = ArrayPool<byte>.Shared.Rent(data.Length);
        try
        {
            data.CopyTo(buffer);
            Wait(_device.WriteAsync(offset, buffer.AsMemory(0, data.Length)));
            if (CommitNewMappings && _device is ThinVolume { HasUncommittedMappings: true })
                Wait(_device.FlushAsync());
            return true;
        }
        catch (Exception e) when (e is IOException or StorageException)
        {
            Failed(e);
            return false;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <inheritdoc/>
    public bool Flush()
    {
        try
        {
            Wait(_device.FlushAsync());
            return true;
        }
        catch (Exception e) when (e is IOException or StorageException)
        {
            Failed(e);
            return false;
        }
    }

    /// <summary>Flushes for a close; a failure is kept in <see cref="LastError"/> (what was not flushed was not acknowledged).</summary>
    protected async Task FlushForCloseAsync()
    {
        try
        {
            await _device.FlushAsync().ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or StorageException)
        {
            Failed(e);
        }
    }

    // The device thread calls synchronously; a remote PV's I/O completes on the socket's thread.
    private static void Wait(ValueTask task)
    {
        if (task.IsCompletedSuccessfully)
            return;
        task.AsTask().GetAwaiter().GetResult();
    }
}
