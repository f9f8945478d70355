// Where a storage pool's PVs come from. On one node they are the files listed in the node's
// TERN_HOME/pvs.json (FilePvProvider, guarded by the node's lock file); in a cluster the
// storage coordinator provides every node's PVs, remote ones through their extent servers,
// so the same pv/vg/lv verbs run on one node's files or on the whole cluster.
namespace Tern.Storage;

/// <summary>The PVs that opened and one message per listed PV that did not.</summary>
/// <param name="Pvs">Opened PVs.</param>
/// <param name="Problems">One line per PV that could not be opened.</param>
public sealed record PvScan(IReadOnlyList<PhysicalVolume> Pvs, IReadOnlyList<string> Problems);

/// <summary>Lists, opens, creates and removes the PVs of a <see cref="StoragePool"/>.</summary>
public interface IPvProvider : IDisposable
{
    /// <summary>Where the PVs are listed, for messages (a node's state directory, or "the cluster").</summary>
    string Home { get; }

    /// <summary>The host a new PV goes to (and is labelled with) when none is named.</summary>
    string DefaultHost { get; }

    /// <summary>Opens every PV the provider lists.</summary>
    Task<PvScan> OpenAllAsync(CancellationToken ct);

    /// <summary>
    /// Finds the PV that <paramref name="path"/> names among <paramref name="open"/>, or throws a
    /// <see cref="StorageException"/> saying why it is none of them.
    /// </summary>
    PhysicalVolume Find(string path, IReadOnlyList<PhysicalVolume> open, IReadOnlyList<string> problems);

    /// <summary>Labels <paramref name="path"/> on <paramref name="host"/> as a new PV (creating the file when missing), lists it, and returns it open.</summary>
    Task<PhysicalVolume> CreateAsync(string path, long size, string host, CancellationToken ct);

    /// <summary>Wipes the label of an orphan PV, unlists it and closes it.</summary>
    Task RemoveAsync(PhysicalVolume pv, CancellationToken ct);
}

/// <summary>One node's PVs: the files listed in its state directory, guarded by the directory's lock file.</summary>
public sealed class FilePvProvider : IPvProvider
{
    internal const string ListFile = "pvs.json";

    private readonly FileStream _lock;
    private readonly List<string> _paths;

    private FilePvProvider(string home, FileStream lockFile, List<string> paths)
    {
        Home = home;
        _lock = lockFile;
        _paths = paths;
    }

    /// <inheritdoc/>
    public string Home { get; }

    /// <inheritdoc/>
    public string DefaultHost => StoragePool.DefaultHost();

    /// <summary>Takes the lock of the node whose state is in <paramref name="home"/> (waiting up to 30 s for another command) and reads its list.</summary>
    public static async Task<FilePvProvider> OpenAsync(string home, CancellationToken ct = default)
    {
        Directory.CreateDirectory(home);
        var lockFile = await LockAsync(Path.Combine(home, "lock"), ct).ConfigureAwait(false);
        try
        {
            return new FilePvProvider(home, lockFile, StoragePool.ReadList(home));
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

    /// <inheritdoc/>
    public async Task<PvScan> OpenAllAsync(CancellationToken ct)
    {
        var pvs = new List<PhysicalVolume>();
        var problems = new List<string>();
        foreach (string path in _paths)
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
        return new PvScan(pvs, problems);
    }

    /// <inheritdoc/>
    public PhysicalVolume Find(string path, IReadOnlyList<PhysicalVolume> open, IReadOnlyList<string> problems)
    {
        string full = Path.GetFullPath(path);
        var pv = open.FirstOrDefault(p => p.Name == full);
        if (pv is not null)
            return pv;
        if (_paths.Contains(full))
            throw new StorageException($"physical volume {full} cannot be opened: {problems.FirstOrDefault(p => p.StartsWith(full, StringComparison.Ordinal))}");
        if (!File.Exists(full))
            throw new StorageException($"{full} does not exist");
        // Opening it throws NotAPhysicalVolumeException for a file that is not a PV, which says it best.
        using (var io = FilePhysicalVolumeIo.Open(full))
            PhysicalVolume.OpenAsync(io).GetAwaiter().GetResult().Dispose();
        throw new StorageException($"{full} is a physical volume but not one of this node's (not in {Path.Combine(Home, ListFile)})");
    }

    /// <inheritdoc/>
    public async Task<PhysicalVolume> CreateAsync(string path, long size, string host, CancellationToken ct)
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
            _paths.Add(full);
            StoragePool.WriteList(Home, _paths);
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

    /// <inheritdoc/>
    public async Task RemoveAsync(PhysicalVolume pv, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(pv);
        await pv.Io.WriteAsync(0, new byte[PhysicalVolume.BlockSize], ct).ConfigureAwait(false);
        await pv.Io.FlushAsync(ct).ConfigureAwait(false);
        _paths.Remove(pv.Name);
        pv.Dispose();
        StoragePool.WriteList(Home, _paths);
    }

    /// <summary>Drops <paramref name="path"/> from the node's list (its label is left as it is); false when it was not listed.</summary>
    public bool Unlist(string path)
    {
        if (!_paths.Remove(Path.GetFullPath(path)))
            return false;
        StoragePool.WriteList(Home, _paths);
        return true;
    }

    /// <summary>The node's listed PV paths.</summary>
    public IReadOnlyList<string> Paths => _paths;

    /// <inheritdoc/>
    public void Dispose() => _lock.Dispose();
}
