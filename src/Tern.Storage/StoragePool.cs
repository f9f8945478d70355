// A view of the extent pool: the PVs a provider gives (one node's, listed in TERN_HOME/pvs.json,
// or the whole cluster's) and the VGs found on them. Commands open the pool, act, and close it;
// on one node an exclusive lock file in TERN_HOME keeps two commands from changing metadata at
// the same time, in a cluster the storage coordinator runs verbs one at a time.
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Tern.Storage;

/// <summary>The PVs and VGs of one node, or of the whole cluster (see <see cref="IPvProvider"/>).</summary>
public sealed class StoragePool : IDisposable
{
    private readonly IPvProvider _provider;
    private readonly List<PhysicalVolume> _pvs;
    private readonly List<string> _problems;
    private readonly Dictionary<string, VolumeGroup> _vgs = [];
    private readonly SemaphoreSlim _vgLock = new(1, 1);

    private StoragePool(IPvProvider provider, PvScan scan)
    {
        _provider = provider;
        _pvs = [.. scan.Pvs];
        _problems = [.. scan.Problems];
    }

    /// <summary>Where the PVs are listed: the node's state directory, or a description of the cluster.</summary>
    public string Home => _provider.Home;

    /// <summary>The host a new PV goes to when none is named.</summary>
    public string DefaultPvHost => _provider.DefaultHost;

    /// <summary>The PVs that opened.</summary>
    public IReadOnlyList<PhysicalVolume> Pvs
    {
        get
        {
            lock (_pvs)
                return [.. _pvs];
        }
    }

    /// <summary>Listed PVs that could not be opened, one message each.</summary>
    public IReadOnlyList<string> Problems
    {
        get
        {
            lock (_pvs)
                return [.. _problems];
        }
    }

    /// <summary>Names of the VGs found on the pool's PVs.</summary>
    public IEnumerable<string> VgNames => Pvs.Where(p => p.Vg is not null).Select(p => p.Vg!.Name).Distinct().Order(StringComparer.Ordinal);

