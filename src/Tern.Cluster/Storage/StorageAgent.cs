// The storage agent of a node: opens LVs as guest disks on this node. For each disk it asks the
// coordinator for the LV (which fences older generations first), opens the LV's PVs itself
// (local ones directly, remote ones over their extent servers), and maps the LV through a VG
// view of its own whose metadata changes (mirror write intent, resync) are proposed to the
// coordinator. Versions the coordinator publishes are adopted, so a grown LV is seen at once.
// The data path never goes through the coordinator: a disk keeps working while it moves.
using Akka.Actor;
using Tern.Cluster.Protocol;
using Tern.Storage;
using Tern.Storage.Format;
using Tern.Storage.Remote;

namespace Tern.Cluster.Storage;

/// <summary>Opens cluster LVs as guest disks on this node.</summary>
public sealed class StorageAgent : IAsyncDisposable
{
    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<ActorSystem, StorageAgent> Agents = [];

    private readonly NodeStorage _local;
    private readonly IActorRef _coordinator;
    private readonly RemoteIoOptions? _remoteIo;
    private readonly TimeSpan _timeout;
    private readonly List<GuestDisk> _disks = [];
    private readonly SemaphoreSlim _adopting = new(1, 1);
    private readonly SemaphoreSlim _maintaining = new(1, 1); // maintenance rounds and repairs asked for now, one at a time
    private ActorSystem? _system;

    /// <summary>Creates the agent of the node of <paramref name="local"/>, which reaches the coordinator through <paramref name="coordinator"/> (its singleton proxy).</summary>
    public StorageAgent(NodeStorage local, IActorRef coordinator, RemoteIoOptions? remoteIo = null, TimeSpan? timeout = null, MirrorMaintenance? maintenance = null)
    {
        Maintenance = maintenance;
        _local = local;
        _coordinator = coordinator;
        _remoteIo = remoteIo;
        _timeout = timeout ?? TimeSpan.FromSeconds(10);
    }

    /// <summary>The agent registered for <paramref name="system"/> by the node's composition, or null.</summary>
    public static StorageAgent? For(ActorSystem system) => Agents.TryGetValue(system, out var agent) ? agent : null;

    /// <summary>Registers <paramref name="agent"/> as the one of <paramref name="system"/>.</summary>
    public static void Register(ActorSystem system, StorageAgent agent)
    {
        ArgumentNullException.ThrowIfNull(agent);
        agent._system = system;
        Agents.AddOrUpdate(system, agent);
    }

    /// <summary>Resync and repair of the mirrored LVs open here (null: none).</summary>
    public MirrorMaintenance? Maintenance { get; }

