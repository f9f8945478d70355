// The sharded, persistent owner of one VM: it checks commands against VmControllerState,
// persists the resulting events, and drives the scheduler and hypervisors. While an
// operation is in flight (placing, booting, stopping) other commands wait in the stash.
using Akka.Actor;
using Akka.Cluster.Sharding;
using Akka.Event;
using Akka.Persistence;
using Tern.Cluster.Migration;
using Tern.Cluster.Protocol;
using Tern.Cluster.State;
using Tern.Cluster.Telemetry;

namespace Tern.Cluster.Actors;

/// <summary>The controller of one VM (entity id = VM name).</summary>
public sealed class VmController : ReceivePersistentActor, IWithTimers
{
    /// <summary>Journal ids of VM controllers are this prefix and the VM name.</summary>
    public const string PersistencePrefix = "vm-";

    // How often a lost VM that should run is offered to the scheduler again (it may know no hosts yet after a restart).
    private static readonly TimeSpan RestartInterval = TimeSpan.FromSeconds(1);

    private readonly string _vmId;
    private readonly IActorRef _scheduler;
    private readonly TimeSpan _guestTimeout;

    // An automatic restart after a loss keeps trying (1 s, 2 s, 4 s … 30 s apart) while its
    // starts fail, e.g. while a disk is not yet reachable; a user's start fails once.
    private bool _autoRestart;
    private int _restartFailures;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private VmControllerState _state = VmControllerState.Empty;
    private IActorRef? _host;
    private MigrationRecord? _migration;
    private System.Diagnostics.Activity? _operation;

    /// <summary>Creates the controller of VM <paramref name="vmId"/>.</summary>
    public VmController(string vmId, IActorRef scheduler, TimeSpan guestTimeout)
    {
        _vmId = vmId;
        _scheduler = scheduler;
        _guestTimeout = guestTimeout;
        PersistenceId = PersistencePrefix + vmId;
        Recover<IVmEvent>(e => _state = _state.Apply(e));
        Recover<RecoveryCompleted>(_ =>
        {
            if (_state.Migration is { } pending)
                Self.Tell(new ReconcileMigration(pending.Generation));
            else if (_state.OnHost)
                Self.Tell(new Reconcile(_state.Generation));
        });
        Ready();
    }

    /// <inheritdoc/>
    public override string PersistenceId { get; }

    /// <inheritdoc/>
    public ITimerScheduler Timers { get; set; } = null!;

    /// <inheritdoc/>
    protected override void PostStop()
    {
        EndOperation();
        base.PostStop();
    }

    /// <summary>Props for the controller of <paramref name="vmId"/>.</summary>
    public static Props Props(string vmId, IActorRef scheduler, TimeSpan guestTimeout) =>
        Akka.Actor.Props.Create(() => new VmController(vmId, scheduler, guestTimeout));

