// The storage coordinator: a cluster singleton and the only writer of VG metadata. It finds
// every node's extent server (cluster membership + GetExtentServer), opens every PV (local ones
// directly, remote ones over TCP) into one StoragePool, and serves:
// - storage verbs (`tern pv|vg|lv|pvmove`), run one at a time through the CLI's command tree on
//   that pool, so their output is the same as on one node;
// - metadata proposals of the storage agents' VG views, as compare-and-swap on the seqno;
// - guest opens of LVs, which fence the LV at the guest's generation on every reachable extent
//   server before the LV is handed out.
// Every commit is published on the `tern-storage` topic. When its node dies the singleton starts
// elsewhere and reopens the VGs from the PVs (the highest complete seqno wins, as on one node).
using Akka.Actor;
using Akka.Cluster;
using Akka.Cluster.Tools.PublishSubscribe;
using Akka.Event;
using Tern.Cluster.Protocol;
using Tern.Storage;
using Tern.Storage.Format;
using Tern.Storage.Remote;

namespace Tern.Cluster.Storage;

/// <summary>Registry key of the storage coordinator singleton's proxy.</summary>
public sealed class StorageCoordinatorProxy;

/// <summary>The storage coordinator singleton.</summary>
public sealed class StorageCoordinator : ReceiveActor, IWithTimers, IWithStash
{
    /// <summary>The singleton's name.</summary>
    public const string Name = "storage-coordinator";

    /// <summary>The DistributedPubSub topic of <see cref="VgMetadataChanged"/>.</summary>
    public const string Topic = "tern-storage";

    private static readonly TimeSpan AskTimeout = TimeSpan.FromSeconds(5);

    private readonly NodeStorage _local;
    private readonly StorageVerbRunner? _verbs;
    private readonly StorageCoordinatorOptions _options;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly Dictionary<string, ExtentServerInfo> _servers = [];
    private readonly Dictionary<Guid, GuestOpen> _opens = [];
    private readonly Dictionary<Guid, long> _published = []; // VG id -> last published seqno
    private readonly Queue<(RunStorageVerb Verb, IActorRef ReplyTo)> _queue = new();
    private readonly Dictionary<string, VerbRequest> _requests = new(StringComparer.Ordinal);
    private readonly Func<ExtentServerInfo, PvInfo, CancellationToken, Task<PhysicalVolume>> _openPv;
    private readonly RemoteIoOptions? _remoteIo;
    private readonly ActorSystem _system;
    private IReadOnlyDictionary<string, ExtentServerInfo> _serverView = new Dictionary<string, ExtentServerInfo>();
    private StoragePool? _pool;
    private bool _verbRunning;
    private bool _discovering;
    private bool _ready;
    private readonly DateTime _started = DateTime.UtcNow;

    // A verb taken with a request id: queued, running or done (its result kept for a while, so a
    // caller whose answer was lost can fetch it again), and who waits for its result.
    private sealed class VerbRequest(string id)
    {
        public string Id => id;

        public StorageVerbResult? Result { get; set; }

        public bool Running { get; set; }

        public DateTime DoneAt { get; set; }

        public List<IActorRef> Waiters { get; } = [];
    }

    private sealed record GuestOpen(string Lv, Guid LvId, string VmId, long Generation, string Host, IReadOnlyList<Guid> Backing);

    // Thin pools (and snapshot stores) whose data LV a guest holds, with the reason the
    // coordinator's own VGs refuse to open them; read by verbs off the actor's thread.
    private IReadOnlyDictionary<Guid, string> _heldPools = new Dictionary<Guid, string>();

    /// <summary>Creates the coordinator on the node of <paramref name="local"/>.</summary>
    public StorageCoordinator(NodeStorage local, StorageVerbRunner? verbs, StorageCoordinatorOptions options)
    {
        _local = local;
        _verbs = verbs;
        _options = options;
        _system = Context.System;
        _remoteIo = options.RemoteIo;
        _openPv = (server, pv, ct) => ClusterPvProvider.OpenPvAsync(local, server, pv, _remoteIo, options.WrapPvIo, ct);
        Initial();
    }

    private void Initial()
    {
        Receive<Discover>(_ => StartDiscovery());
        Receive<Discovered>(OnDiscovered);
        ReceiveAny(_ => Stash.Stash());
    }

    /// <inheritdoc/>
    public ITimerScheduler Timers { get; set; } = null!;

    /// <inheritdoc/>
    public IStash Stash { get; set; } = null!;

    /// <inheritdoc/>
    protected override void PreStart()
    {
        // The pool owns the provider.
        _pool = StoragePool.OpenAsync(new ClusterPvProvider(_local, () => Volatile.Read(ref _serverView), AskServerAsync, _remoteIo, _options.WrapPvIo)).GetAwaiter().GetResult();
        Timers.StartPeriodicTimer("discover", Discover.Instance, TimeSpan.Zero, _options.DiscoveryInterval);
    }

