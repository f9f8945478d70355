// A node's view of the extent pool: the PVs it owns, listed in TERN_HOME/pvs.json, and the VGs
// found on them. Commands open the pool, act, and close it; an exclusive lock file in TERN_HOME
// keeps two commands of one node from changing metadata at the same time.
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Tern.Storage;

/// <summary>The PVs and VGs of one node.</summary>
public sealed class StoragePool : IDisposable
{
    private const string ListFile = "pvs.json";
    private readonly List<PhysicalVolume> _pvs;
    private readonly List<string> _paths;
    private readonly Dictionary<string, VolumeGroup> _vgs = [];
    private readonly FileStream _lock;

    private StoragePool(string home, FileStream lockFile, List<string> paths, List<PhysicalVolume> pvs, List<string> problems)
    {
        Home = home;
        _lock = lockFile;
        _paths = paths;
        _pvs = pvs;
        Problems = problems;
    }

    /// <summary>The node's state directory.</summary>
    public string Home { get; }

    /// <summary>The PVs that opened.</summary>
    public IReadOnlyList<PhysicalVolume> Pvs => _pvs;

    /// <summary>Listed PVs that could not be opened, one message each.</summary>
    public IReadOnlyList<string> Problems { get; }

    /// <summary>Names of the VGs found on the node's PVs.</summary>
    public IEnumerable<string> VgNames => _pvs.Where(p => p.Vg is not null).Select(p => p.Vg!.Name).Distinct().Order(StringComparer.Ordinal);

