// `tern lv repair VG/LV [--max-rate R]`: rebuilds the mirror legs of a volume whose PV is missing
// or failing on another PV (of a host that holds no other copy, when the VG spans hosts), then
// synchronises them at most R bytes per second so guests keep their I/O. Interrupted, run it
// again: the second run finds the new legs recorded and finishes copying into them.
using System.CommandLine;
using Tern.Storage;

namespace Tern.Cli.Commands;

public static partial class StorageCommands
{
    private static Command LvRepair(PoolSource pools)
    {
        var name = new Argument<string>("VG/LV") { Description = "The mirrored logical volume." };
        var maxRate = new Option<string>("--max-rate") { Description = "Copy at most this many bytes per second (e.g. 50M); default: unthrottled." };
        var repair = new Command("repair", "Rebuild mirror legs lost with their PV on another host, then resync them (lvconvert --repair); interrupted, run it again to finish.")
        {
            name, maxRate,
        };
        Run(repair, "lv repair", pools, async (pool, parse, output, ct) =>
        {
            var (vgName, lvName) = ParseLvName(parse.GetValue(name)!);
            long rate = parse.GetValue(maxRate) is { } r ? ParseSize(r, "--max-rate") : 0;
            var group = await pool.OpenVgAsync(vgName, ct).ConfigureAwait(false);
            var bar = ProgressBar.For(parse, "repair", 0);
            var result = await group.RepairAsync(lvName, rate, bar?.ForCopy(), ct).ConfigureAwait(false);
            bar?.Done();
            foreach (string line in result.Replaced)
                output.WriteLine(line);
            output.WriteLine(result.Replaced.Count == 0 && result.BytesSynced == 0
                ? $"{vgName}/{lvName}: every mirror leg is present and up to date; nothing to repair."
                : $"{vgName}/{lvName}: {result.Replaced.Count} leg(s) rebuilt, {FormatSize(result.BytesSynced)} synchronised.");
            return 0;
        });
        return repair;
    }
}