    /// <inheritdoc/>
    protected override void PostStop() => _pool?.Dispose();

    private void Ready()
    {
        Receive<Discover>(_ => StartDiscovery());
        Receive<Discovered>(OnDiscovered);
        Receive<RunStorageVerb>(v =>
        {
            if (v.RequestId is { } id)
            {
                PruneRequests();
                if (_requests.TryGetValue(id, out var known))
                {
                    // A repeat (the caller's first answer was lost): never run twice.
                    Sender.Tell(known.Result is { } done ? done : new StorageVerbAccepted(id, _local.Host, Ahead(id)));
                    return;
                }
                _requests[id] = new VerbRequest(id);
                _queue.Enqueue((v, ActorRefs.Nobody));
                Sender.Tell(new StorageVerbAccepted(id, _local.Host, _queue.Count - 1 + (_verbRunning ? 1 : 0)));
            }
            else
            {
                _queue.Enqueue((v, Sender));
            }
            RunNextVerb();
        });
        Receive<AwaitStorageVerb>(a =>
        {
            if (!_requests.TryGetValue(a.RequestId, out var request))
            {
                Sender.Tell(new StorageVerbUnknown(a.RequestId, _local.Host));
                return;
            }
            if (request.Result is { } done)
            {
                Sender.Tell(done);
                return;
            }
            request.Waiters.Add(Sender);
            Timers.StartSingleTimer(Guid.NewGuid(), new AwaitExpired(a.RequestId, Sender), _options.AwaitAnswerWithin);
        });
        Receive<AwaitExpired>(e =>
        {
            if (_requests.TryGetValue(e.RequestId, out var request) && request.Waiters.Remove(e.Waiter))
                e.Waiter.Tell(new StorageVerbPending(e.RequestId, _local.Host, request.Running));
        });
        Receive<VerbDone>(d =>
        {
            d.ReplyTo.Tell(d.Result);
            Finish(d.RequestId, d.Result);
            _verbRunning = false;
            PublishChanges();
            RunNextVerb();
        });
        ReceiveAsync<ProposeVgMetadata>(OnProposeAsync);
        ReceiveAsync<OpenLvForGuest>(OnOpenAsync);
        Receive<CloseLvForGuest>(c =>
        {
            if (_opens.Values.FirstOrDefault(o => o.Lv == c.Lv && o.VmId == c.VmId && o.Generation == c.Generation) is { } open)
            {
                _opens.Remove(open.LvId);
                PublishHeldPools();
            }
            Sender.Tell(new LvClosed(c.Lv));
        });
        Receive<GetExtentServer>(_ => Sender.Tell(new StorageRefused("ask a node's extent server, not the coordinator")));
    }

    // ---- discovery ----

    private void StartDiscovery()
    {
        if (_discovering)
            return;
        _discovering = true;
        var members = Akka.Cluster.Cluster.Get(Context.System).State.Members
            .Where(m => m.Status == MemberStatus.Up || m.Status == MemberStatus.Joining || m.Status == MemberStatus.WeaklyUp)
            .Select(m => m.Address.ToString()).ToList();
        var unreachable = Akka.Cluster.Cluster.Get(Context.System).State.Unreachable.Select(m => m.Address.ToString()).ToHashSet();
        var system = Context.System;
        DiscoverAsync(system, [.. members.Where(m => !unreachable.Contains(m))]).PipeTo(Self);
    }

    private static async Task<Discovered> DiscoverAsync(ActorSystem system, IReadOnlyList<string> members)
    {
        var asks = members.Select(async m =>
        {
            try
            {
                return await system.ActorSelection(ExtentServerActor.PathOf(m)).Ask<ExtentServerInfo>(new GetExtentServer(), TimeSpan.FromSeconds(2)).ConfigureAwait(false);
            }
            catch (Exception e) when (e is AskTimeoutException or ActorNotFoundException or TaskCanceledException)
            {
                return null;
            }
        });
        return new Discovered([.. (await Task.WhenAll(asks).ConfigureAwait(false)).OfType<ExtentServerInfo>()], members.Count);
    }

