// A cluster LV as a guest's virtio-blk backend (the shared BlockDeviceBackend adapter), over the
// LV opened through this node's own VG view. Writes carry the
// guest's WriterId, so extent servers refuse them once a newer generation has fenced the LV.
using Tern.Storage;
using Tern.Storage.Format;

namespace Tern.Cluster.Storage;

/// <summary>An LV open as the disk of one VM generation on this node.</summary>
public sealed class GuestDisk : BlockDeviceBackend, IAsyncDisposable
{
    private readonly StorageAgent _agent;
    private readonly Dictionary<Guid, PhysicalVolume> _pvs;
    private int _disposed;

    internal GuestDisk(StorageAgent agent, string lv, string vmId, long generation, VolumeGroup view, LogicalVolume volume,
        Dictionary<Guid, PhysicalVolume> pvs, IReadOnlyDictionary<string, Protocol.ExtentServerInfo> servers)
        : base(volume, lv[(lv.IndexOf('/', StringComparison.Ordinal) + 1)..])
    {
        _agent = agent;
        Lv = lv;
        VmId = vmId;
        Generation = generation;
        View = view;
        Volume = volume;
        _pvs = pvs;
        Servers = servers;
    }

    /// <summary>The LV as VG/LV.</summary>
    public string Lv { get; }

    /// <summary>The VM whose disk it is.</summary>
    public string VmId { get; }

    /// <summary>The VM's generation that opened it.</summary>
    public long Generation { get; }

    /// <summary>This node's view of the LV's VG.</summary>
    public VolumeGroup View { get; }

    /// <summary>The opened LV.</summary>
    public LogicalVolume Volume { get; }

    internal IReadOnlyDictionary<string, Protocol.ExtentServerInfo> Servers { get; }

    // Extents the LV gained in `md` get their tags re-read (the coordinator reset them before it
    // committed) and PVs not opened yet are opened, before the view maps through the new version.
    internal async Task AdoptAsync(VgMetadata md, CancellationToken ct)
    {
        var mine = md.Lvs.FirstOrDefault(l => l.Id == Volume.Entry.Id);
        var before = View.Metadata.Lvs.FirstOrDefault(l => l.Id == Volume.Entry.Id);
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
        View.Adopt(md);
    }

    /// <summary>Flushes, closes the LV and its PVs, and tells the coordinator the VM no longer holds it.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
            return;
        await FlushForCloseAsync().ConfigureAwait(false);
        Volume.Dispose();
        View.Dispose();
        foreach (var pv in _pvs.Values)
            pv.Dispose();
        _agent.Closed(this);
    }
}
