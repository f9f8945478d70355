// The VM controller's rules and event folding, without an actor system.
using Tern.Cluster.Protocol;
using Tern.Cluster.State;
using static Tern.Cluster.Tests.TestSpecs;

namespace Tern.Cluster.Tests;

public sealed class VmControllerStateTests
{
    private static VmControllerState Fold(params IVmEvent[] events) => events.Aggregate(VmControllerState.Empty, (s, e) => s.Apply(e));

    [Fact]
    public void Create_is_allowed_once_per_name()
    {
        var create = new CreateVm("web1", Spec("web1"), null);
        Assert.Null(VmControllerState.Empty.CheckCreate(create));
        var created = Fold(new VmCreated(Spec("web1")));
        Assert.Equal(new Refusal("a VM named 'web1' already exists", RejectionKind.Conflict), created.CheckCreate(create));
    }

    [Fact]
    public void Create_refuses_a_bad_spec_or_a_mismatched_name()
    {
        Assert.Contains("but the command is for", VmControllerState.Empty.CheckCreate(new CreateVm("a", Spec("b"), null))!.Reason);
        Assert.Contains("harts", VmControllerState.Empty.CheckCreate(new CreateVm("a", Spec("a", harts: 9), null))!.Reason);
        Assert.Contains("memory", VmControllerState.Empty.CheckCreate(new CreateVm("a", Spec("a", memoryMib: 1), null))!.Reason);
        Assert.Contains("valid VM name", VmControllerState.Empty.CheckCreate(new CreateVm("Bad_Name", Spec("Bad_Name"), null))!.Reason);
    }

    [Fact]
    public void Placement_bumps_the_generation_and_a_stop_of_that_generation_frees_the_host()
    {
        var s = Fold(new VmCreated(Spec("a")), new VmPlacedOnHost("node-2", "addr2", 1), new VmRunning(1));
        Assert.Equal((VmPhase.Running, "node-2", 1L, DesiredState.Running), (s.Phase, s.Host, s.Generation, s.Desired));
        s = s.Apply(new VmStopRequested()).Apply(new VmStopped(1, "stopped by the host"));
        Assert.Equal((VmPhase.Stopped, (string?)null, DesiredState.Stopped), (s.Phase, s.Host, s.Desired));
        s = s.Apply(new VmPlacedOnHost("node-3", "addr3", 2));
        Assert.Equal((VmPhase.Starting, "node-3", 2L), (s.Phase, s.Host, s.Generation));
    }

    [Fact]
    public void Events_of_a_stale_generation_change_nothing()
    {
        var s = Fold(new VmCreated(Spec("a")), new VmPlacedOnHost("h", "x", 1), new VmStopped(1, "off"), new VmPlacedOnHost("h2", "y", 2), new VmRunning(2));
        Assert.Equal(s, s.Apply(new VmStopped(1, "late news")));
        Assert.Equal(s, s.Apply(new VmFailed(1, "late news")));
        Assert.Equal(s, s.Apply(new VmRunning(1)));
    }

    [Fact]
    public void A_lost_generation_frees_the_host_but_keeps_the_wish_to_run()
    {
        var s = Fold(new VmCreated(Spec("a")), new VmPlacedOnHost("h", "x", 1), new VmRunning(1), new VmLost(1, "host gone"));
        Assert.Equal((VmPhase.Stopped, DesiredState.Running, (string?)null, "host gone"), (s.Phase, s.Desired, s.Host, s.LastError));
    }

    [Fact]
    public void Failure_records_the_reason()
    {
        var s = Fold(new VmCreated(Spec("a")), new VmPlacedOnHost("h", "x", 1), new VmFailed(1, "cannot boot"));
        Assert.Equal((VmPhase.Failed, "cannot boot", (string?)null), (s.Phase, s.LastError, s.Host));
        Assert.False(s.OnHost);
    }

    [Fact]
    public void Delete_frees_the_name_but_never_the_generation()
    {
        var s = Fold(new VmCreated(Spec("a")), new VmPlacedOnHost("h", "x", 3), new VmStopped(3, "off"), new VmDeleted());
        Assert.False(s.Exists);
        Assert.Equal(3, s.Generation);
        Assert.Null(s.CheckCreate(new CreateVm("a", Spec("a"), null)));
        Assert.Equal(3, s.Apply(new VmCreated(Spec("a"))).Generation);
        Assert.Equal(new Refusal("no VM named 'a'", RejectionKind.NotFound), s.CheckExists("a"));
    }

    [Fact]
    public void Status_reports_the_state()
    {
        var s = Fold(new VmCreated(Spec("a")), new VmPlacedOnHost("h", "x", 1), new VmRunning(1));
        Assert.Equal(new VmStatus("a", s.Spec!, DesiredState.Running, VmPhase.Running, "h", 1, null), s.ToStatus("a"));
    }
}