    /// <summary>TERN_HOME, or ~/.tern.</summary>
    public static string DefaultHome() =>
        Environment.GetEnvironmentVariable("TERN_HOME") is { Length: > 0 } home
            ? home
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".tern");

    /// <summary>This node's host name: TERN_HOST, or the machine name.</summary>
    public static string DefaultHost() =>
        Environment.GetEnvironmentVariable("TERN_HOST") is { Length: > 0 } host ? host : Environment.MachineName;

    /// <summary>Opens the pool of the node whose state is in <paramref name="home"/>.</summary>
    public static async Task<StoragePool> OpenAsync(string home, CancellationToken ct = default)
    {
        Directory.CreateDirectory(home);
        var lockFile = await LockAsync(Path.Combine(home, "lock"), ct).ConfigureAwait(false);
        try
        {
            var paths = ReadList(home);
            var pvs = new List<PhysicalVolume>();
            var problems = new List<string>();
            foreach (string path in paths)
            {
                try
                {
                    pvs.Add(await PhysicalVolume.OpenAsync(FilePhysicalVolumeIo.Open(path), ct).ConfigureAwait(false));
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException or StorageException)
                {
                    problems.Add($"{path}: {e.Message}");
                }
            }
            return new StoragePool(home, lockFile, paths, pvs, problems);
        }
        catch
        {
            await lockFile.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    private static async Task<FileStream> LockAsync(string path, CancellationToken ct)
    {
        for (int attempt = 0; ; attempt++)
        {
            try
            {
                return new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            }
            catch (IOException) when (attempt < 300)
            {
                await Task.Delay(100, ct).ConfigureAwait(false);
            }
            catch (IOException e)
            {
                throw new StorageException($"another tern command holds {path}", e);
            }
        }
    }

    /// <summary>Finds an opened PV by path.</summary>
    public PhysicalVolume FindPv(string path)
    {
        string full = Path.GetFullPath(path);
        var pv = _pvs.FirstOrDefault(p => p.Name == full);
        if (pv is not null)
            return pv;
        if (_paths.Contains(full))
            throw new StorageException($"physical volume {full} cannot be opened: {Problems.FirstOrDefault(p => p.StartsWith(full, StringComparison.Ordinal))}");
        if (!File.Exists(full))
            throw new StorageException($"{full} does not exist");
        // Opening it throws NotAPhysicalVolumeException for a file that is not a PV, which says it best.
        using (var io = FilePhysicalVolumeIo.Open(full))
            PhysicalVolume.OpenAsync(io).GetAwaiter().GetResult().Dispose();
        throw new StorageException($"{full} is a physical volume but not one of this node's (not in {Path.Combine(Home, ListFile)})");
    }

    /// <summary>Labels <paramref name="path"/> as a PV (creating the file when missing) and adds it to the node's list.</summary>
    public async Task<PhysicalVolume> CreatePvAsync(string path, long size, string host, CancellationToken ct = default)
    {
        string full = Path.GetFullPath(path);
        if (_paths.Contains(full))
            throw new StorageException($"{full} is already a physical volume of this node");
        bool existed = File.Exists(full);
        if (!existed && size <= 0)
            throw new StorageException($"{full} does not exist; give --size to create it");
        if (!existed && Path.GetDirectoryName(full) is { } dir && !Directory.Exists(dir))
            throw new StorageException($"directory {dir} does not exist");
        IPhysicalVolumeIo? io = null;
        try
        {
            io = FilePhysicalVolumeIo.OpenOrCreate(full, size);
            if (existed)
            {
                try
                {
                    var old = await PhysicalVolume.OpenAsync(io, ct).ConfigureAwait(false);
                    if (old.Vg is { } vg)
                        throw new StorageException($"{full} is a physical volume of volume group {vg.Name}; refusing to overwrite it");
                }
                catch (NotAPhysicalVolumeException)
                {
                    // Not a PV yet: it gets labelled.
                }
            }
            var pv = await PhysicalVolume.CreateAsync(io, host, ct).ConfigureAwait(false);
            _pvs.Add(pv);
            _paths.Add(full);
            WriteList();
            return pv;
        }
        catch
        {
            io?.Dispose();
            if (!existed)
                File.Delete(full);
            throw;
        }
    }

    /// <summary>Wipes the label of an orphan PV and drops it from the node's list.</summary>
    public async Task RemovePvAsync(string path, CancellationToken ct = default)
    {
        var pv = FindPv(path);
        if (pv.Vg is { } vg)
            throw new StorageException($"{pv.Name} is still in volume group {vg.Name}; use vg reduce first");
        await pv.Io.WriteAsync(0, new byte[PhysicalVolume.BlockSize], ct).ConfigureAwait(false);
        await pv.Io.FlushAsync(ct).ConfigureAwait(false);
        _pvs.Remove(pv);
        _paths.Remove(pv.Name);
        pv.Dispose();
        WriteList();
    }

    /// <summary>Opens (and repairs, if needed) the VG named <paramref name="name"/>.</summary>
    public async Task<VolumeGroup> OpenVgAsync(string name, CancellationToken ct = default)
    {
        if (_vgs.TryGetValue(name, out var open))
            return open;
        if (!_pvs.Any(p => p.Vg?.Name == name))
            throw new StorageException($"volume group {name} not found");
        var vg = await VolumeGroup.OpenAsync(name, _pvs, ct).ConfigureAwait(false);
        _vgs[name] = vg;
        return vg;
    }

    /// <summary>Creates a VG over the PVs at <paramref name="paths"/>.</summary>
    public async Task<VolumeGroup> CreateVgAsync(string name, IReadOnlyList<string> paths, long extentSize, CancellationToken ct = default)
    {
        VolumeGroup.ValidateName(name, "volume group");
        if (VgNames.Contains(name))
            throw new StorageException($"volume group {name} already exists");
        var pvs = paths.Select(FindPv).ToList();
        var vg = await VolumeGroup.CreateAsync(name, pvs, extentSize, ct).ConfigureAwait(false);
        _vgs[name] = vg;
        return vg;
    }

    internal static List<string> ReadList(string home)
    {
        string file = Path.Combine(home, ListFile);
        if (!File.Exists(file))
            return [];
        try
        {
            return JsonSerializer.Deserialize(File.ReadAllBytes(file), PoolJsonContext.Default.PvList)?.Pvs.ToList() ?? [];
        }
        catch (JsonException e)
        {
            throw new StorageException($"{file} is damaged: {e.Message}", e);
        }
    }

    private void WriteList()
    {
        string file = Path.Combine(Home, ListFile);
        string tmp = file + ".tmp";
        File.WriteAllBytes(tmp, JsonSerializer.SerializeToUtf8Bytes(new PvList { Pvs = [.. _paths] }, PoolJsonContext.Default.PvList));
        File.Move(tmp, file, overwrite: true);
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        foreach (var vg in _vgs.Values)
            vg.Dispose();
        foreach (var pv in _pvs)
            pv.Dispose();
        _lock.Dispose();
    }
}

/// <summary>The node's list of PV paths (TERN_HOME/pvs.json).</summary>
public sealed record PvList
{
    /// <summary>Absolute paths.</summary>
    public IReadOnlyList<string> Pvs { get; init; } = [];
}

[JsonSourceGenerationOptions(JsonSerializerDefaults.Web, WriteIndented = true)]
[JsonSerializable(typeof(PvList))]
internal sealed partial class PoolJsonContext : JsonSerializerContext;
