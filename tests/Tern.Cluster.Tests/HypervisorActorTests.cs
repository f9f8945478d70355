// The hypervisor and its VM actors on one ActorSystem, with every message forced through
// serialization (serialize-messages = on) as it would be between nodes.
using System.Text;
using Akka.TestKit.Xunit2;
using Tern.Cluster.Actors;
using Tern.Cluster.Hosting;
using Tern.Cluster.Protocol;
using Tern.Tests.Shared;
using Xunit.Abstractions;
using static Tern.Cluster.Tests.TestSpecs;

namespace Tern.Cluster.Tests;

public sealed class HypervisorActorTests(ITestOutputHelper output) : TestKit(
    PatientTestKit.With(TernHocon.Build(new TernNodeOptions { DataDir = Path.GetTempPath(), SerializeAllMessages = true })), "hypervisor-test", output)
{
    private (Akka.Actor.IActorRef Hypervisor, Akka.TestKit.TestProbe Controllers, Akka.TestKit.TestProbe Agent) Start(ulong budgetMib = 256)
    {
        var controllers = CreateTestProbe();
        var agent = CreateTestProbe();
        var hypervisor = Sys.ActorOf(Hypervisor.Props("node-x", budgetMib * Mib, 2, controllers, agent));
        return (hypervisor, controllers, agent);
    }

    [Fact]
    public void Serialize_messages_is_on()
    {
        Assert.True(Sys.Settings.SerializeAllMessages);
    }

    [Fact]
    public void Refuses_a_guest_that_does_not_fit_with_a_reason()
    {
        var (hypervisor, controllers, _) = Start(budgetMib: 100);
        hypervisor.Tell(new StartGuest("big", Spec("big", memoryMib: 128), 1, null), TestActor);
        var refused = ExpectMsg<GuestRefused>();
        Assert.Equal("needs 128 MiB, this host has 100 MiB free of 100 MiB", refused.Reason);
        controllers.ExpectNoMsg(TimeSpan.FromMilliseconds(200));
    }

    [Fact]
    public void Refuses_an_image_it_cannot_boot()
    {
        var (hypervisor, _, agent) = Start();
        hypervisor.Tell(new StartGuest("junk", Spec("junk", kernel: [1, 2, 3]) with { Kernel = ImageRef.FromPath("/no/such/kernel") }, 1, null), TestActor);
        Assert.StartsWith("cannot boot:", ExpectMsg<GuestRefused>().Reason);
        Assert.Equal(0UL, agent.ExpectMsg<HostUsageChanged>().UsedMemoryBytes);
    }

    [Fact]
    public void Runs_a_guest_streams_its_console_and_stops_it()
    {
        var (hypervisor, controllers, agent) = Start();
        hypervisor.Tell(new StartGuest("t", Spec("t", kernel: Guests.Ticker()), 4, null), TestActor);
        Assert.Equal(new GuestStarted("t", 4, "node-x"), ExpectMsg<GuestStarted>());
        Assert.Equal(new HostUsageChanged(64 * Mib, 1), agent.ExpectMsg<HostUsageChanged>());

        hypervisor.Tell(new AttachConsole("t"), TestActor);
        Assert.Equal(new ConsoleAttached("t", 4), ExpectMsg<ConsoleAttached>());
        var text = new StringBuilder();
        while (!text.ToString().Contains("T\nT\n", StringComparison.Ordinal))
        {
            var chunk = ExpectMsg<ConsoleOutput>(TimeSpan.FromSeconds(10));
            Assert.Equal(4, chunk.Generation);
            text.Append(Encoding.ASCII.GetString(chunk.Data));
        }

        hypervisor.Tell(new StopGuest("t", 3, null), TestActor);
        Assert.Equal(new GuestExited("t", 3, "not running on node-x"), controllers.ExpectMsg<GuestExited>());
        hypervisor.Tell(new StopGuest("t", 4, null), TestActor);
        Assert.Equal(new GuestExited("t", 4, "stopped by the host"), controllers.ExpectMsg<GuestExited>(TimeSpan.FromSeconds(10)));
        Assert.Equal(new HostUsageChanged(0, 0), agent.ExpectMsg<HostUsageChanged>());
    }

    [Fact]
    public void A_guest_that_resets_boots_again_in_the_same_generation()
    {
        var (hypervisor, controllers, _) = Start();
        hypervisor.Tell(new StartGuest("r", Spec("r", kernel: TickerGuest.Resetter()), 1, null), TestActor);
        ExpectMsg<GuestStarted>();
        hypervisor.Tell(new AttachConsole("r"), TestActor);
        Assert.Equal(new ConsoleAttached("r", 1), ExpectMsg<ConsoleAttached>());
        var text = new StringBuilder();
        while (!text.ToString().Contains("R\nR\nR\n", StringComparison.Ordinal))
            text.Append(Encoding.ASCII.GetString(ExpectMsg<ConsoleOutput>(TimeSpan.FromSeconds(10)).Data));
        controllers.ExpectNoMsg(TimeSpan.FromMilliseconds(100));
        hypervisor.Tell(new StopGuest("r", 1, null), TestActor);
        Assert.Equal(new GuestExited("r", 1, "stopped by the host"), controllers.FishForMessage<GuestExited>(_ => true, TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public void Reports_a_guest_that_powers_off()
    {
        var (hypervisor, controllers, _) = Start();
        var hello = new VmSpec("hello", 32 * Mib, 1, ImageRef.FromPath(Guests.HelloPath), null, null, "", [], null);
        hypervisor.Tell(new StartGuest("hello", hello, 1, null), TestActor);
        ExpectMsg<GuestStarted>();
        Assert.Equal(new GuestExited("hello", 1, "powered off with code 0"), controllers.ExpectMsg<GuestExited>(TimeSpan.FromSeconds(10)));
        hypervisor.Tell(new AttachConsole("hello"), TestActor);
        Assert.Equal("VM 'hello' is not running on node-x", ExpectMsg<CommandRejected>().Reason);
    }

    [Fact]
    public void Refuses_an_incoming_migration_that_does_not_fit_and_holds_nothing()
    {
        var (hypervisor, _, agent) = Start(budgetMib: 100);
        hypervisor.Tell(new PrepareMigration("big", Spec("big", memoryMib: 128), 2, "node-y", null), TestActor);
        Assert.Equal(new MigrationRefused("big", 2, "host 'node-x' cannot take it: needs 128 MiB, this host has 100 MiB free of 100 MiB"), ExpectMsg<MigrationRefused>());
        Assert.Equal(new HostUsageChanged(0, 0), agent.ExpectMsg<HostUsageChanged>());
    }

    [Fact]
    public async Task An_incoming_migration_waits_behind_a_one_time_token_and_a_bad_stream_or_an_abort_releases_its_room()
    {
        var (hypervisor, _, agent) = Start();
        hypervisor.Tell(new PrepareMigration("in", Spec("in"), 5, "node-y", null), TestActor);
        var prepared = ExpectMsg<MigrationPrepared>();
        Assert.Equal(("in", 5L, "node-x"), (prepared.VmId, prepared.Generation, prepared.Host));
        Assert.Matches("^[0-9a-f]{32}$", prepared.Token);
        Assert.StartsWith("127.0.0.1:", prepared.Endpoint);
        Assert.Equal(new HostUsageChanged(64 * Mib, 1), agent.ExpectMsg<HostUsageChanged>());
        // Reserved, but whether the guest runs here is known only when its receive has ended: the answer waits.
        hypervisor.Tell(new ProbeGuest("in", 5), TestActor);
        ExpectNoMsg(TimeSpan.FromMilliseconds(200));

        // A stranger with the wrong token is hung up on; the endpoint keeps waiting for the source.
        using (var stranger = await Migration.MigrationListener.ConnectAsync(prepared.Endpoint, new string('0', 32), CancellationToken.None))
            Assert.Equal(0, await stranger.GetStream().ReadAsync(new byte[16]).AsTask().WaitAsync(TimeSpan.FromSeconds(10)));
        agent.ExpectNoMsg(TimeSpan.FromMilliseconds(200));

        // The source, with the token, sends something that is not a migration: refused, room released.
        using (var source = await Migration.MigrationListener.ConnectAsync(prepared.Endpoint, prepared.Token, CancellationToken.None))
        {
            await source.GetStream().WriteAsync(new byte[64]);
            Assert.Equal(new HostUsageChanged(0, 0), agent.ExpectMsg<HostUsageChanged>(TimeSpan.FromSeconds(10)));
        }
        Assert.Equal(5L, ExpectMsg<GuestExited>().Generation);

        // Prepared again, then abandoned by the controller: the room is released and the endpoint closed.
        hypervisor.Tell(new PrepareMigration("in", Spec("in"), 6, "node-y", null), TestActor);
        var again = ExpectMsg<MigrationPrepared>();
        agent.ExpectMsg<HostUsageChanged>();
        hypervisor.Tell(new AbortMigration("in", 6, "test"), TestActor);
        Assert.Equal(new HostUsageChanged(0, 0), agent.ExpectMsg<HostUsageChanged>(TimeSpan.FromSeconds(10)));
        await Assert.ThrowsAnyAsync<System.Net.Sockets.SocketException>(() => Migration.MigrationListener.ConnectAsync(again.Endpoint, again.Token, CancellationToken.None));
    }
}

public sealed class SchedulerActorTests(ITestOutputHelper output) : TestKit(
    PatientTestKit.With(TernHocon.Build(new TernNodeOptions { DataDir = Path.GetTempPath(), SerializeAllMessages = true })
        .WithFallback("akka.actor.provider = cluster\nakka.remote.dot-netty.tcp.port = 0\nakka.remote.dot-netty.tcp.hostname = 127.0.0.1")), "scheduler-test", output)
{
    [Fact]
    public void Places_on_reported_hosts_and_lists_them()
    {
        var scheduler = Sys.ActorOf(Scheduler.Props());
        scheduler.Tell(new HostReport(Host("b", 1024)), TestActor);
        scheduler.Tell(new HostReport(Host("a", 512)), TestActor);
        scheduler.Tell(new PlaceVm("vm", 256 * Mib, 1, null, null), TestActor);
        Assert.Equal("b", ExpectMsg<VmPlaced>().Host);
        scheduler.Tell(new PlaceVm("vm2", 8192 * Mib, 1, null, null), TestActor);
        Assert.Contains("needs 8192 MiB", ExpectMsg<PlacementRefused>().Reason);
        scheduler.Tell(new GetHosts(), TestActor);
        Assert.Equal(["a", "b"], ExpectMsg<HostList>().Hosts.Select(h => h.Name));
    }
}
