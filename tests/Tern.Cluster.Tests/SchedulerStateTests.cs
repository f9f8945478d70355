// Placement rules, without an actor system.
using Tern.Cluster.Protocol;
using Tern.Cluster.State;
using static Tern.Cluster.Tests.TestSpecs;

namespace Tern.Cluster.Tests;

public sealed class SchedulerStateTests
{
    private static PlaceVm Place(ulong memoryMib, int harts = 1, string? host = null) => new("vm", memoryMib * Mib, harts, host, null);

    private static SchedulerState With(params HostCapacity[] hosts)
    {
        var s = new SchedulerState();
        foreach (var h in hosts)
            s.Report(h);
        return s;
    }

    [Fact]
    public void Picks_the_host_with_most_free_memory()
    {
        var s = With(Host("a", 1024, usedMib: 512), Host("b", 1024, usedMib: 128), Host("c", 512));
        Assert.Equal("b", s.Place(Place(64)).Host!.Name);
    }

    [Fact]
    public void Breaks_memory_ties_by_load_then_name()
    {
        var s = With(Host("a", 1024, harts: 2, guests: 2), Host("b", 1024, harts: 2, guests: 1), Host("c", 1024, harts: 2, guests: 1));
        Assert.Equal("b", s.Place(Place(0)).Host!.Name);
    }

    [Fact]
    public void Reserves_memory_so_consecutive_placements_spread()
    {
        var s = With(Host("a", 1024), Host("b", 1024));
        var first = s.Place(Place(256)).Host!.Name;
        var second = s.Place(Place(256)).Host!.Name;
        Assert.NotEqual(first, second);
    }

    [Fact]
    public void Honours_explicit_placement_even_on_a_fuller_host()
    {
        var s = With(Host("a", 1024, usedMib: 900), Host("b", 1024));
        Assert.Equal("a", s.Place(Place(64, host: "a")).Host!.Name);
    }

    [Fact]
    public void Refuses_an_explicit_host_that_is_unknown_or_too_small()
    {
        var s = With(Host("a", 128), Host("b", 1024));
        Assert.Contains("no host named 'zz'", s.Place(Place(64, host: "zz")).Reason);
        Assert.Contains("host 'a' cannot take it", s.Place(Place(256, host: "a")).Reason);
    }

    [Fact]
    public void Refuses_a_vm_larger_than_any_host_with_a_reason_and_reserves_nothing()
    {
        var s = With(Host("a", 512), Host("b", 1024, usedMib: 256));
        var d = s.Place(Place(2048));
        Assert.False(d.Placed);
        Assert.Equal("needs 2048 MiB but the most free memory on any host is 768 MiB", d.Reason);
        Assert.All(s.Hosts, h => Assert.Equal(0, h.Guests));
        Assert.Contains("needs 16 harts but the largest host has 2", s.Place(Place(64, harts: 16)).Reason);
    }

    [Fact]
    public void Refuses_when_no_host_has_reported()
    {
        Assert.Contains("no hosts", new SchedulerState().Place(Place(64)).Reason);
    }

    [Fact]
    public void Forgets_hosts_of_a_removed_address()
    {
        var a = Host("a", 1024);
        var s = With(a, Host("bb", 1024));
        s.RemoveAddress(a.Address);
        Assert.Equal(["bb"], s.Hosts.Select(h => h.Name));
    }
}
