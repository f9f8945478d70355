// A logical volume (or thin volume) of this node's extent pool as a guest disk, for
// `tern run --disk lv:VG/LV`, through the shared BlockDeviceBackend adapter (an I/O error or a
// refusal of the pool is an I/O error for the guest). The pool stays open, and its TERN_HOME
// lock held, while the guest runs, so no other command of this node changes the volume's
// metadata under it.
using Tern.Cluster.Storage;
using Tern.Storage;

namespace Tern.Cli.Commands;

/// <summary>An extent-pool volume serving a virtio-blk device.</summary>
public sealed class VolumeDisk : BlockDeviceBackend, IDisposable
{
    private readonly StoragePool _pool;
    private readonly IBlockDevice _device;

    private VolumeDisk(StoragePool pool, IBlockDevice device, string id)
        : base(device, id)
    {
        _pool = pool;
        _device = device;
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

    /// <summary>Closes the volume and the pool.</summary>
    public void Dispose()
    {
        (_device as IDisposable)?.Dispose();
        _pool.Dispose();
    }
}
