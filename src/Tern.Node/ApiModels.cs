// The JSON shapes of the HTTP API (documented in docs/cluster.md).
using Tern.Cluster.Protocol;

namespace Tern.Node;

/// <summary>POST /api/vms body.</summary>
public sealed record VmCreateRequest(
    string Name,
    string Kernel,
    ulong MemoryBytes = 256UL << 20,
    int Harts = 1,
    string? Bios = null,
    string? Initrd = null,
    string? Append = null,
    IReadOnlyList<string>? Disks = null,
    string? Host = null,
    string? Clock = null);

/// <summary>
/// A VM in API answers: where it runs and as which generation, how many times the cluster
/// restarted it after losing its host and why the last time, and its disks (paths, or lv:VG/LV).
/// </summary>
public sealed record VmView(string Name, string State, string Desired, string? Host, long Generation, ulong MemoryBytes, int Harts, string? LastError, string Clock = "host",
    int Restarts = 0, string? LastRestartReason = null, IReadOnlyList<string>? Disks = null)
{
    /// <summary>The view of a controller's status.</summary>
    public static VmView From(VmStatus s) => new(
        s.VmId, s.Phase.ToString().ToLowerInvariant(), s.Desired.ToString().ToLowerInvariant(), s.Host, s.Generation,
        s.Spec.MemoryBytes, s.Spec.Harts, s.LastError, s.Spec.Icount ? "icount" : "host", s.Restarts, s.LastRestartReason, s.Spec.Disks);
}

/// <summary>A host in API answers.</summary>
public sealed record HostView(string Name, string Address, int ProcessId, ulong MemoryBytes, ulong UsedMemoryBytes, int Harts, int Guests, double Load, IReadOnlyList<PvView> Pvs, bool Draining = false)
{
    /// <summary>The view of a host's capacity.</summary>
    public static HostView From(HostCapacity h) => new(h.Name, h.Address, h.ProcessId, h.MemoryBytes, h.UsedMemoryBytes, h.Harts, h.Guests, h.Load,
        [.. (h.Pvs ?? []).Select(p => new PvView(p.Path, p.Vg, p.SizeBytes, p.FreeBytes))]);
}

/// <summary>A host's physical volume in API answers: its file, volume group (null: none), usable and free bytes.</summary>
public sealed record PvView(string Path, string? Vg, long SizeBytes, long FreeBytes);

/// <summary>An event in GET /api/events: time (ISO 8601, UTC), kind (vm.created, vm.placed, ...), VM, host, generation, detail.</summary>
public sealed record EventView(string Time, string Kind, string? Vm, string? Host, long Generation, string? Detail)
{
    /// <summary>The view of a cluster event.</summary>
    public static EventView From(TernEvent e) => new(
        DateTimeOffset.FromUnixTimeMilliseconds(e.TimeUnixMs).UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ss.fffZ", System.Globalization.CultureInfo.InvariantCulture),
        e.Kind, e.Vm, e.Host, e.Generation, e.Detail);
}

/// <summary>POST /api/storage/verbs body: a `tern pv|vg|lv|pvmove` verb's words, e.g. ["lv", "list", "--json"].</summary>
public sealed record StorageVerbRequest(IReadOnlyList<string>? Args);

/// <summary>POST /api/storage/verbs answer: the verb's exit code (0 done, 1 I/O failure, 2 refused) and what it printed.</summary>
public sealed record StorageVerbView(int ExitCode, string Stdout, string Stderr);

/// <summary>The body of every 4xx/5xx answer.</summary>
public sealed record ErrorView(string Error, string Kind);
