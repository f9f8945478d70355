// The checksum-cost figure of `tern bench storage` alone, repeated: a linear LV with checksums
// and one without (256 MiB each unless told, written in full), their cached sequential 1 MiB and random
// 4 KiB reads timed in ABBA blocks (StorageBenchmark.ChecksumCostAsync), the whole
// measurement run N times so that its run-to-run spread shows; also how many large reads the
// verify helper took part in, how many pieces it read, and how often it had to be woken.
//   dotnet run -c Release --project tests/Tern.Benchmarks -- storage-checksum-cost [dir] [runs] [MiB per LV]
using System.Globalization;
using Tern.Storage;

namespace Tern.Benchmarks;

internal static class StorageChecksumCost
{
    public static async Task<int> Run(string[] args)
    {
        string dir = Path.Combine(args.Length > 0 ? args[0] : Path.GetTempPath(), $"tern-checksum-cost-{Environment.ProcessId}");
        int runs = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 3;
        long size = (args.Length > 2 ? long.Parse(args[2], CultureInfo.InvariantCulture) : 256) << 20;
        Directory.CreateDirectory(dir);
        try
        {
            using var pv = await PhysicalVolume.CreateAsync(FilePhysicalVolumeIo.OpenOrCreate(Path.Combine(dir, "pv0.img"), (2 * size) + (512L << 20)), "bench");
            using var vg = await VolumeGroup.CreateAsync("bench", [pv]);
            await vg.CreateLvAsync("sum", size, LvLayout.Linear);
            await vg.CreateLvAsync("nosum", size, LvLayout.Linear with { Checksums = false });
            using var sum = vg.OpenLv("sum");
            using var nosum = vg.OpenLv("nosum");
            var big = new byte[1 << 20];
            new Random(1).NextBytes(big);
            for (long o = 0; o < size; o += big.Length)
            {
                await sum.WriteAsync(o, big);
                await nosum.WriteAsync(o, big);
            }
            await sum.FlushAsync();
            await nosum.FlushAsync();
            var options = new StorageBenchmarkOptions { Directory = dir, WorkingSet = size };
            Console.WriteLine($"run  workload        cost %   quartiles %      helper jobs/pieces/wakes");
            for (int run = 1; run <= runs; run++)
            {
                var (joined0, pieces0, wakes0) = PhysicalVolume.HelperCounts;
                var costs = await StorageBenchmark.ChecksumCostAsync(sum, nosum, options);
                var (joined, pieces, wakes) = PhysicalVolume.HelperCounts;
                foreach (var c in costs)
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{run,3}  {c.Workload,-14} {c.Percent,6:F1}   {c.LowPercent,5:F1} to {c.HighPercent,5:F1}   {joined - joined0}/{pieces - pieces0}/{wakes - wakes0}"));
            }
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
        return 0;
    }
}
