// `tern bench extent`: what the remote data path costs. The same workloads run on a linear LV
// and a 2-way mirror whose PVs are local files, and on the same layouts whose PVs are served by
// ExtentServers over loopback TCP (in this process, each server with its own listener and PV
// files, as on another node; the client and server share the machine's two cores). Results
// are recorded in docs/benchmarks/cluster-storage.md.
using System.Diagnostics;
using System.Net;
using Tern.Storage.Format;

namespace Tern.Storage.Remote;

/// <summary>What <see cref="ExtentBenchmark"/> measures.</summary>
public sealed record ExtentBenchmarkOptions
{
    /// <summary>Where the PV files go (removed afterwards).</summary>
    public required string Directory { get; init; }

    /// <summary>Bytes of each LV the workloads touch.</summary>
    public long WorkingSet { get; init; } = 256L << 20;

    /// <summary>Operations per random workload.</summary>
    public int RandomOps { get; init; } = 10_000;

    /// <summary>Runs per workload; the best is kept.</summary>
    public int Runs { get; init; } = 3;
}

/// <summary>One measured workload on one device.</summary>
/// <param name="Device">local-linear, remote-linear, local-mirror, remote-mirror.</param>
/// <param name="Workload">seq-write-1M, seq-read-1M, rand-write-64K, rand-read-64K, rand-write-4K, rand-read-4K.</param>
/// <param name="MiBPerSecond">Throughput.</param>
/// <param name="Iops">Operations per second.</param>
public sealed record ExtentBenchmarkResult(string Device, string Workload, double MiBPerSecond, double Iops);

/// <summary>Runs the remote extent benchmark.</summary>
public static class ExtentBenchmark
{
    /// <summary>The workloads, in the order they run.</summary>
    public static IReadOnlyList<string> Workloads { get; } = ["seq-write-1M", "seq-read-1M", "rand-write-64K", "rand-read-64K", "rand-write-4K", "rand-read-4K"];

