// The VM controller's logic without the actor: which commands are allowed, and how events
// change the state. The actor persists what Decide allows and folds events through Apply.
using Tern.Cluster.Protocol;

namespace Tern.Cluster.State;

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

    /// <summary>Why the last start failed or the guest last stopped.</summary>
    public string? LastError { get; init; }

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

    /// <summary>Folds one journal event into the state.</summary>
    public VmControllerState Apply(IVmEvent e) => e switch
    {
        VmCreated c => Empty with { Spec = c.Spec, Generation = Generation },
        VmPlacedOnHost p => this with { Desired = DesiredState.Running, Phase = VmPhase.Starting, Host = p.Host, HostAddress = p.HostAddress, Generation = p.Generation, LastError = null },
        VmRunning r when r.Generation == Generation => this with { Phase = VmPhase.Running },
        VmStopRequested => this with { Desired = DesiredState.Stopped },
        VmStopped s when s.Generation == Generation => this with { Phase = VmPhase.Stopped, Desired = DesiredState.Stopped, Host = null, HostAddress = null, LastError = s.Reason },
        VmLost l when l.Generation == Generation => this with { Phase = VmPhase.Stopped, Host = null, HostAddress = null, LastError = l.Reason },
        VmFailed f when f.Generation == Generation => this with { Phase = VmPhase.Failed, Host = null, HostAddress = null, LastError = f.Reason },
        VmDeleted => Empty with { Generation = Generation },
        VmRunning or VmStopped or VmFailed or VmLost => this,
        _ => throw new ArgumentException($"unknown VM event {e.GetType().Name}", nameof(e)),
    };

    /// <summary>The status reported to users.</summary>
    public VmStatus ToStatus(string vmId) =>
        new(vmId, Spec ?? throw new InvalidOperationException($"VM '{vmId}' does not exist"), Desired, Phase, Host, Generation, LastError);
}