    private void Ready()
    {
        Command<CreateVm>(c =>
        {
            if (_state.CheckCreate(c) is { } reason)
                Reject(reason);
            else
                BeginStart(c.Spec, create: true, c.Trace);
        });
        Command<StartVm>(c =>
        {
            if (_state.CheckExists(_vmId) is { } reason)
                Reject(reason);
            else if (_state.OnHost)
                Sender.Tell(_state.ToStatus(_vmId));
            else
                BeginStart(_state.Spec!, create: false, c.Trace);
        });
        Command<StopVm>(c =>
        {
            if (_state.CheckExists(_vmId) is { } reason)
                Reject(reason);
            else
                BeginStop(delete: false, c.Trace);
        });
        Command<DeleteVm>(c =>
        {
            if (_state.CheckExists(_vmId) is { } reason)
                Reject(reason);
            else
                BeginStop(delete: true, c.Trace);
        });
        Command<GetVm>(_ =>
        {
            if (_state.CheckExists(_vmId) is { } reason)
                Reject(reason);
            else
                Sender.Tell(_state.ToStatus(_vmId));
        });
        Command<AttachConsole>(a =>
        {
            if (_state.CheckExists(_vmId) is { } reason)
                Reject(reason);
            else if (_state.Phase != VmPhase.Running || _state.HostAddress is null)
                Reject(new($"VM '{_vmId}' is {_state.Phase.ToString().ToLowerInvariant()}, not running", RejectionKind.Conflict));
            else
                Context.ActorSelection(ActorNames.HypervisorPath(_state.HostAddress)).Tell(a, Sender);
        });
        Command<MigrateVm>(m =>
        {
            if (_state.CheckMigrate(m) is { } reason)
                Reject(reason);
            else
                BeginMigrate(m);
        });
        Command<GetMigration>(_ => AnswerMigration());
        Command<CancelMigration>(_ => AnswerMigration());
        Command<ReconcileMigration>(r => _state.Migration?.Generation == r.Generation, r => BeginReconcileMigration(r.Generation));
        Command<ReconcileMigration>(_ => { });
        // A guest that landed for a migration this controller no longer wants must not run.
        Command<GuestMigratedIn>(g => g.Generation != _state.Generation, g => Sender.Tell(new AbortMigration(_vmId, g.Generation, "the migration was abandoned")));
        Command<GuestMigratedIn>(_ => { });
        Command<MigrationProgressed>(_ => { });
        Command<MigrationCompleted>(c => _log.Warning("VM {0}: late completion of migration to generation {1} ignored", _vmId, c.NewGeneration));
        Command<MigrationFailed>(_ => { });
        Command<MigrationPrepared>(p => Sender.Tell(new AbortMigration(_vmId, p.Generation, "the migration was abandoned")));
        Command<MigrationRefused>(_ => { });
        Command<GuestExited>(e =>
        {
            if (e.Generation == _state.Generation && _state.OnHost)
                Persist(new VmStopped(e.Generation, e.Reason), Apply);
            PassivateIfGone();
        });
        Command<Reconcile>(r => r.Generation == _state.Generation && _state.OnHost, r => BeginReconcile(r.Generation));
        Command<Reconcile>(_ => { });
        Command<RestartTick>(_ =>
        {
            if (_state.Exists && _state.Desired == DesiredState.Running && (_state.Phase == VmPhase.Stopped || (_autoRestart && _state.Phase == VmPhase.Failed)))
            {
                BeginStart(_state.Spec!, create: false, null);
            }
            else
            {
                _autoRestart = false;
                Timers.Cancel("restart");
            }
        });
        Command<Terminated>(t =>
        {
            if (!t.ActorRef.Equals(_host))
                return;
            _host = null;
            if (_state.OnHost)
                Self.Tell(new HostGone(_state.Generation, $"host '{_state.Host}' left the cluster or stopped"));
        });
        Command<HostGone>(g => g.Generation == _state.Generation && _state.OnHost, g => Persist(new VmLost(g.Generation, $"generation {g.Generation} lost: {g.Reason}"), AfterLost));
        Command<HostGone>(_ => { });
        Command<GuestStarted>(_ => { });
        Command<GuestRefused>(_ => { });
        Command<OperationTimeout>(_ => { });
    }

