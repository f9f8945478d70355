// A storage benchmark on local files: sequential 1 MiB and random 4 KiB reads and writes on
// linear, striped and mirrored LVs, against the same operations on a plain file in the same
// directory. Used by `tern bench storage`; results are recorded in docs/benchmarks/storage.md.
using System.Diagnostics;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Tern.Storage;

/// <summary>What to measure.</summary>
public sealed record StorageBenchmarkOptions
{
    /// <summary>Where the PV files and the plain file go (removed afterwards).</summary>
    public required string Directory { get; init; }

    /// <summary>Bytes of each device the workloads touch.</summary>
    public long WorkingSet { get; init; } = 256L << 20;

    /// <summary>Random 4 KiB operations per random workload.</summary>
    public int RandomOps { get; init; } = 20_000;

    /// <summary>Seed for the random offsets.</summary>
    public int Seed { get; init; } = 1;
}

/// <summary>One measured workload on one device.</summary>
/// <param name="Device">plain-file, linear, striped, mirror.</param>
/// <param name="Workload">seq-write-1M, seq-read-1M, rand-write-4K, rand-read-4K.</param>
/// <param name="MiBPerSecond">Throughput.</param>
/// <param name="Iops">Operations per second.</param>
public sealed record StorageBenchmarkResult(string Device, string Workload, double MiBPerSecond, double Iops);

/// <summary>
/// What checksums cost one cached read workload: the same reads on a linear LV with checksums (A)
/// and on one without (B), timed in blocks of four runs, A B B A or B A A B in turn; each block
/// gives the ratio of its two A times to its two B times.
/// </summary>
/// <param name="Workload">seq-read-1M or rand-read-4K.</param>
/// <param name="Percent">The median over the blocks of (A time / B time - 1), in percent.</param>
/// <param name="LowPercent">The lower quartile of the same per-block figures.</param>
/// <param name="HighPercent">Their upper quartile.</param>
/// <param name="Blocks">How many blocks were timed.</param>
public sealed record ChecksumCostResult(string Workload, double Percent, double LowPercent, double HighPercent, int Blocks);

/// <summary>Everything one run of the benchmark measured.</summary>
/// <param name="Results">Each workload on each device (best of five runs).</param>
/// <param name="ChecksumCost">The checksum cost of the cached reads (linear vs linear-nosum).</param>
public sealed record StorageBenchmarkReport(List<StorageBenchmarkResult> Results, List<ChecksumCostResult> ChecksumCost);

/// <summary>Runs the storage benchmark.</summary>
public static partial class StorageBenchmark
{
    // posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED): drops a file's clean pages from the page
    // cache, so the next reads come from the disk. Only the benchmark's own files are touched.
    [LibraryImport("libc", EntryPoint = "posix_fadvise")]
    private static partial int PosixFadvise(int fd, long offset, long length, int advice);

    private const int FadvDontNeed = 4;

    private static void Evict(string dir)
    {
        BlockCache.Shared.Clear(); // Tern's own cache of verified blocks too
        if (!OperatingSystem.IsLinux())
            return;
        foreach (string file in System.IO.Directory.GetFiles(dir))
        {
            using var handle = File.OpenHandle(file, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite);
            RandomAccess.FlushToDisk(handle); // dirty pages cannot be dropped
            _ = PosixFadvise((int)handle.DangerousGetHandle(), 0, 0, FadvDontNeed);
        }
    }

