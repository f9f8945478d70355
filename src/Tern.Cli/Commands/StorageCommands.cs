// `tern pv|vg|lv`: the extent pool on this node, spelled as LVM spells it (pvcreate -> pv create,
// lvs -> lv list). State is found through TERN_HOME (default ~/.tern), which lists the node's
// PVs; VGs and LVs live in the metadata on the PVs themselves. Every refused request prints one
// line on stderr, exits 2 and changes nothing.
// The same verbs run against a cluster: with --cluster URL, or when TERN_HOME records a local
// cluster, the CLI sends its arguments to the API (StorageClusterClient), and the cluster's
// coordinator runs them through RunVerbAsync (a StorageVerbRunner) on the cluster's pool.
using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Tern.Storage;
using Tern.Storage.Format;

namespace Tern.Cli.Commands;

/// <summary>The `tern pv`, `tern vg` and `tern lv` verbs.</summary>
public static partial class StorageCommands
{
    /// <summary>Exit code for a request refused before anything changed.</summary>
    public const int UsageError = 2;

    /// <summary>Exit code for an I/O failure or unrepairable data found by a scrub.</summary>
    public const int IoError = 1;

    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.CamelCase };

    private delegate Task<int> PoolAction(StoragePool pool, ParseResult parse, TextWriter output, CancellationToken ct);

    // Where the verbs get their pool: this node's TERN_HOME (the CLI, which may instead send the
    // verb to a cluster), or a pool handed over by a caller that runs verbs for a client elsewhere
    // (the cluster's coordinator): then no file of this machine is read or written for the client
    // and nothing is drawn on a terminal.
    private sealed class PoolSource(StoragePool? given)
    {
        public static readonly PoolSource Local = new(null);

        public StoragePool? Given => given;

        public bool Remote => given is not null;
    }

    /// <summary>
    /// Runs one `pv|vg|lv|pvmove` verb (<paramref name="args"/> as typed after `tern`) on
    /// <paramref name="pool"/>, writing what the CLI would print; the exit code is the CLI's. This is
    /// the <see cref="StorageVerbRunner"/> a node gives its cluster, so a verb prints the same on
    /// the cluster as on one node. Verbs that need this machine's files (`lv copy` to or from a
    /// file) are refused with one line.
    /// </summary>
    public static async Task<int> RunVerbAsync(StoragePool pool, IReadOnlyList<string> args, TextWriter stdout, TextWriter stderr, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(pool);
        ArgumentNullException.ThrowIfNull(args);
        var pools = new PoolSource(pool);
        var root = new RootCommand("Tern storage verbs.") { Pv(pools), Vg(pools), Lv(pools), PvMove(pools) };
        // No response files: an argument @PATH from a client must not read a file of this machine.
        return await root.Parse([.. args], new ParserConfiguration { ResponseFileTokenReplacer = null }).InvokeAsync(new InvocationConfiguration { Output = stdout, Error = stderr }, ct).ConfigureAwait(false);
    }

    /// <summary>The storage verbs as a <see cref="StorageVerbRunner"/> (see <see cref="RunVerbAsync"/>).</summary>
    public static StorageVerbRunner Runner { get; } = RunVerbAsync;

    // Opens the pool, runs the action and turns refusals into one-line errors; in the CLI, first
    // sends the verb to the cluster when there is one.
    // What a verb does on a cluster instead of sending its words (null: send them).
    private delegate Task<int>? ClusterAction(ParseResult parse, string api, string? token, CancellationToken ct);

    private static void Run(Command cmd, string verb, PoolSource pools, PoolAction action, ClusterAction? onCluster = null) =>
        cmd.SetAction(async (parse, ct) =>
        {
            var err = parse.InvocationConfiguration.Error;
            if (!pools.Remote)
            {
                (string Api, string? Token)? cluster;
                try
                {
                    cluster = StorageClusterClient.Target(parse);
                }
                catch (InvalidDataException e)
                {
                    err.WriteLine($"tern {verb}: {e.Message}");
                    return UsageError;
                }
                if (cluster is { } c)
                {
                    return onCluster?.Invoke(parse, c.Api, c.Token, ct) is { } own
                        ? await own.ConfigureAwait(false)
                        : await StorageClusterClient.SendAsync(parse, verb, c.Api, c.Token, ct).ConfigureAwait(false);
                }
            }
            try
            {
                if (pools.Given is { } given)
                    return await action(given, parse, parse.InvocationConfiguration.Output, ct).ConfigureAwait(false);
                using var pool = await StoragePool.OpenAsync(StoragePool.DefaultHome(), ct).ConfigureAwait(false);
                return await action(pool, parse, parse.InvocationConfiguration.Output, ct).ConfigureAwait(false);
            }
            catch (StorageException e)
            {
                err.WriteLine($"tern {verb}: {e.Message}");
                return UsageError;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                err.WriteLine($"tern {verb}: {e.Message}");
                return IoError;
            }
        });

    // The top-level command of a verb family; in the CLI it takes --cluster and --token.
    private static Command Family(Command command, PoolSource pools)
    {
        if (!pools.Remote)
            StorageClusterClient.AddOptions(command);
        return command;
    }

    private static long ParseSize(string text, string option)
    {
        if (!SizeParser.TryParse(text, out ulong bytes) || bytes == 0 || bytes > long.MaxValue / 2)
            throw new StorageException($"{option} {text}: expected a positive size such as 512M or 2G");
        return (long)bytes;
    }

    private static (string Vg, string Lv) ParseLvName(string text)
    {
        int slash = text.IndexOf('/', StringComparison.Ordinal);
        if (slash <= 0 || slash == text.Length - 1 || text.IndexOf('/', slash + 1) >= 0)
            throw new StorageException($"'{text}' is not a logical volume name; expected VG/LV, such as vg0/disk1");
        return (text[..slash], text[(slash + 1)..]);
    }

    // ---- pv ----

    /// <summary>`tern pv`.</summary>
    public static Command Pv() => Pv(PoolSource.Local);

    private static Command Pv(PoolSource pools)
    {
        var pv = Family(new Command("pv", "Physical volumes: files (or block devices) that hold extents."), pools);

        var path = new Argument<string>("PATH") { Description = "The file or device; created when it does not exist." };
        var size = new Option<string>("--size") { Description = "Size of a file to create (e.g. 2G)." };
        var host = new Option<string>("--host") { Description = "Owning host (default: TERN_HOST or this machine's name); on a cluster, the node that creates and holds the file." };
        var create = new Command("create", "Label a file or device as a physical volume (pvcreate).") { path, size, host };
        Run(create, "pv create", pools, async (pool, parse, output, ct) =>
        {
            long bytes = parse.GetValue(size) is { } s ? ParseSize(s, "--size") : 0;
            string owner = parse.GetValue(host) ?? pool.DefaultPvHost;
            var created = await pool.CreatePvAsync(parse.GetValue(path)!, bytes, owner, ct).ConfigureAwait(false);
            output.WriteLine($"Physical volume \"{created.Name}\" successfully created ({FormatSize(created.Label.DataLength)} of data).");
            return 0;
        });

        var json = JsonOption();
        var list = new Command("list", "List physical volumes (pvs).") { json };
        Run(list, "pv list", pools, (pool, parse, output, ct) =>
        {
            var rows = pool.Pvs.Select(p =>
            {
                var vg = p.Vg;
                long extent = vg?.ExtentSize ?? 0;
                long free = vg is null ? p.Label.DataLength : Allocator.FreeRuns(vg)[p.Id].Sum(r => r.Count) * extent;
                long size = vg is null ? p.Label.DataLength : vg.Pvs.First(e => e.Id == p.Id).Extents * extent;
                return new PvRow(p.Name, vg?.Name ?? "", p.Label.Host, size, free, p.Id.ToString());
            }).ToList();
            if (parse.GetValue(json))
                output.WriteLine(JsonSerializer.Serialize(new { pvs = rows, problems = pool.Problems }, Json));
            else
                WriteTable(output, ["PV", "VG", "Host", "PSize", "PFree"], rows.Select(r => new[] { r.Pv, r.Vg, r.Host, FormatSize(r.Size), FormatSize(r.Free) }), "PSize", "PFree");
            WriteProblems(parse, pool);
            return Task.FromResult(0);
        });

        var rmPath = new Argument<string>("PATH") { Description = "The physical volume." };
        var remove = new Command("remove", "Wipe the label of a physical volume that is in no volume group (pvremove).") { rmPath };
        Run(remove, "pv remove", pools, async (pool, parse, output, ct) =>
        {
            await pool.RemovePvAsync(parse.GetValue(rmPath)!, ct).ConfigureAwait(false);
            output.WriteLine($"Labels on physical volume \"{Path.GetFullPath(parse.GetValue(rmPath)!)}\" successfully wiped.");
            return 0;
        });

        pv.Subcommands.Add(create);
        pv.Subcommands.Add(list);
        pv.Subcommands.Add(remove);
        return pv;
    }

    private sealed record PvRow(string Pv, string Vg, string Host, long Size, long Free, string Id);

    // ---- vg ----

    /// <summary>`tern vg`.</summary>
    public static Command Vg() => Vg(PoolSource.Local);

    private static Command Vg(PoolSource pools)
    {
        var vg = Family(new Command("vg", "Volume groups: pools of physical volumes."), pools);

        var name = new Argument<string>("VG") { Description = "Volume-group name." };
        var pvs = new Argument<string[]>("PV") { Description = "Physical volumes.", Arity = ArgumentArity.OneOrMore };
        var extent = new Option<string>("--extent-size") { Description = "Physical extent size (default 4M)." };
        var create = new Command("create", "Create a volume group (vgcreate).") { name, pvs, extent };
        Run(create, "vg create", pools, async (pool, parse, output, ct) =>
        {
            long es = parse.GetValue(extent) is { } e ? ParseSize(e, "--extent-size") : VolumeGroup.DefaultExtentSize;
            var created = await pool.CreateVgAsync(parse.GetValue(name)!, parse.GetValue(pvs)!, es, ct).ConfigureAwait(false);
            output.WriteLine($"Volume group \"{created.Name}\" successfully created ({created.Metadata.Pvs.Count} PVs, {FormatSize(VgSize(created.Metadata))}).");
            return 0;
        });

        var exName = new Argument<string>("VG") { Description = "Volume-group name." };
        var exPvs = new Argument<string[]>("PV") { Description = "Physical volumes to add.", Arity = ArgumentArity.OneOrMore };
        var extend = new Command("extend", "Add physical volumes to a volume group (vgextend).") { exName, exPvs };
        Run(extend, "vg extend", pools, async (pool, parse, output, ct) =>
        {
            var group = await pool.OpenVgAsync(parse.GetValue(exName)!, ct).ConfigureAwait(false);
            await group.ExtendAsync(parse.GetValue(exPvs)!.Select(pool.FindPv).ToList(), ct).ConfigureAwait(false);
            output.WriteLine($"Volume group \"{group.Name}\" successfully extended.");
            return 0;
        });

        var reName = new Argument<string>("VG") { Description = "Volume-group name." };
        var rePvs = new Argument<string[]>("PV") { Description = "Unused physical volumes to remove.", Arity = ArgumentArity.ZeroOrMore };
        var removeMissing = new Option<bool>("--remove-missing") { Description = "Drop the PVs that are gone for good; mirrors lose their legs there (vgreduce --removemissing)." };
        var force = new Option<bool>("--force") { Description = "With --remove-missing: also remove the logical volumes that lose their only copy of some extent." };
        var reduce = new Command("reduce", "Remove unused physical volumes from a volume group (vgreduce).") { reName, rePvs, removeMissing, force };
        Run(reduce, "vg reduce", pools, async (pool, parse, output, ct) =>
        {
            var given = parse.GetValue(rePvs) ?? [];
            bool dropMissing = parse.GetValue(removeMissing);
            if (dropMissing == (given.Length > 0))
                throw new StorageException(dropMissing ? "give either physical volumes or --remove-missing, not both" : "name the physical volumes to remove, or give --remove-missing");
            if (parse.GetValue(force) && !dropMissing)
                throw new StorageException("--force goes with --remove-missing");
            var group = await pool.OpenVgAsync(parse.GetValue(reName)!, ct).ConfigureAwait(false);
            if (dropMissing)
            {
                var result = await group.RemoveMissingAsync(parse.GetValue(force), ct).ConfigureAwait(false);
                if (result.RemovedPvs.Count == 0)
                {
                    output.WriteLine($"Volume group \"{group.Name}\" has no missing physical volumes; nothing changed.");
                    return 0;
                }
                foreach (string line in result.Changes)
                    output.WriteLine(line);
                output.WriteLine($"Volume group \"{group.Name}\" successfully reduced: missing {string.Join(", ", result.RemovedPvs)} removed.");
                return 0;
            }
            await group.ReduceAsync(given.Select(pool.FindPv).ToList(), ct).ConfigureAwait(false);
            output.WriteLine($"Volume group \"{group.Name}\" successfully reduced.");
            return 0;
        });

        var rmName = new Argument<string>("VG") { Description = "Volume-group name." };
        var remove = new Command("remove", "Remove an empty volume group (vgremove).") { rmName };
        Run(remove, "vg remove", pools, async (pool, parse, output, ct) =>
        {
            var group = await pool.OpenVgAsync(parse.GetValue(rmName)!, ct).ConfigureAwait(false);
            await group.RemoveAsync(ct).ConfigureAwait(false);
            output.WriteLine($"Volume group \"{group.Name}\" successfully removed.");
            return 0;
        });

        var json = JsonOption();
        var list = new Command("list", "List volume groups (vgs).") { json };
        Run(list, "vg list", pools, async (pool, parse, output, ct) =>
        {
            var rows = new List<VgRow>();
            foreach (string n in pool.VgNames)
            {
                var md = (await pool.OpenVgAsync(n, ct).ConfigureAwait(false)).Metadata;
                rows.Add(new VgRow(md.Name, md.Pvs.Count, md.Lvs.Count, VgSize(md), Allocator.FreeExtents(md) * md.ExtentSize, md.ExtentSize, md.Seqno,
                    md.Pvs.Select(p => p.Host).Distinct().Count()));
            }
            if (parse.GetValue(json))
                output.WriteLine(JsonSerializer.Serialize(new { vgs = rows }, Json));
            else
                WriteTable(output, ["VG", "#PV", "#LV", "#Host", "VSize", "VFree", "Ext", "Seq"], rows.Select(r => new[]
                {
                    r.Vg, Num(r.Pvs), Num(r.Lvs), Num(r.Hosts), FormatSize(r.Size), FormatSize(r.Free), FormatSize(r.ExtentSize), Num(r.Seqno),
                }), "#PV", "#LV", "#Host", "VSize", "VFree", "Ext", "Seq");
            WriteProblems(parse, pool);
            return 0;
        });

        vg.Subcommands.Add(create);
        vg.Subcommands.Add(extend);
        vg.Subcommands.Add(reduce);
        vg.Subcommands.Add(remove);
        vg.Subcommands.Add(list);
        return vg;
    }

    private sealed record VgRow(string Vg, int Pvs, int Lvs, long Size, long Free, long ExtentSize, long Seqno, int Hosts);

    private static long VgSize(VgMetadata md) => md.Pvs.Sum(p => p.Extents) * md.ExtentSize;

    // ---- lv ----

    /// <summary>`tern lv`.</summary>
    public static Command Lv() => Lv(PoolSource.Local);

    private static Command Lv(PoolSource pools)
    {
        var lv = Family(new Command("lv", "Logical volumes: the disks guests use."), pools);
        lv.Subcommands.Add(LvCreate(pools));
        lv.Subcommands.Add(LvList(pools));
        lv.Subcommands.Add(LvResize(pools, "extend", "Grow a logical volume, also while it is in use (lvextend).", grow: true));
        lv.Subcommands.Add(LvResize(pools, "reduce", "Shrink a logical volume, also while it is in use (lvreduce); data past the new end is lost.", grow: false));
        lv.Subcommands.Add(LvRemove(pools));
        lv.Subcommands.Add(LvCopy(pools));
        lv.Subcommands.Add(LvScrub(pools));
        lv.Subcommands.Add(LvRepair(pools));
        lv.Subcommands.Add(LvConvert(pools));
        lv.Subcommands.Add(LvSnapshot(pools));
        return lv;
    }

    private static Command LvCreate(PoolSource pools)
    {
        var name = new Argument<string>("VG/LV") { Description = "Where and what to create, such as vg0/disk1." };
        var size = new Option<string>("--size", "-L") { Description = "Size (e.g. 512M; a bare number is MiB), rounded up to whole extents.", Required = true };
        var type = new Option<string>("--type") { Description = "linear, striped, mirror, thin-pool or thin (default: linear, or what --stripes/--mirrors/--thin-pool imply)." };
        var stripes = new Option<int?>("--stripes", "-i") { Description = "Number of stripes (striped)." };
        var stripeSize = new Option<string>("--stripe-size", "-I") { Description = "Stripe unit (default 64K)." };
        var mirrors = new Option<int?>("--mirrors", "-m") { Description = "Number of copies, the original included (mirror; default 2). Unlike LVM's -m, which counts extra copies." };
        var thinPool = new Option<string>("--thin-pool") { Description = "The pool of a thin volume (implies --type thin); --size is then its virtual size." };
        var chunkSize = new Option<string>("--chunk-size") { Description = "Chunk size of a thin pool (default 64K; 4K makes a whole-block write to a shared block a remap)." };
        var checksums = new Option<string>("--checksums") { Description = "on (default) or off: whether every 4 KiB block carries a CRC32C verified on read; fixed at creation." };
        var create = new Command("create", "Create a logical volume, thin pool or thin volume (lvcreate).") { name, size, type, stripes, stripeSize, mirrors, thinPool, chunkSize, checksums };
        Run(create, "lv create", pools, async (pool, parse, output, ct) =>
        {
            var (vgName, lvName) = ParseLvName(parse.GetValue(name)!);
            long bytes = ParseSize(parse.GetValue(size)!, "--size");
            int? nStripes = parse.GetValue(stripes);
            int? nMirrors = parse.GetValue(mirrors);
            string? poolName = parse.GetValue(thinPool);
            string kind = parse.GetValue(type) ?? (poolName is not null ? "thin" : nMirrors is not null ? "mirror" : nStripes is not null ? "striped" : "linear");
            bool sums = parse.GetValue(checksums) switch
            {
                null or "on" => true,
                "off" => false,
                var other => throw new StorageException($"--checksums {other}: expected on or off"),
            };
            if (kind is "thin" or "thin-pool")
            {
                if (!sums)
                    throw new StorageException($"--checksums off applies to linear, striped and mirrored volumes, not --type {kind}");
                if (nStripes is not null || nMirrors is not null)
                    throw new StorageException($"--type {kind} does not combine with {(nStripes is not null ? "--stripes" : "--mirrors")}");
                var vg = await pool.OpenVgAsync(vgName, ct).ConfigureAwait(false);
                if (kind == "thin-pool")
                {
                    int chunk = parse.GetValue(chunkSize) is { } cs ? (int)Math.Min(ParseSize(cs, "--chunk-size"), int.MaxValue) : ThinPool.DefaultChunkSize;
                    await vg.CreateThinPoolAsync(lvName, bytes, chunk, ct).ConfigureAwait(false);
                    output.WriteLine($"Thin pool \"{vgName}/{lvName}\" created ({FormatSize(bytes)}, {FormatSize(chunk)} chunks).");
                }
                else
                {
                    if (poolName is null)
                        throw new StorageException("--type thin needs --thin-pool POOL");
                    var thin = await vg.CreateThinAsync(lvName, poolName, bytes, ct).ConfigureAwait(false);
                    output.WriteLine($"Thin volume \"{vgName}/{lvName}\" created ({FormatSize(thin.Size)} virtual, in pool {poolName}).");
                }
                return 0;
            }
            if (poolName is not null)
                throw new StorageException($"--thin-pool goes with --type thin, not --type {kind}");
            LvLayout layout = kind switch
            {
                "linear" when nStripes is null && nMirrors is null => LvLayout.Linear,
                "striped" when nMirrors is null => new LvLayout(SegmentType.Striped, nStripes ?? 2,
                    parse.GetValue(stripeSize) is { } su ? (int)Math.Min(ParseSize(su, "--stripe-size"), int.MaxValue) : LvLayout.DefaultStripeSize),
                "mirror" when nStripes is null => new LvLayout(SegmentType.Mirror, nMirrors ?? 2),
                "linear" or "striped" or "mirror" => throw new StorageException($"--type {kind} does not combine with {(nStripes is not null ? "--stripes" : "--mirrors")}"),
                _ => throw new StorageException($"--type {kind}: expected linear, striped, mirror, thin-pool or thin"),
            };
            if (layout.Type != SegmentType.Linear && layout.Areas < 2)
                throw new StorageException($"{(layout.Type == SegmentType.Mirror ? "--mirrors" : "--stripes")} {layout.Areas}: expected at least 2");
            var group = await pool.OpenVgAsync(vgName, ct).ConfigureAwait(false);
            var entry = await group.CreateLvAsync(lvName, bytes, layout with { Checksums = sums }, ct).ConfigureAwait(false);
            output.WriteLine($"Logical volume \"{vgName}/{entry.Name}\" created ({FormatSize(entry.Extents * group.Metadata.ExtentSize)}, {kind}{(sums ? "" : ", checksums off")}).");
            return 0;
        });
        return create;
    }

    private static Command LvList(PoolSource pools)
    {
        var json = JsonOption();
        var list = new Command("list", "List logical volumes (lvs).") { json };
        Run(list, "lv list", pools, async (pool, parse, output, ct) =>
        {
            var rows = new List<LvRow>();
            foreach (string n in pool.VgNames)
            {
                var group = await pool.OpenVgAsync(n, ct).ConfigureAwait(false);
                var md = group.Metadata;
                var poolOf = (md.ThinPools ?? []).SelectMany(p => new[] { (p.DataLv, p.Name), (p.MetaLv, p.Name) }).ToDictionary(x => x.Item1, x => x.Item2);
                foreach (var tp in md.ThinPools ?? [])
                {
                    string? storeOf = tp.Origin is { } o ? md.Lvs.FirstOrDefault(l => l.Id == o)?.Name : null;
                    if (group.ThinPoolHeld(tp.Id) is not null)
                    {
                        // A guest on some node writes its mappings: its usage is that node's to know.
                        var data = md.Lvs.First(l => l.Id == tp.DataLv);
                        rows.Add(new LvRow(tp.Name, md.Name, "twi-o", data.Extents * md.ExtentSize, storeOf is null ? "thin-pool" : "snapshot-store", 0, 0, null, [], null, null, storeOf));
                        continue;
                    }
                    var runtime = await group.OpenThinPoolAsync(tp.Name, ct).ConfigureAwait(false);
                    double used = runtime.Chunks == 0 ? 0 : 100.0 * (runtime.Chunks - runtime.FreeChunks) / runtime.Chunks;
                    rows.Add(new LvRow(tp.Name, md.Name, "twi--", runtime.Chunks * runtime.ChunkSize, storeOf is null ? "thin-pool" : "snapshot-store", 0, 0, null, [], null, Math.Round(used, 2), storeOf));
                }
                foreach (var t in md.Thins ?? [])
                {
                    var tp = md.ThinPools!.First(p => p.Id == t.Pool);
                    if (group.ThinPoolHeld(tp.Id) is not null)
                    {
                        rows.Add(new LvRow(t.Name, md.Name, "Vwi-o", t.Size, tp.Origin is null ? "thin" : "snapshot", 0, 0, null, [], tp.Name, null, t.Origin));
                        continue;
                    }
                    var runtime = await group.OpenThinPoolAsync(tp.Name, ct).ConfigureAwait(false);
                    double used = 100.0 * runtime.MappedChunks(t.DeviceId) * runtime.ChunkSize / t.Size;
                    rows.Add(new LvRow(t.Name, md.Name, t.Origin is null ? "Vwi--" : "Vwi-s", t.Size, tp.Origin is null ? "thin" : "snapshot", 0, 0, null, [], tp.Name, Math.Round(Math.Min(used, 100), 2), t.Origin));
                }
                foreach (var lv in md.Lvs)
                {
                    var type = lv.Segments.Count == 0 ? SegmentType.Linear : lv.Segments[0].Type;
                    var devices = lv.Segments.SelectMany(s => s.Areas).Select(a => md.Pvs.First(p => p.Id == a.Pv).Path).Distinct();
                    var lost = LostLegs(md, lv, group);
                    bool degraded = lost.Length > 0;
                    string attr = (type switch { SegmentType.Mirror => "m", SegmentType.Striped => "s", _ => "-" }) + "wi-" + (degraded ? "p" : "-");
                    // Sync%: the share of the mirror's copies that are up to date (stale legs and write-intent regions are not).
                    long copyBytes = lv.Segments.Sum(s => s.Areas.Count * s.Extents * md.ExtentSize);
                    long behind = lv.Segments.Sum(s => s.Areas.Sum(a => a.Stale ? s.Extents * md.ExtentSize
                        : Math.Min(s.Extents * md.ExtentSize, (a.DirtyRegions?.Count ?? 0) * VgMetadata.RegionSize)));
                    double sync = degraded ? 0 : copyBytes == 0 ? 100 : Math.Round(100.0 * (copyBytes - behind) / copyBytes, 2);
                    string kind = poolOf.TryGetValue(lv.Id, out var owner) ? (lv.Name.EndsWith("_tmeta", StringComparison.Ordinal) ? "thin-meta" : "thin-data") : type.ToString().ToLowerInvariant();
                    if (md.FindStore(lv.Id) is { } store)
                    {
                        attr = "o" + attr[1..]; // an origin, as lvs marks one
                        owner = store.Name;
                    }
                    rows.Add(new LvRow(lv.Name, md.Name, attr, lv.Extents * md.ExtentSize, kind, lv.Segments.Count,
                        lv.Segments.Count == 0 ? 1 : lv.Segments[0].Areas.Count, type == SegmentType.Mirror ? sync : null, [.. devices], owner, Checksums: !lv.ChecksumsOff,
                        Degraded: degraded ? lost : null));
                }
            }
            if (parse.GetValue(json))
                output.WriteLine(JsonSerializer.Serialize(new { lvs = rows }, Json));
            else
            {
                // The Degraded column appears only when some volume has a leg on a PV that is missing.
                bool anyDegraded = rows.Any(r => r.Degraded is not null);
                string[] headers = ["LV", "VG", "Attr", "LSize", "Type", "Pool", "Data%", "#Seg", "#Area", "Sync%", "Devices", "Degraded"];
                WriteTable(output, anyDegraded ? headers : headers[..^1], rows.Select(r =>
                {
                    string[] cells =
                    [
                        r.Lv, r.Vg, r.Attr, FormatSize(r.Size), r.Type, r.Pool ?? "", r.DataPercent is { } d ? d.ToString("F2", CultureInfo.InvariantCulture) : "",
                        r.Segments == 0 ? "" : Num(r.Segments), r.Areas == 0 ? "" : Num(r.Areas),
                        r.SyncPercent is { } p ? p.ToString("F2", CultureInfo.InvariantCulture) : "", string.Join(",", r.Devices),
                        string.Join(",", (r.Degraded ?? []).Select(l => $"{(l.Pv.StartsWith(l.Host + ":", StringComparison.Ordinal) ? l.Pv : $"{l.Host}:{l.Pv}")} ({l.State})")),
                    ];
                    return anyDegraded ? cells : cells[..^1];
                }), "LSize", "Data%", "#Seg", "#Area", "Sync%");
            }
            WriteProblems(parse, pool);
            return 0;
        });
        return list;
    }

    private sealed record LvRow(string Lv, string Vg, string Attr, long Size, string Type, int Segments, int Areas, double? SyncPercent, string[] Devices,
        string? Pool = null, double? DataPercent = null, string? Origin = null, bool Checksums = true, LostLeg[]? Degraded = null);

    // A leg (area) of a volume on a PV that cannot be used: its file, the host that holds it, and
    // why: missing (the file is gone, or its host did not answer) or failed (an I/O on it failed).
    private sealed record LostLeg(string Pv, string Host, string State);

    // The unreachable PVs of a volume's legs, one entry per PV, in the VG's order.
    private static LostLeg[] LostLegs(VgMetadata md, LvEntry lv, VolumeGroup group)
    {
        var used = lv.Segments.SelectMany(s => s.Areas).Select(a => a.Pv).ToHashSet();
        return
        [
            .. md.Pvs.Where(p => used.Contains(p.Id)).Select(p => group.Pvs.TryGetValue(p.Id, out var open)
                ? open.Failed ? new LostLeg(p.Path, p.Host, "failed") : null
                : new LostLeg(p.Path, p.Host, "missing")).OfType<LostLeg>(),
        ];
    }

    private static Command LvResize(PoolSource pools, string verb, string description, bool grow)
    {
        var name = new Argument<string>("VG/LV") { Description = "The logical volume." };
        var size = new Option<string>("--size", "-L") { Description = grow ? "New size, or +SIZE to add." : "New size, or -SIZE to take away.", Required = true };
        var cmd = new Command(verb, description) { name, size };
        Run(cmd, $"lv {verb}", pools, async (pool, parse, output, ct) =>
        {
            var (vgName, lvName) = ParseLvName(parse.GetValue(name)!);
            string text = parse.GetValue(size)!;
            var group = await pool.OpenVgAsync(vgName, ct).ConfigureAwait(false);
            var md = group.Metadata;
            long current = md.FindThin(lvName)?.Size
                ?? (md.FindPool(lvName) is { } tp ? md.Lvs.First(l => l.Id == tp.DataLv).Extents * md.ExtentSize : (long?)null)
                ?? (md.FindLv(lvName) ?? throw new StorageException($"logical volume {vgName}/{lvName} not found")).Extents * md.ExtentSize;
            long target = text[0] switch
            {
                '+' when grow => current + ParseSize(text[1..], "--size"),
                '-' when !grow => current - ParseSize(text[1..], "--size"),
                '+' or '-' => throw new StorageException($"--size {text}: lv {verb} takes {(grow ? "+SIZE" : "-SIZE")} or an absolute size"),
                _ => ParseSize(text, "--size"),
            };
            long now = grow
                ? await group.ExtendLvAsync(lvName, target, ct).ConfigureAwait(false)
                : await group.ReduceLvAsync(lvName, target, ct).ConfigureAwait(false);
            output.WriteLine($"Size of logical volume {vgName}/{lvName} changed from {FormatSize(current)} to {FormatSize(now)}.");
            return 0;
        });
        return cmd;
    }

    private static Command LvRemove(PoolSource pools)
    {
        var name = new Argument<string>("VG/LV") { Description = "The logical volume." };
        var remove = new Command("remove", "Remove a logical volume; its extents become free (lvremove).") { name };
        Run(remove, "lv remove", pools, async (pool, parse, output, ct) =>
        {
            var (vgName, lvName) = ParseLvName(parse.GetValue(name)!);
            var group = await pool.OpenVgAsync(vgName, ct).ConfigureAwait(false);
            var originOf = group.Metadata.FindThin(lvName)?.Origin is { } o && group.Metadata.FindLv(o) is { } lv ? lv : null;
            string? store = originOf is null ? null : group.Metadata.FindStore(originOf.Id)?.Name;
            await group.RemoveLvAsync(lvName, ct).ConfigureAwait(false);
            output.WriteLine($"Logical volume \"{vgName}/{lvName}\" successfully removed.");
            if (store is not null && group.Metadata.FindStore(originOf!.Id) is null)
                output.WriteLine($"That was the last snapshot of {vgName}/{originOf.Name}: its snapshot store {store} is dissolved and its blocks are back in {originOf.Name}'s own extents.");
            return 0;
        });
        return remove;
    }

    private static Command LvScrub(PoolSource pools)
    {
        var name = new Argument<string>("VG/LV") { Description = "The logical volume." };
        var scrub = new Command("scrub", "Read and verify every block of every copy; repair bad copies from good ones.") { name };
        Run(scrub, "lv scrub", pools, async (pool, parse, output, ct) =>
        {
            var (vgName, lvName) = ParseLvName(parse.GetValue(name)!);
            var group = await pool.OpenVgAsync(vgName, ct).ConfigureAwait(false);
            if (group.Metadata.FindThin(lvName) is { } thin)
            {
                var tp = group.Metadata.ThinPools!.First(p => p.Id == thin.Pool);
                throw new StorageException(tp.Origin is { } o
                    ? $"{vgName}/{lvName} is a snapshot whose blocks live in {group.Metadata.Lvs.FirstOrDefault(l => l.Id == o)?.Name} and its store: scrub {vgName}/{group.Metadata.Lvs.FirstOrDefault(l => l.Id == o)?.Name}"
                    : $"{vgName}/{lvName} is a thin volume whose blocks live in pool {tp.Name}: scrub {vgName}/{tp.Name}_tdata");
            }
            if (group.Metadata.FindPool(lvName) is not null)
                throw new StorageException($"{vgName}/{lvName} is a thin pool: scrub {vgName}/{lvName}_tdata and {vgName}/{lvName}_tmeta");
            if (group.Metadata.FindLv(lvName) is not null && group.NeedsResync(lvName))
            {
                var sync = ProgressBar.For(parse, "resync", 0);
                await group.ResyncAsync(lvName, sync?.ForCopy(), ct).ConfigureAwait(false);
                sync?.Done();
                output.WriteLine($"{vgName}/{lvName}: out-of-date mirror regions resynchronised.");
            }
            // An origin with snapshots is scrubbed with its store: its blocks, its snapshots' and the mappings.
            var names = new List<string> { lvName };
            if (group.Metadata.FindLv(lvName) is { } entry && group.Metadata.FindStore(entry.Id) is { } store)
            {
                names.Add(store.Name + "_tdata");
                names.Add(store.Name + "_tmeta");
            }
            long unrepairable = 0;
            foreach (string n in names)
            {
                using var lv = group.OpenScrubTarget(n);
                var bar = ProgressBar.For(parse, "scrub", lv.Length);
                var result = await lv.ScrubAsync(bar, ct).ConfigureAwait(false);
                bar?.Done();
                output.WriteLine($"{lv.Name}: {result.BlocksChecked} blocks checked, {result.Repaired} repaired, {result.Resynced} resynced, {result.Unrepairable} unrepairable.");
                foreach (var e in lv.IntegrityEvents)
                    output.WriteLine($"  offset {e.LvOffset}: bad copy on {e.Pv} at data offset {e.PvDataOffset}: {(e.Repaired ? "repaired" : "NOT repaired")}");
                unrepairable += result.Unrepairable;
            }
            return unrepairable > 0 ? IoError : 0;
        });
        return scrub;
    }

    private static Command LvSnapshot(PoolSource pools)
    {
        var origin = new Argument<string>("VG/LV") { Description = "The volume to snapshot: linear, striped, mirrored, thin, or a snapshot." };
        var snapName = new Option<string>("--name", "-n") { Description = "Name of the snapshot.", Required = true };
        var storeSize = new Option<string>("--size", "-L") { Description = "Size of the snapshot store a linear, striped or mirrored volume gets with its first snapshot (default: the volume's size)." };
        var snapshot = new Command("snapshot", "Take a writable snapshot; it shares every block with its origin until either side writes (lvcreate -s).") { origin, snapName, storeSize };
        Run(snapshot, "lv snapshot", pools, async (pool, parse, output, ct) =>
        {
            var (vgName, lvName) = ParseLvName(parse.GetValue(origin)!);
            long? store = parse.GetValue(storeSize) is { } ss ? ParseSize(ss, "--size") : null;
            var group = await pool.OpenVgAsync(vgName, ct).ConfigureAwait(false);
            var snap = await group.SnapshotAsync(lvName, parse.GetValue(snapName)!, store, ct).ConfigureAwait(false);
            output.WriteLine($"Logical volume \"{vgName}/{snap.Name}\" created (snapshot of {lvName}, {FormatSize(snap.Size)}).");
            return 0;
        });
        return snapshot;
    }

    private static Command LvConvert(PoolSource pools)
    {
        var name = new Argument<string>("VG/LV") { Description = "The logical volume." };
        var mirrors = new Option<int>("--mirrors", "-m") { Description = "Number of copies, the original included: 1 makes the volume linear.", Required = true };
        var convert = new Command("convert", "Add or remove mirror legs while the volume is in use (lvconvert -m); interrupted, run it again to finish.") { name, mirrors };
        Run(convert, "lv convert", pools, async (pool, parse, output, ct) =>
        {
            var (vgName, lvName) = ParseLvName(parse.GetValue(name)!);
            var group = await pool.OpenVgAsync(vgName, ct).ConfigureAwait(false);
            var bar = ProgressBar.For(parse, "resync", 0);
            var entry = await group.ConvertMirrorsAsync(lvName, parse.GetValue(mirrors), bar?.ForCopy(), ct).ConfigureAwait(false);
            bar?.Done();
            int copies = entry.Segments.Min(s => s.Areas.Count);
            output.WriteLine($"Logical volume {vgName}/{lvName} now has {copies} cop{(copies == 1 ? "y (linear)" : "ies")}.");
            return 0;
        });
        return convert;
    }

    /// <summary>Adds `tern bench storage` to the `tern bench` command.</summary>
    public static Command WithStorageBench(Command bench)
    {
        var dir = new Option<string>("--dir") { Description = "Directory for the test files (default: the system temp directory).", DefaultValueFactory = _ => Path.GetTempPath() };
        var size = new Option<string>("--size") { Description = "Bytes each device's workloads touch.", DefaultValueFactory = _ => "256M" };
        var ops = new Option<int>("--ops") { Description = "Random 4 KiB operations per random workload.", DefaultValueFactory = _ => 20_000 };
        var json = JsonOption();
        var storage = new Command("storage", "Sequential 1 MiB and random 4 KiB I/O on linear, striped and mirrored LVs against a plain file.") { dir, size, ops, json };
        storage.SetAction(async (parse, ct) =>
        {
            var output = parse.InvocationConfiguration.Output;
            long bytes;
            try
            {
                bytes = ParseSize(parse.GetValue(size)!, "--size");
            }
            catch (StorageException e)
            {
                parse.InvocationConfiguration.Error.WriteLine($"tern bench storage: {e.Message}");
                return UsageError;
            }
            var options = new StorageBenchmarkOptions { Directory = parse.GetValue(dir)!, WorkingSet = bytes, RandomOps = Math.Max(1, parse.GetValue(ops)) };
            bool asJson = parse.GetValue(json);
            if (!asJson)
                output.WriteLine("  device      workload         MiB/s       IOPS");
            var report = await StorageBenchmark.RunAsync(options, r =>
            {
                if (!asJson)
                    output.WriteLine($"  {r.Device,-13} {r.Workload,-19} {r.MiBPerSecond,8:F1} {r.Iops,10:F0}");
            }, ct).ConfigureAwait(false);
            var results = report.Results;
            if (asJson)
            {
                output.WriteLine(JsonSerializer.Serialize(report, Json));
            }
            else
            {
                output.WriteLine();
                foreach (var r in results.Where(r => r.Device != "plain-file"))
                {
                    int plus = r.Device.IndexOf('+', StringComparison.Ordinal);
                    var baseline = results.FirstOrDefault(b => b.Device == (plus > 0 ? r.Device[..plus] + "+0snap" : "plain-file") && b.Workload == r.Workload);
                    if (baseline is null || baseline == r)
                        continue;
                    output.WriteLine($"  {r.Device,-13} {r.Workload,-19} {r.MiBPerSecond / baseline.MiBPerSecond * 100,6:F1}% of {baseline.Device}");
                }
                output.WriteLine();
                output.WriteLine($"  checksum cost (linear vs linear-nosum, cached; median and quartiles of {StorageBenchmark.ChecksumCostBlocks} ABBA blocks):");
                foreach (var c in report.ChecksumCost)
                    output.WriteLine($"  {c.Workload,-19} {c.Percent,6:F1}%   ({c.LowPercent:F1}% to {c.HighPercent:F1}%)");
            }
            return 0;
        });
        bench.Subcommands.Add(storage);
        return bench;
    }

    /// <summary>`tern pvmove`.</summary>
    public static Command PvMove() => PvMove(PoolSource.Local);

    private static Command PvMove(PoolSource pools)
    {
        var source = new Argument<string>("PV") { Description = "The physical volume to empty." };
        var dests = new Argument<string[]>("DEST") { Description = "Physical volumes to move to (default: any other in the VG).", Arity = ArgumentArity.ZeroOrMore };
        var lvName = new Option<string>("--name", "-n") { Description = "Move only the extents of this logical volume." };
        var chunk = new Option<int>("--chunk-extents") { Description = "Extents copied between checkpoints.", DefaultValueFactory = _ => VolumeGroup.DefaultMoveChunkExtents };
        var move = new Command("pvmove", "Move allocated extents off a physical volume while volumes stay in use; interrupted (even by kill -9), run it again to resume.")
        {
            source, dests, lvName, chunk,
        };
        Family(move, pools);
        Run(move, "pvmove", pools, async (pool, parse, output, ct) =>
        {
            var pv = pool.FindPv(parse.GetValue(source)!);
            var vgMd = pv.Vg ?? throw new StorageException($"{pv.Name} is in no volume group; nothing to move");
            var group = await pool.OpenVgAsync(vgMd.Name, ct).ConfigureAwait(false);
            var targets = parse.GetValue(dests) is { Length: > 0 } d ? d.Select(pool.FindPv).ToList() : null;
            var bar = ProgressBar.For(parse, "pvmove", 0);
            long moved = await group.PvMoveAsync(pv, parse.GetValue(lvName), targets, parse.GetValue(chunk), bar?.ForCopy(), ct).ConfigureAwait(false);
            bar?.Done();
            output.WriteLine($"{pv.Name}: moved {moved} extents ({FormatSize(moved * group.Metadata.ExtentSize)}).");
            return 0;
        });
        return move;
    }

    private static Command LvCopy(PoolSource pools)
    {
        var src = new Argument<string>("SRC") { Description = "A file, or lv:VG/LV." };
        var dst = new Argument<string>("DST") { Description = "A file, or lv:VG/LV." };
        var skip = new Option<string>("--skip") { Description = "Start reading at this byte offset of SRC (like dd skip=, in bytes; K/M/G suffixes)." };
        var seek = new Option<string>("--seek") { Description = "Start writing at this byte offset of DST." };
        var count = new Option<string>("--count") { Description = "Copy at most this many bytes (K/M/G suffixes; default: to the end of SRC)." };
        var copy = new Command("copy", "Copy between a file and a logical volume (import or export a disk image), like dd.") { src, dst, skip, seek, count };
        Run(copy, "lv copy", pools, async (pool, parse, output, ct) =>
        {
            string from = parse.GetValue(src)!, to = parse.GetValue(dst)!;
            if (!from.StartsWith("lv:", StringComparison.Ordinal) && !to.StartsWith("lv:", StringComparison.Ordinal))
                throw new StorageException("one side of a copy must be a logical volume, written lv:VG/LV");
            if (pools.Remote && !(from.StartsWith("lv:", StringComparison.Ordinal) && to.StartsWith("lv:", StringComparison.Ordinal)))
                throw new StorageException("a copy between a file and a logical volume runs on one node only: on a cluster, both sides must be logical volumes (lv:VG/LV)");
            long skipBytes = parse.GetValue(skip) is { } sk ? ParseOffset(sk, "--skip") : 0;
            long seekBytes = parse.GetValue(seek) is { } se ? ParseOffset(se, "--seek") : 0;
            using var source = await OpenEndpointAsync(pool, from, forWrite: false, ct).ConfigureAwait(false);
            long length = source.Length - skipBytes;
            if (length < 0)
                throw new StorageException($"--skip {skipBytes} is past the end of {from} ({source.Length} bytes)");
            if (parse.GetValue(count) is { } c)
                length = Math.Min(length, ParseOffset(c, "--count"));
            using var target = await OpenEndpointAsync(pool, to, forWrite: true, ct, seekBytes + length).ConfigureAwait(false);
            if (target.IsLv && seekBytes + length > target.Length)
                throw new StorageException($"{from} has {length} bytes to copy, more than {to} holds from offset {seekBytes} ({target.Length - seekBytes} bytes)");
            if (target.Device is ThinVolume thin)
                await CheckThinRoomAsync(source.Device, skipBytes, thin, seekBytes, length, to, ct).ConfigureAwait(false);
            var bar = ProgressBar.For(parse, "copy", length);
            var sw = Stopwatch.StartNew();
            var buffer = new byte[4 << 20];
            for (long done = 0; done < length;)
            {
                int n = (int)Math.Min(buffer.Length, length - done);
                await source.Device.ReadAsync(skipBytes + done, buffer.AsMemory(0, n), ct).ConfigureAwait(false);
                await target.Device.WriteAsync(seekBytes + done, buffer.AsMemory(0, n), ct).ConfigureAwait(false);
                done += n;
                bar?.Report(done);
            }
            await target.Device.FlushAsync(ct).ConfigureAwait(false);
            bar?.Done();
            double secs = Math.Max(sw.Elapsed.TotalSeconds, 1e-6);
            output.WriteLine($"{length} bytes ({FormatSize(length)}) copied, {secs:F3} s, {length / secs / (1 << 20):F1} MiB/s");
            return 0;
        }, (parse, api, token, ct) =>
        {
            string from = parse.GetValue(src)!, to = parse.GetValue(dst)!;
            bool fromLv = from.StartsWith("lv:", StringComparison.Ordinal), toLv = to.StartsWith("lv:", StringComparison.Ordinal);
            if (fromLv == toLv)
                return null; // lv to lv runs on the cluster as a verb; file to file is refused there as here
            return CopyThroughApiAsync(parse, api, token, from, to, parse.GetValue(skip), parse.GetValue(seek), parse.GetValue(count), ct);
        });
        return copy;
    }

    // A copy into a thin volume (or snapshot) is refused before it starts when the pool cannot
    // hold it: the source is read once to find which destination chunks get non-zero data, and
    // those that would need a new chunk are counted. Zeros where nothing is mapped take no chunk.
    private static async Task CheckThinRoomAsync(IBlockDevice source, long skip, ThinVolume thin, long seek, long length, string to, CancellationToken ct)
    {
        int chunk = thin.ChunkSize;
        var pieces = new List<(long Chunk, bool Zero)>();
        var buffer = new byte[4 << 20];
        long current = -1;
        bool zero = true;
        for (long done = 0; done < length;)
        {
            int n = (int)Math.Min(buffer.Length, length - done);
            await source.ReadAsync(skip + done, buffer.AsMemory(0, n), ct).ConfigureAwait(false);
            for (int at = 0; at < n;)
            {
                long v = (seek + done + at) / chunk;
                int piece = (int)Math.Min(n - at, chunk - ((seek + done + at) % chunk));
                if (v != current)
                {
                    if (current >= 0)
                        pieces.Add((current, zero));
                    current = v;
                    zero = true;
                }
                zero &= !buffer.AsSpan(at, piece).ContainsAnyExcept((byte)0);
                at += piece;
            }
            done += n;
        }
        if (current >= 0)
            pieces.Add((current, zero));
        long needed = await thin.CountNewChunksAsync(pieces, ct).ConfigureAwait(false);
        if (needed > thin.FreeChunks)
            throw new InsufficientSpaceException($"{to}: thin pool {thin.PoolName} is out of space for this copy: it needs {Sizes.Format(needed * chunk)} of new chunks, {Sizes.Format(thin.FreeChunks * chunk)} is free; nothing was copied");
    }

    private static long ParseOffset(string text, string option)
    {
        if (text == "0")
            return 0;
        if (!SizeParser.TryParse(char.IsDigit(text[^1]) ? text + "B" : text, out ulong v) || v > long.MaxValue / 2)
            throw new StorageException($"{option} {text}: expected a byte count such as 0, 4096 or 1M");
        return (long)v;
    }

    private sealed class Endpoint(IBlockDevice device, IDisposable? owned, bool isLv) : IDisposable
    {
        public IBlockDevice Device => device;

        public long Length => device.Length;

        public bool IsLv => isLv;

        public void Dispose() => owned?.Dispose();
    }

    private static async Task<Endpoint> OpenEndpointAsync(StoragePool pool, string spec, bool forWrite, CancellationToken ct, long neededLength = 0)
    {
        if (spec.StartsWith("lv:", StringComparison.Ordinal))
        {
            var (vgName, lvName) = ParseLvName(spec[3..]);
            var group = await pool.OpenVgAsync(vgName, ct).ConfigureAwait(false);
            var device = await group.OpenDeviceAsync(lvName, ct).ConfigureAwait(false);
            return new Endpoint(device, device as IDisposable, isLv: true);
        }
        if (!forWrite && !File.Exists(spec))
            throw new StorageException($"{spec} does not exist");
        var file = new FileDevice(spec, forWrite, neededLength);
        return new Endpoint(file, file, isLv: false);
    }

    // A plain file seen as a block device, for the non-LV side of a copy.
    private sealed class FileDevice : IBlockDevice, IDisposable
    {
        private readonly Microsoft.Win32.SafeHandles.SafeFileHandle _handle;

        // An output file ends where the copy ends, as dd leaves it (without conv=notrunc); a device
        // node keeps its size.
        public FileDevice(string path, bool forWrite, long length)
        {
            _handle = File.OpenHandle(path, forWrite ? FileMode.OpenOrCreate : FileMode.Open, forWrite ? FileAccess.ReadWrite : FileAccess.Read);
            if (forWrite && !Path.GetFullPath(path).StartsWith("/dev/", StringComparison.Ordinal))
                RandomAccess.SetLength(_handle, length);
        }

        public long Length => RandomAccess.GetLength(_handle);

        public ValueTask ReadAsync(long offset, Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            int n = RandomAccess.Read(_handle, buffer.Span, offset);
            buffer.Span[n..].Clear();
            return ValueTask.CompletedTask;
        }

        public ValueTask WriteAsync(long offset, ReadOnlyMemory<byte> data, CancellationToken cancellationToken = default)
        {
            RandomAccess.Write(_handle, data.Span, offset);
            return ValueTask.CompletedTask;
        }

        public ValueTask FlushAsync(CancellationToken cancellationToken = default)
        {
            RandomAccess.FlushToDisk(_handle);
            return ValueTask.CompletedTask;
        }

        public void Dispose() => _handle.Dispose();
    }

    // ---- output helpers ----

    private static Option<bool> JsonOption() => new("--json") { Description = "Print JSON instead of columns." };

    private static void WriteProblems(ParseResult parse, StoragePool pool)
    {
        foreach (string p in pool.Problems)
            parse.InvocationConfiguration.Error.WriteLine($"tern: warning: {p}");
    }

    private static string Num(long v) => v.ToString(CultureInfo.InvariantCulture);

    /// <summary>Formats a size as LVM does: two decimals and a lower-case binary unit (512.00m, 2.00g).</summary>
    public static string FormatSize(long bytes) => Sizes.Format(bytes);

    // Aligned columns like pvs/vgs/lvs; the named columns are right-aligned.
    private static void WriteTable(TextWriter output, string[] headers, IEnumerable<string[]> rows, params string[] rightAligned)
    {
        var all = rows.Prepend(headers).ToList();
        var widths = headers.Select((_, i) => all.Max(r => r[i].Length)).ToArray();
        var sb = new StringBuilder();
        foreach (var row in all)
        {
            sb.Clear().Append("  ");
            for (int i = 0; i < row.Length; i++)
            {
                bool right = rightAligned.Contains(headers[i]);
                sb.Append(right ? row[i].PadLeft(widths[i]) : row[i].PadRight(widths[i]));
                if (i < row.Length - 1)
                    sb.Append(' ');
            }
            output.WriteLine(sb.ToString().TrimEnd());
        }
    }

    // A one-line progress bar with a rate, drawn on stderr only when stderr is a terminal.
    private sealed class ProgressBar(TextWriter err, string what, long total) : IProgress<long>
    {
        private long _total = total;

        public IProgress<CopyProgress> ForCopy() => new CopyAdapter(this);

        private sealed class CopyAdapter(ProgressBar bar) : IProgress<CopyProgress>
        {
            public void Report(CopyProgress value)
            {
                bar._total = value.Total;
                bar.Report(value.Done);
            }
        }

        private readonly Stopwatch _clock = Stopwatch.StartNew();
        private long _lastDraw = -1;

        public static ProgressBar? For(ParseResult parse, string what, long total) =>
            ReferenceEquals(parse.InvocationConfiguration.Error, Console.Error) && !Console.IsErrorRedirected
                ? new ProgressBar(Console.Error, what, total) : null;

        public void Report(long value)
        {
            long ms = _clock.ElapsedMilliseconds;
            long total = _total;
            if (ms - _lastDraw < 200 && value < total)
                return;
            _lastDraw = ms;
            double frac = total == 0 ? 1 : (double)value / total;
            int filled = (int)(frac * 30);
            double rate = value / Math.Max(_clock.Elapsed.TotalSeconds, 1e-6) / (1 << 20);
            err.Write($"\r{what} [{new string('#', filled)}{new string('.', 30 - filled)}] {frac * 100,5:F1}% {FormatSize(value)}/{FormatSize(total)} {rate:F1} MiB/s ");
        }

        public void Done() => err.WriteLine();
    }
}