    private void OnDiscovered(Discovered d)
    {
        foreach (var info in d.Servers)
            _servers[info.Host] = info;
        Volatile.Write(ref _serverView, new Dictionary<string, ExtentServerInfo>(_servers));
        // Opening PVs (remote connects, tag recovery) is I/O: done off the actor's thread, then
        // the round ends; the first round that ends makes the coordinator ready.
        var pool = _pool!;
        var toOpen = d.Servers.SelectMany(s => s.Pvs.Select(p => (Server: s, Pv: p)))
            .Where(x => pool.Pvs.FirstOrDefault(p => p.Id == x.Pv.Id) is not { Failed: false })
            .ToList();
        // Ready once every reachable member's server answered (a VG is opened only from all the
        // PVs there are to see), or, with a member that does not answer, after ReadyTimeout.
        bool complete = (d.Asked > 0 && d.Servers.Count >= d.Asked) || DateTime.UtcNow - _started > _options.ReadyTimeout;
        OpenPvsAsync(toOpen).PipeTo(Self, success: problems => new PvsOpened(problems, complete), failure: e => new PvsOpened([e.GetBaseException().Message], complete));
        Become(Opening);
    }

    private void Opening()
    {
        Receive<PvsOpened>(p =>
        {
            foreach (string problem in p.Problems)
                _log.Warning("storage coordinator: {0}", problem);
            _discovering = false;
            if (!_ready && !p.Complete)
            {
                Become(Initial);
                return;
            }
            if (!_ready)
            {
                _ready = true;
                _log.Info("storage coordinator ready on {0}: {1} extent server(s), {2} PV(s)", _local.Host, _servers.Count, _pool!.Pvs.Count);
            }
            Become(Ready);
            Stash.UnstashAll();
        });
        Receive<Discover>(_ => { });
        ReceiveAny(_ => Stash.Stash());
    }

    private async Task<IReadOnlyList<string>> OpenPvsAsync(IReadOnlyList<(ExtentServerInfo Server, PvInfo Pv)> pvs)
    {
        var problems = new List<string>();
        foreach (var (server, info) in pvs)
        {
            try
            {
                using var timeout = new CancellationTokenSource(AskTimeout);
                var pv = await _openPv(server, info, timeout.Token).ConfigureAwait(false);
                if (!_pool!.AddPv(pv))
                    pv.Dispose(); // a verb opened it meanwhile (pv create)
            }
            catch (Exception e) when (e is IOException or StorageException or OperationCanceledException or UnauthorizedAccessException)
            {
                problems.Add($"{server.Host}:{info.Path}: {e.Message}");
            }
        }
        return problems;
    }

    // Called from verbs, which run off the actor's thread: reads only the published view of the servers.
    private async Task<object> AskServerAsync(string host, object message, CancellationToken ct)
    {
        if (!Volatile.Read(ref _serverView).TryGetValue(host, out var server))
            throw new StorageException($"no node named {host} serves storage in the cluster");
        try
        {
            return await _system.ActorSelection(ExtentServerActor.PathOf(server.Address)).Ask<object>(message, AskTimeout, ct).ConfigureAwait(false);
        }
        catch (AskTimeoutException)
        {
            throw new StorageException($"the extent server of {host} did not answer in {AskTimeout.TotalSeconds:0} s");
        }
    }

    // ---- verbs ----

    private void RunNextVerb()
    {
        if (_verbRunning || _queue.Count == 0)
            return;
        var (verb, replyTo) = _queue.Dequeue();
        if (_verbs is null)
        {
            Answer(verb, replyTo, new StorageVerbResult(2, "", "this node cannot run storage verbs (it was started without the tern command tree)\n"));
            RunNextVerb();
            return;
        }
        if (GuestRepair(verb.Args) is { } forward)
        {
            if (forward.Refusal is { } refusal)
            {
                Answer(verb, replyTo, refusal);
                RunNextVerb();
                return;
            }
            // The LV is open for a guest: its node's agent repairs it through the disk's view,
            // ordered with the guest's own requests. The verb counts as running until it answers.
            StartRunning(verb);
            RepairOnGuestNodeAsync(forward.Open!, forward.Server!, forward.Rate).PipeTo(Self,
                success: r => new VerbDone(r, replyTo, verb.RequestId),
                failure: e => new VerbDone(new StorageVerbResult(1, "", $"tern lv repair: {e.GetBaseException().Message}\n"), replyTo, verb.RequestId));
            return;
        }
        if (GuestUse.Refusal(verb.Args, _opens.Values.SelectMany(o => o.Backing.Append(o.LvId).Distinct().Select(id => (o.Lv, id, o.VmId, o.Host))).ToList(), _pool!) is { } reason)
        {
            Answer(verb, replyTo, new StorageVerbResult(2, "", reason + "\n"));
            RunNextVerb();
            return;
        }
        StartRunning(verb);
        var busy = _opens.Values.SelectMany(o => o.Backing).ToHashSet();
        foreach (var vg in _pool!.OpenVgs)
            vg.ThinPoolGuard = PoolGuard;
        var pool = _pool!;
        var runner = _verbs;
        RunVerbAsync(runner, pool, verb.Args, busy).PipeTo(Self,
            success: r => new VerbDone(r, replyTo, verb.RequestId),
            failure: e => new VerbDone(new StorageVerbResult(1, "", $"{e.GetBaseException().Message}\n"), replyTo, verb.RequestId));
    }

