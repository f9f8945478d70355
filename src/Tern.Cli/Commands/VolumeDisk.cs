// A logical volume (or thin volume) of this node's extent pool as a guest disk: the adapter
// from the pool's IBlockDevice to the machine's synchronous IBlockBackend, for
// `tern run --disk lv:VG/LV`. The pool stays open, and its TERN_HOME lock held, while the guest
// runs, so no other command of this node changes the volume's metadata under it.
using System.Buffers;
using Tern.Machine.Devices;
using Tern.Storage;

namespace Tern.Cli.Commands;

/// <summary>An extent-pool volume serving a virtio-blk device.</summary>
public sealed class VolumeDisk : IBlockBackend, IDisposable
{
    private readonly StoragePool _pool;
    private readonly IBlockDevice _device;

    private VolumeDisk(StoragePool pool, IBlockDevice device, string id)
    {
        _pool = pool;
        _device = device;
        Id = id;
        Length = device.Length & ~511L;
    }

    /// <summary>Whether <paramref name="spec"/> names a volume (lv:VG/LV) rather than a file.</summary>
    public static bool IsVolume(string spec) => spec.StartsWith("lv:", StringComparison.Ordinal);

    /// <summary>Opens lv:VG/LV of the pool in <paramref name="home"/> (default TERN_HOME).</summary>
    public static async Task<VolumeDisk> OpenAsync(string spec, string? home = null, CancellationToken ct = default)
    {
        if (!IsVolume(spec))
            throw new StorageException($"'{spec}' is not a volume; expected lv:VG/LV");
        string name = spec[3..];
        int slash = name.IndexOf('/', StringComparison.Ordinal);
        if (slash <= 0 || slash == name.Length - 1)
            throw new StorageException($"'{spec}' is not a volume; expected lv:VG/LV");
        var pool = await StoragePool.OpenAsync(home ?? StoragePool.DefaultHome(), ct).ConfigureAwait(false);
        try
        {
            var vg = await pool.OpenVgAsync(name[..slash], ct).ConfigureAwait(false);
            var device = await vg.OpenDeviceAsync(name[(slash + 1)..], ct).ConfigureAwait(false);
            return new VolumeDisk(pool, device, name[(slash + 1)..]);
        }
        catch
        {
            pool.Dispose();
            throw;
        }
    }

    /// <inheritdoc/>
    public long Length { get; }

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
        catch (IOException)
        {
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
            return true;
        }
        catch (IOException)
        {
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
        catch (IOException)
        {
            return false;
        }
    }

    // The machine's thread calls synchronously; local PV I/O completes synchronously anyway.
    private static void Wait(ValueTask task)
    {
        if (task.IsCompletedSuccessfully)
            return;
        task.AsTask().GetAwaiter().GetResult();
    }

    /// <summary>Closes the volume and the pool.</summary>
    public void Dispose()
    {
        (_device as IDisposable)?.Dispose();
        _pool.Dispose();
    }
}