    // After recovery (a rebalance, a node's or the whole cluster's restart) the journal says a
    // generation runs on some host: ask that host. A guest that is gone is recorded as lost and,
    // if it should run, started again as a new generation wherever the scheduler says.
    private void BeginReconcile(long generation)
    {
        var members = Akka.Cluster.Cluster.Get(Context.System).State.Members;
        if (!members.Any(m => m.Address.ToString() == _state.HostAddress))
        {
            Persist(new VmLost(generation, $"generation {generation} lost: host '{_state.Host}' is no longer in the cluster"), AfterLost);
            return;
        }
        Context.ActorSelection(ActorNames.HypervisorPath(_state.HostAddress!)).Tell(new ProbeGuest(_vmId, generation), Self);
        Timers.StartSingleTimer("op", new OperationTimeout(generation), _guestTimeout);
        BecomeStacked(() =>
        {
            Command<GuestStarted>(s => s.Generation == generation, _ =>
            {
                WatchHost(Sender);
                if (_state.Phase == VmPhase.Starting)
                    Persist(new VmRunning(generation), Apply);
                Finish();
            });
            Command<GuestExited>(x => x.Generation == generation, x => Lost(x.Reason));
            Command<OperationTimeout>(t => t.Generation == generation, _ => Lost($"host '{_state.Host}' did not answer"));
            AnswerQueries();
            CommandAny(_ => Stash.Stash());
        });

        void Lost(string reason)
        {
            Persist(new VmLost(generation, $"generation {generation} lost: {reason}"), e =>
            {
                Finish();
                AfterLost(e);
            });
        }
    }

    private void AfterLost(VmLost lost)
    {
        Apply(lost);
        if (_state.Desired == DesiredState.Running)
        {
            _autoRestart = true;
            _restartFailures = 0;
            Timers.StartPeriodicTimer("restart", RestartTick.Instance, TimeSpan.Zero, RestartInterval);
        }
    }

    // Queries are answered at once, even while an operation is in flight.
    private void AnswerQueries()
    {
        Command<GetVm>(_ =>
        {
            if (_state.CheckExists(_vmId) is { } reason)
                Sender.Tell(new CommandRejected(_vmId, reason.Reason, reason.Kind));
            else
                Sender.Tell(_state.ToStatus(_vmId));
        });
        Command<GetMigration>(_ => AnswerMigration());
    }

    private void AnswerMigration()
    {
        if (_state.CheckExists(_vmId) is { } reason)
            Sender.Tell(new CommandRejected(_vmId, reason.Reason, reason.Kind));
        else
            Sender.Tell(_migration?.ToStatus(_vmId)
                ?? (_state.Migration is { } pending
                    ? new MigrationStatus(_vmId, "running", _state.Host, pending.Host, pending.Generation, null, null, null) // journaled, outcome being checked after a restart
                    : new MigrationStatus(_vmId, "none", null, null, _state.Generation, null, null, null)));
    }

