// The PVs of the whole cluster as one StoragePool sees them, for the storage coordinator: every
// node's PVs (discovered from their extent servers), local ones opened directly and fenced,
// remote ones through RemotePhysicalVolumeIo, all named host:path. `pv create --host` asks that
// node's extent server to create the file; `pv remove` wipes the label and has the node forget it.
using System.Net;
using Tern.Cluster.Protocol;
using Tern.Storage;
using Tern.Storage.Remote;

namespace Tern.Cluster.Storage;

/// <summary>Asks the extent server actor of <paramref name="host"/>; throws <see cref="StorageException"/> when there is none.</summary>
public delegate Task<object> ExtentServerAsk(string host, object message, CancellationToken ct);

/// <summary>The PVs of every node of the cluster.</summary>
public sealed class ClusterPvProvider : IPvProvider
{
    private readonly NodeStorage _local;
    private readonly ExtentServerAsk _ask;
    private readonly Func<IReadOnlyDictionary<string, ExtentServerInfo>> _servers;
    private readonly RemoteIoOptions? _remoteOptions;
    private readonly Func<IPhysicalVolumeIo, IPhysicalVolumeIo>? _wrap;

    /// <summary>Creates the provider of the coordinator running on the node of <paramref name="local"/>.</summary>
    public ClusterPvProvider(NodeStorage local, Func<IReadOnlyDictionary<string, ExtentServerInfo>> servers, ExtentServerAsk ask, RemoteIoOptions? remoteOptions = null,
        Func<IPhysicalVolumeIo, IPhysicalVolumeIo>? wrap = null)
    {
        _wrap = wrap;
        _local = local;
        _servers = servers;
        _ask = ask;
        _remoteOptions = remoteOptions;
    }

    /// <inheritdoc/>
    public string Home => "the cluster";

    /// <inheritdoc/>
    public string DefaultHost => _local.Host;

    /// <summary>Opens one PV as node <paramref name="local"/> reaches it: directly when it is that node's, else through its extent server.</summary>
    public static async Task<PhysicalVolume> OpenPvAsync(NodeStorage local, ExtentServerInfo server, PvInfo pv, RemoteIoOptions? options,
        Func<IPhysicalVolumeIo, IPhysicalVolumeIo>? wrap, CancellationToken ct)
    {
        var io = await OpenIoAsync(local, server, pv, options, ct).ConfigureAwait(false);
        if (wrap is not null)
            io = wrap(io);
        try
        {
            return await PhysicalVolume.OpenAsync(io, ct).ConfigureAwait(false);
        }
        catch
        {
            io.Dispose();
            throw;
        }
    }

    /// <summary>The I/O of one PV as node <paramref name="local"/> reaches it, named host:path.</summary>
    public static async Task<IPhysicalVolumeIo> OpenIoAsync(NodeStorage local, ExtentServerInfo server, PvInfo pv, RemoteIoOptions? options, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(local);
        ArgumentNullException.ThrowIfNull(server);
        ArgumentNullException.ThrowIfNull(pv);
        if (server.Host == local.Host)
            return local.OpenLocal(pv.Id);
        var remote = await RemotePhysicalVolumeIo.ConnectAsync(server.Host, await ResolveAsync(server, ct).ConfigureAwait(false), server.Token, pv.Id, options, ct).ConfigureAwait(false);
        return new NamedPhysicalVolumeIo(remote, $"{server.Host}:{pv.Path}");
    }

    // An extent server's endpoint is host:port with the host an IP or a DNS name (a pod or service name).
    private static async Task<IPEndPoint> ResolveAsync(ExtentServerInfo server, CancellationToken ct)
    {
        int colon = server.Endpoint.LastIndexOf(':');
        if (IPEndPoint.TryParse(server.Endpoint, out var ep))
            return ep;
        if (colon <= 0 || !int.TryParse(server.Endpoint.AsSpan(colon + 1), System.Globalization.CultureInfo.InvariantCulture, out int port))
            throw new StorageException($"the extent server of {server.Host} gave a bad endpoint '{server.Endpoint}'");
        try
        {
            var addresses = await Dns.GetHostAddressesAsync(server.Endpoint[..colon], ct).ConfigureAwait(false);
            return new IPEndPoint(addresses.First(), port);
        }
        catch (System.Net.Sockets.SocketException e)
        {
            throw new IOException($"cannot resolve the extent server of {server.Host} ({server.Endpoint}): {e.Message}", e);
        }
    }

    /// <inheritdoc/>
    public Task<PvScan> OpenAllAsync(CancellationToken ct) => Task.FromResult(new PvScan([], []));

    /// <inheritdoc/>
    public PhysicalVolume Find(string path, IReadOnlyList<PhysicalVolume> open, IReadOnlyList<string> problems)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(open);
        var exact = open.FirstOrDefault(p => p.Name == path);
        if (exact is not null)
            return exact;
        // PATH alone: the PV at that path (or, relative, under a node's data dir) on whichever node has one.
        var matches = open.Where(p => PathOf(p) == path || (!Path.IsPathRooted(path) && PathOf(p).EndsWith("/" + path, StringComparison.Ordinal))).ToList();
        return matches.Count switch
        {
            1 => matches[0],
            0 => throw new StorageException($"no physical volume {path} on any node of the cluster (give HOST:PATH; `tern pv list` shows them)"),
            _ => throw new StorageException($"{path} names physical volumes on several nodes ({string.Join(", ", matches.Select(m => m.Name))}); give HOST:PATH"),
        };
    }

    private static string PathOf(PhysicalVolume pv) => pv.Name[(pv.Name.IndexOf(':', StringComparison.Ordinal) + 1)..];

    /// <inheritdoc/>
    public async Task<PhysicalVolume> CreateAsync(string path, long size, string host, CancellationToken ct)
    {
        var servers = _servers();
        // A node that joined a moment ago is found by the coordinator's next discovery round.
        for (int i = 0; i < 30 && !servers.ContainsKey(host); i++)
        {
            await Task.Delay(100, ct).ConfigureAwait(false);
            servers = _servers();
        }
        if (!servers.TryGetValue(host, out var server))
            throw new StorageException($"no node named {host} serves storage in the cluster (nodes: {string.Join(", ", servers.Keys.Order(StringComparer.Ordinal))})");
        var reply = await _ask(host, new CreatePhysicalVolume(path, size), ct).ConfigureAwait(false);
        return reply switch
        {
            PhysicalVolumeCreated created => await OpenPvAsync(_local, server, created.Pv, _remoteOptions, _wrap, ct).ConfigureAwait(false),
            StorageRefused refused => throw new StorageException(refused.Reason),
            _ => throw new StorageException($"{host} answered pv create with {reply.GetType().Name}"),
        };
    }

    /// <inheritdoc/>
    public async Task RemoveAsync(PhysicalVolume pv, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(pv);
        await pv.Io.WriteAsync(0, new byte[PhysicalVolume.BlockSize], ct).ConfigureAwait(false);
        await pv.Io.FlushAsync(ct).ConfigureAwait(false);
        string host = pv.Name[..pv.Name.IndexOf(':', StringComparison.Ordinal)];
        pv.Dispose();
        await _ask(host, new ForgetPhysicalVolume(pv.Id), ct).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        // The node's storage belongs to the node; the PVs to the pool.
    }
}
