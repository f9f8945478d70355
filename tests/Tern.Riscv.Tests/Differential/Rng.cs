// A tiny seeded PRNG (SplitMix64) so generated programs are identical on every runtime and
// platform: System.Random's seeded sequence is not a documented contract.
namespace Tern.Riscv.Tests.Differential;

/// <summary>SplitMix64 pseudo-random generator.</summary>
internal sealed class Rng(ulong seed)
{
    private ulong _state = seed;

    /// <summary>A generator for sub-stream <paramref name="stream"/> of <paramref name="seed"/>.</summary>
    public static Rng For(int seed, long stream) => new(Mix((ulong)(uint)seed * 0x9E3779B97F4A7C15UL ^ Mix((ulong)stream + 0x632BE59BD9B4E019UL)));

    private static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    public ulong NextU64()
    {
        _state += 0x9E3779B97F4A7C15UL;
        return Mix(_state);
    }

    /// <summary>Uniform in [0, max).</summary>
    public int Next(int max) => max <= 1 ? 0 : (int)(NextU64() % (ulong)max);

    /// <summary>Uniform in [min, max] (inclusive).</summary>
    public int Range(int min, int max) => min + Next(max - min + 1);

    /// <summary>True with probability <paramref name="p"/>.</summary>
    public bool Chance(double p) => (NextU64() >> 11) * (1.0 / (1UL << 53)) < p;

    public T Pick<T>(IReadOnlyList<T> items) => items[Next(items.Count)];
}