    private void StartRunning(RunStorageVerb verb)
    {
        _verbRunning = true;
        if (verb.RequestId is { } id && _requests.TryGetValue(id, out var request))
            request.Running = true;
    }

    private sealed record Forward(GuestOpen? Open, ExtentServerInfo? Server, long Rate, StorageVerbResult? Refusal);

    // `lv repair VG/LV [--max-rate R]` of an LV a guest holds: where to send it (or why not), else null.
    private Forward? GuestRepair(IReadOnlyList<string> args)
    {
        if (args.Count < 3 || args[0] != "lv" || args[1] != "repair")
            return null;
        string? name = null;
        string? rateText = null;
        for (int i = 2; i < args.Count; i++)
        {
            if (args[i] == "--max-rate" && i + 1 < args.Count)
                rateText = args[++i];
            else if (args[i].StartsWith("--max-rate=", StringComparison.Ordinal))
                rateText = args[i]["--max-rate=".Length..];
            else if (!args[i].StartsWith('-'))
                name ??= args[i];
        }
        if (name is null || _opens.Values.FirstOrDefault(o => o.Lv == name) is not { } open)
            return null; // not held by a guest: the verb runs here as on one node
        static StorageVerbResult Refuse(string reason) => new(2, "", $"tern lv repair: {reason}\n");
        long rate = 0;
        if (rateText is not null && (!MirrorMaintenanceOptions.TryParseRate(rateText, out rate) || rate <= 0))
            return new Forward(null, null, 0, Refuse($"--max-rate {rateText}: expected a positive size such as 512M or 2G"));
        if (!_servers.TryGetValue(open.Host, out var server))
            return new Forward(null, null, 0, Refuse($"{name} is in use by VM {open.VmId} on {open.Host}, which serves no storage now; its maintenance repairs it when it returns"));
        return new Forward(open, server, rate, null);
    }

    // Asks the agent of the guest's node to repair, and gives up (outcome unknown) if that node
    // leaves or becomes unreachable meanwhile instead of waiting for an answer that cannot come.
    private async Task<StorageVerbResult> RepairOnGuestNodeAsync(GuestOpen open, ExtentServerInfo server, long rate)
    {
        string agentPath = $"{server.Address}/user/{StorageAgentActor.Name}";
        var ask = _system.ActorSelection(agentPath).Ask<object>(new RepairGuestLv(open.Lv, rate), _options.GuestRepairTimeout);
        var cluster = Akka.Cluster.Cluster.Get(_system);
        while (!ask.IsCompleted)
        {
            await Task.WhenAny(ask, Task.Delay(TimeSpan.FromSeconds(1))).ConfigureAwait(false);
            if (ask.IsCompleted)
                break;
            var state = cluster.State;
            bool gone = state.Unreachable.Any(m => m.Address.ToString() == server.Address)
                || !state.Members.Any(m => m.Address.ToString() == server.Address && m.Status is MemberStatus.Up or MemberStatus.WeaklyUp);
            if (gone)
                return new StorageVerbResult(1, "", $"tern lv repair: {open.Host}, which was repairing {open.Lv} for VM {open.VmId}, left or became unreachable; the repair's outcome is unknown: check with `tern lv list` (an interrupted repair finishes when run again)\n");
        }
        try
        {
            return await ask.ConfigureAwait(false) switch
            {
                StorageVerbResult r => r,
                var other => new StorageVerbResult(1, "", $"tern lv repair: the storage agent on {open.Host} answered {other.GetType().Name}\n"),
            };
        }
        catch (AskTimeoutException)
        {
            return new StorageVerbResult(1, "", $"tern lv repair: the repair of {open.Lv} on {open.Host} did not end in {_options.GuestRepairTimeout.TotalMinutes:0} min; it may go on: check with `tern lv list`\n");
        }
    }

    private void Answer(RunStorageVerb verb, IActorRef replyTo, StorageVerbResult result)
    {
        replyTo.Tell(result);
        Finish(verb.RequestId, result);
    }

    // Records a request's result and hands it to whoever waits for it.
    private void Finish(string? requestId, StorageVerbResult result)
    {
        if (requestId is null || !_requests.TryGetValue(requestId, out var request))
            return;
        request.Result = result;
        request.Running = false;
        request.DoneAt = DateTime.UtcNow;
        foreach (var waiter in request.Waiters)
            waiter.Tell(result);
        request.Waiters.Clear();
    }

