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

    [Fact]
    public void A_placement_after_the_loss_of_a_running_vm_is_a_restart_with_the_loss_as_its_reason()
    {
        var s = Fold(new VmCreated(Spec("a")), new VmPlacedOnHost("node-1", "x", 1), new VmRunning(1));
        Assert.Equal((0, (string?)null), (s.Restarts, s.LastRestartReason));
        s = s.Apply(new VmLost(1, "generation 1 lost: host 'node-1' left the cluster"));
        Assert.Equal(0, s.Restarts); // lost, not yet restarted
        s = s.Apply(new VmPlacedOnHost("node-2", "y", 2)).Apply(new VmRunning(2));
        Assert.Equal((1, "generation 1 lost: host 'node-1' left the cluster", "node-2", 2L), (s.Restarts, s.LastRestartReason, s.Host, s.Generation));
        s = s.Apply(new VmLost(2, "generation 2 lost: host 'node-2' did not answer")).Apply(new VmPlacedOnHost("node-3", "z", 3));
        Assert.Equal((2, "generation 2 lost: host 'node-2' did not answer"), (s.Restarts, s.LastRestartReason));
        var status = s.ToStatus("a");
        Assert.Equal((2, "generation 2 lost: host 'node-2' did not answer", "node-3", 3L), (status.Restarts, status.LastRestartReason, status.Host, status.Generation));
    }

    [Fact]
    public void Starts_migrations_and_user_restarts_are_not_counted_as_restarts()
    {
        // Stopped by the user, then started: not a restart.
        var s = Fold(new VmCreated(Spec("a")), new VmPlacedOnHost("h", "x", 1), new VmRunning(1), new VmStopRequested(), new VmStopped(1, "off"),
            new VmPlacedOnHost("h", "x", 2), new VmRunning(2));
        Assert.Equal(0, s.Restarts);
        // Migrated: not a restart.
        s = s.Apply(new VmMigrationStarted("h2", "y", 3)).Apply(new VmMigrated("h2", "y", 3));
        Assert.Equal((0, 3L), (s.Restarts, s.Generation));
        // Lost while the user had asked it to stop, then started by the user: not a restart.
        s = s.Apply(new VmStopRequested()).Apply(new VmLost(3, "host gone")).Apply(new VmPlacedOnHost("h", "x", 4));
        Assert.Equal(0, s.Restarts);
        // Lost, the restart failed to boot, then the user started it: the failed attempt was the restart.
        s = s.Apply(new VmRunning(4)).Apply(new VmLost(4, "host gone")).Apply(new VmPlacedOnHost("h3", "z", 5)).Apply(new VmFailed(5, "cannot boot"))
            .Apply(new VmPlacedOnHost("h3", "z", 6));
        Assert.Equal((1, "host gone"), (s.Restarts, s.LastRestartReason));
    }

    [Fact]
    public void A_restart_count_survives_a_replay_of_the_journal_and_a_recreated_vm_starts_from_zero()
    {
        IVmEvent[] journal = [new VmCreated(Spec("a")), new VmPlacedOnHost("h", "x", 1), new VmLost(1, "host gone"), new VmPlacedOnHost("h2", "y", 2)];
        Assert.Equal(Fold(journal), Fold(journal)); // a replay folds to the same state
        Assert.Equal(1, Fold(journal).Restarts);
        var again = Fold([.. journal, new VmStopRequested(), new VmStopped(2, "off"), new VmDeleted(), new VmCreated(Spec("a"))]);
        Assert.Equal((0, (string?)null), (again.Restarts, again.LastRestartReason));
    }

    [Theory]
    [InlineData("/var/lib/tern/disk.img", null)]
    [InlineData("lv:vg0/disk1", null)]
    [InlineData("lv:vg.0/disk_1+x", null)]
    [InlineData("lv:vg0", "a logical volume is written lv:VG/LV")]
    [InlineData("lv:vg0/", "a logical volume is written lv:VG/LV")]
    [InlineData("lv:/d1", "a logical volume is written lv:VG/LV")]
    [InlineData("lv:vg0/d1/x", "a logical volume is written lv:VG/LV")]
    [InlineData("lv:vg 0/d1", "volume group 'vg 0' is not a valid name")]
    [InlineData("lv:vg0/-d1", "logical volume '-d1' is not a valid name")]
    [InlineData("", "an empty disk")]
    public void Disks_are_files_or_well_formed_logical_volumes(string disk, string? problem)
    {
        var refusal = VmControllerState.Empty.CheckCreate(new CreateVm("a", Spec("a") with { Disks = [disk] }, null));
        if (problem is null)
        {
            Assert.Null(refusal);
            Assert.Equal(disk.StartsWith("lv:", StringComparison.Ordinal), VmSpecRules.TryParseLvDisk(disk, out _, out _));
        }
        else
        {
            Assert.Equal(RejectionKind.Invalid, refusal!.Kind);
            Assert.Contains(problem, refusal.Reason, StringComparison.Ordinal);
            Assert.False(VmSpecRules.TryParseLvDisk(disk, out _, out _));
        }
    }

    [Fact]
    public void A_logical_volume_disk_parses_into_its_vg_and_lv_and_a_disk_given_twice_is_refused()
    {
        Assert.True(VmSpecRules.TryParseLvDisk("lv:vg0/d1", out string vg, out string lv));
        Assert.Equal(("vg0", "d1"), (vg, lv));
        var twice = VmControllerState.Empty.CheckCreate(new CreateVm("a", Spec("a") with { Disks = ["lv:vg0/d1", "lv:vg0/d1"] }, null));
        Assert.Equal("disk 'lv:vg0/d1' is given twice", twice!.Reason);
        var many = VmControllerState.Empty.CheckCreate(new CreateVm("a", Spec("a") with { Disks = [.. Enumerable.Range(0, 9).Select(i => $"lv:vg0/d{i}")] }, null));
        Assert.Contains("at most 8", many!.Reason, StringComparison.Ordinal);
    }
}
