// A host's books: what fits, and which generation may free a reservation.
using Tern.Cluster.State;
using static Tern.Cluster.Tests.TestSpecs;

namespace Tern.Cluster.Tests;

public sealed class HypervisorStateTests
{
    [Fact]
    public void Refuses_a_guest_that_does_not_fit_with_the_reason()
    {
        var s = new HypervisorState(256 * Mib, 2);
        Assert.Null(s.TryReserve(new GuestReservation("a", 1, 200 * Mib, 1)));
        Assert.Equal("needs 64 MiB, this host has 56 MiB free of 256 MiB", s.TryReserve(new GuestReservation("b", 1, 64 * Mib, 1)));
        Assert.Equal("needs 4 harts, this host has 2", s.TryReserve(new GuestReservation("c", 1, 16 * Mib, 4)));
        Assert.Contains("already runs here", s.TryReserve(new GuestReservation("a", 2, 16 * Mib, 1)));
        Assert.Equal(200 * Mib, s.UsedMemoryBytes);
    }

    [Fact]
    public void Only_the_holding_generation_releases()
    {
        var s = new HypervisorState(256 * Mib, 2);
        s.TryReserve(new GuestReservation("a", 5, 64 * Mib, 1));
        Assert.False(s.Release("a", 4));
        Assert.Equal(64 * Mib, s.UsedMemoryBytes);
        Assert.True(s.Release("a", 5));
        Assert.Equal(0UL, s.UsedMemoryBytes);
    }
}