    // Live migration: the scheduler checks the target (or picks one), the new generation is
    // journaled, the target prepares (room + a one-time endpoint), the source streams the guest
    // over TCP and reports; the journal then says where the guest runs. The source's verdict
    // decides: until it reports, or its host is gone, nothing is committed or abandoned.
    private void BeginMigrate(MigrateVm command)
    {
        var replyTo = Sender;
        var started = System.Diagnostics.Stopwatch.StartNew();
        var context = BeginOperation("vm.migrate", command.Trace);
        _operation?.SetTag("tern.source", _state.Host);
        var spec = _state.Spec!;
        string source = _state.Host!;
        string sourceAddress = _state.HostAddress!;
        long generation = _state.Generation;
        long newGeneration = 0;
        string? target = null, targetAddress = null;
        IActorRef? targetRef = null;
        bool landed = false, cancelled = false, streaming = false;
        double prepareMs = 0;
        var record = _migration = new MigrationRecord("preparing", source, command.TargetHost, generation);
        _scheduler.Ask<object>(new PlaceVm(_vmId, spec.MemoryBytes, spec.Harts, command.TargetHost, context, source), _guestTimeout)
            .PipeTo(Self, failure: e => new PlacementRefused(_vmId, $"the scheduler did not answer: {e.GetBaseException().Message}"));
        BecomeStacked(() =>
        {
            Command<VmPlaced>(p => newGeneration == 0, p =>
            {
                newGeneration = _state.NextGeneration;
                target = p.Host;
                targetAddress = p.HostAddress;
                record.To = target;
                record.Generation = newGeneration;
                Persist(new VmMigrationStarted(p.Host, p.HostAddress, newGeneration), e =>
                {
                    Apply(e);
                    Context.ActorSelection(ActorNames.HypervisorPath(p.HostAddress)).Tell(new PrepareMigration(_vmId, spec, newGeneration, source, context), Self);
                    Timers.StartSingleTimer("op", new OperationTimeout(newGeneration), _guestTimeout);
                });
            });
            Command<PlacementRefused>(r =>
            {
                var kind = r.Reason.StartsWith("the scheduler did not answer", StringComparison.Ordinal) ? RejectionKind.Unavailable : RejectionKind.Refused;
                record.Fail("refused", r.Reason);
                Reject(new(r.Reason, kind), replyTo);
                Finish();
            });
            Command<MigrationRefused>(r => r.Generation == newGeneration, r => Abandon("refused", r.Reason, RejectionKind.Refused));
            Command<MigrationPrepared>(p => p.Generation == newGeneration && !streaming, p =>
            {
                targetRef = Sender;
                prepareMs = started.Elapsed.TotalMilliseconds;
                if (cancelled)
                {
                    Abandon("cancelled", "cancelled before the guest was sent", RejectionKind.Conflict);
                    return;
                }
                streaming = true;
                record.Status = "running";
                Context.ActorSelection(ActorNames.HypervisorPath(sourceAddress))
                    .Tell(new MigrateGuest(_vmId, generation, newGeneration, p.Host, targetAddress!, p.Endpoint, p.Token, command.Settings, context), Self);
                replyTo.Tell(record.ToStatus(_vmId));
                Timers.StartSingleTimer("op", new OperationTimeout(newGeneration), Stall);
            });
            Command<OperationTimeout>(t => t.Generation == newGeneration && !streaming, _ =>
                Abandon("failed", $"host '{target}' did not prepare within {_guestTimeout.TotalSeconds:0} s", RejectionKind.Unavailable));
            // Streaming but silent for too long (a link that neither moves nor breaks): ask the source to give up.
            Command<OperationTimeout>(t => t.Generation == newGeneration && streaming, _ =>
            {
                record.Error = $"no progress for {Stall.TotalSeconds:0} s";
                Context.ActorSelection(ActorNames.HypervisorPath(sourceAddress)).Tell(new CancelGuestMigration(_vmId, newGeneration), Self);
            });
            Command<MigrationProgressed>(p => p.NewGeneration == newGeneration, p =>
            {
                record.Progress = p.Progress;
                Timers.StartSingleTimer("op", new OperationTimeout(newGeneration), Stall);
            });
            Command<GuestMigratedIn>(g => g.Generation == newGeneration, g =>
            {
                landed = true;
                targetRef = Sender;
            });
            Command<MigrationCompleted>(c => c.NewGeneration == newGeneration, c => Commit(c.Figures with
            {
                PrepareTimeMs = prepareMs,
                TotalTimeMs = c.Figures.TotalTimeMs + prepareMs,
                SetupTimeMs = c.Figures.SetupTimeMs + prepareMs,
            }));
            Command<MigrationFailed>(f => f.NewGeneration == newGeneration, f =>
            {
                Context.ActorSelection(ActorNames.HypervisorPath(targetAddress!)).Tell(new AbortMigration(_vmId, newGeneration, f.Reason));
                string status = cancelled ? "cancelled" : "failed";
                Persist(new VmMigrationAborted(newGeneration, f.Reason), e =>
                {
                    Apply(e);
                    record.Fail(status, record.Error is { } stall && !cancelled ? $"{f.Reason} ({stall})" : f.Reason);
                    _operation?.SetStatus(System.Diagnostics.ActivityStatusCode.Error, record.Error);
                    MigrationTelemetry.Outcome(target!, status);
                    Finish();
                });
            });
            Command<CancelMigration>(_ =>
            {
                cancelled = true;
                record.Status = streaming ? "cancelling" : record.Status;
                if (streaming)
                    Context.ActorSelection(ActorNames.HypervisorPath(sourceAddress)).Tell(new CancelGuestMigration(_vmId, newGeneration), Self);
                Sender.Tell(record.ToStatus(_vmId));
            });
            Command<MigrateVm>(_ => Sender.Tell(new CommandRejected(_vmId, $"VM '{_vmId}' is already migrating to '{target ?? command.TargetHost ?? "a host the scheduler picks"}'", RejectionKind.Conflict)));
            // The source's host is gone: if the guest landed, it lives on the target; else it is lost with its host.
            Command<Terminated>(t => t.ActorRef.Equals(_host), _ =>
            {
                _host = null;
                if (landed)
                {
                    Commit(null);
                    return;
                }
                if (targetAddress is not null)
                    Context.ActorSelection(ActorNames.HypervisorPath(targetAddress)).Tell(new AbortMigration(_vmId, newGeneration, "the source host left"));
                Persist(new VmMigrationAborted(newGeneration, "the source host left"), e =>
                {
                    Apply(e);
                    record.Fail("failed", $"host '{source}' left the cluster during the migration");
                    Finish();
                    Self.Tell(new HostGone(generation, $"host '{source}' left the cluster during a migration"));
                });
            });
            Command<GuestExited>(e => StashOrIgnore(e));
            AnswerQueries();
            CommandAny(_ => Stash.Stash());
        });

        void Abandon(string status, string reason, RejectionKind kind)
        {
            Context.ActorSelection(ActorNames.HypervisorPath(targetAddress!)).Tell(new AbortMigration(_vmId, newGeneration, reason));
            Persist(new VmMigrationAborted(newGeneration, reason), e =>
            {
                Apply(e);
                record.Fail(status, reason);
                Reject(new(reason, kind), replyTo);
                Finish();
            });
        }

        void Commit(MigrationFigures? figures)
        {
            Persist(new VmMigrated(target!, targetAddress!, newGeneration), e =>
            {
                using (var commit = TernTracing.Start("migration.commit", context))
                {
                    commit?.SetTag("tern.vm", _vmId);
                    commit?.SetTag("tern.generation", newGeneration);
                    commit?.SetTag("tern.host", target);
                    Apply(e);
                }
                if (targetRef is not null)
                    WatchHost(targetRef);
                else
                    Context.ActorSelection(ActorNames.HypervisorPath(targetAddress!)).Tell(new ProbeGuest(_vmId, newGeneration), Self);
                record.Status = "completed";
                record.Figures = figures;
                if (figures is not null)
                    MigrationTelemetry.Record(_vmId, target!, figures);
                _log.Info("VM {0} migrated from {1} to {2} (generation {3})", _vmId, source, target, newGeneration);
                Finish();
            });
        }
    }