    /// <summary>TERN_HOME, or ~/.tern.</summary>
    public static string DefaultHome() =>
        Environment.GetEnvironmentVariable("TERN_HOME") is { Length: > 0 } home
            ? home
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".tern");

    /// <summary>This node's host name: TERN_HOST, or the machine name.</summary>
    public static string DefaultHost() =>
        Environment.GetEnvironmentVariable("TERN_HOST") is { Length: > 0 } host ? host : Environment.MachineName;

    /// <summary>Opens the pool of the node whose state is in <paramref name="home"/>.</summary>
    public static async Task<StoragePool> OpenAsync(string home, CancellationToken ct = default) =>
        await OpenAsync(await FilePvProvider.OpenAsync(home, ct).ConfigureAwait(false), ct).ConfigureAwait(false);

    /// <summary>Opens a pool over the PVs of <paramref name="provider"/>, which the pool owns from then on.</summary>
    public static async Task<StoragePool> OpenAsync(IPvProvider provider, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(provider);
        try
        {
            return new StoragePool(provider, await provider.OpenAllAsync(ct).ConfigureAwait(false));
        }
        catch
        {
            provider.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Adds a PV that became reachable after the pool opened (a node that joined or came back):
    /// listed from now on, and attached to its VG if that is open. Returns false when the pool has
    /// it already, working, and <paramref name="replace"/> is not set (a reopened instance).
    /// </summary>
    public bool AddPv(PhysicalVolume pv, bool replace = false)
    {
        ArgumentNullException.ThrowIfNull(pv);
        lock (_pvs)
        {
            var present = _pvs.FirstOrDefault(p => p.Id == pv.Id);
            if (present is not null && !present.Failed && !replace)
                return false;
            if (present is not null)
                _pvs.Remove(present);
            _pvs.Add(pv);
        }
        if (pv.Vg is { } md && OpenVgs.FirstOrDefault(v => v.Metadata.Id == md.Id) is { } vg)
            vg.AttachPv(pv);
        return true;
    }

    /// <summary>Finds an opened PV by path.</summary>
    public PhysicalVolume FindPv(string path) => _provider.Find(path, Pvs, Problems);

    /// <summary>Labels <paramref name="path"/> as a PV of <paramref name="host"/> (creating the file when missing) and lists it.</summary>
    public async Task<PhysicalVolume> CreatePvAsync(string path, long size, string host, CancellationToken ct = default)
    {
        var pv = await _provider.CreateAsync(path, size, host, ct).ConfigureAwait(false);
        lock (_pvs)
        {
            // A cluster provider may have found the new PV on its node meanwhile: keep one instance.
            if (_pvs.FirstOrDefault(p => p.Id == pv.Id && !p.Failed) is { } found)
            {
                pv.Dispose();
                return found;
            }
            _pvs.Add(pv);
        }
        return pv;
    }

    /// <summary>Wipes the label of an orphan PV and drops it from the list.</summary>
    public async Task RemovePvAsync(string path, CancellationToken ct = default)
    {
        var pv = FindPv(path);
        if (pv.Vg is { } vg)
            throw new StorageException($"{pv.Name} is still in volume group {vg.Name}; use vg reduce first");
        await _provider.RemoveAsync(pv, ct).ConfigureAwait(false);
        lock (_pvs)
            _pvs.Remove(pv);
    }

    /// <summary>Opens (and repairs, if needed) the VG named <paramref name="name"/>.</summary>
    public async Task<VolumeGroup> OpenVgAsync(string name, CancellationToken ct = default)
    {
        // One instance per VG, also when a verb and a cluster request open it at the same time.
        await _vgLock.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            // A VG removed meanwhile (its PVs orphaned) is not returned.
            if (_vgs.TryGetValue(name, out var open) && Pvs.Any(p => p.Vg?.Id == open.Metadata.Id))
                return open;
            var pvs = Pvs;
            if (!pvs.Any(p => p.Vg?.Name == name))
                throw new StorageException($"volume group {name} not found");
            var vg = await VolumeGroup.OpenAsync(name, pvs, ct).ConfigureAwait(false);
            _vgs[name] = vg;
            return vg;
        }
        finally
        {
            _vgLock.Release();
        }
    }

    /// <summary>The VGs opened so far.</summary>
    public IReadOnlyList<VolumeGroup> OpenVgs
    {
        get
        {
            _vgLock.Wait();
            try
            {
                return [.. _vgs.Values];
            }
            finally
            {
                _vgLock.Release();
            }
        }
    }

    /// <summary>Creates a VG over the PVs at <paramref name="paths"/>.</summary>
    public async Task<VolumeGroup> CreateVgAsync(string name, IReadOnlyList<string> paths, long extentSize, CancellationToken ct = default)
    {
        VolumeGroup.ValidateName(name, "volume group");
        await _vgLock.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            if (VgNames.Contains(name))
                throw new StorageException($"volume group {name} already exists");
            var pvs = paths.Select(FindPv).ToList();
            var vg = await VolumeGroup.CreateAsync(name, pvs, extentSize, ct).ConfigureAwait(false);
            _vgs[name] = vg;
            return vg;
        }
        finally
        {
            _vgLock.Release();
        }
    }

    /// <summary>The PV paths listed in <paramref name="home"/>/pvs.json (empty when there is none).</summary>
    public static IReadOnlyList<string> ReadListOf(string home) => ReadList(home);

    internal static List<string> ReadList(string home)
    {
        string file = Path.Combine(home, FilePvProvider.ListFile);
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

    internal static void WriteList(string home, IEnumerable<string> paths)
    {
        string file = Path.Combine(home, FilePvProvider.ListFile);
        string tmp = file + ".tmp";
        File.WriteAllBytes(tmp, JsonSerializer.SerializeToUtf8Bytes(new PvList { Pvs = [.. paths] }, PoolJsonContext.Default.PvList));
        File.Move(tmp, file, overwrite: true);
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        foreach (var vg in _vgs.Values)
            vg.Dispose();
        foreach (var pv in Pvs)
            pv.Dispose();
        _provider.Dispose();
        _vgLock.Dispose();
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
