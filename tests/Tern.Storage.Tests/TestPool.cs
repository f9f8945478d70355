// A temp directory of PV files for one test, with helpers to create, open and reopen them.
using Tern.Storage.Format;

namespace Tern.Storage.Tests;

internal sealed class TestPool : IDisposable
{
    private readonly List<IDisposable> _open = [];

    public string Dir { get; } = Directory.CreateTempSubdirectory("tern-storage-").FullName;

    public string PathOf(int i) => Path.Combine(Dir, $"pv{i}.img");

    /// <summary>Creates PV files pv0..pv{n-1} of <paramref name="size"/> bytes, owned by the given hosts (default "h0").</summary>
    public async Task<List<PhysicalVolume>> CreatePvsAsync(int n, long size = 8 << 20, Func<int, string>? host = null)
    {
        var pvs = new List<PhysicalVolume>();
        for (int i = 0; i < n; i++)
        {
            var pv = await PhysicalVolume.CreateAsync(FilePhysicalVolumeIo.OpenOrCreate(PathOf(i), size), host?.Invoke(i) ?? "h0");
            _open.Add(pv);
            pvs.Add(pv);
        }
        return pvs;
    }

    /// <summary>Opens PV files through an optional wrapper (fault injection, counting).</summary>
    public async Task<List<PhysicalVolume>> OpenPvsAsync(IEnumerable<int> indexes, Func<int, IPhysicalVolumeIo, IPhysicalVolumeIo>? wrap = null)
    {
        var pvs = new List<PhysicalVolume>();
        foreach (int i in indexes)
        {
            IPhysicalVolumeIo io = FilePhysicalVolumeIo.Open(PathOf(i));
            if (wrap is not null)
                io = wrap(i, io);
            var pv = await PhysicalVolume.OpenAsync(io);
            _open.Add(pv);
            pvs.Add(pv);
        }
        return pvs;
    }

    public async Task<(VolumeGroup Vg, List<PhysicalVolume> Pvs)> CreateVgAsync(int n, long extentSize = 256 << 10, long size = 8 << 20, Func<int, string>? host = null)
    {
        var pvs = await CreatePvsAsync(n, size, host);
        var vg = await VolumeGroup.CreateAsync("vg0", pvs, extentSize);
        _open.Add(vg);
        return (vg, pvs);
    }

    /// <summary>Drops everything opened so far without closing it cleanly, as a kill -9 would: files are closed, nothing is flushed.</summary>
    public void KillAll()
    {
        foreach (var d in _open)
        {
            if (d is PhysicalVolume pv)
                pv.Io.Dispose();
        }
        _open.Clear();
    }

    /// <summary>Closes everything opened so far (as a process exit would): the latest first, so a VG closes before its PVs.</summary>
    public void CloseAll()
    {
        for (int i = _open.Count - 1; i >= 0; i--)
            _open[i].Dispose();
        _open.Clear();
    }

    public T Track<T>(T d) where T : IDisposable
    {
        _open.Add(d);
        return d;
    }

    /// <summary>Reads raw bytes of a PV file's data area.</summary>
    public byte[] ReadRaw(PvLabel label, int pv, long dataOffset, int length)
    {
        using var f = File.OpenRead(PathOf(pv));
        f.Position = label.DataOffset + dataOffset;
        var b = new byte[length];
        f.ReadExactly(b);
        return b;
    }

    /// <summary>
    /// Flips one byte of a PV file's data area, behind the pool's back, and empties the shared
    /// cache of verified blocks, so that the next reads meet the damage on the disk (a block read
    /// before would otherwise be served, correct, from the cache: see CachedReadTests).
    /// </summary>
    public void Corrupt(PvLabel label, int pv, long dataOffset)
    {
        CorruptOnDisk(label, pv, dataOffset);
        BlockCache.Shared.Clear();
    }

    /// <summary>Flips one byte of a PV file's data area, behind the pool's back; caches keep what they hold.</summary>
    public void CorruptOnDisk(PvLabel label, int pv, long dataOffset)
    {
        using var f = new FileStream(PathOf(pv), FileMode.Open, FileAccess.ReadWrite);
        f.Position = label.DataOffset + dataOffset;
        int b = f.ReadByte();
        f.Position--;
        f.WriteByte((byte)(b ^ 0x5A));
    }

    public void Dispose()
    {
        CloseAll();
        Directory.Delete(Dir, recursive: true);
    }
}

/// <summary>Wraps a PV's I/O to count flushes and to inject faults.</summary>
internal sealed class FaultyIo(IPhysicalVolumeIo inner) : IPhysicalVolumeIo
{
    public int Flushes;
    public int Writes;
    public int Reads;
    public long BytesWritten;

    /// <summary>A simulated power cut shared by several PVs.</summary>
    public CrashPoint? Crash { get; set; }

    public bool FailReads { get; set; }

    public bool FailWrites { get; set; }

    public string Name => inner.Name;

    public long Length => inner.Length;

    public ValueTask ReadAsync(long offset, Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (FailReads)
            throw new IOException($"{Name}: injected read error");
        Interlocked.Increment(ref Reads);
        return inner.ReadAsync(offset, buffer, cancellationToken);
    }

    public ValueTask WriteAsync(long offset, ReadOnlyMemory<byte> data, CancellationToken cancellationToken = default)
    {
        if (FailWrites)
            throw new IOException($"{Name}: injected write error");
        Interlocked.Increment(ref Writes);
        Interlocked.Add(ref BytesWritten, data.Length);
        return (Crash?.Next() ?? CrashPoint.Outcome.Whole) switch
        {
            CrashPoint.Outcome.Whole => inner.WriteAsync(offset, data, cancellationToken),
            CrashPoint.Outcome.Torn => inner.WriteAsync(offset, data[..(data.Length / 2)], cancellationToken),
            _ => ValueTask.CompletedTask,
        };
    }

    public ValueTask FlushAsync(CancellationToken cancellationToken = default)
    {
        Interlocked.Increment(ref Flushes);
        return inner.FlushAsync(cancellationToken);
    }

    public void Dispose() => inner.Dispose();
}

/// <summary>
/// Counts writes across PVs: the first <c>budget</c> land whole, the next one is torn in half,
/// and every later one is lost, as if the machine lost power at that moment.
/// </summary>
internal sealed class CrashPoint(int budget)
{
    public enum Outcome { Whole, Torn, Lost }

    private int _count;

    public bool Crashed => Volatile.Read(ref _count) > budget;

    public Outcome Next()
    {
        int n = Interlocked.Increment(ref _count);
        return n <= budget ? Outcome.Whole : n == budget + 1 ? Outcome.Torn : Outcome.Lost;
    }
}