    // After a restart in the middle of a migration: the journal has the new generation but not its
    // outcome. If the target runs it, the switchover happened; otherwise it did not.
    private void BeginReconcileMigration(long generation)
    {
        var pending = _state.Migration!;
        Context.ActorSelection(ActorNames.HypervisorPath(pending.HostAddress)).Tell(new ProbeGuest(_vmId, generation), Self);
        Timers.StartSingleTimer("op", new OperationTimeout(generation), _guestTimeout);
        BecomeStacked(() =>
        {
            Command<GuestStarted>(s => s.Generation == generation, _ =>
            {
                WatchHost(Sender);
                string? from = _state.Host;
                Persist(new VmMigrated(pending.Host, pending.HostAddress, generation), e =>
                {
                    Apply(e);
                    _migration = new MigrationRecord("completed", from ?? "?", pending.Host, generation);
                    Finish();
                });
            });
            Command<GuestExited>(x => x.Generation == generation, x => Aborted(x.Reason));
            Command<OperationTimeout>(t => t.Generation == generation, _ => Aborted($"host '{pending.Host}' did not answer"));
            AnswerQueries();
            CommandAny(_ => Stash.Stash());
        });

        void Aborted(string reason)
        {
            Context.ActorSelection(ActorNames.HypervisorPath(pending.HostAddress)).Tell(new AbortMigration(_vmId, generation, reason));
            Persist(new VmMigrationAborted(generation, reason), e =>
            {
                Apply(e);
                _migration = new MigrationRecord("failed", _state.Host ?? "?", pending.Host, generation);
                _migration.Fail("failed", $"the VM's controller restarted during the migration and generation {generation} does not run on '{pending.Host}' ({reason}); the guest keeps running on the source");
                Finish();
                if (_state.OnHost)
                    Self.Tell(new Reconcile(_state.Generation));
            });
        }
    }