    // How many verbs run before request `id` (0: it runs now).
    private int Ahead(string id)
    {
        int i = 0;
        foreach (var (verb, _) in _queue)
        {
            if (verb.RequestId == id)
                return i + (_verbRunning ? 1 : 0);
            i++;
        }
        return 0;
    }

    // Results are kept for ResultRetention after the verb ended: long enough for a caller to ask
    // again after a lost answer, short enough that the table stays small.
    private void PruneRequests()
    {
        var cutoff = DateTime.UtcNow - _options.ResultRetention;
        foreach (var id in _requests.Values.Where(r => r.Result is not null && r.DoneAt < cutoff).Select(r => r.Id).ToList())
            _requests.Remove(id);
    }

    private static async Task<StorageVerbResult> RunVerbAsync(StorageVerbRunner runner, StoragePool pool, IReadOnlyList<string> args, HashSet<Guid> busy)
    {
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();
        try
        {
            // Guests elsewhere may have written LVs since this node read their checksum tags.
            foreach (var vg in pool.OpenVgs)
                await vg.ReloadTagsAsync([.. vg.Metadata.Lvs.Select(l => l.Id).Where(id => !busy.Contains(id))]).ConfigureAwait(false);
            int code = await runner(pool, args, stdout, stderr, CancellationToken.None).ConfigureAwait(false);
            return new StorageVerbResult(code, stdout.ToString(), stderr.ToString());
        }
        catch (Exception e) when (e is StorageException or IOException)
        {
            await stderr.WriteLineAsync(e.Message).ConfigureAwait(false);
            return new StorageVerbResult(e is StorageException ? 2 : 1, stdout.ToString(), stderr.ToString());
        }
    }

    // ---- metadata proposals ----

    // The handlers of this actor resume on it after each await (ConfigureAwait(true)): they
    // change its state (the opener list) and publish.
    private async Task OnProposeAsync(ProposeVgMetadata p)
    {
        var sender = Sender;
        try
        {
            var proposed = VgMetadataJson.Deserialize(p.MetadataJson);
            var vg = await _pool!.OpenVgAsync(p.Vg).ConfigureAwait(true);
            if (proposed.Id != vg.Metadata.Id)
                throw new StorageException($"the proposal is for another volume group named {p.Vg}");
            var committed = await vg.CommitAsync(md => md.Seqno != p.BaseSeqno ? throw new MetadataConflictException(md) : proposed).ConfigureAwait(true);
            sender.Tell(new VgMetadataCommitted(p.Vg, VgMetadataJson.Serialize(committed)));
            PublishChanges();
        }
        catch (MetadataConflictException e)
        {
            sender.Tell(new VgMetadataConflict(p.Vg, VgMetadataJson.Serialize(e.Newer)));
        }
        catch (Exception e) when (e is StorageException or IOException)
        {
            sender.Tell(new StorageRefused(e.Message));
        }
    }

    private void PublishChanges()
    {
        var mediator = DistributedPubSub.Get(_system).Mediator;
        foreach (var vg in _pool!.OpenVgs)
        {
            var md = vg.Metadata;
            if (_published.TryGetValue(md.Id, out long seqno) && seqno >= md.Seqno)
                continue;
            _published[md.Id] = md.Seqno;
            mediator.Tell(new Publish(Topic, new VgMetadataChanged(md.Name, VgMetadataJson.Serialize(md))));
        }
    }

    // ---- guest opens ----

    private async Task OnOpenAsync(OpenLvForGuest o)
    {
        var sender = Sender;
        try
        {
            sender.Tell(await GrantAsync(o).ConfigureAwait(true));
        }
        catch (Exception e) when (e is StorageException or IOException)
        {
            sender.Tell(new StorageRefused(e.Message));
        }
    }

