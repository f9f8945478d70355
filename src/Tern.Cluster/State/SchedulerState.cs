// Placement without the actor: the hosts the scheduler has heard of and the choice of one
// for a new VM (most free memory, then least load, honouring an explicit host).
using Tern.Cluster.Protocol;

namespace Tern.Cluster.State;

/// <summary>The outcome of a placement: a host, or the reason there is none.</summary>
public sealed record PlacementDecision(HostCapacity? Host, string? Reason)
{
    /// <summary>Whether a host was chosen.</summary>
    public bool Placed => Host is not null;
}

/// <summary>The scheduler's view of the cluster's hosts.</summary>
public sealed class SchedulerState
{
    private readonly Dictionary<string, HostCapacity> _hosts = new(StringComparer.Ordinal);
    private readonly HashSet<string> _draining = new(StringComparer.Ordinal);

    /// <summary>Known hosts, by name.</summary>
    public IReadOnlyCollection<HostCapacity> Hosts => _hosts.Values;

    /// <summary>Hosts that take no new guests (being drained), by name.</summary>
    public IReadOnlyCollection<string> Draining => _draining;

    /// <summary>Marks a host as draining (no new guests are placed on it) or lets it take guests again; false when no such host is known.</summary>
    public bool SetDraining(string host, bool draining)
    {
        ArgumentNullException.ThrowIfNull(host);
        if (!_hosts.ContainsKey(host))
            return false;
        if (draining)
            _draining.Add(host);
        else
            _draining.Remove(host);
        return true;
    }

    /// <summary>Takes a host agent's report: it replaces what was known, including reservations it now accounts for.</summary>
    public void Report(HostCapacity capacity)
    {
        ArgumentNullException.ThrowIfNull(capacity);
        _hosts[capacity.Name] = capacity;
    }

    /// <summary>Forgets every host at <paramref name="address"/> (the node left or was downed).</summary>
    public void RemoveAddress(string address)
    {
        foreach (var name in _hosts.Values.Where(h => h.Address == address).Select(h => h.Name).ToList())
            _hosts.Remove(name);
    }

    /// <summary>Chooses a host for a VM and reserves its memory there until the host's next report.</summary>
    public PlacementDecision Place(PlaceVm request)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (_hosts.Count == 0)
            return new(null, "no hosts have reported to the scheduler yet");
        if (request.PreferredHost is { } wanted)
        {
            if (!_hosts.TryGetValue(wanted, out var host))
                return new(null, $"no host named '{wanted}' (known: {string.Join(", ", _hosts.Keys.Order())})");
            if (_draining.Contains(wanted))
                return new(null, $"host '{wanted}' is draining and takes no new guests");
            if (wanted == request.ExcludedHost)
                return new(null, $"the VM already runs on '{wanted}'");
            return Fits(host, request) is { } why ? new(null, $"host '{wanted}' cannot take it: {why}") : Reserve(host, request);
        }
        var candidates = _hosts.Values.Where(h => h.Name != request.ExcludedHost && !_draining.Contains(h.Name)).ToList();
        if (candidates.Count == 0)
            return new(null, request.ExcludedHost is null ? "every host is draining" : $"no host other than '{request.ExcludedHost}' can take guests (the others are draining or unknown)");
        var chosen = candidates
            .Where(h => Fits(h, request) is null)
            .OrderByDescending(h => h.FreeMemoryBytes)
            .ThenBy(h => h.Load)
            .ThenBy(h => h.Name, StringComparer.Ordinal)
            .FirstOrDefault();
        if (chosen is not null)
            return Reserve(chosen, request);
        ulong mostFree = candidates.Max(h => h.FreeMemoryBytes);
        int mostHarts = candidates.Max(h => h.Harts);
        string reason = request.Harts > mostHarts
            ? $"needs {request.Harts} harts but the largest host has {mostHarts}"
            : $"needs {Mib(request.MemoryBytes)} MiB but the most free memory on any host is {Mib(mostFree)} MiB";
        return new(null, reason);
    }

    private static string? Fits(HostCapacity host, PlaceVm request)
    {
        if (request.Harts > host.Harts)
            return $"needs {request.Harts} harts, it has {host.Harts}";
        if (request.MemoryBytes > host.FreeMemoryBytes)
            return $"needs {Mib(request.MemoryBytes)} MiB, it has {Mib(host.FreeMemoryBytes)} MiB free";
        return null;
    }

    private PlacementDecision Reserve(HostCapacity host, PlaceVm request)
    {
        var reserved = host with { UsedMemoryBytes = host.UsedMemoryBytes + request.MemoryBytes, Guests = host.Guests + 1 };
        _hosts[host.Name] = reserved;
        return new(reserved, null);
    }

    private static ulong Mib(ulong bytes) => bytes >> 20;
}