    /// <summary>
    /// Runs every workload on every device; writes end with a flush that is timed too. Devices take
    /// turns run by run (five runs, the best kept), so drift in the machine's load and page cache
    /// hits them all alike.
    /// </summary>
    public static async Task<StorageBenchmarkReport> RunAsync(StorageBenchmarkOptions o, Action<StorageBenchmarkResult>? onResult = null, CancellationToken ct = default)
    {
        string dir = Path.Combine(o.Directory, $"tern-bench-{Environment.ProcessId}");
        System.IO.Directory.CreateDirectory(dir);
        var results = new List<StorageBenchmarkResult>();
        var costs = new List<ChecksumCostResult>();
        var pvs = new List<PhysicalVolume>();
        var devices = new List<(string Name, IBlockDevice Device)>();
        VolumeGroup? vg = null;
        try
        {
            devices.Add(("plain-file", new PlainFile(Path.Combine(dir, "plain.img"), o.WorkingSet)));
            long pvSize = (o.WorkingSet * 4) + (512L << 20);
            for (int i = 0; i < 3; i++)
                pvs.Add(await PhysicalVolume.CreateAsync(FilePhysicalVolumeIo.OpenOrCreate(Path.Combine(dir, $"pv{i}.img"), pvSize), "bench", ct).ConfigureAwait(false));
            vg = await VolumeGroup.CreateAsync("bench", pvs, ct: ct).ConfigureAwait(false);
            foreach (var (name, layout) in new[]
            {
                ("linear", LvLayout.Linear),
                ("linear-nosum", LvLayout.Linear with { Checksums = false }),
                ("striped", new LvLayout(Format.SegmentType.Striped, 3)),
                ("mirror", new LvLayout(Format.SegmentType.Mirror, 2)),
            })
            {
                await vg.CreateLvAsync(name, o.WorkingSet, layout, ct).ConfigureAwait(false);
                devices.Add((name, vg.OpenLv(name)));
            }
            await vg.CreateThinPoolAsync("pool", o.WorkingSet + (SnapshotSet * 5), ct: ct).ConfigureAwait(false);
            await vg.CreateThinAsync("thin", "pool", o.WorkingSet, ct).ConfigureAwait(false);
            devices.Add(("thin", await vg.OpenDeviceAsync("thin", ct).ConfigureAwait(false)));
            var workloads = devices.Select(d => (d.Name, Work: new Workloads(d.Device, o, () => Evict(dir), ct))).ToList();
            foreach (var (_, w) in workloads)
                await w.WarmUpAsync().ConfigureAwait(false);
            foreach (string workload in Workloads.Names)
            {
                var best = workloads.ToDictionary(w => w.Name, _ => double.MaxValue);
                for (int run = 0; run < 5; run++)
                {
                    foreach (var (name, w) in workloads)
                        best[name] = Math.Min(best[name], await w.TimeAsync(workload, o.Seed + run + 1).ConfigureAwait(false));
                }
                foreach (var (name, w) in workloads)
                {
                    var (bytes, ops) = w.Volume(workload);
                    var r = new StorageBenchmarkResult(name, workload, bytes / best[name] / (1 << 20), ops / best[name]);
                    results.Add(r);
                    onResult?.Invoke(r);
                }
            }
            // The cold runs left the two LVs' page cache a patchwork (pages refilled by random 4 KiB
            // reads, others by readahead, in folios of different sizes, which copy at different
            // speeds): both are dropped and read back in the same way first, so that their copies
            // cost alike and only the checksums differ.
            var byName = workloads.ToDictionary(w => w.Name, w => w.Work);
            Evict(dir);
            await byName["linear"].RunAsync("seq-read-1M", o.Seed).ConfigureAwait(false);
            await byName["linear-nosum"].RunAsync("seq-read-1M", o.Seed).ConfigureAwait(false);
            costs.AddRange(await ChecksumCostAsync(byName["linear"], byName["linear-nosum"], o.Seed).ConfigureAwait(false));
            foreach (string kind in new[] { "linear", "thin" })
            {
                var best = new Dictionary<int, double>();
                for (int run = 0; run < 3; run++)
                {
                    foreach (int snapshots in new[] { 0, 1, 10 })
                        best[snapshots] = Math.Min(best.GetValueOrDefault(snapshots, double.MaxValue), await SnapshotWriteCostAsync(vg, kind, snapshots, o, ct).ConfigureAwait(false));
                }
                foreach (var (snapshots, seconds) in best)
                {
                    var r = new StorageBenchmarkResult($"{kind}+{snapshots}snap", "rand-write-4K-first", (long)o.RandomOps * 4096 / seconds / (1 << 20), o.RandomOps / seconds);
                    results.Add(r);
                    onResult?.Invoke(r);
                }
            }
        }
        finally
        {
            foreach (var (_, d) in devices)
                (d as IDisposable)?.Dispose();
            vg?.Dispose();
            foreach (var pv in pvs)
                pv.Dispose();
            System.IO.Directory.Delete(dir, recursive: true);
        }
        return new StorageBenchmarkReport(results, costs);
    }

    /// <summary>Blocks of four runs timed per workload by <see cref="ChecksumCostAsync(IBlockDevice, IBlockDevice, StorageBenchmarkOptions, CancellationToken)"/>.</summary>
    public const int ChecksumCostBlocks = 16;

    // Each of a block's runs does the workload this many times (with as many seeds): one pass is
    // only 20-40 ms, short enough for a timer tick or a page-cache hiccup to show.
    private const int ChecksumCostRepeats = 4;