    private async Task<object> GrantAsync(OpenLvForGuest o)
    {
        int slash = o.Lv.IndexOf('/', StringComparison.Ordinal);
        if (slash <= 0 || slash == o.Lv.Length - 1)
            return new StorageRefused($"'{o.Lv}' is not a logical volume; expected VG/LV");
        var vg = await _pool!.OpenVgAsync(o.Lv[..slash]).ConfigureAwait(true);
        var md = vg.Metadata;
        string lvName = o.Lv[(slash + 1)..];
        // A guest disk is any volume: an LV (with its snapshot store, if it has snapshots), a thin
        // volume or a snapshot (with its pool's data and mapping LVs). All of them are held,
        // fenced and checked for reachability together.
        if (VolumeGroup.VolumeId(md, lvName) is not { } volumeId || VolumeGroup.BackingLvs(md, lvName) is not { } backing)
        {
            return md.FindPool(lvName) is not null
                ? new StorageRefused($"{o.Lv} is a thin pool, not a volume; give the guest a thin volume of it")
                : new StorageRefused($"logical volume {o.Lv} not found");
        }
        if (md.ThinPools?.FirstOrDefault(p => p.DataLv == volumeId || p.MetaLv == volumeId) is { } owner)
            return new StorageRefused($"{o.Lv} is the data or metadata of thin pool {owner.Name}; give the guest a thin volume of it");
        _opens.TryGetValue(volumeId, out var held);
        if (o.AtCurrentFence)
            return await GrantAtCurrentFenceAsync(o, vg, volumeId, backing, held).ConfigureAwait(true);
        if (held is not null)
        {
            if (held.VmId != o.VmId)
                return new StorageRefused($"{o.Lv} is in use by VM {held.VmId} (generation {held.Generation} on {held.Host})");
            if (held.Generation > o.Generation)
                return new StorageRefused($"{o.Lv} is held by generation {held.Generation} of VM {o.VmId}; generation {o.Generation} is stale");
        }
        // Volumes that share a pool share its mapping journal, which has one writer: one VM at a time.
        if (_opens.Values.FirstOrDefault(x => x.LvId != volumeId && x.Backing.Intersect(backing).Any()) is { } sharer)
        {
            if (sharer.VmId != o.VmId)
                return new StorageRefused($"{o.Lv} shares its thin pool or snapshot store with {sharer.Lv}, in use by VM {sharer.VmId} (generation {sharer.Generation} on {sharer.Host}); volumes of one pool are the disks of one VM at a time");
            if (sharer.Generation > o.Generation)
                return new StorageRefused($"{o.Lv} shares its pool with {sharer.Lv}, held by generation {sharer.Generation} of VM {o.VmId}; generation {o.Generation} is stale");
        }
        if (held is not null && held.VmId == o.VmId && held.Generation == o.Generation)
            return new LvGranted(o.Lv, volumeId, VgMetadataJson.Serialize(md), [.. _servers.Values]); // a reminder: fenced already
        foreach (var id in backing)
        {
            if (md.Lvs.FirstOrDefault(l => l.Id == id) is { } part && Unreachable(vg, part) is { } lost)
                return new StorageRefused($"{o.Lv}: no reachable copy of {lost}");
        }

        // Fence first: from here on no older generation can write on any reachable server.
        // Every LV the guest's writes reach is fenced.
        var fences = new List<LvFenced?>();
        foreach (var id in backing)
            fences.AddRange(await FenceAsync(id, o.Generation).ConfigureAwait(true));
        if (fences.OfType<LvFenced>().FirstOrDefault(f => f.Generation > o.Generation) is { } newer)
            return new StorageRefused($"{o.Lv} is fenced at generation {newer.Generation} on {newer.Host}; generation {o.Generation} of VM {o.VmId} is stale");

        // The previous generation's host was lost (downed, removed, unreachable): its writer may
        // have reached some legs and not others after its last write intent, and it may still
        // write the legs on its own host, where no fence could be raised. Trust one leg off that
        // host and resync the others wholly, before the new generation reads anything: on every
        // mirrored LV the volume's writes reach (with a snapshot store, its data and mappings too).
        var (members, unreachable) = MemberView();
        var previous = held ?? _opens.Values.FirstOrDefault(x => x.LvId != volumeId && x.VmId == o.VmId && x.Backing.Intersect(backing).Any());
        if (previous is not null && previous.VmId == o.VmId && previous.Generation < o.Generation && HostLost(previous.Host, members, unreachable))
        {
            foreach (var part in vg.Metadata.Lvs.Where(l => backing.Contains(l.Id) && l.Segments.Any(g => g.Type == SegmentType.Mirror)).Select(l => l.Name).ToList())
            {
                int marked = await vg.MarkLegsStaleOnHostAsync(part, previous.Host).ConfigureAwait(true);
                if (marked > 0)
                {
                    _log.Warning("storage coordinator: {0}: the host {1} of generation {2} was lost; {3} leg(s) of {4} distrusted until resynced", o.Lv, previous.Host, previous.Generation, marked, part);
                    PublishChanges();
                }
            }
        }
        // A sharer of the pool of an older generation of this VM gives way (its writes are fenced now).
        foreach (var old in _opens.Values.Where(x => x.LvId != volumeId && x.VmId == o.VmId && x.Backing.Intersect(backing).Any()).ToList())
            _opens.Remove(old.LvId);
        _opens[volumeId] = new GuestOpen(o.Lv, volumeId, o.VmId, o.Generation, o.Host, backing);
        PublishHeldPools();
        // The coordinator's own run-time state of the pool is stale from now on: dropped, and it
        // opens the pool only after the guest closes it (ThinPoolGuard), reading its journal again.
        foreach (var pool in (md.ThinPools ?? []).Where(p => backing.Contains(p.DataLv)))
            await vg.ForgetThinPoolAsync(pool.Id).ConfigureAwait(true);
        return new LvGranted(o.Lv, volumeId, VgMetadataJson.Serialize(vg.Metadata), [.. _servers.Values]);
    }

