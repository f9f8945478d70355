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

/// <summary>A VM in API answers.</summary>
public sealed record VmView(string Name, string State, string Desired, string? Host, long Generation, ulong MemoryBytes, int Harts, string? LastError, string Clock = "host")
{
    /// <summary>The view of a controller's status.</summary>
    public static VmView From(VmStatus s) => new(
        s.VmId, s.Phase.ToString().ToLowerInvariant(), s.Desired.ToString().ToLowerInvariant(), s.Host, s.Generation,
        s.Spec.MemoryBytes, s.Spec.Harts, s.LastError, s.Spec.Icount ? "icount" : "host");
}

/// <summary>A host in API answers.</summary>
public sealed record HostView(string Name, string Address, int ProcessId, ulong MemoryBytes, ulong UsedMemoryBytes, int Harts, int Guests, double Load, bool Draining = false)
{
    /// <summary>The view of a host's capacity.</summary>
    public static HostView From(HostCapacity h) => new(h.Name, h.Address, h.ProcessId, h.MemoryBytes, h.UsedMemoryBytes, h.Harts, h.Guests, h.Load);
}

/// <summary>The body of every 4xx/5xx answer.</summary>
public sealed record ErrorView(string Error, string Kind);
