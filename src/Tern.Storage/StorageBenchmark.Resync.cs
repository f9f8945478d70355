// The resync benchmark (`tern bench resync`): a 2-way mirror on two PV files of two hosts is
// filled, then one leg misses writes spread over a share of its 2 MiB regions (its PV taken out
// of service, the writes recorded as write intent) and comes back; the timed resync copies just
// those regions. For comparison the same leg is then made wholly stale (as after the loss of the
// writer's host) and resynced in full. The page cache is dropped before each timed run.
using System.Diagnostics;
using Tern.Storage.Format;

namespace Tern.Storage;

/// <summary>What the resync benchmark measures.</summary>
public sealed record ResyncBenchmarkOptions
{
    /// <summary>Where the PV files go (removed afterwards).</summary>
    public required string Directory { get; init; }

    /// <summary>Size of the mirrored LV.</summary>
    public long Size { get; init; } = 1L << 30;

    /// <summary>Share of the LV's regions that miss writes, in percent (at least one region).</summary>
    public double DirtyPercent { get; init; } = 1;

    /// <summary>Resync rate limit in bytes per second (0: unthrottled).</summary>
    public long MaxBytesPerSecond { get; init; }
}

/// <summary>Figures of one resync benchmark run.</summary>
/// <param name="SizeBytes">LV size.</param>
/// <param name="Regions">Write-intent regions of one leg.</param>
/// <param name="DirtyRegions">Regions the leg missed.</param>
/// <param name="DirtyBytes">Bytes the region resync copied.</param>
/// <param name="DirtySeconds">Time of the region resync.</param>
/// <param name="FullBytes">Bytes the full resync copied.</param>
/// <param name="FullSeconds">Time of the full resync.</param>
/// <param name="MaxBytesPerSecond">The rate limit (0: none).</param>
public sealed record ResyncBenchmarkResult(long SizeBytes, long Regions, long DirtyRegions, long DirtyBytes, double DirtySeconds, long FullBytes, double FullSeconds, long MaxBytesPerSecond)
{
    /// <summary>Copy rate of the region resync.</summary>
    public double DirtyMiBPerSecond => DirtyBytes / (1024.0 * 1024) / DirtySeconds;

    /// <summary>Copy rate of the full resync.</summary>
    public double FullMiBPerSecond => FullBytes / (1024.0 * 1024) / FullSeconds;

    /// <summary>How many times faster the region resync was than the full one.</summary>
    public double Speedup => FullSeconds / DirtySeconds;
}

public static partial class StorageBenchmark
{
    /// <summary>Runs the resync benchmark.</summary>
    public static async Task<ResyncBenchmarkResult> RunResyncAsync(ResyncBenchmarkOptions o, CancellationToken ct = default)
    {
        if (o.Size < VgMetadata.RegionSize)
            throw new StorageException($"the resync benchmark needs at least one region ({Sizes.Format(VgMetadata.RegionSize)}); {Sizes.Format(o.Size)} is smaller");
        if (o.DirtyPercent is <= 0 or > 100 || double.IsNaN(o.DirtyPercent))
            throw new StorageException($"--dirty {o.DirtyPercent}%: expected a share of the regions above 0% and at most 100%");
        if (o.MaxBytesPerSecond < 0)
            throw new StorageException($"--max-rate {o.MaxBytesPerSecond}: expected a positive rate, or 0 for unthrottled");
        string dir = Path.Combine(o.Directory, $"tern-resync-bench-{Environment.ProcessId}");
        System.IO.Directory.CreateDirectory(dir);
        var pvs = new List<PhysicalVolume>();
        VolumeGroup? vg = null;
        try
        {
            long extents = (o.Size + VolumeGroup.DefaultExtentSize - 1) / VolumeGroup.DefaultExtentSize;
            long pvSize = (extents * VolumeGroup.DefaultExtentSize) + (64L << 20);
            for (int i = 0; i < 2; i++)
                pvs.Add(await PhysicalVolume.CreateAsync(FilePhysicalVolumeIo.OpenOrCreate(Path.Combine(dir, $"pv{i}.img"), pvSize), $"bench-host-{i}", ct).ConfigureAwait(false));
            vg = await VolumeGroup.CreateAsync("bench", pvs, ct: ct).ConfigureAwait(false);
            var entry = await vg.CreateLvAsync("m", o.Size, new LvLayout(SegmentType.Mirror, 2), ct).ConfigureAwait(false);
            long size = entry.Extents * vg.Metadata.ExtentSize;
            long regions = (size + VgMetadata.RegionSize - 1) / VgMetadata.RegionSize;
            long dirty = Math.Clamp((long)Math.Round(regions * o.DirtyPercent / 100), 1, regions);
            var legB = vg.Pvs[entry.Segments[0].Areas[1].Pv];
            using (var lv = vg.OpenLv("m"))
            {
                var chunk = new byte[1 << 20];
                new Random(1).NextBytes(chunk);
                for (long off = 0; off < size; off += chunk.Length)
                {
                    chunk[0]++;
                    await lv.WriteAsync(off, chunk.AsMemory(0, (int)Math.Min(chunk.Length, size - off)), ct).ConfigureAwait(false);
                }
                await lv.FlushAsync(ct).ConfigureAwait(false);

                // Leg B's host stops answering; writes spread over `dirty` regions land on leg A only.
                legB.Failed = true;
                var block = new byte[PhysicalVolume.BlockSize];
                for (long k = 0; k < dirty; k++)
                {
                    long region = k * regions / dirty;
                    block[0] = (byte)k;
                    await lv.WriteAsync((region * VgMetadata.RegionSize) + (VgMetadata.RegionSize / 2), block, ct).ConfigureAwait(false);
                }
                await lv.FlushAsync(ct).ConfigureAwait(false);
            }
            if (await vg.ReinstatePvsAsync(ct: ct).ConfigureAwait(false) is not [_])
                throw new IOException("resync benchmark: the leg taken out of service did not come back");

            Evict(dir);
            var tap = new LastCopy();
            var clock = Stopwatch.StartNew();
            await vg.ResyncAsync("m", o.MaxBytesPerSecond, tap, ct).ConfigureAwait(false);
            double dirtySeconds = clock.Elapsed.TotalSeconds;
            long dirtyBytes = tap.Done;

            await vg.MarkLegsStaleOnHostAsync("m", pvs[0].Label.Host == legB.Label.Host ? pvs[1].Label.Host : pvs[0].Label.Host, ct).ConfigureAwait(false);
            Evict(dir);
            tap = new LastCopy();
            clock.Restart();
            await vg.ResyncAsync("m", o.MaxBytesPerSecond, tap, ct).ConfigureAwait(false);
            double fullSeconds = clock.Elapsed.TotalSeconds;
            if (vg.NeedsResync("m"))
                throw new IOException("resync benchmark: the mirror is still out of date after the full resync");
            return new ResyncBenchmarkResult(size, regions, dirty, dirtyBytes, dirtySeconds, tap.Done, fullSeconds, o.MaxBytesPerSecond);
        }
        finally
        {
            vg?.Dispose();
            foreach (var pv in pvs)
                pv.Dispose();
            System.IO.Directory.Delete(dir, recursive: true);
        }
    }

    private sealed class LastCopy : IProgress<CopyProgress>
    {
        public long Done { get; private set; }

        public void Report(CopyProgress value) => Done = value.Done;
    }
}
