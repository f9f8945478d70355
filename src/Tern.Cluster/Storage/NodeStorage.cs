// What one node contributes to the cluster's extent pool: its PV files (listed in its data
// dir's pvs.json, as `tern pv` on one node lists them), the fence table its extent server and
// its local PV I/O share, and the extent server itself. The node's ExtentServerActor, the
// storage agent and (when it runs here) the coordinator all use this one instance, so a local
// PV is fenced exactly like a remote one.
using System.Net;
using Tern.Storage;
using Tern.Storage.Format;
using Tern.Storage.Remote;

namespace Tern.Cluster.Storage;

/// <summary>The storage of one node: its PV files, fences and extent server.</summary>
public sealed class NodeStorage : IAsyncDisposable
{
    private readonly Dictionary<Guid, (string Path, IPhysicalVolumeIo Io, long Size)> _served = [];
    private readonly Lock _lock = new();
    private ExtentServer? _server;

    /// <summary>Creates the node's storage over <paramref name="dataDir"/> (fences in dataDir/fences.json).</summary>
    public NodeStorage(string host, string dataDir, IPAddress bind, string? advertised = null)
    {
        Host = host;
        Advertised = advertised ?? bind.ToString();
        DataDir = Path.GetFullPath(dataDir);
        Bind = bind;
        Directory.CreateDirectory(DataDir);
        Fences = new FenceTable(Path.Combine(DataDir, "fences.json"));
    }

    /// <summary>This node's host name (its PVs are labelled with it).</summary>
    public string Host { get; }

    /// <summary>The node's data dir, where its PVs are listed and relative PV paths resolve.</summary>
    public string DataDir { get; }

    /// <summary>The address other nodes reach the extent server by (an IP or a DNS name).</summary>
    public string Advertised { get; }

    /// <summary>Where the extent server listens.</summary>
    public IPAddress Bind { get; }

    /// <summary>The node's LV write fences.</summary>
    public FenceTable Fences { get; }

    /// <summary>The running extent server (after <see cref="StartAsync"/>).</summary>
    public ExtentServer Server => _server ?? throw new InvalidOperationException("the node's extent server has not started");

    /// <summary>Writes refused as stale, by the extent server and by local fenced I/O together.</summary>
    public long RefusedStaleWrites
    {
        get
        {
            long local;
            lock (_lock)
                local = _fenced.Sum(f => f.RefusedStaleWrites);
            return (_server?.RefusedStaleWrites ?? 0) + local;
        }
    }

    private readonly List<FencedPhysicalVolumeIo> _fenced = [];

    /// <summary>Starts the extent server and serves every PV listed in the data dir; returns one line per listed PV that could not be served.</summary>
    public async Task<IReadOnlyList<string>> StartAsync(CancellationToken ct = default)
    {
        _server ??= await ExtentServer.StartAsync(Bind, 0, Fences).ConfigureAwait(false);
        var problems = new List<string>();
        foreach (string path in StoragePool.ReadListOf(DataDir))
        {
            try
            {
                await ServeAsync(path, ct).ConfigureAwait(false);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or StorageException)
            {
                problems.Add($"{path}: {e.Message}");
            }
        }
        return problems;
    }

    // Opens a labelled PV file and serves it.
    private async Task<Guid> ServeAsync(string path, CancellationToken ct)
    {
        var io = FilePhysicalVolumeIo.Open(path);
        try
        {
            var block = new byte[PhysicalVolume.BlockSize];
            await io.ReadAsync(0, block, ct).ConfigureAwait(false);
            var label = PvLabel.Decode(block, path);
            lock (_lock)
            {
                if (_served.ContainsKey(label.Id))
                {
                    io.Dispose();
                    return label.Id;
                }
                _served[label.Id] = (io.Name, io, io.Length);
            }
            Server.AddVolume(label.Id, io);
            return label.Id;
        }
        catch
        {
            io.Dispose();
            throw;
        }
    }

