// The cluster layer's metrics through System.Diagnostics.Metrics (OpenTelemetry exports them
// over OTLP when the node is told to). Observable instruments read live figures at collection
// time from every host registered in this process (an in-process test cluster has several),
// so a guest costs nothing per instruction. Names and units are listed in docs/cluster.md.
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using Tern.Machine;

namespace Tern.Cluster.Telemetry;

/// <summary>The Meter of the cluster layer and its instruments.</summary>
public static class TernMetrics
{
    /// <summary>The Meter name to enable in OpenTelemetry.</summary>
    public const string MeterName = "Tern.Cluster";

    /// <summary>The meter.</summary>
    public static readonly Meter Meter = new(MeterName);

    private static readonly ConcurrentDictionary<HostMeters, byte> Hosts = new();

    /// <summary>Bytes guests wrote to their consoles.</summary>
    internal static readonly Counter<long> ConsoleBytes = Meter.CreateCounter<long>("tern.guest.console.bytes", "By", "Bytes guests wrote to their console UART");

    /// <summary>Guests booted by hypervisors (including boots after a guest reset).</summary>
    internal static readonly Counter<long> GuestStarts = Meter.CreateCounter<long>("tern.vm.starts", "{start}", "Guests booted by this host's hypervisor");

    /// <summary>Guests a hypervisor refused (no room, an image it cannot boot).</summary>
    internal static readonly Counter<long> GuestStartFailures = Meter.CreateCounter<long>("tern.vm.start.failures", "{failure}", "Guest starts this host's hypervisor refused");

    /// <summary>Guests that ended, by kind of end.</summary>
    internal static readonly Counter<long> GuestExits = Meter.CreateCounter<long>("tern.vm.exits", "{exit}", "Guests that ended on this host (tern.exit: stopped, powered-off, crashed, other)");

    static TernMetrics()
    {
        Meter.CreateObservableCounter("tern.guest.instructions", () => Guests(g => g.Instructions()), "{instruction}",
            "Instructions retired by a guest's harts (its rate is the guest's instructions per second)");
        Meter.CreateObservableCounter("tern.guest.wfi.halts", () => Guests(g => g.WfiHalts()), "{halt}",
            "Times a guest's harts slept in WFI");
        Meter.CreateObservableGauge("tern.host.vms", () => PerHost(h => h.Guests), "{vm}", "Guests running on the host");
        Meter.CreateObservableGauge("tern.host.guest.memory", () => PerHost(h => (long)h.UsedMemoryBytes), "By", "Guest RAM given to the host's running guests");
        Meter.CreateObservableGauge("tern.host.memory.budget", () => PerHost(h => (long)h.MemoryBudgetBytes), "By", "Guest RAM the host offers in total");
        Meter.CreateObservableGauge("tern.process.memory", ProcessMemory, "By", "Resident memory of the node process");
    }

    /// <summary>Registers a host's figures (one per hypervisor); dispose the result to drop them.</summary>
    public static HostMeters RegisterHost(string hostName, ulong memoryBudgetBytes)
    {
        var host = new HostMeters(hostName, memoryBudgetBytes);
        Hosts[host] = 0;
        return host;
    }

    internal static void Unregister(HostMeters host) => Hosts.TryRemove(host, out _);

    private static IEnumerable<Measurement<long>> PerHost(Func<HostMeters, long> value) =>
        Hosts.Keys.Select(h => new Measurement<long>(value(h), new KeyValuePair<string, object?>("tern.host", h.HostName))).ToList();

    private static IEnumerable<Measurement<long>> Guests(Func<GuestMeter, long> value) =>
        Hosts.Keys.SelectMany(h => h.RunningGuests.Select(g => new Measurement<long>(value(g),
            new KeyValuePair<string, object?>("tern.host", h.HostName), new KeyValuePair<string, object?>("tern.vm", g.VmId)))).ToList();

    // One process may hold several hosts (in-process clusters): each reports the same process figure.
    private static IEnumerable<Measurement<long>> ProcessMemory()
    {
        long rss = Environment.WorkingSet;
        return Hosts.Keys.Select(h => new Measurement<long>(rss, new KeyValuePair<string, object?>("tern.host", h.HostName))).ToList();
    }
}

/// <summary>The live figures of one host, updated by its hypervisor and read by the meter.</summary>
public sealed class HostMeters : IDisposable
{
    private readonly ConcurrentDictionary<GuestMeter, byte> _guests = new();
    private long _usedMemoryBytes;
    private int _guestCount;