    /// <summary>
    /// One maintenance round over the disks open on this node: each mirrored LV's returned legs
    /// are resynced and legs away too long are rebuilt elsewhere (see <see cref="MirrorMaintenance"/>),
    /// through the disk's own view, so its commits go through the coordinator.
    /// </summary>
    public async Task<IReadOnlyList<MaintenanceOutcome>> MaintainAsync(CancellationToken ct = default)
    {
        if (Maintenance is null)
            return [];
        var outcomes = new List<MaintenanceOutcome>();
        await _maintaining.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            foreach (var disk in Disks)
            {
                var names = disk.BackingLvNames();
                outcomes.AddRange(await Maintenance.RunOnceAsync(disk.View, names.Contains, ct: ct).ConfigureAwait(false));
            }
        }
        finally
        {
            _maintaining.Release();
        }
        return outcomes;
    }

    /// <summary>
    /// `lv repair` of LV <paramref name="lv"/> (VG/LV) open here as a guest's disk, now: lost legs
    /// are rebuilt through the disk's own view (commits through the coordinator, copies as the
    /// guest's writer, throttled to <paramref name="maxBytesPerSecond"/>, 0 for unthrottled)
    /// while the guest keeps its I/O. Answers what `tern lv repair` prints; a refusal is exit 2.
    /// Runs after the maintenance round in progress, never beside it.
    /// </summary>
    public async Task<StorageVerbResult> RepairNowAsync(string lv, long maxBytesPerSecond, IProgress<CopyProgress>? progress = null, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(lv);
        var disk = Disks.FirstOrDefault(d => d.Lv == lv);
        if (disk is null)
            return new StorageVerbResult(2, "", $"tern lv repair: {lv} is not open on {_local.Host} any more; run the repair again\n");
        string name = VolumeGroup.VolumeName(disk.View.Metadata, disk.VolumeId) ?? lv[(lv.IndexOf('/', StringComparison.Ordinal) + 1)..];
        await _maintaining.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            await disk.View.ReinstatePvsAsync(null, ct).ConfigureAwait(false);
            var result = await disk.View.RepairAsync(name, maxBytesPerSecond, progress, ct).ConfigureAwait(false);
            // The lines `tern lv repair` prints on one node, plus where it ran.
            var output = new System.Text.StringBuilder();
            foreach (string line in result.Replaced)
                output.Append(line).Append('\n');
            output.Append(result.Replaced.Count == 0 && result.BytesSynced == 0
                ? $"{lv}: every mirror leg is present and up to date; nothing to repair.\n"
                : $"{lv}: {result.Replaced.Count} leg(s) rebuilt, {Sizes.Format(result.BytesSynced)} synchronised.\n");
            output.Append($"(repaired on {_local.Host}, where VM {disk.VmId} has it open)\n");
            return new StorageVerbResult(0, output.ToString(), "");
        }
        catch (StorageException e)
        {
            return new StorageVerbResult(2, "", $"tern lv repair: {e.Message}\n");
        }
        catch (IOException e)
        {
            return new StorageVerbResult(1, "", $"tern lv repair: {e.Message}\n");
        }
        finally
        {
            _maintaining.Release();
        }
    }

    /// <summary>The node's storage.</summary>
    public NodeStorage Node => _local;

    /// <summary>The disks open on this node.</summary>
    public IReadOnlyList<GuestDisk> Disks
    {
        get
        {
            lock (_disks)
                return [.. _disks];
        }
    }

    /// <summary>
    /// Opens LV <paramref name="lv"/> (VG/LV or lv:VG/LV) as the disk of generation
    /// <paramref name="generation"/> of VM <paramref name="vmId"/>. Throws
    /// <see cref="StorageException"/> with the coordinator's reason when it refuses (a newer
    /// generation holds the LV, another VM uses it, no copy of some extent is reachable).
    /// </summary>
    public Task<GuestDisk> OpenGuestDiskAsync(string lv, string vmId, long generation, CancellationToken ct = default) =>
        OpenAsync(lv, vmId, generation, atCurrentFence: false, ct);

    /// <summary>
    /// Opens LV <paramref name="lv"/> for a copy through the API (`lv copy` on a cluster) as
    /// <paramref name="holder"/>: refused while a guest holds it; its writes carry the generation
    /// the LV is fenced at now, so a guest that opens it later cuts them off.
    /// </summary>
    public Task<GuestDisk> OpenForCopyAsync(string lv, string holder, CancellationToken ct = default) =>
        OpenAsync(lv, holder, 0, atCurrentFence: true, ct);

    private async Task<GuestDisk> OpenAsync(string lv, string vmId, long generation, bool atCurrentFence, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(lv);
        string name = lv.StartsWith("lv:", StringComparison.Ordinal) ? lv[3..] : lv;
        var reply = await AskCoordinatorAsync(new OpenLvForGuest(name, vmId, generation, _local.Host, atCurrentFence), ct).ConfigureAwait(false);
        var granted = reply switch
        {
            LvGranted g => g,
            StorageRefused r => throw new StorageException(r.Reason),
            _ => throw new StorageException($"the storage coordinator answered {reply.GetType().Name} to an open of {name}"),
        };
        generation = granted.Generation ?? generation;
        var md = VgMetadataJson.Deserialize(granted.MetadataJson);
        var servers = granted.Servers.ToDictionary(s => s.Host);
        var pvs = new Dictionary<Guid, PhysicalVolume>();
        VolumeGroup? view = null;
        try
        {
            string volumeName = VolumeGroup.VolumeName(md, granted.LvId) ?? throw new StorageException($"the storage coordinator granted {name}, which its metadata does not hold");
            // Every PV of the VG, not only the LV's: a repair rebuilds a lost leg on another one.
            foreach (var id in md.Pvs.Select(p => p.Id))
            {
                if (await TryOpenPvAsync(md, id, servers, ct).ConfigureAwait(false) is { } pv)
                    pvs[id] = pv;
            }
            view = VolumeGroup.OpenView(md, pvs, new CoordinatorCommitter(this, md.Name));
            // Every LV the view opens writes as this generation: the LV itself, and the data,
            // mappings and base of a thin pool or snapshot store the volume is served through.
            view.WriterGeneration = generation;
            var device = await view.OpenDeviceAsync(volumeName, ct).ConfigureAwait(false);
            if (device is LogicalVolume plain)
                plain.Writer = new WriterId(granted.LvId, generation);
            var disk = new GuestDisk(this, name, vmId, generation, view, device, granted.LvId, pvs, servers);
            lock (_disks)
                _disks.Add(disk);
            return disk;
        }
        catch
        {
            view?.Dispose();
            foreach (var pv in pvs.Values)
                pv.Dispose();
            _coordinator.Tell(new CloseLvForGuest(name, vmId, generation));
            throw;
        }
    }

    // Opens one PV of the VG as this node reaches it; null when its node is not reachable (a
    // mirror leg there is degraded, which the LV's write path records).
    private async Task<PhysicalVolume?> TryOpenPvAsync(VgMetadata md, Guid id, IReadOnlyDictionary<string, ExtentServerInfo> servers, CancellationToken ct)
    {
        var entry = md.Pvs.First(p => p.Id == id);
        if (!servers.TryGetValue(entry.Host, out var server))
            return null;
        // The VG records a PV's path as host:path; the server's list may predate a PV created just now.
        string path = entry.Path.StartsWith(entry.Host + ":", StringComparison.Ordinal) ? entry.Path[(entry.Host.Length + 1)..] : entry.Path;
        var info = server.Pvs.FirstOrDefault(p => p.Id == id) ?? new PvInfo(id, entry.Host, path, 0);
        try
        {
            return await ClusterPvProvider.OpenPvAsync(_local, server, info, _remoteIo, null, ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or StorageException)
        {
            return null;
        }
    }

    internal async Task<object> AskCoordinatorAsync(object message, CancellationToken ct)
    {
        // While the coordinator's node is unreachable (not yet downed), what the proxy sends is
        // lost: wait for the singleton to move (bounded) instead of asking into the void.
        if (_system is not null)
        {
            var until = DateTime.UtcNow + _timeout;
            while (StorageCoordinator.UnreachableHome(_system) is { } home)
            {
                if (DateTime.UtcNow >= until)
                    throw new IOException($"the storage coordinator's node {home} has been unreachable for {_timeout.TotalSeconds:0} s");
                await Task.Delay(200, ct).ConfigureAwait(false);
            }
        }
        try
        {
            return await _coordinator.Ask<object>(message, _timeout, ct).ConfigureAwait(false);
        }
        catch (AskTimeoutException e)
        {
            throw new IOException($"the storage coordinator did not answer in {_timeout.TotalSeconds:0} s", e);
        }
    }

    /// <summary>
    /// Takes a newer version of a VG into every disk open on it. Extents an LV gained are
    /// prepared first: their checksum tags re-read (the coordinator reset them) and PVs the disk
    /// had no use for until now opened.
    /// </summary>
    public async Task AdoptAsync(VgMetadata md, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(md);
        await _adopting.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            foreach (var disk in Disks.Where(d => d.View.Metadata.Id == md.Id && d.View.Metadata.Seqno < md.Seqno))
                await disk.AdoptAsync(md, ct).ConfigureAwait(false);
        }
        finally
        {
            _adopting.Release();
        }
    }

    internal async Task<PhysicalVolume?> OpenForAsync(GuestDisk disk, VgMetadata md, Guid id, CancellationToken ct) =>
        await TryOpenPvAsync(md, id, disk.Servers, ct).ConfigureAwait(false);

    /// <summary>Tells the coordinator again which LVs this node's guests hold (after the coordinator moved, it knows none).</summary>
    public void Reassert(IActorRef? replyTo = null)
    {
        foreach (var d in Disks)
            _coordinator.Tell(new OpenLvForGuest(d.Lv, d.VmId, d.Generation, _local.Host), replyTo ?? ActorRefs.NoSender);
    }

    internal void Closed(GuestDisk disk)
    {
        lock (_disks)
            _disks.Remove(disk);
        _coordinator.Tell(new CloseLvForGuest(disk.Lv, disk.VmId, disk.Generation));
    }

    /// <inheritdoc/>
    public async ValueTask DisposeAsync()
    {
        foreach (var d in Disks)
            await d.DisposeAsync().ConfigureAwait(false);
        _adopting.Dispose();
        _maintaining.Dispose();
    }

    // A view's commits, proposed to the coordinator as compare-and-swap on the seqno.
    private sealed class CoordinatorCommitter(StorageAgent agent, string vg) : IVgCommitter
    {
        public async Task<VgMetadata> ProposeAsync(VgMetadata current, VgMetadata next, CancellationToken ct)
        {
            var reply = await agent.AskCoordinatorAsync(new ProposeVgMetadata(vg, current.Seqno, VgMetadataJson.Serialize(next)), ct).ConfigureAwait(false);
            return reply switch
            {
                VgMetadataCommitted c => VgMetadataJson.Deserialize(c.MetadataJson),
                VgMetadataConflict c => throw new MetadataConflictException(VgMetadataJson.Deserialize(c.NewerJson)),
                StorageRefused r => throw new StorageException(r.Reason),
                _ => throw new StorageException($"the storage coordinator answered {reply.GetType().Name} to a metadata proposal"),
            };
        }
    }
}
