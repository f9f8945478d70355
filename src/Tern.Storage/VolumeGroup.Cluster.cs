// The cluster mode of a volume group: a view opened from metadata a coordinator handed over,
// over PVs opened elsewhere (remote or local), that commits through an IVgCommitter instead of
// writing the metadata slots itself, and adopts newer versions the coordinator publishes.
// Open logical volumes read the VG's metadata on every request, so an adopted version (an LV
// grown, a mirror region marked) is what their next request maps through.
using Tern.Storage.Format;

namespace Tern.Storage;

public sealed partial class VolumeGroup
{
    /// <summary>How many times a view proposes one change before giving up on a VG that keeps changing under it.</summary>
    public const int MaxProposals = 8;

    private IVgCommitter? _committer;

    /// <summary>Whether this is a view whose changes go through a committer.</summary>
    public bool IsView => _committer is not null;

    /// <summary>
    /// Opens a view of a VG: <paramref name="md"/> is its current metadata, <paramref name="pvs"/> the
    /// member PVs this node can reach (by identity), and every change is proposed through
    /// <paramref name="committer"/>. The view never writes metadata slots itself.
    /// </summary>
    public static VolumeGroup OpenView(VgMetadata md, IReadOnlyDictionary<Guid, PhysicalVolume> pvs, IVgCommitter committer)
    {
        ArgumentNullException.ThrowIfNull(md);
        ArgumentNullException.ThrowIfNull(pvs);
        ArgumentNullException.ThrowIfNull(committer);
        var members = pvs.Where(p => md.Pvs.Any(e => e.Id == p.Key)).ToDictionary(p => p.Key, p => p.Value);
        return new VolumeGroup(md, members, []) { _committer = committer };
    }

    /// <summary>
    /// Takes <paramref name="newer"/> as the current metadata when it is a newer version of this
    /// VG (a higher sequence number); an older, equal or foreign version is ignored. Returns
    /// whether it was taken.
    /// </summary>
    public bool Adopt(VgMetadata newer)
    {
        ArgumentNullException.ThrowIfNull(newer);
        while (true)
        {
            var current = Metadata;
            if (newer.Id != current.Id || newer.Seqno <= current.Seqno)
                return false;
            if (ReferenceEquals(Interlocked.CompareExchange(ref _metadata, newer, current), current))
                return true;
        }
    }

    /// <summary>
    /// Makes a member PV usable that was not reachable when the VG (or view) was opened, or replaces
    /// the instance of one that was reopened (its node came back): the same PV by identity,
    /// recorded in the current metadata. Returns whether it was added or replaced.
    /// </summary>
    public bool AttachPv(PhysicalVolume pv)
    {
        ArgumentNullException.ThrowIfNull(pv);
        if (!Metadata.Pvs.Any(e => e.Id == pv.Id))
            return false;
        lock (_pvs)
        {
            if (_pvs.TryGetValue(pv.Id, out var present) && ReferenceEquals(present, pv))
                return false;
            _pvs[pv.Id] = pv;
        }
        return true;
    }

    // A view's commit: propose, and on a conflict adopt the newer version and re-apply the change
    // to it, a bounded number of times. The change function may throw (a check that no longer
    // holds on the newer version), which ends the attempt with that error.
    private async Task<VgMetadata> ProposeAsync(IVgCommitter committer, Func<VgMetadata, VgMetadata> change, CancellationToken ct)
    {
        for (int attempt = 1; ; attempt++)
        {
            var current = Metadata;
            var next = change(current) with { Seqno = current.Seqno + 1 };
            try
            {
                var committed = await committer.ProposeAsync(current, next, ct).ConfigureAwait(false);
                Adopt(committed);
                return committed;
            }
            catch (MetadataConflictException e) when (attempt < MaxProposals)
            {
                Adopt(e.Newer);
            }
        }
    }

    // Changes that write metadata slots themselves (orphaning PVs) run only where the VG is written.
    private void ThrowIfView(string verb)
    {
        if (_committer is not null)
            throw new StorageException($"{verb} of {Name} runs on the storage coordinator, not on a view of the volume group");
    }

    /// <summary>
    /// Re-reads, on every present PV, the checksum tags of the extents of the given LVs (all LVs
    /// when null): blocks that a view on another node wrote and flushed since this VG's PVs read
    /// their tags. The coordinator does it before a verb touches LV data; a view, for extents it
    /// adopts.
    /// </summary>
    public async Task ReloadTagsAsync(IReadOnlyCollection<Guid>? lvs = null, CancellationToken ct = default)
    {
        var md = Metadata;
        foreach (var lv in md.Lvs.Where(l => lvs is null || lvs.Contains(l.Id)))
        {
            foreach (var seg in lv.Segments)
            {
                foreach (var a in seg.Areas.SelectMany(a => a.MoveTo is { } to ? new[] { a, to } : [a]))
                {
                    if (_pvs.TryGetValue(a.Pv, out var pv) && !pv.Failed)
                        await pv.ReloadTagsAsync(a.StartExtent * md.ExtentSize, seg.ExtentsPerArea * md.ExtentSize, ct).ConfigureAwait(false);
                }
            }
        }
    }
}