    /// <summary>
    /// The checksum cost of cached sequential 1 MiB and random 4 KiB reads: <paramref name="withSums"/>
    /// (an LV with checksums) against <paramref name="without"/> (the same layout without), both
    /// already written in full. See <see cref="ChecksumCostResult"/>.
    /// </summary>
    public static async Task<List<ChecksumCostResult>> ChecksumCostAsync(IBlockDevice withSums, IBlockDevice without, StorageBenchmarkOptions o, CancellationToken ct = default)
    {
        var sum = new Workloads(withSums, o, () => { }, ct);
        var nosum = new Workloads(without, o, () => { }, ct);
        await sum.RunAsync("seq-read-1M", o.Seed).ConfigureAwait(false); // warm-up
        await nosum.RunAsync("seq-read-1M", o.Seed).ConfigureAwait(false);
        return await ChecksumCostAsync(sum, nosum, o.Seed).ConfigureAwait(false);
    }

    // Within a block both devices run the same requests, each once first and once last, so a
    // steady drift in the machine's load and any advantage of running first or second (seen as
    // +-10% between single pairs of 4 KiB runs) cancel out; a block hit by a burst of load gives
    // an outlying ratio, which the median ignores. Blocks alternate which device starts.
    private static async Task<List<ChecksumCostResult>> ChecksumCostAsync(Workloads sum, Workloads nosum, int seed)
    {
        var costs = new List<ChecksumCostResult>();
        foreach (string workload in new[] { "seq-read-1M", "rand-read-4K" })
        {
            var ratios = new double[ChecksumCostBlocks];
            for (int block = 0; block < ratios.Length; block++)
            {
                var (first, second) = block % 2 == 0 ? (sum, nosum) : (nosum, sum);
                int s = seed + (block * ChecksumCostRepeats);
                double t1 = await first.TimeAsync(workload, s, ChecksumCostRepeats).ConfigureAwait(false);
                double t2 = await second.TimeAsync(workload, s, ChecksumCostRepeats).ConfigureAwait(false);
                t2 += await second.TimeAsync(workload, s, ChecksumCostRepeats).ConfigureAwait(false);
                t1 += await first.TimeAsync(workload, s, ChecksumCostRepeats).ConfigureAwait(false);
                var (with, without) = block % 2 == 0 ? (t1, t2) : (t2, t1);
                ratios[block] = ((with / without) - 1) * 100;
            }
            costs.Add(Summarize(workload, ratios));
        }
        return costs;
    }

    /// <summary>The median and quartiles of per-block checksum costs (in percent).</summary>
    internal static ChecksumCostResult Summarize(string workload, double[] percents)
    {
        var sorted = percents.Order().ToArray();
        return new ChecksumCostResult(workload, Quantile(sorted, 0.5), Quantile(sorted, 0.25), Quantile(sorted, 0.75), sorted.Length);
    }

    // Linear interpolation between the closest ranks of a sorted, non-empty array.
    private static double Quantile(double[] sorted, double q)
    {
        double rank = q * (sorted.Length - 1);
        int below = (int)Math.Floor(rank);
        int above = Math.Min(below + 1, sorted.Length - 1);
        return sorted[below] + ((rank - below) * (sorted[above] - sorted[below]));
    }

    private const long SnapshotSet = 64L << 20;

    // The snapshot tax: a fully written 64 MiB volume gets n snapshots, then random 4 KiB writes
    // (each first write to a block shared with the snapshots remaps it) run once, with a flush.
    // A linear LV is snapshotted through its snapshot store (4 KiB chunks); a thin volume shares
    // the 64 KiB chunks of its pool, so a 4 KiB write to a shared chunk copies the rest of it.
    private static async Task<double> SnapshotWriteCostAsync(VolumeGroup vg, string kind, int snapshots, StorageBenchmarkOptions o, CancellationToken ct)
    {
        string name = $"{kind}snap{snapshots}";
        if (kind == "thin")
            await vg.CreateThinAsync(name, "pool", SnapshotSet, ct).ConfigureAwait(false);
        else
            await vg.CreateLvAsync(name, SnapshotSet, LvLayout.Linear, ct).ConfigureAwait(false);
        var dev = await vg.OpenDeviceAsync(name, ct).ConfigureAwait(false);
        var big = new byte[1 << 20];
        new Random(o.Seed).NextBytes(big);
        for (long off = 0; off < SnapshotSet; off += big.Length)
            await dev.WriteAsync(off, big, ct).ConfigureAwait(false);
        await dev.FlushAsync(ct).ConfigureAwait(false);
        (dev as IDisposable)?.Dispose();
        for (int i = 0; i < snapshots; i++)
            await vg.SnapshotAsync(name, $"{name}-{i}", ct).ConfigureAwait(false);
        dev = await vg.OpenDeviceAsync(name, ct).ConfigureAwait(false);
        var rng = new Random(o.Seed);
        var sw = Stopwatch.StartNew();
        for (int i = 0; i < o.RandomOps; i++)
            await dev.WriteAsync(rng.NextInt64(SnapshotSet / 4096) * 4096, big.AsMemory(0, 4096), ct).ConfigureAwait(false);
        await dev.FlushAsync(ct).ConfigureAwait(false);
        double seconds = sw.Elapsed.TotalSeconds;
        (dev as IDisposable)?.Dispose();
        for (int i = 0; i < snapshots; i++)
            await vg.RemoveLvAsync($"{name}-{i}", ct).ConfigureAwait(false);
        await vg.RemoveLvAsync(name, ct).ConfigureAwait(false);
        return seconds;
    }

