// A host's books: its budget and the guests holding part of it. Pure, so the refusal rules
// are tested without actors.
namespace Tern.Cluster.State;

/// <summary>One guest's share of a host.</summary>
public sealed record GuestReservation(string VmId, long Generation, ulong MemoryBytes, int Harts);

/// <summary>What a host can give guests and what it has given.</summary>
public sealed class HypervisorState(ulong memoryBudgetBytes, int harts)
{
    private readonly Dictionary<string, GuestReservation> _guests = new(StringComparer.Ordinal);

    /// <summary>Memory guests may use in total.</summary>
    public ulong MemoryBudgetBytes { get; } = memoryBudgetBytes;

    /// <summary>Host harts (a guest may not have more than this).</summary>
    public int Harts { get; } = harts;

    /// <summary>Memory held by guests.</summary>
    public ulong UsedMemoryBytes => _guests.Values.Aggregate(0UL, (sum, g) => sum + g.MemoryBytes);

    /// <summary>The guests on this host.</summary>
    public IReadOnlyCollection<GuestReservation> Guests => _guests.Values;

    /// <summary>Reserves room for a guest, or gives the reason it does not fit.</summary>
    public string? TryReserve(GuestReservation guest)
    {
        ArgumentNullException.ThrowIfNull(guest);
        if (_guests.TryGetValue(guest.VmId, out var existing))
            return $"VM '{guest.VmId}' already runs here (generation {existing.Generation})";
        if (guest.Harts > Harts)
            return $"needs {guest.Harts} harts, this host has {Harts}";
        ulong free = MemoryBudgetBytes - Math.Min(MemoryBudgetBytes, UsedMemoryBytes);
        if (guest.MemoryBytes > free)
            return $"needs {guest.MemoryBytes >> 20} MiB, this host has {free >> 20} MiB free of {MemoryBudgetBytes >> 20} MiB";
        _guests[guest.VmId] = guest;
        return null;
    }

    /// <summary>The reservation of a VM, if it runs here.</summary>
    public GuestReservation? Find(string vmId) => _guests.GetValueOrDefault(vmId);

    /// <summary>Frees a guest's share if <paramref name="generation"/> is the one that holds it.</summary>
    public bool Release(string vmId, long generation)
    {
        if (!_guests.TryGetValue(vmId, out var g) || g.Generation != generation)
            return false;
        _guests.Remove(vmId);
        return true;
    }
}
