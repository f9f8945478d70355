// `tern bench extent`: local against remote (ExtentServer over loopback TCP) linear and
// mirrored LVs; the logic is in Tern.Storage.Remote.ExtentBenchmark.
using System.CommandLine;
using System.Text.Json;
using Tern.Storage.Remote;

namespace Tern.Cli.Commands;

/// <summary>The `tern bench extent` verb.</summary>
public static class ExtentBenchCommand
{
    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.CamelCase };

    /// <summary>Adds `extent` to the `tern bench` command.</summary>
    public static Command WithExtentBench(Command bench)
    {
        ArgumentNullException.ThrowIfNull(bench);
        var dir = new Option<string>("--dir") { Description = "Directory for the PV files (default: the system temp directory).", DefaultValueFactory = _ => Path.GetTempPath() };
        var size = new Option<string>("--size") { Description = "Bytes of each LV the workloads touch.", DefaultValueFactory = _ => "256M" };
        var ops = new Option<int>("--ops") { Description = "Operations per random workload (1-1000000).", DefaultValueFactory = _ => 10_000 };
        var runs = new Option<int>("--runs") { Description = "Runs per workload, best kept (1-20).", DefaultValueFactory = _ => 3 };
        var json = new Option<bool>("--json") { Description = "Print the results as JSON." };
        var extent = new Command("extent", "Sequential 1 MiB and random 64 KiB / 4 KiB I/O on linear and mirrored LVs, local PVs against PVs served by extent servers over loopback TCP.")
        {
            dir, size, ops, runs, json,
        };
        extent.SetAction(async (parse, ct) =>
        {
            var output = parse.InvocationConfiguration.Output;
            var error = parse.InvocationConfiguration.Error;
            string sizeText = parse.GetValue(size)!;
            int opCount = parse.GetValue(ops), runCount = parse.GetValue(runs);
            if (!SizeParser.TryParse(sizeText, out ulong bytes) || bytes < (16UL << 20) || bytes > (64UL << 30) || bytes % (1UL << 20) != 0)
            {
                error.WriteLine($"tern bench extent: --size {sizeText}: expected a whole number of MiB between 16M and 64G");
                return 2;
            }
            if (opCount is < 1 or > 1_000_000 || runCount is < 1 or > 20)
            {
                error.WriteLine("tern bench extent: --ops 1-1000000, --runs 1-20.");
                return 2;
            }
            var options = new ExtentBenchmarkOptions { Directory = parse.GetValue(dir)!, WorkingSet = (long)bytes, RandomOps = opCount, Runs = runCount };
            bool asJson = parse.GetValue(json);
            if (!asJson)
                output.WriteLine("  device         workload           MiB/s       IOPS");
            List<ExtentBenchmarkResult> results;
            try
            {
                results = await ExtentBenchmark.RunAsync(options, r =>
                {
                    if (!asJson)
                        output.WriteLine($"  {r.Device,-14} {r.Workload,-15} {r.MiBPerSecond,9:F1} {r.Iops,10:F0}");
                }, ct).ConfigureAwait(false);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                error.WriteLine($"tern bench extent: {e.Message}");
                return 1;
            }
            if (asJson)
            {
                output.WriteLine(JsonSerializer.Serialize(results, Json));
                return 0;
            }
            output.WriteLine();
            foreach (var r in results)
            {
                if (!r.Device.StartsWith("remote-", StringComparison.Ordinal))
                    continue;
                string local = "local-" + r.Device["remote-".Length..];
                var baseline = results.Find(b => b.Device == local && b.Workload == r.Workload);
                if (baseline is not null)
                    output.WriteLine($"  {r.Device,-14} {r.Workload,-15} {r.MiBPerSecond / baseline.MiBPerSecond * 100,6:F1}% of {local}");
            }
            return 0;
        });
        bench.Subcommands.Add(extent);
        return bench;
    }
}