    // The "-cold" reads start with the page cache emptied of the benchmark's files (the eviction
    // is not timed), so they measure the disk; the others run from the page cache and measure CPU.
    private sealed class Workloads(IBlockDevice dev, StorageBenchmarkOptions o, Action evict, CancellationToken ct)
    {
        public static readonly string[] Names = ["seq-write-1M", "seq-read-1M", "seq-read-1M-cold", "rand-write-4K", "rand-read-4K", "rand-read-4K-cold"];

        private readonly byte[] _big = MakeBuffer(o.Seed);
        private readonly long _size = Math.Min(o.WorkingSet, dev.Length) / (1 << 20) * (1 << 20);

        private static byte[] MakeBuffer(int seed)
        {
            var b = new byte[1 << 20];
            new Random(seed).NextBytes(b);
            return b;
        }

        public (long Bytes, long Ops) Volume(string workload) => workload.StartsWith("seq", StringComparison.Ordinal)
            ? (_size, _size / _big.Length)
            : ((long)o.RandomOps * 4096, o.RandomOps);

        public async Task WarmUpAsync()
        {
            await RunAsync("seq-write-1M", o.Seed).ConfigureAwait(false);
            await RandomAsync(write: true, Math.Min(o.RandomOps, 5000), o.Seed).ConfigureAwait(false);
            await RandomAsync(write: false, Math.Min(o.RandomOps, 5000), o.Seed).ConfigureAwait(false);
        }

        public async Task<double> TimeAsync(string workload, int seed, int repeats = 1)
        {
            if (workload.EndsWith("-cold", StringComparison.Ordinal))
                evict();
            var sw = Stopwatch.StartNew();
            for (int r = 0; r < repeats; r++)
                await RunAsync(workload, seed + r).ConfigureAwait(false);
            return sw.Elapsed.TotalSeconds;
        }

        public Task RunAsync(string workload, int seed) => workload switch
        {
            "seq-write-1M" => SequentialAsync(write: true),
            "seq-read-1M" or "seq-read-1M-cold" => SequentialAsync(write: false),
            "rand-write-4K" => RandomAsync(write: true, o.RandomOps, seed),
            _ => RandomAsync(write: false, o.RandomOps, seed),
        };

        private async Task SequentialAsync(bool write)
        {
            for (long off = 0; off < _size; off += _big.Length)
            {
                if (write)
                    await dev.WriteAsync(off, _big, ct).ConfigureAwait(false);
                else
                    await dev.ReadAsync(off, _big, ct).ConfigureAwait(false);
            }
            if (write)
                await dev.FlushAsync(ct).ConfigureAwait(false);
        }

        private async Task RandomAsync(bool write, int ops, int seed)
        {
            var rng = new Random(seed);
            long blocks = _size / 4096;
            var small = _big.AsMemory(0, 4096);
            for (int i = 0; i < ops; i++)
            {
                long off = rng.NextInt64(blocks) * 4096;
                if (write)
                    await dev.WriteAsync(off, small, ct).ConfigureAwait(false);
                else
                    await dev.ReadAsync(off, small, ct).ConfigureAwait(false);
            }
            if (write)
                await dev.FlushAsync(ct).ConfigureAwait(false);
        }
    }

    // The baseline: the same calls straight on a file.
    private sealed class PlainFile : IBlockDevice, IDisposable
    {
        private readonly SafeFileHandle _handle;

        public PlainFile(string path, long length)
        {
            _handle = File.OpenHandle(path, FileMode.Create, FileAccess.ReadWrite);
            RandomAccess.SetLength(_handle, length);
            Length = length;
        }

        public long Length { get; }

        public ValueTask ReadAsync(long offset, Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            RandomAccess.Read(_handle, buffer.Span, offset);
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
}
