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
        if (args[0] == "lv" && args[1] != "list" && PoolInUse(args, open, pool) is { } shared)
            return shared;
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

    // An lv verb naming a thin volume, snapshot or pool (also as --thin-pool P), or an LV with
    // snapshots, whose pool a guest holds: any change there writes the pool's mapping journal,
    // which the guest's node writes while it holds the pool.
    private static string? PoolInUse(IReadOnlyList<string> args, IReadOnlyList<(string Lv, Guid LvId, string VmId, string Host)> open, StoragePool pool)
    {
        var held = open.Select(o => o.LvId).ToHashSet();
        for (int i = 2; i < args.Count; i++)
        {
            string a = args[i].StartsWith("lv:", StringComparison.Ordinal) ? args[i][3..] : args[i];
            bool poolName = args[i - 1] == "--thin-pool";
            int slash = a.IndexOf('/', StringComparison.Ordinal);
            foreach (var vg in pool.OpenVgs)
            {
                string name;
                if (slash > 0 && a[..slash] == vg.Name)
                    name = a[(slash + 1)..];
                else if (poolName && slash < 0)
                    name = a;
                else
                    continue;
                var md = vg.Metadata;
                IReadOnlyList<Guid> backing = md.FindPool(name) is { } p ? [p.DataLv, p.MetaLv] : VolumeGroup.BackingLvs(md, name) ?? [];
                if (backing.FirstOrDefault(held.Contains) is var id && id != Guid.Empty && backing.Count > 1)
                {
                    var hit = open.First(o => o.LvId == id);
                    return $"{vg.Name}/{name} shares a thin pool or snapshot store with {hit.Lv}, in use by VM {hit.VmId} on {hit.Host}; `lv {args[1]}` would write its mappings under the guest (stop the VM first)";
                }
            }
        }
        return null;
    }
}