    internal HostMeters(string hostName, ulong memoryBudgetBytes)
    {
        HostName = hostName;
        MemoryBudgetBytes = memoryBudgetBytes;
    }

    /// <summary>The host's name (the tern.host tag).</summary>
    public string HostName { get; }

    /// <summary>Guest RAM the host offers.</summary>
    public ulong MemoryBudgetBytes { get; }

    /// <summary>Guest RAM given to running guests.</summary>
    public ulong UsedMemoryBytes => (ulong)Interlocked.Read(ref _usedMemoryBytes);

    /// <summary>Running guests.</summary>
    public int Guests => Volatile.Read(ref _guestCount);

    internal IEnumerable<GuestMeter> RunningGuests => _guests.Keys;

    /// <summary>Records the host's use after a change.</summary>
    public void SetUsage(ulong usedMemoryBytes, int guests)
    {
        Interlocked.Exchange(ref _usedMemoryBytes, (long)usedMemoryBytes);
        Volatile.Write(ref _guestCount, guests);
    }

    /// <summary>A meter for a guest that is about to run here; dispose it when the guest has ended.</summary>
    public GuestMeter Guest(string vmId, long generation)
    {
        var guest = new GuestMeter(this, vmId, generation);
        _guests[guest] = 0;
        return guest;
    }

    internal void Remove(GuestMeter guest) => _guests.TryRemove(guest, out _);

    /// <inheritdoc/>
    public void Dispose() => TernMetrics.Unregister(this);
}

/// <summary>
/// Reads one guest's counters for the meter. A guest that resets boots a new machine: the
/// counts of the machines before it are carried, so the counter never goes backwards.
/// </summary>
public sealed class GuestMeter : IDisposable
{
    private readonly HostMeters _host;
    private readonly KeyValuePair<string, object?>[] _tags;
    private readonly Lock _lock = new();
    private VirtMachine? _machine;
    private long _carriedInstructions, _carriedHalts, _lastInstructions, _lastHalts;

    internal GuestMeter(HostMeters host, string vmId, long generation)
    {
        _host = host;
        VmId = vmId;
        Generation = generation;
        _tags = [new("tern.host", host.HostName), new("tern.vm", vmId)];
    }

    /// <summary>The VM.</summary>
    public string VmId { get; }

    /// <summary>The VM's generation on this host.</summary>
    public long Generation { get; }

    /// <summary>Follows <paramref name="machine"/> from now on (the first boot, or the machine after a reset).</summary>
    public void Attach(MachineThread machine)
    {
        ArgumentNullException.ThrowIfNull(machine);
        lock (_lock)
        {
            if (_machine is not null)
            {
                _carriedInstructions = Math.Max(_lastInstructions, _carriedInstructions + (long)_machine.InstructionsRetired);
                _carriedHalts = Math.Max(_lastHalts, _carriedHalts + _machine.Stats.WfiHalts);
            }
            _machine = machine.Machine;
        }
        TernMetrics.GuestStarts.Add(1, _tags);
    }

    /// <summary>Counts console output.</summary>
    public void ConsoleWritten(int bytes) => TernMetrics.ConsoleBytes.Add(bytes, _tags);

    /// <summary>Counts the guest's end: <paramref name="kind"/> is stopped, powered-off, crashed or other.</summary>
    public void Exited(string kind) =>
        TernMetrics.GuestExits.Add(1, new KeyValuePair<string, object?>("tern.host", _host.HostName), new KeyValuePair<string, object?>("tern.exit", kind));

    // Read from the collector's thread while the vCPU thread runs: a counter read mid-block may
    // be a little early, never later than the truth, and the reported value never decreases.
    internal long Instructions()
    {
        lock (_lock)
        {
            long now = _machine is null ? 0 : _carriedInstructions + (long)_machine.InstructionsRetired;
            _lastInstructions = Math.Max(_lastInstructions, now);
            return _lastInstructions;
        }
    }

    internal long WfiHalts()
    {
        lock (_lock)
        {
            long now = _machine is null ? 0 : _carriedHalts + _machine.Stats.WfiHalts;
            _lastHalts = Math.Max(_lastHalts, now);
            return _lastHalts;
        }
    }

    /// <summary>Stops reporting the guest.</summary>
    public void Dispose() => _host.Remove(this);
}