    // The addresses of the members that are up (or joining), and of those unreachable.
    private (HashSet<string> Members, HashSet<string> Unreachable) MemberView()
    {
        var state = Akka.Cluster.Cluster.Get(_system).State;
        return (state.Members.Where(m => m.Status is MemberStatus.Up or MemberStatus.WeaklyUp or MemberStatus.Joining).Select(m => m.Address.ToString()).ToHashSet(),
            state.Unreachable.Select(m => m.Address.ToString()).ToHashSet());
    }

    // Raises the LV's fence to `generation` on every reachable extent server (0 raises nothing and
    // reads the fences). Members the failure detector has given up on are skipped: asking them only
    // blocks the coordinator. Removed members (a downed host's servers stay listed until it
    // returns) are skipped too.
    private async Task<LvFenced?[]> FenceAsync(Guid lvId, long generation)
    {
        var (members, unreachable) = MemberView();
        return await Task.WhenAll(_servers.Values.Where(s => members.Contains(s.Address) && !unreachable.Contains(s.Address)).Select(async s =>
        {
            try
            {
                return await _system.ActorSelection(ExtentServerActor.PathOf(s.Address)).Ask<LvFenced>(new FenceLv(lvId, generation), AskTimeout).ConfigureAwait(true);
            }
            catch (Exception e) when (e is AskTimeoutException or ActorNotFoundException or TaskCanceledException)
            {
                return null; // unreachable: it refuses nothing, but it holds nothing the guest reaches either
            }
        })).ConfigureAwait(true);
    }

    // `lv copy` through the API: the LV is granted only while no guest holds it, at the generation
    // it is fenced at now (no raise), so the copy's writes are admitted until a guest opens the
    // LV, which raises the fence past it and cuts the copy off.
    private async Task<object> GrantAtCurrentFenceAsync(OpenLvForGuest o, VolumeGroup vg, Guid volumeId, IReadOnlyList<Guid> backing, GuestOpen? held)
    {
        var md = vg.Metadata;
        if (held is not null)
        {
            return held.VmId == o.VmId && held.Host == o.Host
                ? new LvGranted(o.Lv, volumeId, VgMetadataJson.Serialize(md), [.. _servers.Values], held.Generation)
                : new StorageRefused($"{o.Lv} is in use by VM {held.VmId} (generation {held.Generation} on {held.Host}); stop it first");
        }
        if (_opens.Values.FirstOrDefault(x => x.Backing.Intersect(backing).Any()) is { } sharer)
            return new StorageRefused($"{o.Lv} shares its thin pool or snapshot store with {sharer.Lv}, in use by VM {sharer.VmId} (generation {sharer.Generation} on {sharer.Host}); stop it first");
        foreach (var id in backing)
        {
            if (md.Lvs.FirstOrDefault(l => l.Id == id) is { } part && Unreachable(vg, part) is { } missing)
                return new StorageRefused($"{o.Lv}: no reachable copy of {missing}");
        }
        // The copy writes every LV the volume's writes reach as one generation: the highest fence
        // among them (writes at it are admitted on all; a guest's open raises them past it).
        var fences = new List<LvFenced?>();
        foreach (var id in backing)
            fences.AddRange(await FenceAsync(id, 0).ConfigureAwait(true));
        long generation = fences.OfType<LvFenced>().Select(f => f.Generation).DefaultIfEmpty(0).Max();
        _opens[volumeId] = new GuestOpen(o.Lv, volumeId, o.VmId, generation, o.Host, backing);
        PublishHeldPools();
        foreach (var pool in (md.ThinPools ?? []).Where(p => backing.Contains(p.DataLv)))
            await vg.ForgetThinPoolAsync(pool.Id).ConfigureAwait(true);
        return new LvGranted(o.Lv, volumeId, VgMetadataJson.Serialize(md), [.. _servers.Values], generation);
    }

    // Whether the node named `host` is out of the cluster or unreachable (a host never discovered counts as lost).
    private bool HostLost(string host, HashSet<string> members, HashSet<string> unreachable) =>
        !_servers.TryGetValue(host, out var server) || !members.Contains(server.Address) || unreachable.Contains(server.Address);

    private void PublishHeldPools()
    {
        var held = new Dictionary<Guid, string>();
        foreach (var o in _opens.Values)
        {
            foreach (var vg in _pool!.OpenVgs)
            {
                foreach (var p in (vg.Metadata.ThinPools ?? []).Where(p => o.Backing.Contains(p.DataLv)))
                    held[p.Id] = $"thin pool {vg.Name}/{p.Name} is written by VM {o.VmId} on {o.Host} (disk {o.Lv}); stop the VM first";
            }
        }
        Volatile.Write(ref _heldPools, held);
        foreach (var vg in _pool!.OpenVgs)
            vg.ThinPoolGuard = PoolGuard;
    }