    // Placing: ask the scheduler, persist the placement (and the creation), then ask the host to boot.
    private void BeginStart(VmSpec spec, bool create, TraceContext? trace)
    {
        var replyTo = Sender;
        var context = BeginOperation(create ? "vm.create" : "vm.start", trace);
        _scheduler.Ask<object>(new PlaceVm(_vmId, spec.MemoryBytes, spec.Harts, spec.PreferredHost, context), _guestTimeout)
            .PipeTo(Self, failure: e => new PlacementRefused(_vmId, $"the scheduler did not answer: {e.GetBaseException().Message}"));
        BecomeStacked(() =>
        {
            Command<VmPlaced>(p =>
            {
                long generation = _state.NextGeneration;
                var events = new List<IVmEvent>();
                if (create)
                    events.Add(new VmCreated(spec));
                events.Add(new VmPlacedOnHost(p.Host, p.HostAddress, generation));
                PersistAll(events, e =>
                {
                    Apply(e);
                    if (e is not VmPlacedOnHost)
                        return;
                    Context.ActorSelection(ActorNames.HypervisorPath(p.HostAddress)).Tell(new StartGuest(_vmId, spec, generation, context), Self);
                    Timers.StartSingleTimer("op", new OperationTimeout(generation), _guestTimeout);
                    Context.UnbecomeStacked();
                    AwaitBoot(replyTo, generation, create);
                });
            });
            Command<PlacementRefused>(r =>
            {
                Reject(new(r.Reason, r.Reason.StartsWith("the scheduler did not answer", StringComparison.Ordinal) ? RejectionKind.Unavailable : RejectionKind.Refused), replyTo);
                Finish();
            });
            Command<GuestExited>(e => StashOrIgnore(e));
            AnswerQueries();
            CommandAny(_ => Stash.Stash());
        });
    }

    private void AwaitBoot(IActorRef replyTo, long generation, bool create)
    {
        BecomeStacked(() =>
        {
            Command<GuestStarted>(s => s.Generation == generation, s => Persist(new VmRunning(generation), e =>
            {
                WatchHost(Sender);
                _autoRestart = false;
                Apply(e);
                replyTo.Tell(_state.ToStatus(_vmId));
                Finish();
            }));
            // A VM whose creation fails to boot is not kept: a refused create leaves nothing behind.
            Command<GuestRefused>(r => r.Generation == generation, r => Failed(r.Reason));
            Command<OperationTimeout>(t => t.Generation == generation, _ =>
                Failed($"host '{_state.Host}' did not confirm the boot within {_guestTimeout.TotalSeconds:0} s"));
            // A guest that powers off at once may report its exit (through the shard region) before its start.
            Command<GuestExited>(x => x.Generation == generation, x => Persist(new VmStopped(generation, x.Reason), e =>
            {
                Apply(e);
                replyTo.Tell(_state.ToStatus(_vmId));
                Finish();
            }));
            AnswerQueries();
            CommandAny(_ => Stash.Stash());
        });

        void Failed(string reason)
        {
            var events = new List<IVmEvent> { new VmFailed(generation, reason) };
            if (create)
                events.Add(new VmDeleted());
            PersistAll(events, e =>
            {
                Apply(e);
                if (e is VmFailed && create)
                    return;
                Reject(new(reason, RejectionKind.Refused), replyTo);
                Finish();
                if (!create && _autoRestart && _state.Desired == DesiredState.Running)
                {
                    var delay = TimeSpan.FromSeconds(Math.Min(30, 1 << Math.Min(_restartFailures++, 5)));
                    Timers.StartSingleTimer("restart", RestartTick.Instance, delay);
                }
            });
        }
    }

