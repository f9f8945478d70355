// Guest disks that are logical volumes (lv:VG/LV in a VM spec): what a hypervisor needs from the
// node's storage to open one for a generation of a VM, the set of volumes one guest holds, and
// the deferred disk a migration target builds its machine with. The target must not open the
// volume (which fences every older generation's writes) until the source has stopped for good:
// the deferred disk opens it at the guest's first disk request, which comes after the
// migration's 'go', so the source's last writes are never refused while it may still resume.
using Tern.Machine.Devices;

namespace Tern.Cluster.Actors;

/// <summary>
/// Opens logical volumes as guest disks on this host: in a cluster, the node's storage agent
/// (cluster volume groups, extents on any node, writes fenced by generation).
/// </summary>
public interface IGuestDisks
{
    /// <summary>The size in bytes of <paramref name="lv"/> ("VG/LV"), without opening it. Throws <see cref="IOException"/> when it cannot be found.</summary>
    Task<long> SizeAsync(string lv, CancellationToken ct);

    /// <summary>
    /// Opens <paramref name="lv"/> ("VG/LV") for generation <paramref name="generation"/> of VM
    /// <paramref name="vmId"/>; from then on writes of older generations are refused. The backend
    /// is closed (flushed and released) by disposing it (<see cref="IAsyncDisposable"/> or
    /// <see cref="IDisposable"/>). Throws <see cref="IOException"/> with the reason when refused.
    /// </summary>
    Task<IBlockBackend> OpenAsync(string lv, string vmId, long generation, CancellationToken ct);
}

/// <summary>Names of guest disks: image paths on the host, or lv:VG/LV.</summary>
public static class GuestDiskNames
{
    /// <summary>The prefix of a logical-volume disk.</summary>
    public const string VolumePrefix = "lv:";

    /// <summary>Whether <paramref name="disk"/> names a logical volume.</summary>
    public static bool IsVolume(string disk) => disk is not null && disk.StartsWith(VolumePrefix, StringComparison.Ordinal);

    /// <summary>"VG/LV" of lv:VG/LV, or null when <paramref name="disk"/> is not a well-formed volume name.</summary>
    public static string? Volume(string disk)
    {
        if (!IsVolume(disk))
            return null;
        string name = disk[VolumePrefix.Length..];
        int slash = name.IndexOf('/', StringComparison.Ordinal);
        return slash <= 0 || slash == name.Length - 1 || name.IndexOf('/', slash + 1) >= 0 ? null : name;
    }

    /// <summary>Closes a backend <see cref="IGuestDisks.OpenAsync"/> returned; errors are the caller's to log.</summary>
    public static ValueTask CloseAsync(IBlockBackend backend)
    {
        switch (backend)
        {
            case IAsyncDisposable a:
                return a.DisposeAsync();
            case IDisposable d:
                d.Dispose();
                return ValueTask.CompletedTask;
            default:
                return ValueTask.CompletedTask;
        }
    }
}

/// <summary>
/// A volume disk opened on first use: the migration target's, so that its generation fences the
/// volume only once the guest runs here. Before it is open it knows its size (for the device);
/// an open that fails fails the request (the guest sees an I/O error) and is tried again at the next.
/// </summary>
public sealed class DeferredGuestDisk : IBlockBackend, IAsyncDisposable
{
    // Bounds the wait of the guest's thread for the storage agent (a coordinator round trip and fencing).
    private static readonly TimeSpan OpenTimeout = TimeSpan.FromSeconds(10);

    private readonly IGuestDisks _disks;
    private readonly string _lv;
    private readonly string _vmId;
    private readonly long _generation;
    private readonly object _gate = new();
    private IBlockBackend? _backend;
    private bool _closed;

    /// <summary>A disk for <paramref name="lv"/> of <paramref name="length"/> bytes, opened for that generation on first use.</summary>
    public DeferredGuestDisk(IGuestDisks disks, string lv, string vmId, long generation, long length)
    {
        ArgumentNullException.ThrowIfNull(disks);
        ArgumentNullException.ThrowIfNull(lv);
        _disks = disks;
        _lv = lv;
        _vmId = vmId;
        _generation = generation;
        Length = length & ~511L;
        Id = lv[(lv.IndexOf('/', StringComparison.Ordinal) + 1)..];
    }

    /// <inheritdoc/>
    public long Length { get; }

    /// <inheritdoc/>
    public bool ReadOnly => false;

    /// <inheritdoc/>
    public string Id { get; }

    /// <summary>Whether the volume has been opened.</summary>
    public bool IsOpen
    {
        get
        {
            lock (_gate)
                return _backend is not null;
        }
    }

    /// <summary>Why the last open failed, if it did.</summary>
    public string? LastError { get; private set; }

    /// <inheritdoc/>
    public bool Read(long offset, Span<byte> destination) => Opened() is { } b && b.Read(offset, destination);

    /// <inheritdoc/>
    public bool Write(long offset, ReadOnlySpan<byte> data) => Opened() is { } b && b.Write(offset, data);

    /// <inheritdoc/>
    public bool Flush() => Opened() is { } b && b.Flush();

    private IBlockBackend? Opened()
    {
        lock (_gate)
        {
            if (_backend is not null || _closed)
                return _backend;
            try
            {
                using var limit = new CancellationTokenSource(OpenTimeout);
                var backend = _disks.OpenAsync(_lv, _vmId, _generation, limit.Token).WaitAsync(OpenTimeout).GetAwaiter().GetResult();
                if (backend.Length < Length)
                {
                    GuestDiskNames.CloseAsync(backend).AsTask().GetAwaiter().GetResult();
                    throw new IOException($"volume {_lv} shrank to {backend.Length} bytes; the guest's disk has {Length}");
                }
                _backend = backend;
                LastError = null;
            }
            catch (Exception e) when (e is IOException or TimeoutException or OperationCanceledException or InvalidOperationException or Tern.Storage.StorageException)
            {
                LastError = e.Message;
            }
            return _backend;
        }
    }

    /// <summary>Closes the volume if it was opened; later requests fail.</summary>
    public async ValueTask DisposeAsync()
    {
        IBlockBackend? backend;
        lock (_gate)
        {
            _closed = true;
            backend = _backend;
            _backend = null;
        }
        if (backend is not null)
            await GuestDiskNames.CloseAsync(backend).ConfigureAwait(false);
    }
}