    private string? PoolGuard(Guid pool) => Volatile.Read(ref _heldPools).GetValueOrDefault(pool);

    // The first run of extents that has no copy on a working PV, or null.
    private static string? Unreachable(VolumeGroup vg, LvEntry lv)
    {
        foreach (var seg in lv.Segments)
        {
            bool Present(AreaEntry a) => vg.Pvs.TryGetValue(a.Pv, out var pv) && !pv.Failed;
            bool ok = seg.Type == SegmentType.Mirror
                ? seg.Areas.Any(a => Present(a) && !a.Stale)
                : seg.Areas.All(Present);
            if (!ok)
            {
                var lost = seg.Areas.First(a => !Present(a));
                string where = vg.Metadata.Pvs.FirstOrDefault(p => p.Id == lost.Pv) is { } e ? $"{e.Path} on {e.Host}" : lost.Pv.ToString();
                return $"extents {seg.StartExtent}-{seg.StartExtent + seg.Extents - 1} ({where} is unreachable)";
            }
        }
        return null;
    }

    /// <summary>
    /// The address of the member the coordinator singleton runs on when the failure detector has
    /// given up on it, else null. Until that member is downed and removed, the singleton's proxy
    /// still routes to it and a message sent meanwhile is lost, so callers answer "unavailable"
    /// at once instead of waiting for an answer that cannot come.
    /// </summary>
    public static string? UnreachableHome(ActorSystem system)
    {
        var state = Akka.Cluster.Cluster.Get(system).State;
        var oldest = state.Members.Where(m => m.Status is MemberStatus.Up or MemberStatus.Leaving or MemberStatus.Exiting)
            .OrderBy(m => m, Member.AgeOrdering).FirstOrDefault();
        return oldest is not null && state.Unreachable.Contains(oldest) ? oldest.Address.ToString() : null;
    }

    /// <summary>Props for the singleton on the node of <paramref name="local"/>.</summary>
    public static Props Props(NodeStorage local, StorageVerbRunner? verbs, StorageCoordinatorOptions? options = null) =>
        Akka.Actor.Props.Create(() => new StorageCoordinator(local, verbs, options ?? new StorageCoordinatorOptions()));

    private sealed class Discover : INoSerializationVerificationNeeded
    {
        public static readonly Discover Instance = new();
    }

    private sealed record Discovered(IReadOnlyList<ExtentServerInfo> Servers, int Asked) : INoSerializationVerificationNeeded;

    private sealed record PvsOpened(IReadOnlyList<string> Problems, bool Complete) : INoSerializationVerificationNeeded;

    private sealed record VerbDone(StorageVerbResult Result, IActorRef ReplyTo, string? RequestId) : INoSerializationVerificationNeeded;

    private sealed record AwaitExpired(string RequestId, IActorRef Waiter) : INoSerializationVerificationNeeded;
}

/// <summary>Knobs of the storage coordinator and agents.</summary>
public sealed record StorageCoordinatorOptions
{
    /// <summary>How often extent servers are (re)discovered: 1 s finds a joined or returned node quickly at the cost of one small Ask per node.</summary>
    public TimeSpan DiscoveryInterval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// How long a new coordinator waits for every member's extent server before it serves with
    /// those that answered: 10 s covers a node still starting; a dead one is down by then.
    /// </summary>
    public TimeSpan ReadyTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// How long an <see cref="AwaitStorageVerb"/> is held before it is answered "still pending": 3 s
    /// keeps the caller's silence short enough to tell a lost coordinator from a long verb quickly.
    /// </summary>
    public TimeSpan AwaitAnswerWithin { get; init; } = TimeSpan.FromSeconds(3);

    /// <summary>How long an `lv repair` forwarded to a guest's node may run: 30 min, as any verb (the copy is throttled).</summary>
    public TimeSpan GuestRepairTimeout { get; init; } = TimeSpan.FromMinutes(30);

    /// <summary>How long the result of a verb taken with a request id is kept for a caller to fetch: 10 min.</summary>
    public TimeSpan ResultRetention { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>Options of the remote PV connections (null: the defaults, a 5 s request timeout).</summary>
    public RemoteIoOptions? RemoteIo { get; init; }

    /// <summary>
    /// Wraps the I/O of every PV the coordinator opens (null: none). A test hook: fault injection
    /// into the coordinator's own metadata writes, to stop it in the middle of a commit.
    /// </summary>
    public Func<IPhysicalVolumeIo, IPhysicalVolumeIo>? WrapPvIo { get; init; }
}