    // Stopping: record the wish, ask the host, and wait for its GuestExited (or time out).
    private void BeginStop(bool delete, TraceContext? trace)
    {
        var replyTo = Sender;
        var context = BeginOperation(delete ? "vm.delete" : "vm.stop", trace);
        if (!_state.OnHost)
        {
            EndOperation();
            var last = _state.ToStatus(_vmId);
            if (delete)
            {
                Persist(new VmDeleted(), e =>
                {
                    Apply(e);
                    replyTo.Tell(last);
                    PassivateIfGone();
                });
            }
            else if (_state.Desired == DesiredState.Running)
            {
                Persist(new VmStopRequested(), e =>
                {
                    Apply(e);
                    replyTo.Tell(_state.ToStatus(_vmId));
                });
            }
            else
            {
                replyTo.Tell(last);
            }
            return;
        }
        long generation = _state.Generation;
        Persist(new VmStopRequested(), e =>
        {
            Apply(e);
            Context.ActorSelection(ActorNames.HypervisorPath(_state.HostAddress!)).Tell(new StopGuest(_vmId, generation, context), Self);
            Timers.StartSingleTimer("op", new OperationTimeout(generation), _guestTimeout);
        });
        BecomeStacked(() =>
        {
            Command<GuestExited>(x => x.Generation == generation, x => Stopped(x.Reason));
            Command<OperationTimeout>(t => t.Generation == generation, _ =>
                Stopped($"host '{_state.Host}' did not confirm the stop within {_guestTimeout.TotalSeconds:0} s; generation {generation} is fenced"));
            AnswerQueries();
            CommandAny(_ => Stash.Stash());
        });

        void Stopped(string reason)
        {
            var events = new List<IVmEvent> { new VmStopped(generation, reason) };
            if (delete)
                events.Add(new VmDeleted());
            VmStatus? last = null;
            PersistAll(events, e =>
            {
                if (e is VmDeleted)
                    last = _state.ToStatus(_vmId);
                Apply(e);
                if (e is VmStopped && delete)
                    return;
                replyTo.Tell(last ?? _state.ToStatus(_vmId));
                Finish();
                PassivateIfGone();
            });
        }
    }

    // Death watch on the hypervisor running the current generation: when its node leaves or is
    // downed, the guest is gone with it.
    private void WatchHost(IActorRef hypervisor)
    {
        if (_host is not null && !_host.Equals(hypervisor))
            Context.Unwatch(_host);
        _host = hypervisor;
        Context.Watch(hypervisor);
    }

    private void StashOrIgnore(GuestExited e)
    {
        if (e.Generation == _state.Generation)
            Stash.Stash();
    }

    // An operation (create, start, stop, delete) is one span from the command to its outcome,
    // over several messages; the context it returns goes into the messages it sends.
    private TraceContext? BeginOperation(string name, TraceContext? trace)
    {
        EndOperation();
        _operation = TernTracing.StartDetached(name, trace, System.Diagnostics.ActivityKind.Server);
        _operation?.SetTag("tern.vm", _vmId);
        return TernTracing.Capture(_operation, trace);
    }

    private void EndOperation()
    {
        if (_operation is null)
            return;
        _operation.SetTag("tern.host", _state.Host);
        _operation.SetTag("tern.generation", _state.Generation);
        TernTracing.StopDetached(_operation);
        _operation = null;
    }

    private void Finish()
    {
        EndOperation();
        Timers.Cancel("op");
        Context.UnbecomeStacked();
        Stash.UnstashAll();
    }

