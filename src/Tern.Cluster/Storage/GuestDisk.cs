// A cluster volume as a guest's virtio-blk backend: the synchronous IBlockBackend the machine's
// device thread calls, over the volume opened through this node's own VG view: an LV, or a thin
// volume, a snapshot or an LV with snapshots served through its pool. Writes carry the guest's
// generation, so extent servers refuse them once a newer generation has fenced the volume's LVs.
using System.Buffers;
using Tern.Machine.Devices;
using Tern.Storage;
using Tern.Storage.Format;

namespace Tern.Cluster.Storage;

/// <summary>An LV open as the disk of one VM generation on this node.</summary>
public sealed class GuestDisk : IBlockBackend, IAsyncDisposable
{
    private readonly StorageAgent _agent;
    private readonly Dictionary<Guid, PhysicalVolume> _pvs;
    private int _disposed;

    internal GuestDisk(StorageAgent agent, string lv, string vmId, long generation, VolumeGroup view, IBlockDevice device, Guid volumeId,
        Dictionary<Guid, PhysicalVolume> pvs, IReadOnlyDictionary<string, Protocol.ExtentServerInfo> servers)
    {
        VolumeId = volumeId;
        _agent = agent;
        Lv = lv;
        VmId = vmId;
        Generation = generation;
        View = view;
        Device = device;
        _pvs = pvs;
        Servers = servers;
        Id = lv[(lv.IndexOf('/', StringComparison.Ordinal) + 1)..];
    }

    /// <summary>The LV as VG/LV.</summary>
    public string Lv { get; }

    /// <summary>The VM whose disk it is.</summary>
    public string VmId { get; }

    /// <summary>The VM's generation that opened it.</summary>
    public long Generation { get; }

    /// <summary>This node's view of the LV's VG.</summary>
    public VolumeGroup View { get; }

    /// <summary>
    /// The opened volume: the LV itself, or, for a thin volume, a snapshot or an LV with
    /// snapshots, the device its pool serves it through.
    /// </summary>
    public IBlockDevice Device { get; }

    /// <summary>The id of the LV, thin volume or snapshot.</summary>
    public Guid VolumeId { get; }

    /// <summary>The names of the LVs whose extents hold the volume's blocks and mappings, in the view's current metadata.</summary>
    public IReadOnlySet<string> BackingLvNames()
    {
        var md = View.Metadata;
        string name = VolumeGroup.VolumeName(md, VolumeId) ?? "";
        var ids = VolumeGroup.BackingLvs(md, name) ?? [];
        return md.Lvs.Where(l => ids.Contains(l.Id)).Select(l => l.Name).ToHashSet();
    }

    internal IReadOnlyDictionary<string, Protocol.ExtentServerInfo> Servers { get; }

    /// <summary>The last I/O error, for reports (null: none).</summary>
    public string? LastError { get; private set; }

    /// <inheritdoc/>
    public long Length => Device.Length & ~511L;

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
            Wait(Device.ReadAsync(offset, buffer.AsMemory(0, destination.Length)));
            buffer.AsSpan(0, destination.Length).CopyTo(destination);
            return true;
        }
        catch (Exception e) when (e is IOException or StorageException)
        {
            LastError = e.Message;
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
            Wait(Device.WriteAsync(offset, buffer.AsMemory(0, data.Length)));
            // A write that mapped a chunk (a thin volume's first write to it, an origin's first
            // write to a block it shares with a snapshot) is committed before it completes: the
            // mapping would otherwise live only in this node's memory, and the next generation
            // elsewhere (a live migration's target opens the volume while the source may still
            // hold it) would not see a write the guest saw complete. One flush per new chunk.
            if (Device is ThinVolume { HasUncommittedMappings: true })
                Wait(Device.FlushAsync());
            return true;
        }
        catch (Exception e) when (e is IOException or StorageException)
        {
            LastError = e.Message;
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
            Wait(Device.FlushAsync());
            return true;
        }
        catch (Exception e) when (e is IOException or StorageException)
        {
            LastError = e.Message;
            return false;
        }
    }

    // The device thread calls synchronously; a remote PV's I/O completes on the socket's thread.
    private static void Wait(ValueTask task)
    {
        if (task.IsCompletedSuccessfully)
            return;
        task.AsTask().GetAwaiter().GetResult();
    }

    // Extents the LV gained in `md` get their tags re-read (the coordinator reset them before it
    // committed) and PVs not opened yet are opened, before the view maps through the new version.
    internal async Task AdoptAsync(VgMetadata md, CancellationToken ct)
    {
        string name = VolumeGroup.VolumeName(View.Metadata, VolumeId) ?? "";
        var ids = (VolumeGroup.BackingLvs(View.Metadata, name) ?? []).Union(VolumeGroup.BackingLvs(md, name) ?? []).ToList();
        foreach (var id in ids)
            await AdoptExtentsAsync(md, id, ct).ConfigureAwait(false);
        View.Adopt(md);
    }

    private async Task AdoptExtentsAsync(VgMetadata md, Guid id, CancellationToken ct)
    {
        var mine = md.Lvs.FirstOrDefault(l => l.Id == id);
        var before = View.Metadata.Lvs.FirstOrDefault(l => l.Id == id);
        if (mine is not null)
        {
            var old = (before?.Segments ?? []).SelectMany(s => s.Areas.Select(a => (a.Pv, a.StartExtent, s.ExtentsPerArea))).ToHashSet();
            foreach (var seg in mine.Segments)
            {
                foreach (var a in seg.Areas)
                {
                    if (old.Contains((a.Pv, a.StartExtent, seg.ExtentsPerArea)))
                        continue;
                    if (!_pvs.TryGetValue(a.Pv, out var pv))
                    {
                        if (await _agent.OpenForAsync(this, md, a.Pv, ct).ConfigureAwait(false) is not { } opened)
                            continue;
                        _pvs[a.Pv] = pv = opened;
                        View.AttachPv(pv);
                        continue; // freshly opened: its tags are current
                    }
                    await pv.ReloadTagsAsync(a.StartExtent * md.ExtentSize, seg.ExtentsPerArea * md.ExtentSize, ct).ConfigureAwait(false);
                }
            }
        }
    }

    /// <summary>Flushes, closes the LV and its PVs, and tells the coordinator the VM no longer holds it.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
            return;
        try
        {
            await Device.FlushAsync().ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or StorageException)
        {
            LastError = e.Message; // closing anyway: what was not flushed was not acknowledged
        }
        (Device as IDisposable)?.Dispose();
        View.Dispose();
        foreach (var pv in _pvs.Values)
            pv.Dispose();
        _agent.Closed(this);
    }
}
