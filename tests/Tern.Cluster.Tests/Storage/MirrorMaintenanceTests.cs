// Mirror maintenance: when a missing leg is rebuilt (decided on a fake clock), the settings read
// from the environment, and the work itself on real PV files: a leg that answers again is
// resynced from its write-intent regions, a leg gone for the repair delay is rebuilt on the host
// that holds no other copy.
using Tern.Cluster.Storage;
using Tern.Storage;
using Tern.Storage.Faults;
using Tern.Storage.Format;

namespace Tern.Cluster.Tests.Storage;

public sealed class MirrorMaintenanceTests : IDisposable
{
    private const long Extent = 1 << 20;
    private static readonly DateTimeOffset T0 = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);
    private readonly string _dir = Directory.CreateTempSubdirectory("tern-mirror-").FullName;
    private readonly List<IDisposable> _open = [];

    public void Dispose()
    {
        for (int i = _open.Count - 1; i >= 0; i--)
            _open[i].Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    private sealed class FakeClock(DateTimeOffset now) : TimeProvider
    {
        public DateTimeOffset Now { get; set; } = now;

        public override DateTimeOffset GetUtcNow() => Now;
    }

    private static DegradedLeg Leg(Guid pv, LegProblem problem, string host = "h1") =>
        new("vg0", "m", 0, 1, pv, "/pv/" + host, host, problem, problem == LegProblem.OutOfDate ? 1 : 0);

    [Fact]
    public void A_missing_leg_is_repaired_only_once_it_has_been_away_for_the_delay()
    {
        var clock = new FakeClock(T0);
        var m = new MirrorMaintenance(new MirrorMaintenanceOptions { RepairAfter = TimeSpan.FromMinutes(10) }, clock);
        var pv = Guid.NewGuid();

        var first = m.Decide("vg0", "m", [Leg(pv, LegProblem.Missing)]);
        Assert.Equal((MaintenanceAction.Wait, T0.AddMinutes(10)), (first.Action, first.RepairAt));
        clock.Now = T0.AddMinutes(10).AddSeconds(-1);
        Assert.Equal(MaintenanceAction.Wait, m.Decide("vg0", "m", [Leg(pv, LegProblem.Failed)]).Action);
        clock.Now = T0.AddMinutes(10);
        var due = m.Decide("vg0", "m", [Leg(pv, LegProblem.Missing)]);
        Assert.Equal((MaintenanceAction.Repair, T0.AddMinutes(10)), (due.Action, due.RepairAt));

        // Another LV's leg on the same PV has its own clock.
        Assert.Equal(MaintenanceAction.Wait, m.Decide("vg0", "other", [Leg(pv, LegProblem.Missing)]).Action);
    }

    [Fact]
    public void A_leg_that_returns_is_resynced_and_its_next_absence_starts_the_delay_again()
    {
        var clock = new FakeClock(T0);
        var m = new MirrorMaintenance(new MirrorMaintenanceOptions { RepairAfter = TimeSpan.FromMinutes(10) }, clock);
        var pv = Guid.NewGuid();
        m.Decide("vg0", "m", [Leg(pv, LegProblem.Missing)]);
        clock.Now = T0.AddMinutes(8);
        Assert.Equal((MaintenanceAction.Resync, (DateTimeOffset?)null), (m.Decide("vg0", "m", [Leg(pv, LegProblem.OutOfDate)]).Action, m.Decide("vg0", "m", [Leg(pv, LegProblem.OutOfDate)]).RepairAt));
        clock.Now = T0.AddMinutes(9);
        var again = m.Decide("vg0", "m", [Leg(pv, LegProblem.Missing)]);
        Assert.Equal((MaintenanceAction.Wait, T0.AddMinutes(19)), (again.Action, again.RepairAt));
        clock.Now = T0.AddMinutes(12);
        Assert.Equal(MaintenanceAction.Wait, m.Decide("vg0", "m", [Leg(pv, LegProblem.Missing)]).Action);
        Assert.Equal(MaintenanceAction.None, m.Decide("vg0", "m", []).Action);
    }

    [Fact]
    public void With_repair_off_a_missing_leg_waits_forever_while_present_legs_are_resynced()
    {
        var clock = new FakeClock(T0);
        var m = new MirrorMaintenance(new MirrorMaintenanceOptions { RepairAfter = null }, clock);
        var away = Guid.NewGuid();
        m.Decide("vg0", "m", [Leg(away, LegProblem.Missing)]);
        clock.Now = T0.AddDays(30);
        var d = m.Decide("vg0", "m", [Leg(away, LegProblem.Missing)]);
        Assert.Equal((MaintenanceAction.Wait, (DateTimeOffset?)null), (d.Action, d.RepairAt));
        Assert.Equal(MaintenanceAction.Resync, m.Decide("vg0", "m", [Leg(away, LegProblem.Missing), Leg(Guid.NewGuid(), LegProblem.Stale, "h2")]).Action);
    }

    [Fact]
    public void Settings_come_from_the_environment_and_bad_values_are_refused_in_one_line()
    {
        var defaults = MirrorMaintenanceOptions.FromEnvironment(_ => null);
        Assert.Equal((TimeSpan.FromMinutes(10), 64L << 20), (defaults.RepairAfter!.Value, defaults.ResyncBytesPerSecond));
        var env = new Dictionary<string, string>
        {
            [MirrorMaintenanceOptions.RepairAfterVariable] = "90s",
            [MirrorMaintenanceOptions.ResyncRateVariable] = "50M",
        };
        var o = MirrorMaintenanceOptions.FromEnvironment(env.GetValueOrDefault);
        Assert.Equal((TimeSpan.FromSeconds(90), 50L << 20), (o.RepairAfter!.Value, o.ResyncBytesPerSecond));
        env[MirrorMaintenanceOptions.RepairAfterVariable] = "off";
        Assert.Null(MirrorMaintenanceOptions.FromEnvironment(env.GetValueOrDefault).RepairAfter);
        env[MirrorMaintenanceOptions.RepairAfterVariable] = "2h";
        Assert.Equal(TimeSpan.FromHours(2), MirrorMaintenanceOptions.FromEnvironment(env.GetValueOrDefault).RepairAfter);

        env[MirrorMaintenanceOptions.RepairAfterVariable] = "ten minutes";
        var e = Assert.Throws<ArgumentException>(() => MirrorMaintenanceOptions.FromEnvironment(env.GetValueOrDefault));
        Assert.Equal("TERN_STORAGE_REPAIR_AFTER must be a delay such as 10m, 90s or 1h (or off), not 'ten minutes'", e.Message);
        env[MirrorMaintenanceOptions.RepairAfterVariable] = "10m";
        env[MirrorMaintenanceOptions.ResyncRateVariable] = "-5M";
        e = Assert.Throws<ArgumentException>(() => MirrorMaintenanceOptions.FromEnvironment(env.GetValueOrDefault));
        Assert.StartsWith("TERN_STORAGE_RESYNC_RATE must be bytes per second", e.Message);
    }

    // Three PV files owned by h0, h1, h2 (wrapped in fault injectors), a VG and an 8 MiB mirror
    // filled with a pattern; returns the PV indexes of the legs.
    private async Task<(VolumeGroup Vg, List<PhysicalVolume> Pvs, List<FaultInjectingIo> Ios, byte[] Model, int LegA, int LegB)> MirrorAsync()
    {
        var pvs = new List<PhysicalVolume>();
        var ios = new List<FaultInjectingIo>();
        for (int i = 0; i < 3; i++)
        {
            var io = new FaultInjectingIo(FilePhysicalVolumeIo.OpenOrCreate(Path.Combine(_dir, $"pv{i}.img"), 24 << 20));
            ios.Add(io);
            var pv = await PhysicalVolume.CreateAsync(io, "h" + i);
            _open.Add(pv);
            pvs.Add(pv);
        }
        var vg = await VolumeGroup.CreateAsync("vg0", pvs, Extent);
        _open.Add(vg);
        var entry = await vg.CreateLvAsync("m", 8 * Extent, new LvLayout(SegmentType.Mirror, 2));
        var model = new byte[8 * Extent];
        new Random(1).NextBytes(model);
        using (var lv = vg.OpenLv("m"))
        {
            await lv.WriteAsync(0, model);
            await lv.FlushAsync();
        }
        var seg = entry.Segments[0];
        return (vg, pvs, ios, model, pvs.FindIndex(p => p.Id == seg.Areas[0].Pv), pvs.FindIndex(p => p.Id == seg.Areas[1].Pv));
    }

    private static async Task AssertEveryLegHoldsAsync(VolumeGroup vg, byte[] model)
    {
        var seg = Assert.Single(vg.Metadata.FindLv("m")!.Segments);
        foreach (var leg in seg.Areas)
        {
            Assert.False(leg.Stale);
            Assert.Null(leg.DirtyRegions);
            var data = new byte[model.Length];
            Assert.Null(await vg.Pvs[leg.Pv].ReadBlocksAsync(leg.StartExtent * Extent, data));
            Assert.True(model.AsSpan().SequenceEqual(data), $"leg on {vg.Pvs[leg.Pv].Name} differs from what was written");
        }
    }

    [Fact]
    public async Task A_leg_whose_PV_answers_again_is_resynced_from_the_regions_it_missed()
    {
        var (vg, pvs, ios, model, _, legB) = await MirrorAsync();
        var m = new MirrorMaintenance(new MirrorMaintenanceOptions { RepairAfter = TimeSpan.FromMinutes(10), ResyncBytesPerSecond = 0 }, new FakeClock(T0));
        using var lv = vg.OpenLv("m");

        // Leg B's host stops answering: writes go on, on leg A, and what B misses is recorded.
        ios[legB].Plan = new FaultPlan { Kinds = FaultKind.WriteError | FaultKind.ReadError | FaultKind.FlushError };
        var block = new byte[8192];
        new Random(2).NextBytes(block);
        await lv.WriteAsync((2L << 20) + 4096, block);
        block.CopyTo(model, (2L << 20) + 4096);
        await lv.FlushAsync();
        Assert.True(pvs[legB].Failed);
        var waiting = Assert.Single(await m.RunOnceAsync(vg));
        Assert.Equal(MaintenanceAction.Wait, waiting.Decision.Action);
        Assert.Contains($"unreachable: {pvs[legB].Name} on h{legB}", waiting.Message);

        // It answers again: the next round brings it back and copies only the region it missed.
        ios[legB].Plan = new FaultPlan();
        var done = Assert.Single(await m.RunOnceAsync(vg));
        Assert.Equal(MaintenanceAction.Resync, done.Decision.Action);
        Assert.Null(done.Error);
        Assert.False(pvs[legB].Failed);
        Assert.Empty(vg.Degraded("m"));
        await AssertEveryLegHoldsAsync(vg, model);
        Assert.Empty(await m.RunOnceAsync(vg)); // nothing left to do
    }

    [Fact]
    public async Task A_leg_away_for_the_repair_delay_is_rebuilt_on_the_host_holding_no_other_copy()
    {
        var (vg, pvs, ios, model, legA, legB) = await MirrorAsync();
        int other = 3 - legA - legB;
        var clock = new FakeClock(T0);
        var m = new MirrorMaintenance(new MirrorMaintenanceOptions { RepairAfter = TimeSpan.FromMinutes(1), ResyncBytesPerSecond = 32L << 20 }, clock);
        using var lv = vg.OpenLv("m");
        ios[legB].Plan = new FaultPlan { Kinds = FaultKind.WriteError | FaultKind.ReadError | FaultKind.FlushError };
        await lv.WriteAsync(0, model.AsMemory(0, 4096));
        await lv.FlushAsync();
        long seqno = vg.Metadata.Seqno;

        Assert.Equal(MaintenanceAction.Wait, Assert.Single(await m.RunOnceAsync(vg)).Decision.Action);
        clock.Now = T0.AddSeconds(59);
        Assert.Equal(MaintenanceAction.Wait, Assert.Single(await m.RunOnceAsync(vg)).Decision.Action);
        Assert.Equal(seqno, vg.Metadata.Seqno); // waiting changes nothing

        clock.Now = T0.AddMinutes(1);
        var repaired = Assert.Single(await m.RunOnceAsync(vg));
        Assert.Equal(MaintenanceAction.Repair, repaired.Decision.Action);
        Assert.Null(repaired.Error);
        Assert.Contains($"replaced by {pvs[other].Name} (h{other})", repaired.Message);
        var seg = Assert.Single(vg.Metadata.FindLv("m")!.Segments);
        Assert.Equal([pvs[legA].Id, pvs[other].Id], seg.Areas.Select(a => a.Pv));
        await AssertEveryLegHoldsAsync(vg, model);

        // The guest's volume keeps working on the new pair of legs.
        var back = new byte[model.Length];
        await lv.ReadAsync(0, back);
        Assert.Equal(model, back);
    }

    [Fact]
    public async Task A_VG_that_has_only_some_PVs_open_rebuilds_a_leg_only_on_a_reachable_PV_it_is_given()
    {
        var (vg, pvs, _, model, legA, legB) = await MirrorAsync();
        int other = 3 - legA - legB;
        vg.Dispose();
        // A node's view of one guest disk: leg A's PV only; leg B's node is gone.
        using var view = await VolumeGroup.OpenAsync("vg0", [pvs[legA]]);
        var m = new MirrorMaintenance(new MirrorMaintenanceOptions { RepairAfter = TimeSpan.Zero, ResyncBytesPerSecond = 0 }, new FakeClock(T0));

        var failed = Assert.Single(await m.RunOnceAsync(view));
        Assert.Equal(MaintenanceAction.Repair, failed.Decision.Action);
        Assert.IsType<InsufficientSpaceException>(failed.Error);
        Assert.Equal(2, view.Metadata.FindLv("m")!.Segments[0].Areas.Count);

        var repaired = Assert.Single(await m.RunOnceAsync(view, reachable: [pvs[other]]));
        Assert.Null(repaired.Error);
        Assert.Equal([pvs[legA].Id, pvs[other].Id], view.Metadata.FindLv("m")!.Segments[0].Areas.Select(a => a.Pv));
        await AssertEveryLegHoldsAsync(view, model);
    }
}
