// The VM controller's logic without the actor: which commands are allowed, and how events
// change the state. The actor persists what Decide allows and folds events through Apply.
using Tern.Cluster.Protocol;

namespace Tern.Cluster.State;

/// <summary>A migration whose outcome is not yet journaled: generation <see cref="Generation"/> on <see cref="Host"/>.</summary>
public sealed record PendingMigration(string Host, string HostAddress, long Generation);

/// <summary>Why a command may not go ahead.</summary>
public sealed record Refusal(string Reason, RejectionKind Kind);

/// <summary>Everything a VM controller knows about its VM.</summary>
public sealed record VmControllerState
{
    /// <summary>The state of a VM that was never created (or was deleted).</summary>
    public static readonly VmControllerState Empty = new();

    /// <summary>The spec, or null when the VM does not exist.</summary>
    public VmSpec? Spec { get; init; }

    /// <summary>Whether the user wants the VM running.</summary>
    public DesiredState Desired { get; init; }

    /// <summary>Where the VM is in its life.</summary>
    public VmPhase Phase { get; init; }

    /// <summary>The host running (or booting) the current generation.</summary>
    public string? Host { get; init; }

    /// <summary>The Akka address of <see cref="Host"/>.</summary>
    public string? HostAddress { get; init; }

    /// <summary>Bumped on every (re)start and never reused, even across a delete: it fences stale incarnations.</summary>
    public long Generation { get; init; }

    /// <summary>The highest generation ever handed out (a migration reserves one before it runs); never handed out again.</summary>
    public long HighestGeneration { get; init; }

    /// <summary>The generation the next start or migration gets.</summary>
    public long NextGeneration => Math.Max(Generation, HighestGeneration) + 1;

    /// <summary>The migration in progress, or null.</summary>
    public PendingMigration? Migration { get; init; }

    /// <summary>Why the last start failed or the guest last stopped.</summary>
    public string? LastError { get; init; }

    /// <summary>How many times the cluster started the VM again after losing it (its host died or left), since it was created.</summary>
    public int Restarts { get; init; }

    /// <summary>Why the VM was last restarted (the loss that preceded the restart), or null when it never was.</summary>
    public string? LastRestartReason { get; init; }

    /// <summary>The loss of a VM that should run, while its restart is pending: the next placement is a restart.</summary>
    public string? PendingRestart { get; init; }

    /// <summary>Whether the VM exists.</summary>
    public bool Exists => Spec is not null;

    /// <summary>Whether a generation is placed on a host.</summary>
    public bool OnHost => Phase is VmPhase.Starting or VmPhase.Running;

    /// <summary>Why a create must be refused, or null when it may go ahead.</summary>
    public Refusal? CheckCreate(CreateVm command)
    {
        ArgumentNullException.ThrowIfNull(command);
        if (Exists)
            return new($"a VM named '{command.VmId}' already exists", RejectionKind.Conflict);
        if (command.Spec.Name != command.VmId)
            return new($"the spec names '{command.Spec.Name}' but the command is for '{command.VmId}'", RejectionKind.Invalid);
        return VmSpecRules.Check(command.Spec) is { } invalid ? new(invalid, RejectionKind.Invalid) : null;
    }

    /// <summary>Why a start/stop/delete/get/console must be refused because the VM does not exist, or null.</summary>
    public Refusal? CheckExists(string vmId) => Exists ? null : new($"no VM named '{vmId}'", RejectionKind.NotFound);

    /// <summary>Why a migration must be refused, or null when it may go ahead (the target is then checked by the scheduler and the target host).</summary>
    public Refusal? CheckMigrate(MigrateVm command)
    {
        ArgumentNullException.ThrowIfNull(command);
        if (CheckExists(command.VmId) is { } missing)
            return missing;
        if (command.Settings.Check() is { } bad)
            return new(bad, RejectionKind.Invalid);
        if (Migration is not null)
            return new($"VM '{command.VmId}' is already migrating to '{Migration.Host}'", RejectionKind.Conflict);
        if (Phase != VmPhase.Running || Host is null)
            return new($"VM '{command.VmId}' is {Phase.ToString().ToLowerInvariant()}; only a running VM can be migrated", RejectionKind.Conflict);
        if (command.TargetHost == Host)
            return new($"VM '{command.VmId}' already runs on '{Host}'", RejectionKind.Invalid);
        return null;
    }

    /// <summary>
    /// Folds one journal event into the state. A restart is a placement that follows the loss of
    /// a VM that should run (VmLost, then VmPlacedOnHost); it is counted from the journal as it
    /// stands, so no event of its own is needed.
    /// </summary>
    public VmControllerState Apply(IVmEvent e) => e switch
    {
        VmCreated c => Empty with { Spec = c.Spec, Generation = Generation, HighestGeneration = HighestGeneration },
        VmPlacedOnHost p => this with
        {
            Desired = DesiredState.Running,
            Phase = VmPhase.Starting,
            Host = p.Host,
            HostAddress = p.HostAddress,
            Generation = p.Generation,
            HighestGeneration = Math.Max(HighestGeneration, p.Generation),
            LastError = null,
            Migration = null,
            Restarts = PendingRestart is null ? Restarts : Restarts + 1,
            LastRestartReason = PendingRestart ?? LastRestartReason,
            PendingRestart = null,
        },
        VmMigrationStarted m => this with { Migration = new(m.Host, m.HostAddress, m.Generation), HighestGeneration = Math.Max(HighestGeneration, m.Generation) },
        VmMigrated m when Migration?.Generation == m.Generation => this with { Phase = VmPhase.Running, Host = m.Host, HostAddress = m.HostAddress, Generation = m.Generation, Migration = null },
        VmMigrationAborted a when Migration?.Generation == a.Generation => this with { Migration = null },
        VmRunning r when r.Generation == Generation => this with { Phase = VmPhase.Running },
        VmStopRequested => this with { Desired = DesiredState.Stopped, PendingRestart = null },
        VmStopped s when s.Generation == Generation => this with { Phase = VmPhase.Stopped, Desired = DesiredState.Stopped, Host = null, HostAddress = null, LastError = s.Reason, Migration = null, PendingRestart = null },
        VmLost l when l.Generation == Generation => this with
        {
            Phase = VmPhase.Stopped,
            Host = null,
            HostAddress = null,
            LastError = l.Reason,
            Migration = null,
            PendingRestart = Desired == DesiredState.Running ? l.Reason : null,
        },
        VmFailed f when f.Generation == Generation => this with { Phase = VmPhase.Failed, Host = null, HostAddress = null, LastError = f.Reason, Migration = null, PendingRestart = null },
        VmDeleted => Empty with { Generation = Generation, HighestGeneration = HighestGeneration },
        VmRunning or VmStopped or VmFailed or VmLost or VmMigrated or VmMigrationAborted => this,
        _ => throw new ArgumentException($"unknown VM event {e.GetType().Name}", nameof(e)),
    };

    /// <summary>The status reported to users.</summary>
    public VmStatus ToStatus(string vmId) =>
        new(vmId, Spec ?? throw new InvalidOperationException($"VM '{vmId}' does not exist"), Desired, Phase, Host, Generation, LastError, Restarts, LastRestartReason);
}
