// Three nodes in one process: VMs are placed, booted, watched, stopped, started, deleted,
// bad requests change nothing, and controllers' state survives a full restart.
using Akka.Actor;
using Tern.Cluster.Protocol;
using static Tern.Cluster.Tests.TestSpecs;

namespace Tern.Cluster.Tests;

[Collection("cluster")]
public sealed class ClusterTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("tern-cluster-").FullName;

    private static VmSpec Ticker(string name, string? host = null) => Spec(name, host: host, kernel: Guests.Ticker());

    private static VmSpec Hello(string name) =>
        new(name, 32 * Mib, 1, ImageRef.FromPath(Guests.HelloPath), null, null, "", [], null);

    [Fact]
    public async Task A_created_vm_is_placed_runs_and_its_console_reaches_a_subscriber_on_another_node()
    {
        await using var cluster = await TestCluster.StartAsync(_dir);
        var status = await cluster.Expect(0, new CreateVm("ticker", Ticker("ticker"), null));
        Assert.Equal((VmPhase.Running, DesiredState.Running, 1L), (status.Phase, status.Desired, status.Generation));
        Assert.Contains(status.Host, new[] { "node-1", "node-2", "node-3" });

        var seen = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        var collector = cluster.Systems[2].ActorOf(ConsoleCollector.Props("T\nT\n", seen));
        cluster.Region(2).Tell(new AttachConsole("ticker"), collector);
        Assert.Contains("T\nT\n", await seen.Task.WaitAsync(TimeSpan.FromSeconds(20)));

        var hosts = await cluster.HostsAsync();
        Assert.Equal(64 * Mib, hosts.Hosts.Single(h => h.Name == status.Host).UsedMemoryBytes);
    }

    [Fact]
    public async Task Stop_start_and_delete_work_and_each_start_is_a_new_generation()
    {
        await using var cluster = await TestCluster.StartAsync(_dir);
        await cluster.Expect(0, new CreateVm("web1", Ticker("web1"), null));
        var stopped = await cluster.Expect(1, new StopVm("web1", null));
        Assert.Equal((VmPhase.Stopped, DesiredState.Stopped, (string?)null), (stopped.Phase, stopped.Desired, stopped.Host));
        Assert.Equal("stopped by the host", stopped.LastError);

        var again = await cluster.Expect(2, new StartVm("web1", null));
        Assert.Equal((VmPhase.Running, 2L), (again.Phase, again.Generation));

        var deleted = await cluster.Expect(0, new DeleteVm("web1", null));
        Assert.Equal("web1", deleted.VmId);
        var gone = Assert.IsType<CommandRejected>(await cluster.Ask(1, new GetVm("web1")));
        Assert.Equal("no VM named 'web1'", gone.Reason);
        await WaitForFreeHostsAsync(cluster);

        var recreated = await cluster.Expect(0, new CreateVm("web1", Ticker("web1"), null));
        Assert.Equal(3L, recreated.Generation);
    }

    [Fact]
    public async Task Explicit_placement_is_honoured()
    {
        await using var cluster = await TestCluster.StartAsync(_dir);
        var status = await cluster.Expect(0, new CreateVm("pinned", Ticker("pinned", host: "node-3"), null));
        Assert.Equal("node-3", status.Host);
    }

    [Fact]
    public async Task A_guest_that_powers_off_is_recorded_as_stopped()
    {
        await using var cluster = await TestCluster.StartAsync(_dir);
        await cluster.Ask(0, new CreateVm("hello", Hello("hello"), null));
        var status = await cluster.WaitForAsync("hello", s => s.Phase == VmPhase.Stopped);
        Assert.Equal("powered off with code 0", status.LastError);
        Assert.Equal(DesiredState.Stopped, status.Desired);
        await WaitForFreeHostsAsync(cluster);
    }

    [Fact]
    public async Task Bad_requests_get_a_clear_error_and_change_nothing()
    {
        await using var cluster = await TestCluster.StartAsync(_dir);
        var before = await cluster.Expect(0, new CreateVm("app", Ticker("app"), null));

        var duplicate = Assert.IsType<CommandRejected>(await cluster.Ask(1, new CreateVm("app", Ticker("app"), null)));
        Assert.Equal(("a VM named 'app' already exists", RejectionKind.Conflict), (duplicate.Reason, duplicate.Kind));

        var big = Assert.IsType<CommandRejected>(await cluster.Ask(2, new CreateVm("big", Spec("big", memoryMib: 4096), null)));
        Assert.Equal(("needs 4096 MiB but the most free memory on any host is 512 MiB", RejectionKind.Refused), (big.Reason, big.Kind));
        Assert.IsType<CommandRejected>(await cluster.Ask(0, new GetVm("big")));

        var wide = Assert.IsType<CommandRejected>(await cluster.Ask(2, new CreateVm("wide", Spec("wide", harts: 4), null)));
        Assert.Equal("needs 4 harts but the largest host has 2", wide.Reason);

        var nowhere = Assert.IsType<CommandRejected>(await cluster.Ask(2, new CreateVm("nowhere", Spec("nowhere", host: "node-9"), null)));
        Assert.StartsWith("no host named 'node-9'", nowhere.Reason);

        foreach (IWithVmId unknown in new IWithVmId[] { new StopVm("ghost", null), new StartVm("ghost", null), new DeleteVm("ghost", null), new GetVm("ghost"), new AttachConsole("ghost") })
            Assert.Equal(new CommandRejected("ghost", "no VM named 'ghost'", RejectionKind.NotFound), await cluster.Ask(1, unknown));

        var broken = Assert.IsType<CommandRejected>(await cluster.Ask(0, new CreateVm("broken", Spec("broken") with { Kernel = ImageRef.FromPath("/nonexistent/kernel") }, null)));
        Assert.Contains("cannot boot", broken.Reason);

        Assert.IsType<CommandRejected>(await cluster.Ask(0, new GetVm("broken")));

        var after = await cluster.Expect(2, new GetVm("app"));
        Assert.Equal((before.Phase, before.Host, before.Generation, before.Spec.MemoryBytes), (after.Phase, after.Host, after.Generation, after.Spec.MemoryBytes));
        await WaitForUsedMemoryAsync(cluster, 64 * Mib);
    }

    [Fact]
    public async Task Vm_specs_survive_a_full_cluster_restart()
    {
        VmStatus before;
        await using (var cluster = await TestCluster.StartAsync(_dir))
        {
            before = await cluster.Expect(0, new CreateVm("keeper", Ticker("keeper", host: "node-2"), null));
            await cluster.Expect(1, new StopVm("keeper", null));
        }
        await using (var cluster = await TestCluster.StartAsync(_dir))
        {
            var after = await cluster.Expect(2, new GetVm("keeper"));
            Assert.Equal(before.Spec.Name, after.Spec.Name);
            Assert.Equal(before.Spec.Kernel.Bytes, after.Spec.Kernel.Bytes);
            Assert.Equal((VmPhase.Stopped, DesiredState.Stopped, 1L), (after.Phase, after.Desired, after.Generation));
            var restarted = await cluster.Expect(0, new StartVm("keeper", null));
            Assert.Equal((VmPhase.Running, 2L, "node-2"), (restarted.Phase, restarted.Generation, restarted.Host));
        }
    }

    [Fact]
    public async Task A_running_vm_comes_back_as_a_new_generation_after_a_full_cluster_restart()
    {
        await using (var cluster = await TestCluster.StartAsync(_dir))
        {
            var before = await cluster.Expect(0, new CreateVm("phoenix", Ticker("phoenix"), null));
            Assert.Equal(1L, before.Generation);
        }
        await using (var cluster = await TestCluster.StartAsync(_dir))
        {
            var after = await cluster.WaitForAsync("phoenix", s => s.Phase == VmPhase.Running && s.Generation == 2);
            Assert.Equal(DesiredState.Running, after.Desired);
            var hosts = (await cluster.HostsAsync()).Hosts;
            Assert.Equal(64 * Mib, hosts.Single(h => h.Name == after.Host).UsedMemoryBytes);
        }
    }

    [Fact]
    public async Task A_vm_whose_host_leaves_is_started_again_on_another_host()
    {
        await using var cluster = await TestCluster.StartAsync(_dir);
        var before = await cluster.Expect(0, new CreateVm("survivor", Ticker("survivor"), null));
        int dying = int.Parse(before.Host![^1..], System.Globalization.CultureInfo.InvariantCulture) - 1;
        int asker = dying == 2 ? 1 : 2;
        await cluster.StopNodeAsync(dying);
        var after = await cluster.WaitForAsync("survivor", s => s.Phase == VmPhase.Running && s.Generation == 2, asker);
        Assert.NotEqual(before.Host, after.Host);
        Assert.Equal(DesiredState.Running, after.Desired);
    }

    [Fact]
    public async Task An_automatic_restart_that_fails_is_tried_again_until_the_vm_runs()
    {
        // The disk is a file every node could open; while it is missing every start fails
        // ("cannot open its disk"), as when a restarted guest's disk is not reachable yet.
        string disk = Path.Combine(_dir, "disk.img");
        File.WriteAllBytes(disk, new byte[1 << 20]);
        await using var cluster = await TestCluster.StartAsync(_dir);
        var before = await cluster.Expect(0, new CreateVm("phoenix", Ticker("phoenix") with { Disks = [disk] }, null));
        int dying = int.Parse(before.Host![^1..], System.Globalization.CultureInfo.InvariantCulture) - 1;
        int asker = dying == 2 ? 1 : 2;
        File.Move(disk, disk + ".away");
        await cluster.StopNodeAsync(dying);
        var failed = await cluster.WaitForAsync("phoenix", s => s.Phase == VmPhase.Failed && s.Generation > before.Generation, asker);
        Assert.Equal(DesiredState.Running, failed.Desired);
        File.Move(disk + ".away", disk);
        var after = await cluster.WaitForAsync("phoenix", s => s.Phase == VmPhase.Running, asker);
        Assert.True(after.Generation > failed.Generation, $"generation {after.Generation} after failed generation {failed.Generation}");
        Assert.NotEqual(before.Host, after.Host);
    }

    private static Task WaitForFreeHostsAsync(TestCluster cluster) => WaitForUsedMemoryAsync(cluster, 0);

    private static async Task WaitForUsedMemoryAsync(TestCluster cluster, ulong bytes)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        ulong used;
        while ((used = (await cluster.HostsAsync()).Hosts.Aggregate(0UL, (sum, h) => sum + h.UsedMemoryBytes)) != bytes)
        {
            Assert.True(DateTime.UtcNow < deadline, $"hosts use {used} bytes of guest memory, expected {bytes}");
            await Task.Delay(100);
        }
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
            // SQLite may still hold the file for a moment; the temp dir is cleaned by the OS.
        }
    }
}
