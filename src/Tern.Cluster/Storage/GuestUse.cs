// Which storage verbs the coordinator refuses while a guest on some node has an LV open: those
// that move, drop, rewrite or re-route the LV's blocks under the guest (the guest's node maps
// the LV through its own view and writes it directly). Growing an LV is allowed: the guest's
// view adopts the new metadata, and the new extents are not in use yet.
using Tern.Storage;

namespace Tern.Cluster.Storage;

/// <summary>The refusal rules for verbs on LVs in use by guests.</summary>
public static class GuestUse
{
    // lv verbs that only read metadata or add to an LV without touching its blocks.
    private static readonly HashSet<string> SafeLvVerbs = ["list", "create", "extend"];

    /// <summary>
    /// The one-line reason to refuse <paramref name="args"/>, or null. <paramref name="open"/>
    /// lists the LVs open for guests (VG/LV, id, VM, host).
    /// </summary>
    public static string? Refusal(IReadOnlyList<string> args, IReadOnlyList<(string Lv, Guid LvId, string VmId, string Host)> open, StoragePool pool)
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(open);
        ArgumentNullException.ThrowIfNull(pool);
        if (args.Count < 2 || open.Count == 0)
            return null;
        string InUse((string Lv, Guid LvId, string VmId, string Host) o) => $"{o.Lv} is in use by VM {o.VmId} on {o.Host}";
        if (args[0] == "lv" && !SafeLvVerbs.Contains(args[1]))
        {
            foreach (string a in args.Skip(2))
            {
                string name = a.StartsWith("lv:", StringComparison.Ordinal) ? a[3..] : a;
                if (open.FirstOrDefault(o => o.Lv == name) is { Lv: not null } hit)
                    return $"{InUse(hit)}; `lv {args[1]}` would change its blocks under the guest (stop the VM first)";
            }
            return null;
        }
        if (args[0] == "vg" && args[1] == "reduce" && args.Contains("--force"))
        {
            // --remove-missing --force removes LVs that lost data: never one a guest holds.
            if (args.Count > 2 && open.FirstOrDefault(o => o.Lv.StartsWith(args[2] + "/", StringComparison.Ordinal)) is { Lv: not null } hit)
                return $"{InUse(hit)}; `vg reduce --force` could remove it under the guest (stop the VM first)";
            return null;
        }
        if (args[0] == "pvmove")
        {
            PhysicalVolume pv;
            try
            {
                pv = pool.FindPv(args[1]);
            }
            catch (StorageException)
            {
                return null; // the verb itself says what is wrong with the PV
            }
            int name = args.ToList().IndexOf("--name");
            string? only = name >= 0 && name + 1 < args.Count ? args[name + 1] : null;
            foreach (var vg in pool.OpenVgs)
            {
                foreach (var lv in vg.Metadata.Lvs)
                {
                    if (only is not null && only != lv.Name && only != $"{vg.Name}/{lv.Name}")
                        continue;
                    if (open.FirstOrDefault(o => o.LvId == lv.Id) is { Lv: not null } hit
                        && lv.Segments.Any(s => s.Areas.Any(x => x.Pv == pv.Id)))
                        return $"{InUse(hit)} and has extents on {pv.Name}; pvmove would move them under the guest (stop the VM first, or pvmove --name another LV)";
                }
            }
        }
        return null;
    }
}
