// `tern bench resync`: how long a 2-way mirror takes to catch up a leg that missed writes in a
// share of its regions (from the write-intent record) against a full resync of the same leg;
// figures recorded in docs/benchmarks/cluster-storage.md.
using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Tern.Storage;

namespace Tern.Cli.Commands;

/// <summary>The `tern bench resync` verb.</summary>
public static class ResyncBenchCommand
{
    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.CamelCase };

    /// <summary>Adds `tern bench resync` to the `tern bench` command.</summary>
    public static Command WithResyncBench(Command bench)
    {
        ArgumentNullException.ThrowIfNull(bench);
        var dir = new Option<string>("--dir") { Description = "Directory for the PV files (default: the system temp directory).", DefaultValueFactory = _ => Path.GetTempPath() };
        var size = new Option<string>("--size") { Description = "Size of the mirrored volume.", DefaultValueFactory = _ => "1G" };
        var dirty = new Option<string>("--dirty") { Description = "Share of its 2 MiB regions the leg misses, such as 1% (spread over the volume).", DefaultValueFactory = _ => "1%" };
        var maxRate = new Option<string>("--max-rate") { Description = "Resync rate limit in bytes per second (e.g. 64M); default: unthrottled." };
        var json = new Option<bool>("--json") { Description = "Print the figures as one JSON object." };
        var resync = new Command("resync", "Time the resync of a 2-way mirror leg that missed writes in a share of its regions, against a full resync.") { dir, size, dirty, maxRate, json };
        resync.SetAction(async (parse, ct) =>
        {
            var output = parse.InvocationConfiguration.Output;
            var err = parse.InvocationConfiguration.Error;
            ResyncBenchmarkOptions options;
            try
            {
                options = new ResyncBenchmarkOptions
                {
                    Directory = parse.GetValue(dir)!,
                    Size = Size(parse.GetValue(size)!, "--size"),
                    DirtyPercent = Percent(parse.GetValue(dirty)!),
                    MaxBytesPerSecond = parse.GetValue(maxRate) is { } r ? Size(r, "--max-rate") : 0,
                };
            }
            catch (StorageException e)
            {
                err.WriteLine($"tern bench resync: {e.Message}");
                return StorageCommands.UsageError;
            }
            ResyncBenchmarkResult result;
            try
            {
                result = await StorageBenchmark.RunResyncAsync(options, ct).ConfigureAwait(false);
            }
            catch (StorageException e)
            {
                err.WriteLine($"tern bench resync: {e.Message}");
                return StorageCommands.UsageError;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                err.WriteLine($"tern bench resync: {e.Message}");
                return StorageCommands.IoError;
            }
            if (parse.GetValue(json))
            {
                output.WriteLine(JsonSerializer.Serialize(result, Json));
                return 0;
            }
            string rate = result.MaxBytesPerSecond == 0 ? "unthrottled" : $"at most {StorageCommands.FormatSize(result.MaxBytesPerSecond)}/s";
            output.WriteLine($"  2-way mirror of {StorageCommands.FormatSize(result.SizeBytes)}, {result.Regions} regions of 2 MiB, resync {rate}");
            output.WriteLine($"  {result.DirtyRegions} dirty regions ({StorageCommands.FormatSize(result.DirtyBytes)}): {result.DirtySeconds,8:F3} s {result.DirtyMiBPerSecond,8:F1} MiB/s");
            output.WriteLine($"  full resync ({StorageCommands.FormatSize(result.FullBytes)}):  {result.FullSeconds,8:F3} s {result.FullMiBPerSecond,8:F1} MiB/s");
            output.WriteLine($"  region resync is {result.Speedup:F1}x faster than a full one");
            return 0;
        });
        bench.Subcommands.Add(resync);
        return bench;
    }

    private static long Size(string text, string option)
    {
        if (!SizeParser.TryParse(text, out ulong bytes) || bytes == 0 || bytes > long.MaxValue / 2)
            throw new StorageException($"{option} {text}: expected a positive size such as 64M or 1G");
        return (long)bytes;
    }

    private static double Percent(string text)
    {
        string digits = text.Trim().TrimEnd('%');
        if (!double.TryParse(digits, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out double p) || p <= 0 || p > 100)
            throw new StorageException($"--dirty {text}: expected a share of the regions such as 1% (above 0, at most 100)");
        return p;
    }
}