    /// <summary>The PVs this node serves.</summary>
    public IReadOnlyList<(Guid Id, string Path, long Size)> Pvs
    {
        get
        {
            lock (_lock)
                return [.. _served.Select(p => (p.Key, p.Value.Path, p.Value.Size))];
        }
    }

    /// <summary>Resolves a PV path as this node does: relative to its data dir.</summary>
    public string Resolve(string path) => Path.GetFullPath(path, DataDir);

    /// <summary>Labels (and when missing creates) a PV file of this node, lists it in the data dir, and serves it.</summary>
    public async Task<(Guid Id, string Path, long Size)> CreatePvAsync(string path, long size, CancellationToken ct = default)
    {
        string full = Resolve(path);
        using (var provider = await FilePvProvider.OpenAsync(DataDir, ct).ConfigureAwait(false))
        {
            var pv = await provider.CreateAsync(full, size, Host, ct).ConfigureAwait(false);
            pv.Dispose();
        }
        var id = await ServeAsync(full, ct).ConfigureAwait(false);
        return Pvs.First(p => p.Id == id);
    }

    /// <summary>Stops serving a PV and drops it from the node's list; false when this node does not serve it.</summary>
    public async Task<bool> ForgetPvAsync(Guid id, CancellationToken ct = default)
    {
        (string Path, IPhysicalVolumeIo Io, long Size) served;
        lock (_lock)
        {
            if (!_served.Remove(id, out served))
                return false;
        }
        Server.RemoveVolume(id);
        served.Io.Dispose();
        using var provider = await FilePvProvider.OpenAsync(DataDir, ct).ConfigureAwait(false);
        provider.Unlist(served.Path);
        return true;
    }

    /// <summary>
    /// Opens a PV of this node for direct (not networked) I/O, fenced by the node's table like the
    /// extent server's I/O, and named host:path like every PV of the cluster pool.
    /// </summary>
    public IPhysicalVolumeIo OpenLocal(Guid id)
    {
        string path;
        lock (_lock)
        {
            if (!_served.TryGetValue(id, out var served))
                throw new StorageException($"physical volume {id} is not one of {Host}'s");
            path = served.Path;
        }
        var fenced = new FencedPhysicalVolumeIo(FilePhysicalVolumeIo.Open(path), Fences);
        lock (_lock)
            _fenced.Add(fenced);
        return new NamedPhysicalVolumeIo(fenced, $"{Host}:{path}");
    }

    /// <inheritdoc/>
    public async ValueTask DisposeAsync()
    {
        if (_server is not null)
            await _server.DisposeAsync().ConfigureAwait(false);
        lock (_lock)
        {
            foreach (var s in _served.Values)
                s.Io.Dispose();
            _served.Clear();
        }
    }
}

/// <summary>An <see cref="IPhysicalVolumeIo"/> under another name: every PV of the cluster pool is named host:path.</summary>
public sealed class NamedPhysicalVolumeIo(IPhysicalVolumeIo inner, string name) : IPhysicalVolumeIo
{
    /// <summary>The wrapped I/O.</summary>
    public IPhysicalVolumeIo Inner => inner;

    /// <inheritdoc/>
    public string Name => name;

    /// <inheritdoc/>
    public long Length => inner.Length;

    /// <inheritdoc/>
    public ValueTask ReadAsync(long offset, Memory<byte> buffer, CancellationToken cancellationToken = default) => inner.ReadAsync(offset, buffer, cancellationToken);

    /// <inheritdoc/>
    public ValueTask WriteAsync(long offset, ReadOnlyMemory<byte> data, CancellationToken cancellationToken = default) => inner.WriteAsync(offset, data, cancellationToken);

    /// <inheritdoc/>
    public ValueTask FlushAsync(CancellationToken cancellationToken = default) => inner.FlushAsync(cancellationToken);

    /// <inheritdoc/>
    public void Dispose() => inner.Dispose();
}
