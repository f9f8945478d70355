// CPU throughput: a fixed slice of the project's CPU-bound guest (cpubench.elf), and the
// decoder on its own. Results are recorded in docs/benchmarks/cpu.md.
using BenchmarkDotNet.Attributes;
using Tern.Machine;
using Tern.Riscv;

namespace Tern.Benchmarks;

/// <summary>Guest instructions per second of the interpreter.</summary>
[MemoryDiagnoser]
public class CpuBenchmarks
{
    /// <summary>Instructions per benchmark invocation.</summary>
    public const ulong Slice = 300_000_000;

    private byte[] _elf = [];
    private uint[] _words = [];

    /// <summary>Loads the guest and a sample of its instruction words.</summary>
    [GlobalSetup]
    public void Setup()
    {
        using var s = typeof(CpuBenchmarks).Assembly.GetManifestResourceStream("cpubench.elf")!;
        using var ms = new MemoryStream();
        s.CopyTo(ms);
        _elf = ms.ToArray();
        var rng = new Random(7);
        _words = Enumerable.Range(0, 4096).Select(_ => (uint)rng.Next() | 3u).ToArray();
    }

    /// <summary>Runs 300 M instructions of cpubench (machine build and load included, about 1%).</summary>
    [Benchmark(OperationsPerInvoke = (int)(Slice / 1_000_000))]
    public ulong Cpubench_million_instructions()
    {
        var r = GuestRunner.Run(new GuestRunOptions { Kernel = _elf, Clock = ClockMode.Icount, MaxInstructions = Slice });
        if (r.Reason != ExitReason.InstructionLimit)
            throw new InvalidOperationException(r.Message);
        return r.InstructionsRetired;
    }

    /// <summary>Decodes 4,096 random 32-bit words.</summary>
    [Benchmark(OperationsPerInvoke = 4096)]
    public int Decode_word()
    {
        int sum = 0;
        foreach (uint w in _words)
            sum += (int)Decoder.Decode(w).Op;
        return sum;
    }
}
