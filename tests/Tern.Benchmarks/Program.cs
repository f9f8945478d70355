// BenchmarkDotNet entry point: `dotnet run -c Release --project tests/Tern.Benchmarks -- --filter '*'`;
// `-- migration-downtime` measures the parts of a live migration's downtime instead;
// `-- storage-read-path` where a cached read's time goes, layer by layer;
// `-- storage-checksum-cost` the checksum cost of cached reads, repeated to show its spread.
using BenchmarkDotNet.Running;

if (args.Length > 0 && args[0] == "migration-downtime")
    return await Tern.Benchmarks.MigrationDowntime.Run(args[1..]);
if (args.Length > 0 && args[0] == "storage-read-path")
    return await Tern.Benchmarks.StorageReadPath.Run(args[1..]);
if (args.Length > 0 && args[0] == "storage-checksum-cost")
    return await Tern.Benchmarks.StorageChecksumCost.Run(args[1..]);
BenchmarkSwitcher.FromAssembly(typeof(Tern.Benchmarks.CpuBenchmarks).Assembly).Run(args);
return 0;
