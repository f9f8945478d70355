// A storage benchmark on local files: sequential 1 MiB and random 4 KiB reads and writes on
// linear, striped and mirrored LVs, against the same operations on a plain file in the same
// directory. Used by `tern bench storage`; results are recorded in docs/benchmarks/storage.md.
using System.Diagnostics;
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

/// <summary>Runs the storage benchmark.</summary>
public static class StorageBenchmark
{
    /// <summary>
    /// Runs every workload on every device; writes end with a flush that is timed too. Devices take
    /// turns run by run (five runs, the best kept), so drift in the machine's load and page cache
    /// hits them all alike.
    /// </summary>
    public static async Task<List<StorageBenchmarkResult>> RunAsync(StorageBenchmarkOptions o, Action<StorageBenchmarkResult>? onResult = null, CancellationToken ct = default)
    {
        string dir = Path.Combine(o.Directory, $"tern-bench-{Environment.ProcessId}");
        System.IO.Directory.CreateDirectory(dir);
        var results = new List<StorageBenchmarkResult>();
        var pvs = new List<PhysicalVolume>();
        var devices = new List<(string Name, IBlockDevice Device)>();
        VolumeGroup? vg = null;
        try
        {
            devices.Add(("plain-file", new PlainFile(Path.Combine(dir, "plain.img"), o.WorkingSet)));
            long pvSize = (o.WorkingSet * 3) + (256L << 20);
            for (int i = 0; i < 3; i++)
                pvs.Add(await PhysicalVolume.CreateAsync(FilePhysicalVolumeIo.OpenOrCreate(Path.Combine(dir, $"pv{i}.img"), pvSize), "bench", ct).ConfigureAwait(false));
            vg = await VolumeGroup.CreateAsync("bench", pvs, ct: ct).ConfigureAwait(false);
            foreach (var (name, layout) in new[]
            {
                ("linear", LvLayout.Linear),
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
            var workloads = devices.Select(d => (d.Name, Work: new Workloads(d.Device, o, ct))).ToList();
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
            foreach (int snapshots in new[] { 0, 1, 10 })
            {
                var r = await SnapshotWriteCostAsync(vg, snapshots, o, ct).ConfigureAwait(false);
                results.Add(r);
                onResult?.Invoke(r);
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
        return results;
    }

    private const long SnapshotSet = 64L << 20;

    // The snapshot tax: a fully written thin volume gets n snapshots, then random 4 KiB writes
    // (each first write to a chunk copies it away from the snapshots) run once, with a flush.
    private static async Task<StorageBenchmarkResult> SnapshotWriteCostAsync(VolumeGroup vg, int snapshots, StorageBenchmarkOptions o, CancellationToken ct)
    {
        string name = $"snap{snapshots}";
        await vg.CreateThinAsync(name, "pool", SnapshotSet, ct).ConfigureAwait(false);
        var dev = await vg.OpenDeviceAsync(name, ct).ConfigureAwait(false);
        var big = new byte[1 << 20];
        new Random(o.Seed).NextBytes(big);
        for (long off = 0; off < SnapshotSet; off += big.Length)
            await dev.WriteAsync(off, big, ct).ConfigureAwait(false);
        await dev.FlushAsync(ct).ConfigureAwait(false);
        for (int i = 0; i < snapshots; i++)
            await vg.SnapshotAsync(name, $"{name}-{i}", ct).ConfigureAwait(false);
        var rng = new Random(o.Seed);
        var sw = Stopwatch.StartNew();
        for (int i = 0; i < o.RandomOps; i++)
            await dev.WriteAsync(rng.NextInt64(SnapshotSet / 4096) * 4096, big.AsMemory(0, 4096), ct).ConfigureAwait(false);
        await dev.FlushAsync(ct).ConfigureAwait(false);
        double seconds = sw.Elapsed.TotalSeconds;
        for (int i = 0; i < snapshots; i++)
            await vg.RemoveLvAsync($"{name}-{i}", ct).ConfigureAwait(false);
        await vg.RemoveLvAsync(name, ct).ConfigureAwait(false);
        return new StorageBenchmarkResult($"thin+{snapshots}snap", "rand-write-4K-first", (long)o.RandomOps * 4096 / seconds / (1 << 20), o.RandomOps / seconds);
    }

    private sealed class Workloads(IBlockDevice dev, StorageBenchmarkOptions o, CancellationToken ct)
    {
        public static readonly string[] Names = ["seq-write-1M", "seq-read-1M", "rand-write-4K", "rand-read-4K"];

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

        public async Task<double> TimeAsync(string workload, int seed)
        {
            var sw = Stopwatch.StartNew();
            await RunAsync(workload, seed).ConfigureAwait(false);
            return sw.Elapsed.TotalSeconds;
        }

        private Task RunAsync(string workload, int seed) => workload switch
        {
            "seq-write-1M" => SequentialAsync(write: true),
            "seq-read-1M" => SequentialAsync(write: false),
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
