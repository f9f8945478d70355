// BenchmarkDotNet entry point: `dotnet run -c Release --project tests/Tern.Benchmarks -- --filter '*'`.
using BenchmarkDotNet.Running;

BenchmarkSwitcher.FromAssembly(typeof(Tern.Benchmarks.CpuBenchmarks).Assembly).Run(args);
