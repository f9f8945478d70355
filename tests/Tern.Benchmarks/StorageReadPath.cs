// Where a cached read's time goes, layer by layer: the same random 4 KiB and sequential 1 MiB
// reads on a plain file, on a PV's raw I/O, on a PV's block reads (without verification, and
// verified from the page cache around Tern's block cache or served by it), and on a linear LV
// with checksums off and on (both through the block cache), plus the block CRC alone. Each
// figure is the best of 7 passes, as process CPU time and as wall time per request: CPU time
// is steadier on a loaded machine, wall time shows what the second core's help is worth.
//   dotnet run -c Release --project tests/Tern.Benchmarks -- storage-read-path [dir]
using System.Diagnostics;
using System.Globalization;
using Tern.Storage;
using Tern.Storage.Format;

namespace Tern.Benchmarks;

internal static class StorageReadPath
{
    private const long Size = 64L << 20;
    private const int Ops = 200_000;

    public static async Task<int> Run(string[] args)
    {
        string dir = Path.Combine(args.Length > 0 ? args[0] : Path.GetTempPath(), $"tern-read-path-{Environment.ProcessId}");
        Directory.CreateDirectory(dir);
        try
        {
            await Measure(dir);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
        return 0;
    }

    private static async Task Measure(string dir)
    {
        using var pv = await PhysicalVolume.CreateAsync(FilePhysicalVolumeIo.OpenOrCreate(Path.Combine(dir, "pv0.img"), 512L << 20), "bench");
        using var vg = await VolumeGroup.CreateAsync("bench", [pv]);
        await vg.CreateLvAsync("sum", Size, LvLayout.Linear);
        await vg.CreateLvAsync("nosum", Size, LvLayout.Linear with { Checksums = false });
        using var sum = vg.OpenLv("sum");
        using var nosum = vg.OpenLv("nosum");
        using var plain = File.OpenHandle(Path.Combine(dir, "plain.img"), FileMode.Create, FileAccess.ReadWrite);
        RandomAccess.SetLength(plain, Size);
        var big = new byte[1 << 20];
        new Random(1).NextBytes(big);
        for (long o = 0; o < Size; o += big.Length)
        {
            await sum.WriteAsync(o, big);
            await nosum.WriteAsync(o, big);
            RandomAccess.Write(plain, big, o);
        }
        await sum.FlushAsync();
        await nosum.FlushAsync();
        long at = sum.Entry.Segments[0].Areas[0].StartExtent * vg.Metadata.ExtentSize;
        var offsets = new long[Ops];
        var rng = new Random(2);
        for (int i = 0; i < Ops; i++)
            offsets[i] = rng.NextInt64(Size / 4096) * 4096;
        var small = new byte[4096];
        var rows = new (string Name, bool Sequential, Func<long, ValueTask> Read)[]
        {
            ("plain file 4K", false, o => { RandomAccess.Read(plain, small, o); return ValueTask.CompletedTask; }),
            ($"block CRC ({BlockCrc.Path}) 4K", false, o => { Checksums.BlockTag(big.AsSpan((int)(o % big.Length) & ~4095, 4096)); return ValueTask.CompletedTask; }),
            ("PV raw I/O 4K", false, o => pv.Io.ReadAsync(pv.Label.DataOffset + at + o, small)),
            ("PV blocks 4K", false, async o => await pv.ReadBlocksAsync(at + o, small, verify: false, cached: false, default)),
            ("PV blocks verified, no cache 4K", false, async o => await pv.ReadBlocksAsync(at + o, small, verify: true, cached: false, default)),
            ("PV blocks verified, cached 4K", false, async o => await pv.ReadBlocksAsync(at + o, small, verify: true)),
            ("LV checksums off 4K", false, o => nosum.ReadAsync(o, small)),
            ("LV 4K", false, o => sum.ReadAsync(o, small)),
            ("plain file 1M", true, o => { RandomAccess.Read(plain, big, o); return ValueTask.CompletedTask; }),
            ("PV blocks 1M", true, async o => await pv.ReadBlocksAsync(at + o, big, verify: false, cached: false, default)),
            ("PV blocks verified, no cache 1M", true, async o => await pv.ReadBlocksAsync(at + o, big, verify: true, cached: false, default)),
            ("PV blocks verified, cached 1M", true, async o => await pv.ReadBlocksAsync(at + o, big, verify: true)),
            ("LV checksums off 1M", true, o => nosum.ReadAsync(o, big)),
            ("LV 1M", true, o => sum.ReadAsync(o, big)),
        };
        foreach (var row in rows)
            await Time(row.Read, row.Sequential, offsets); // warm-up
        Console.WriteLine("layer                              CPU us/req   wall us/req");
        foreach (var (name, sequential, read) in rows)
        {
            var (cpu, wall) = await Time(read, sequential, offsets);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{name,-34} {cpu,10:F3} {wall,12:F3}"));
        }
    }

    private static async Task<(double Cpu, double Wall)> Time(Func<long, ValueTask> read, bool sequential, long[] offsets)
    {
        double cpu = double.MaxValue, wall = double.MaxValue;
        int requests = sequential ? (int)(4 * Size / (1 << 20)) : offsets.Length;
        for (int pass = 0; pass < 7; pass++)
        {
            var cpu0 = Process.GetCurrentProcess().TotalProcessorTime;
            var sw = Stopwatch.StartNew();
            if (sequential)
            {
                for (int k = 0; k < 4; k++)
                {
                    for (long o = 0; o < Size; o += 1 << 20)
                        await read(o);
                }
            }
            else
            {
                foreach (long o in offsets)
                    await read(o);
            }
            wall = Math.Min(wall, sw.Elapsed.TotalMicroseconds / requests);
            cpu = Math.Min(cpu, (Process.GetCurrentProcess().TotalProcessorTime - cpu0).TotalMicroseconds / requests);
        }
        return (cpu, wall);
    }
}
