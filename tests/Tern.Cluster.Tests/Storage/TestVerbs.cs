// The few storage verbs these tests run on the coordinator's pool, written against the same
// StoragePool calls the CLI's command tree makes (Tern.Cli provides the full tree to real nodes;
// this project does not reference the CLI). Output: one line per result, errors on stderr with
// exit code 2 for a refusal and 1 for an I/O failure, as the CLI does.
using Tern.Storage;
using Tern.Storage.Format;

namespace Tern.Cluster.Tests.Storage;

internal static class TestVerbs
{
    public static async Task<int> RunAsync(StoragePool pool, IReadOnlyList<string> args, TextWriter stdout, TextWriter stderr, CancellationToken ct)
    {
        try
        {
            string Opt(string name, string? fallback = null)
            {
                int i = args.ToList().IndexOf(name);
                return i >= 0 && i + 1 < args.Count ? args[i + 1] : fallback ?? throw new StorageException($"{name} is required");
            }
            switch (string.Join(' ', args.Take(2)))
            {
                case "pv create":
                    var pv = await pool.CreatePvAsync(args[2], long.Parse(Opt("--size"), System.Globalization.CultureInfo.InvariantCulture), Opt("--host", pool.DefaultPvHost), ct);
                    await stdout.WriteLineAsync($"created {pv.Name}");
                    return 0;
                case "pv list":
                    foreach (var p in pool.Pvs)
                        await stdout.WriteLineAsync($"{p.Name} {p.Label.Host} {p.Vg?.Name ?? "-"}");
                    return 0;
                case "vg create":
                    var vg = await pool.CreateVgAsync(args[2], [.. args.Skip(3)], VolumeGroup.DefaultExtentSize, ct);
                    await stdout.WriteLineAsync($"created {vg.Name}");
                    return 0;
                case "vg extend":
                    {
                        var g = await pool.OpenVgAsync(args[2], ct);
                        await g.ExtendAsync([.. args.Skip(3).Select(pool.FindPv)], ct);
                        await stdout.WriteLineAsync($"extended {g.Name}");
                        return 0;
                    }
                case "lv create":
                    {
                        var (g, lv) = await LvAsync(pool, args[2], ct);
                        long bytes = long.Parse(Opt("--size"), System.Globalization.CultureInfo.InvariantCulture);
                        if (Opt("--type", "") == "thin-pool")
                        {
                            await g.CreateThinPoolAsync(lv, bytes, ct: ct);
                            await stdout.WriteLineAsync($"created thin pool {args[2]}");
                            return 0;
                        }
                        if (Opt("--thin-pool", "") is { Length: > 0 } thinPool)
                        {
                            await g.CreateThinAsync(lv, thinPool, bytes, ct);
                            await stdout.WriteLineAsync($"created thin volume {args[2]}");
                            return 0;
                        }
                        var layout = Opt("--type", "linear") == "mirror" ? new LvLayout(SegmentType.Mirror, int.Parse(Opt("--mirrors", "2"), System.Globalization.CultureInfo.InvariantCulture)) : LvLayout.Linear;
                        await g.CreateLvAsync(lv, long.Parse(Opt("--size"), System.Globalization.CultureInfo.InvariantCulture), layout, ct);
                        await stdout.WriteLineAsync($"created {args[2]}");
                        return 0;
                    }
                case "lv extend":
                    {
                        var (g, lv) = await LvAsync(pool, args[2], ct);
                        long size = await g.ExtendLvAsync(lv, long.Parse(Opt("--size"), System.Globalization.CultureInfo.InvariantCulture), ct);
                        await stdout.WriteLineAsync($"{args[2]} is {size}");
                        return 0;
                    }
                case "lv remove":
                    {
                        var (g, lv) = await LvAsync(pool, args[2], ct);
                        await g.RemoveLvAsync(lv, ct);
                        return 0;
                    }
                case "lv snapshot":
                    {
                        var (g, lv) = await LvAsync(pool, args[2], ct);
                        var snap = await g.SnapshotAsync(lv, Opt("--name"), storeBytes: null, ct);
                        await stdout.WriteLineAsync($"created snapshot {g.Name}/{snap.Name} of {lv}");
                        return 0;
                    }
                case "lv list":
                    foreach (string n in pool.VgNames)
                    {
                        var g = await pool.OpenVgAsync(n, ct);
                        foreach (var l in g.Metadata.Lvs)
                            await stdout.WriteLineAsync($"{n}/{l.Name} {l.Extents * g.Metadata.ExtentSize} {string.Join(',', l.Segments.SelectMany(s => s.Areas).Select(a => g.Metadata.Pvs.First(p => p.Id == a.Pv).Host))}");
                        foreach (var t in g.Metadata.Thins ?? [])
                        {
                            // As the CLI: a pool a guest holds is not opened here; its usage is unknown.
                            var tp = g.Metadata.ThinPools!.First(p => p.Id == t.Pool);
                            string used = g.ThinPoolHeld(tp.Id) is not null ? "-" : $"{(await g.OpenThinPoolAsync(tp.Name, ct)).MappedChunks(t.DeviceId)}";
                            await stdout.WriteLineAsync($"{n}/{t.Name} {t.Size} thin {tp.Name} chunks={used}");
                        }
                    }
                    return 0;
                default:
                    await stderr.WriteLineAsync($"unknown verb {string.Join(' ', args)}");
                    return 2;
            }
        }
        catch (StorageException e)
        {
            await stderr.WriteLineAsync(e.Message);
            return 2;
        }
        catch (IOException e)
        {
            await stderr.WriteLineAsync(e.Message);
            return 1;
        }
    }

    private static async Task<(VolumeGroup Vg, string Lv)> LvAsync(StoragePool pool, string spec, CancellationToken ct)
    {
        int slash = spec.IndexOf('/', StringComparison.Ordinal);
        return (await pool.OpenVgAsync(spec[..slash], ct), spec[(slash + 1)..]);
    }
}