    private void Apply(IVmEvent e)
    {
        string? host = _state.Host;
        _state = _state.Apply(e);
        PublishEvent(e, host);
        _log.Debug("VM {0}: {1} -> {2} on {3} (generation {4})", _vmId, e.GetType().Name, _state.Phase, _state.Host ?? "-", _state.Generation);
    }

    // Tells the cluster's event logs what just happened (not during recovery: replayed events happened before).
    private void PublishEvent(IVmEvent e, string? hostBefore)
    {
        var published = e switch
        {
            VmCreated => TernEvent.Now(TernEventKinds.VmCreated, _vmId, null, _state.Generation),
            VmPlacedOnHost p => TernEvent.Now(TernEventKinds.VmPlaced, _vmId, p.Host, p.Generation),
            VmRunning r => TernEvent.Now(TernEventKinds.VmStarted, _vmId, _state.Host, r.Generation),
            VmStopped s => TernEvent.Now(TernEventKinds.VmStopped, _vmId, hostBefore, s.Generation, s.Reason),
            VmLost l => TernEvent.Now(TernEventKinds.VmLost, _vmId, hostBefore, l.Generation, l.Reason),
            VmFailed f => TernEvent.Now(TernEventKinds.VmFailed, _vmId, hostBefore, f.Generation, f.Reason),
            VmDeleted => TernEvent.Now(TernEventKinds.VmDeleted, _vmId, null, _state.Generation),
            VmMigrationStarted m => TernEvent.Now(TernEventKinds.VmMigrating, _vmId, m.Host, m.Generation, hostBefore is null ? null : $"from {hostBefore}"),
            VmMigrated m => TernEvent.Now(TernEventKinds.VmMigrated, _vmId, m.Host, m.Generation, hostBefore is null ? null : $"from {hostBefore}"),
            VmMigrationAborted a => TernEvent.Now(TernEventKinds.VmMigrationAborted, _vmId, _state.Host, a.Generation, a.Reason),
            _ => null,
        };
        if (published is not null)
            EventLog.Publish(Context.System, published);
    }

    private void Reject(Refusal refusal, IActorRef? to = null)
    {
        _operation?.SetStatus(System.Diagnostics.ActivityStatusCode.Error, refusal.Reason);
        (to ?? Sender).Tell(new CommandRejected(_vmId, refusal.Reason, refusal.Kind));
        PassivateIfGone();
    }

    // A controller without a VM must not stay remembered: passivating it removes it from remember-entities.
    private void PassivateIfGone()
    {
        if (!_state.Exists)
            Context.Parent.Tell(new Passivate(PoisonPill.Instance));
    }

    private sealed record OperationTimeout(long Generation) : INoSerializationVerificationNeeded;

    private sealed record Reconcile(long Generation) : INoSerializationVerificationNeeded;

    private sealed record ReconcileMigration(long Generation) : INoSerializationVerificationNeeded;

    // How long a streaming migration may go without a progress report before the source is asked to give up.
    private static readonly TimeSpan Stall = TimeSpan.FromSeconds(60);

    // The controller's memory of the current or last migration (not journaled: the journal keeps only its outcome).
    private sealed class MigrationRecord(string status, string from, string? to, long generation)
    {
        public string Status { get; set; } = status;
        public string? To { get; set; } = to;
        public long Generation { get; set; } = generation;
        public MigrationProgressView? Progress { get; set; }
        public MigrationFigures? Figures { get; set; }
        public string? Error { get; set; }

        public void Fail(string status, string error)
        {
            Status = status;
            Error = error;
        }

        public MigrationStatus ToStatus(string vmId) => new(vmId, Status, from, To, Generation, Progress, Figures, Error);
    }

    private sealed record HostGone(long Generation, string Reason) : INoSerializationVerificationNeeded;

    private sealed class RestartTick : INoSerializationVerificationNeeded
    {
        public static readonly RestartTick Instance = new();
    }
}
