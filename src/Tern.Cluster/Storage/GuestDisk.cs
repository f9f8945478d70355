// A cluster volume as a guest's virtio-blk backend (the shared BlockDeviceBackend adapter), over
// the volume opened through this node's own VG view: an LV, or a thin volume, a snapshot or an LV
// with snapshots served through its pool. Writes carry the guest's generation, so extent servers
// refuse them once a newer generation has fenced the volume's LVs.
using Tern.Storage;
using Tern.Storage.Format;

namespace Tern.Cluster.Storage;

/// <summary>A volume open as the disk of one VM generation on this node.</summary>
public sealed class GuestDisk : BlockDeviceBackend, IAsyncDisposable
{
    private readonly StorageAgent _agent;
    private readonly Dictionary<Guid, PhysicalVolume> _pvs;
    private int _disposed;

    internal GuestDisk(StorageAgent agent, string lv, string vmId, long generation, VolumeGroup view, IBlockDevice device, Guid volumeId,
        Dictionary<Guid, PhysicalVolume> pvs, IReadOnlyDictionary<string, Protocol.ExtentServerInfo> servers)
        : base(device, lv[(lv.IndexOf('/', StringComparison.Ordinal) + 1)..])
    {
        _agent = agent;
        Lv = lv;
        VmId = vmId;
        Generation = generation;
        View = view;
        Device = device;
        VolumeId = volumeId;
        _pvs = pvs;
        Servers = servers;
        // The next generation elsewhere (a live migration's target opens the volume while the
        // source may still hold it) must see every write the guest saw complete.
        CommitNewMappings = true;
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

    internal IReadOnlyDictionary<string, Protocol.ExtentServerInfo> Servers { get; }

    /// <summary>The names of the LVs whose extents hold the volume's blocks and mappings, in the view's current metadata.</summary>
    public IReadOnlySet<string> BackingLvNames()
    {
        var md = View.Metadata;
        string name = VolumeGroup.VolumeName(md, VolumeId) ?? "";
        var ids = VolumeGroup.BackingLvs(md, name) ?? [];
        return md.Lvs.Where(l => ids.Contains(l.Id)).Select(l => l.Name).ToHashSet();
    }

    // Extents the volume's LVs gained in `md` get their tags re-read (the coordinator reset them
    // before it committed) and PVs not opened yet are opened, before the view maps through the new version.
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
        if (mine is null)
            return;
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

    /// <summary>Flushes, closes the volume and its PVs, and tells the coordinator the VM no longer holds it.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
            return;
        await FlushForCloseAsync().ConfigureAwait(false);
        (Device as IDisposable)?.Dispose();
        View.Dispose();
        foreach (var pv in _pvs.Values)
            pv.Dispose();
        _agent.Closed(this);
    }
}