    /// <summary>Runs every workload on every device, devices taking turns run by run.</summary>
    public static async Task<List<ExtentBenchmarkResult>> RunAsync(ExtentBenchmarkOptions o, Action<ExtentBenchmarkResult>? onResult = null, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(o);
        string dir = Path.Combine(o.Directory, $"tern-extent-bench-{Environment.ProcessId}");
        System.IO.Directory.CreateDirectory(dir);
        var owned = new List<IDisposable>();
        var servers = new List<ExtentServer>();
        var results = new List<ExtentBenchmarkResult>();
        try
        {
            long pvSize = (o.WorkingSet * 2) + (256L << 20);
            async Task<PhysicalVolume> LocalPvAsync(string name)
            {
                var pv = await PhysicalVolume.CreateAsync(FilePhysicalVolumeIo.OpenOrCreate(Path.Combine(dir, name), pvSize), name, ct).ConfigureAwait(false);
                owned.Add(pv);
                return pv;
            }
            async Task<PhysicalVolume> RemotePvAsync(string host)
            {
                string file = Path.Combine(dir, $"{host}.img");
                Guid id;
                using (var created = await PhysicalVolume.CreateAsync(FilePhysicalVolumeIo.OpenOrCreate(file, pvSize), host, ct).ConfigureAwait(false))
                    id = created.Id;
                var server = await ExtentServer.StartAsync(IPAddress.Loopback, 0, new FenceTable(Path.Combine(dir, $"{host}-fences.json"))).ConfigureAwait(false);
                servers.Add(server);
                var served = FilePhysicalVolumeIo.Open(file);
                owned.Add(served);
                server.AddVolume(id, served);
                var pv = await PhysicalVolume.OpenAsync(await RemotePhysicalVolumeIo.ConnectAsync(host, server.Endpoint, server.Token, id, ct: ct).ConfigureAwait(false), ct).ConfigureAwait(false);
                owned.Add(pv);
                return pv;
            }
            async Task<LogicalVolume> LvAsync(string vgName, IReadOnlyList<PhysicalVolume> pvs, LvLayout layout)
            {
                var vg = await VolumeGroup.CreateAsync(vgName, pvs, ct: ct).ConfigureAwait(false);
                owned.Add(vg);
                await vg.CreateLvAsync("bench", o.WorkingSet, layout, ct).ConfigureAwait(false);
                var lv = vg.OpenLv("bench");
                owned.Add(lv);
                return lv;
            }
            var mirror = new LvLayout(SegmentType.Mirror, 2);
            var devices = new List<(string Name, LogicalVolume Lv)>
            {
                ("local-linear", await LvAsync("l1", [await LocalPvAsync("local-a.img")], LvLayout.Linear).ConfigureAwait(false)),
                ("remote-linear", await LvAsync("r1", [await RemotePvAsync("node-a")], LvLayout.Linear).ConfigureAwait(false)),
                ("local-mirror", await LvAsync("l2", [await LocalPvAsync("local-b.img"), await LocalPvAsync("local-c.img")], mirror).ConfigureAwait(false)),
                ("remote-mirror", await LvAsync("r2", [await RemotePvAsync("node-b"), await RemotePvAsync("node-c")], mirror).ConfigureAwait(false)),
            };
            var buffer = new byte[1 << 20];
            new Random(1).NextBytes(buffer);
            foreach (var (_, lv) in devices)
            {
                await RunWorkloadAsync(lv, "seq-write-1M", buffer, o, 1, ct).ConfigureAwait(false); // allocate and warm up
                await RunWorkloadAsync(lv, "rand-read-4K", buffer, o, 1, ct).ConfigureAwait(false);
            }
            foreach (string workload in Workloads)
            {
                var best = new double[devices.Count];
                Array.Fill(best, double.MaxValue);
                for (int run = 0; run < o.Runs; run++)
                {
                    for (int d = 0; d < devices.Count; d++)
                    {
                        var sw = Stopwatch.StartNew();
                        await RunWorkloadAsync(devices[d].Lv, workload, buffer, o, run + 2, ct).ConfigureAwait(false);
                        best[d] = Math.Min(best[d], sw.Elapsed.TotalSeconds);
                    }
                }
                for (int d = 0; d < devices.Count; d++)
                {
                    var (bytes, ops) = Volume(workload, o);
                    var r = new ExtentBenchmarkResult(devices[d].Name, workload, bytes / best[d] / (1 << 20), ops / best[d]);
                    results.Add(r);
                    onResult?.Invoke(r);
                }
            }
        }
        finally
        {
            for (int i = owned.Count - 1; i >= 0; i--)
                owned[i].Dispose();
            foreach (var s in servers)
                await s.DisposeAsync().ConfigureAwait(false);
            System.IO.Directory.Delete(dir, recursive: true);
        }
        return results;
    }

    private static int RequestSize(string workload) => workload.EndsWith("1M", StringComparison.Ordinal) ? 1 << 20 : workload.EndsWith("64K", StringComparison.Ordinal) ? 64 << 10 : 4 << 10;

    private static (long Bytes, long Ops) Volume(string workload, ExtentBenchmarkOptions o)
    {
        int size = RequestSize(workload);
        long ops = workload.StartsWith("seq", StringComparison.Ordinal) ? o.WorkingSet / size : o.RandomOps;
        return (ops * size, ops);
    }

    // Writes end with a flush, which is timed.
    private static async Task RunWorkloadAsync(LogicalVolume lv, string workload, byte[] buffer, ExtentBenchmarkOptions o, int seed, CancellationToken ct)
    {
        int size = RequestSize(workload);
        bool write = workload.Contains("write", StringComparison.Ordinal);
        var chunk = buffer.AsMemory(0, size);
        long span = o.WorkingSet / size * size;
        if (workload.StartsWith("seq", StringComparison.Ordinal))
        {
            for (long off = 0; off < span; off += size)
            {
                if (write)
                    await lv.WriteAsync(off, chunk, ct).ConfigureAwait(false);
                else
                    await lv.ReadAsync(off, chunk, ct).ConfigureAwait(false);
            }
        }
        else
        {
            var rng = new Random(seed);
            long slots = span / size;
            for (int i = 0; i < o.RandomOps; i++)
            {
                long off = rng.NextInt64(slots) * size;
                if (write)
                    await lv.WriteAsync(off, chunk, ct).ConfigureAwait(false);
                else
                    await lv.ReadAsync(off, chunk, ct).ConfigureAwait(false);
            }
        }
        if (write)
            await lv.FlushAsync(ct).ConfigureAwait(false);
    }
}
